package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// walkMax is the most messages History reads by walking the record chain
// back from the newest record (one direct get each); longer reads scan the
// topic's records through a consumer.
const walkMax = 8

// newest is the newest history record of a topic as History found it.
type newest struct {
	tip  tip // the stream's state, after any marker written
	kind byte
	m    *pubsub.Message // the message of a data record
	rec  histMeta        // the record's own history fields
}

// History reads topic's history, creating an empty stream when it has
// none (or it expired) and extending the stream's life by opts.TTL. See
// pubsub.Broker.History.
func (b *Broker) History(ctx context.Context, topic string, opts pubsub.HistoryOptions) (pubsub.HistoryResult, error) {
	if err := b.life.Check("history", topic); err != nil {
		return pubsub.HistoryResult{}, err
	}
	if err := b.c.online(); err != nil {
		return pubsub.HistoryResult{}, b.fail("history", topic, err)
	}
	ctx, cancel := b.c.reqCtx(ctx)
	defer cancel()
	st := b.topicState(topic)
	top, err := b.sharedSettle(ctx, st, topic, opts.TTL)
	if err != nil {
		return pubsub.HistoryResult{}, b.fail("history", topic, err)
	}
	res, err := b.read(ctx, topic, top, opts)
	if err != nil {
		return pubsub.HistoryResult{}, b.fail("history", topic, err)
	}
	return res, nil
}

// settle loads the newest record of topic and makes it describe a live
// stream: it writes a marker starting a new, empty stream if there is none
// or it has expired, or a marker extending the stream's life to ttl from
// now if that is more than ttl/4 later than its current end. st.mu is
// held. The returned record is the newest one before any marker written,
// where reads start walking back.
func (b *Broker) settle(ctx context.Context, st *topicState, topic string, ttl time.Duration) (newest, error) {
	subject := b.names.historySubject(topic)
	for attempt := 1; ; attempt++ {
		gen := b.c.gen.Load()
		t, kind, m, err := b.loadTip(ctx, topic)
		if err != nil {
			st.loaded = false
			return newest{}, err
		}
		st.tip, st.loaded, st.gen = t, true, gen
		top := newest{tip: t, kind: kind, m: m, rec: t.h}
		at := nowMs()
		var h histMeta
		switch {
		case !t.alive(at):
			h = histMeta{epoch: newEpoch(t.h.epoch), keptFrom: 1, expireAt: expiryMs(at, ttl)}
		case ttl > 0 && t.h.expireAt != 0 && expiryMs(at, ttl)-t.h.expireAt > max(ttl.Milliseconds()/4, 1):
			h = t.h
			h.expireAt = expiryMs(at, ttl)
		default:
			return top, nil
		}
		h.prev = t.streamSeq
		expect := t.streamSeq
		seq, err := b.c.publish(ctx, subject, encodeRecord(kindMarker, &pubsub.Message{Topic: topic}, &h), &expect)
		if errors.Is(err, errConflict) && attempt < maxAppendAttempts {
			continue
		}
		if err != nil {
			st.loaded = false
			return newest{}, fmt.Errorf("write history marker: %w", err)
		}
		st.tip = tip{streamSeq: seq, valid: true, kind: kindMarker, h: h}
		if h.epoch != t.h.epoch {
			if t.streamSeq != 0 {
				b.purgeOld(ctx, topic, subject, seq)
			}
			return newest{tip: st.tip, kind: kindMarker, rec: h}, nil
		}
		top.tip.h.expireAt = h.expireAt
		return top, nil
	}
}

// read selects the messages opts asks for from the stream whose newest
// record is top.
func (b *Broker) read(ctx context.Context, topic string, top newest, opts pubsub.HistoryOptions) (pubsub.HistoryResult, error) {
	h := top.tip.h
	res := pubsub.HistoryResult{Latest: pubsub.Position{Epoch: h.epoch, Seq: h.seq}}
	at := nowMs()
	if opts.Since == nil {
		res.Recovered = true
		if opts.Limit < 0 || h.seq == 0 || h.seq < h.keptFrom {
			return res, nil
		}
		n := h.seq - h.keptFrom + 1
		if opts.Limit > 0 && uint64(opts.Limit) < n {
			n = uint64(opts.Limit)
		}
		recs, err := b.records(ctx, topic, top, h.seq-n+1, h.seq)
		if err != nil {
			return res, err
		}
		// Keep the gap-free run ending with the newest message, without
		// the expired messages at its head.
		i := len(recs)
		for i > 0 && recs[i-1].m.Position.Seq == h.seq-uint64(len(recs)-i) {
			i--
		}
		recs = recs[i:]
		for len(recs) > 0 && recs[0].expired(at) {
			recs = recs[1:]
		}
		res.Messages = messages(recs)
		return res, nil
	}
	since := *opts.Since
	switch {
	case since.Epoch != h.epoch || since.Seq > h.seq:
		return res, nil
	case since.Seq == h.seq:
		res.Recovered = true
		return res, nil
	case since.Seq+1 < h.keptFrom:
		return res, nil
	}
	lo, hi := since.Seq+1, h.seq
	switch {
	case opts.Limit < 0:
		hi = lo
	case opts.Limit > 0 && uint64(opts.Limit) <= hi-lo:
		hi = lo + uint64(opts.Limit) - 1
	}
	recs, err := b.records(ctx, topic, top, lo, hi)
	if err != nil {
		return res, err
	}
	if uint64(len(recs)) != hi-lo+1 || recs[0].m.Position.Seq != lo || recs[0].expired(at) {
		return res, nil // dropped or expired since the client's position
	}
	res.Recovered = true
	if opts.Limit >= 0 {
		res.Messages = messages(recs)
	}
	return res, nil
}

// histMsg is a message read from history with its expiry.
type histMsg struct {
	m        *pubsub.Message
	expireAt int64 // unix milliseconds; 0 = never
}

// expired reports whether the message has expired at time at.
func (r histMsg) expired(at int64) bool {
	return r.expireAt != 0 && at >= r.expireAt
}

// messages returns the messages of recs, or nil if there are none.
func messages(recs []histMsg) []*pubsub.Message {
	if len(recs) == 0 {
		return nil
	}
	out := make([]*pubsub.Message, len(recs))
	for i, r := range recs {
		out[i] = r.m
	}
	return out
}

// records returns the messages of the stream of top with seqs lo to hi
// that are still stored, oldest first, without gaps or duplicates.
func (b *Broker) records(ctx context.Context, topic string, top newest, lo, hi uint64) ([]histMsg, error) {
	if top.tip.h.seq-lo+1 <= walkMax {
		msgs, complete, err := b.walk(ctx, topic, top, lo, hi)
		if err != nil || complete {
			return msgs, err
		}
	}
	from, err := b.markBefore(ctx, topic, top, lo)
	if err != nil {
		return nil, err
	}
	return b.scanRecords(ctx, topic, top.tip.h.epoch, lo, hi, from)
}

// markBefore follows the marks of records back from top, up to maxHops
// times, to the stream sequence of a message with seq lo or less, from
// which a scan finds every message from lo on. It returns 0 (scan
// everything) when lo is further back or the marks lead nowhere.
func (b *Broker) markBefore(ctx context.Context, topic string, top newest, lo uint64) (uint64, error) {
	const maxHops = 4
	h := top.rec
	for hops := 0; h.markSeq > lo; hops++ {
		if hops == maxHops {
			return 0, nil
		}
		raw, err := b.c.get(ctx, h.markStream)
		if errors.Is(err, errNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read history record: %w", err)
		}
		want := h.markSeq
		kind, m, mh, err := decodeRecord(raw.Data)
		if err != nil || kind != kindData || m.Topic != topic || mh.epoch != top.tip.h.epoch || mh.seq != want {
			return 0, nil
		}
		h = mh
	}
	if h.markSeq == 0 {
		return 0, nil
	}
	return h.markStream, nil
}

// walk follows the chain of records back from top, collecting the
// messages with seqs lo to hi. complete is false when it gave up after
// too many markers.
func (b *Broker) walk(ctx context.Context, topic string, top newest, lo, hi uint64) (msgs []histMsg, complete bool, err error) {
	epoch := top.tip.h.epoch
	kind, m, h := top.kind, top.m, top.rec
	for steps := 0; ; steps++ {
		if h.epoch != epoch || kind == kindData && h.seq < lo {
			break
		}
		if kind == kindData && h.seq <= hi {
			msgs = append(msgs, histMsg{m: m, expireAt: h.expireAt})
			if h.seq == lo {
				break
			}
		}
		if h.prev == 0 {
			break
		}
		if steps >= 2*walkMax {
			return nil, false, nil
		}
		raw, err := b.c.get(ctx, h.prev)
		if errors.Is(err, errNotFound) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read history record: %w", err)
		}
		var derr error
		kind, m, h, derr = decodeRecord(raw.Data)
		if derr != nil || kind == kindBroadcast || m.Topic != topic {
			break
		}
	}
	slices.Reverse(msgs)
	return msgs, true, nil
}

// scanRecords reads the stored records of topic from stream sequence
// from on (all of them if from is 0), keeping the messages of epoch with
// seqs lo to hi.
func (b *Broker) scanRecords(ctx context.Context, topic, epoch string, lo, hi, from uint64) ([]histMsg, error) {
	var msgs []histMsg
	err := b.c.scan(ctx, b.names.historySubject(topic), false, from, func(_ string, _ uint64, data []byte) {
		kind, m, h, err := decodeRecord(data)
		if err != nil || kind != kindData || m.Topic != topic || h.epoch != epoch || h.seq < lo || h.seq > hi {
			return
		}
		if n := len(msgs); n > 0 && msgs[n-1].m.Position.Seq >= h.seq {
			return
		}
		msgs = append(msgs, histMsg{m: m, expireAt: h.expireAt})
	})
	if err != nil {
		return nil, fmt.Errorf("scan history: %w", err)
	}
	return msgs, nil
}
