package natsbroker

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// minCheckInterval bounds how often the loop runs.
const minCheckInterval = 50 * time.Millisecond

// loop heartbeats, writes this node's entries again when NATS lost them,
// retries queued removals, and removes the entries of dead nodes. It runs
// every PresenceTTL/10, and at once after a (re)connect.
func (p *Presence) loop() {
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.done
		cancel()
	}()
	ticker := time.NewTicker(max(p.opts.PresenceTTL/10, minCheckInterval))
	defer ticker.Stop()
	beatEvery := p.opts.PresenceTTL / 3
	var lastBeat time.Time
	for {
		forced := false
		select {
		case <-p.done:
			return
		case <-p.kick:
			forced = true
		case <-ticker.C:
		}
		if p.c.online() != nil {
			continue
		}
		if forced {
			// This node was cut off: the other nodes' heartbeats may have
			// moved on unseen, so time them afresh.
			now := time.Now()
			for owner, o := range p.seen {
				o.at = now
				p.seen[owner] = o
			}
		}
		if forced || time.Since(lastBeat) >= beatEvery {
			if err := p.withTimeout(ctx, p.beat); err != nil {
				// Other nodes probably cannot write theirs either (the
				// stream has no leader): do not count this time.
				p.blind = true
				p.log.Warn("presence heartbeat failed", zap.Error(err))
			} else {
				lastBeat = time.Now()
			}
		}
		if p.retrack.Load() {
			p.retrackAll(ctx)
		}
		p.flushPending(ctx)
		if p.onExpire.Load() != nil {
			// Bounded by the heartbeat interval: a check that hangs (a
			// scan's consumer unanswered while a server is down) must not
			// hold this node's next heartbeat back, or the other nodes see
			// a gap of request timeout plus interval and take it for dead.
			// TestHACluster saw that once in nine runs with a 2 s TTL.
			if err := p.withLimit(ctx, min(p.c.opts.RequestTimeout, beatEvery), p.expireDead); err != nil && ctx.Err() == nil {
				p.log.Warn("checking for dead nodes failed", zap.Error(err))
			}
		}
	}
}

// withTimeout runs f with ctx bounded by the request timeout.
func (p *Presence) withTimeout(ctx context.Context, f func(context.Context) error) error {
	return p.withLimit(ctx, p.c.opts.RequestTimeout, f)
}

// withLimit runs f with ctx bounded by d.
func (p *Presence) withLimit(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// beat writes this node's heartbeat, conditional on the previous one
// being the newest. If it is not (another node expired this one while it
// was cut off, or the server lost its data), it writes the heartbeat anew
// and has the loop write this node's entries again.
func (p *Presence) beat(ctx context.Context) error {
	p.hbMu.Lock()
	defer p.hbMu.Unlock()
	subject := p.names.heartbeatSubject(p.owner)
	data := encodePresence(&presRecord{kind: presAlive, owner: p.owner})
	expect := p.hbSeq
	seq, err := p.c.publish(ctx, subject, data, &expect)
	if isConflict(err) {
		p.log.Warn("this node's presence was lost (expired by another node, or the server lost it): tracking its entries again")
		seq, err = p.c.publish(ctx, subject, data, nil)
		if err == nil {
			p.retrack.Store(true)
		}
	}
	if err != nil {
		return err
	}
	p.hbSeq = seq
	p.hbReady.Store(true)
	return nil
}

// retrackAll writes every entry tracked here again.
func (p *Presence) retrackAll(ctx context.Context) {
	p.retrack.Store(false)
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for topic, ids := range sh.own {
			for _, e := range ids {
				data := encodePresence(p.entryRecord(topic, e))
				err := p.withTimeout(ctx, func(ctx context.Context) error {
					_, err := p.c.publish(ctx, p.names.entrySubject(topic, p.owner, e.ID), data, nil)
					return err
				})
				if err != nil {
					sh.mu.Unlock()
					p.retrack.Store(true)
					p.log.Warn("tracking entries again failed; retrying", zap.Error(err))
					return
				}
				n++
			}
		}
		sh.mu.Unlock()
	}
	p.log.Info("presence entries tracked again", zap.Int("entries", n))
}

// flushPending purges the queued removals, each under the lock of its
// topic so that it cannot remove an entry tracked again meanwhile.
func (p *Presence) flushPending(ctx context.Context) {
	p.pendMu.Lock()
	if len(p.pending) == 0 {
		p.pendMu.Unlock()
		return
	}
	filters := make([]string, 0, len(p.pending))
	for f := range p.pending {
		filters = append(filters, f)
	}
	p.pendMu.Unlock()
	for _, f := range filters {
		sh := p.shardOfFilter(f)
		sh.mu.Lock()
		p.pendMu.Lock()
		_, still := p.pending[f]
		p.pendMu.Unlock()
		var err error
		if still {
			err = p.withTimeout(ctx, func(ctx context.Context) error { return p.c.purge(ctx, f, 0) })
			if err == nil {
				p.dropPending(f)
			}
		}
		sh.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// shardOfFilter returns the shard of the topic of an entry filter.
func (p *Presence) shardOfFilter(f string) *presShard {
	tok := strings.TrimPrefix(f, p.names.presence+"e.")
	if i := strings.IndexByte(tok, '.'); i >= 0 {
		tok = tok[:i]
	}
	topic, err := decodeToken(tok)
	if err != nil {
		return &p.shards[0]
	}
	return p.shard(topic)
}

// heartbeat is a node's heartbeat as read by expireDead.
type heartbeat struct {
	seq uint64
	r   presRecord
}

// expireDead reads every node's heartbeat and claims those of nodes that
// closed, or whose heartbeat has not changed for PresenceTTL (as timed
// here, so that clocks need not agree). Only time during which this node
// could read the heartbeats and write its own counts: after a failed read
// or heartbeat (the stream had no leader while JetStream elected a new
// one, say, so no node could write its heartbeat either) every heartbeat
// is timed afresh.
func (p *Presence) expireDead(ctx context.Context) error {
	beats := make(map[string]heartbeat)
	err := p.c.scan(ctx, p.names.heartbeats(), true, 0, func(subject string, seq uint64, data []byte) {
		r, err := decodePresence(data)
		if err != nil || r.kind < presAlive || subject != p.names.heartbeatSubject(r.owner) {
			p.log.Warn("ignoring an invalid heartbeat", zap.String("subject", subject))
			return
		}
		beats[r.owner] = heartbeat{seq: seq, r: r}
	})
	if err != nil {
		p.blind = true
		return err
	}
	now := time.Now()
	if p.blind {
		p.blind = false
		for owner, o := range p.seen {
			o.at = now
			p.seen[owner] = o
		}
	}
	for owner := range p.seen {
		if _, ok := beats[owner]; !ok {
			delete(p.seen, owner)
		}
	}
	for owner, hb := range beats {
		if owner == p.owner {
			continue
		}
		o, ok := p.seen[owner]
		if !ok || o.seq != hb.seq {
			o = observed{seq: hb.seq, at: now}
			p.seen[owner] = o
		}
		if hb.r.kind == presClosed || now.Sub(o.at) >= p.opts.PresenceTTL {
			if err := p.claim(ctx, owner, hb); err != nil {
				return err
			}
		}
	}
	return nil
}

// claim replaces the heartbeat of a dead node by a claim, conditional on
// it being unchanged, so that one node only cleans up after it; then it
// removes the node's entries, each conditional on being unchanged too, and
// reports each one it removed.
func (p *Presence) claim(ctx context.Context, owner string, hb heartbeat) error {
	subject := p.names.heartbeatSubject(owner)
	expect := hb.seq
	data := encodePresence(&presRecord{kind: presClaimed, owner: owner, node: p.owner})
	claimSeq, err := p.c.publish(ctx, subject, data, &expect)
	if isConflict(err) {
		return nil // alive after all, or claimed by another node
	}
	if err != nil {
		return err
	}
	// Should this node fail now, another claims the claim after the TTL.
	p.seen[owner] = observed{seq: claimSeq, at: time.Now()}
	type item struct {
		subject string
		seq     uint64
		r       presRecord
	}
	var items []item
	err = p.c.scan(ctx, p.names.ownerEntries(owner), true, 0, func(subject string, seq uint64, data []byte) {
		if r, err := decodePresence(data); err == nil && r.owner == owner && r.kind <= presTombstone {
			items = append(items, item{subject, seq, r})
		}
	})
	if err != nil {
		return err
	}
	report := *p.onExpire.Load()
	removed := 0
	for _, it := range items {
		below := it.seq + 1
		if it.r.kind == presEntry {
			expect := it.seq
			tomb := encodePresence(&presRecord{kind: presTombstone, topic: it.r.topic, id: it.r.id, owner: owner})
			seq, err := p.c.publish(ctx, it.subject, tomb, &expect)
			if isConflict(err) {
				continue // tracked again by its owner
			}
			if err != nil {
				return err
			}
			report(it.r.topic, pubsub.PresenceEntry{ID: it.r.id, Key: it.r.key, Meta: it.r.meta, Node: it.r.node})
			removed++
			below = seq + 1
		}
		if err := p.c.purge(ctx, it.subject, below); err != nil {
			p.log.Warn("purging a removed presence entry failed", zap.Error(err))
		}
	}
	if err := p.c.purge(ctx, subject, claimSeq+1); err != nil {
		return err
	}
	delete(p.seen, owner)
	reason := "heartbeat older than the TTL"
	if hb.r.kind == presClosed {
		reason = "closed"
	}
	p.log.Info("removed the presence of a stopped node", zap.String("node", owner),
		zap.String("reason", reason), zap.Int("entries", removed))
	return nil
}
