package redisbroker

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

const (
	// refreshTopics is the most topics refreshed in one round trip.
	refreshTopics = 64
	// refreshEntries is the most entries of one topic refreshed by one
	// script call.
	refreshEntries = 500
	// sweepTopics is the most due topics one sweep round looks at.
	sweepTopics = 64
	// sweepEntries is the most expired entries of one topic removed by one
	// script call (the topic stays due if there are more).
	sweepEntries = 256
	// sweepRounds bounds the rounds of one sweep.
	sweepRounds = 16
)

// ownRef is a topic of this node with its state, acquired for a refresh.
type ownRef struct {
	topic string
	ot    *ownTopic
}

// refreshLoop re-tracks this node's entries every PresenceTTL/3, and
// retries sooner after a failure, until Close.
func (p *Presence) refreshLoop() {
	defer p.wg.Done()
	every := p.cfg.PresenceTTL / 3
	retry := min(every, time.Second)
	timer := time.NewTimer(every)
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		if err := p.refresh(); err != nil {
			if !failing {
				p.log.Error("cannot refresh this node's presence entries; other nodes expire them after the presence TTL unless Redis is back before",
					zap.Duration("presence_ttl", p.cfg.PresenceTTL), zap.Error(err))
			}
			failing = true
			timer.Reset(retry)
			continue
		}
		if failing {
			p.log.Info("presence entries refreshed again")
		}
		failing = false
		timer.Reset(every)
	}
}

// refresh re-tracks every entry of this node, which also restores them
// after Redis lost its data.
func (p *Presence) refresh() error {
	p.mu.Lock()
	refs := make([]ownRef, 0, len(p.own))
	for topic, ot := range p.own {
		ot.users++
		refs = append(refs, ownRef{topic, ot})
	}
	p.mu.Unlock()
	var err error
	for i := 0; i < len(refs); i += refreshTopics {
		batch := refs[i:min(i+refreshTopics, len(refs))]
		if err == nil {
			err = p.refreshBatch(batch)
		}
		for _, r := range batch {
			p.release(r.topic, r.ot)
		}
	}
	return err
}

// refreshBatch re-tracks the entries of a few topics in one round trip,
// holding their locks so that no Untrack is undone.
func (p *Presence) refreshBatch(batch []ownRef) error {
	for _, r := range batch {
		r.ot.mu.Lock()
	}
	defer func() {
		for _, r := range batch {
			r.ot.mu.Unlock()
		}
	}()
	var writes []entryWrite
	for _, r := range batch {
		pairs := make([]string, 0, 2*min(len(r.ot.entries), refreshEntries))
		for id, enc := range r.ot.entries {
			pairs = append(pairs, id, enc)
			if len(pairs) == 2*refreshEntries {
				writes = append(writes, entryWrite{r.topic, pairs})
				pairs = make([]string, 0, 2*refreshEntries)
			}
		}
		if len(pairs) > 0 {
			writes = append(writes, entryWrite{r.topic, pairs})
		}
	}
	ctx, cancel := p.cfg.callCtx(context.Background())
	defer cancel()
	if err := p.write(ctx, writes); err != nil {
		return p.fail(context.Background(), "refresh", "", err)
	}
	return nil
}

// sweepLoop removes expired entries every PresenceTTL/10 (at most every
// second, jittered) until Close. It pauses for PresenceTTL/2 after a call
// of this node failed to reach Redis, and the sweep scripts pause as long
// after Redis itself was paused or unreachable for every node, so that
// after an outage the live nodes refresh their entries before anything is
// declared expired.
func (p *Presence) sweepLoop() {
	defer p.wg.Done()
	every := sweepInterval(p.cfg.PresenceTTL)
	grace := p.cfg.PresenceTTL / 2
	timer := time.NewTimer(jitter(every))
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		timer.Reset(jitter(every))
		if last := p.lastFailure.Load(); last != 0 && time.Since(time.Unix(0, last)) < grace {
			continue
		}
		if err := p.sweep(); err != nil {
			if !failing {
				p.log.Warn("cannot sweep expired presence entries", zap.Error(err))
			}
			failing = true
			continue
		}
		failing = false
	}
}

// sweep removes the expired entries of due topics and reports them.
func (p *Presence) sweep() error {
	clock, grace := p.keys.sweepClock(), p.keys.sweepGrace()
	dueKeys := []string{p.keys.presenceIndex(), clock, grace}
	ttl := p.cfg.PresenceTTL
	gap := strconv.FormatInt(millis(max(ttl/4, 4*sweepInterval(ttl))), 10)
	graceMs := strconv.FormatInt(millis(ttl/2), 10)
	for range sweepRounds {
		ctx, cancel := p.cfg.callCtx(context.Background())
		due, err := dueScript.Exec(ctx, p.client, dueKeys, []string{strconv.Itoa(sweepTopics), gap, graceMs}).AsStrSlice()
		cancel()
		if err != nil {
			return p.fail(context.Background(), "sweep", "", err)
		}
		if len(due) < 2 {
			return nil
		}
		topics := make([]string, 0, len(due)/2)
		execs := make([]rueidis.LuaExec, 0, len(due)/2)
		for i := 0; i+1 < len(due); i += 2 {
			topics = append(topics, due[i])
			execs = append(execs, rueidis.LuaExec{Keys: p.presenceKeys(due[i]), Args: []string{strconv.Itoa(sweepEntries)}})
		}
		ctx, cancel = p.cfg.callCtx(context.Background())
		results := sweepScript.ExecMulti(ctx, p.client, execs...)
		cancel()
		reindex := make([]rueidis.LuaExec, 0, len(topics))
		for i, res := range results {
			arr, err := res.ToArray()
			if err != nil || len(arr) == 0 {
				return p.fail(context.Background(), "sweep", topics[i], err)
			}
			for j := 1; j+1 < len(arr); j += 2 {
				id, err1 := arr[j].ToString()
				enc, err2 := arr[j+1].ToString()
				if err1 != nil || err2 != nil {
					continue
				}
				p.expired(topics[i], id, enc)
			}
			earliest, err := arr[0].AsInt64()
			if err != nil {
				return p.fail(context.Background(), "sweep", topics[i], err)
			}
			reindex = append(reindex, rueidis.LuaExec{
				Keys: []string{p.keys.presenceIndex()},
				Args: []string{topics[i], due[2*i+1], strconv.FormatInt(earliest, 10)},
			})
		}
		ctx, cancel = p.cfg.callCtx(context.Background())
		for i, res := range reindexScript.ExecMulti(ctx, p.client, reindex...) {
			if err := res.Error(); err != nil {
				cancel()
				return p.fail(context.Background(), "sweep", topics[i], err)
			}
		}
		cancel()
		if len(topics) < sweepTopics {
			return nil
		}
	}
	return nil
}

// expired handles an entry this node's sweep removed: it reports it, or
// tracks it again if it is one of this node's live entries whose refresh
// came late.
func (p *Presence) expired(topic, id, enc string) {
	e, err := decodeEntry(id, enc)
	if err != nil {
		p.log.Warn("dropping undecodable expired presence entry", zap.String("topic", topic), zap.Error(err))
		return
	}
	p.mu.Lock()
	ot := p.own[topic]
	if ot != nil {
		ot.users++
	}
	p.mu.Unlock()
	if ot != nil {
		ot.mu.Lock()
		mine, ok := ot.entries[id]
		if ok {
			ctx, cancel := p.cfg.callCtx(context.Background())
			err = p.write(ctx, []entryWrite{{topic, []string{id, mine}}})
			cancel()
		}
		ot.mu.Unlock()
		p.release(topic, ot)
		if ok {
			p.log.Warn("own presence entry expired before its refresh; tracked again",
				zap.String("topic", topic), zap.String("id", id), zap.Error(err))
			return
		}
	}
	if f := p.onExpire.Load(); f != nil {
		(*f)(topic, e)
	}
}

// sweepInterval is the time between two sweeps of one node.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(ttl/10, time.Second)
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
