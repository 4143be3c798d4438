package natsbroker

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

const (
	// maxAppendAttempts bounds the retries of a history write that lost
	// a race with another writer of the topic.
	maxAppendAttempts = 100
	// markSpan is how far back (in seqs) the mark of a record may lie
	// before the next record moves it up to its predecessor.
	markSpan = 64
	// markerSlack is how many records beyond the history size a trim
	// keeps, for the markers among them.
	markerSlack = 4
)

// trimSlack is how many messages beyond size a topic accumulates before
// this node trims it: a trim costs one request, so it happens once every
// trimSlack publishes.
func trimSlack(size int) int64 {
	return int64(max(size/2, 16))
}

// topicShard holds the history state of the topics hashed to it.
type topicShard struct {
	mu sync.Mutex
	m  map[string]*topicState
}

// topicState is what this node knows of a topic's history. A topic has a
// state while it may have a stream: this node wrote or read it, or
// received one of its records. mu orders this node's history writes of the
// topic.
type topicState struct {
	mu      sync.Mutex
	loaded  bool   // tip is the newest record as last read or written here
	gen     uint64 // the client's gen when tip was loaded
	tip     tip
	trimmed uint64 // seq at this node's last trim

	batchMu sync.Mutex   // guards next; taken alone or inside mu
	next    *settleBatch // the History settle that has not begun, if any
}

// tip describes the newest history record of a topic.
type tip struct {
	// streamSeq is the record's stream sequence; 0 if the topic has none.
	streamSeq uint64
	// valid reports whether the record decoded; an undecodable one counts
	// as no stream.
	valid bool
	kind  byte // kindData or kindMarker
	h     histMeta
}

// alive reports whether t is a stream that has not expired at time at
// (unix milliseconds).
func (t tip) alive(at int64) bool {
	return t.valid && (t.h.expireAt == 0 || at < t.h.expireAt)
}

// Publish sends m to every node subscribed to m.Topic. With a positive
// HistorySize it appends m to the topic's history first (JetStream then
// republishes it to the subscribers); otherwise it publishes m on core NATS
// after dropping the topic's history if this node knows of one. See
// pubsub.Broker.Publish.
func (b *Broker) Publish(ctx context.Context, m *pubsub.Message, opts pubsub.PublishOptions) (pubsub.Position, error) {
	if m == nil {
		return pubsub.Position{}, fmt.Errorf("natsbroker: publish: nil message: %w", pubsub.ErrInvalidArgument)
	}
	if err := b.life.Check("publish", m.Topic); err != nil {
		return pubsub.Position{}, err
	}
	if err := b.c.online(); err != nil {
		return pubsub.Position{}, b.fail("publish", m.Topic, err)
	}
	if opts.HistorySize > 0 && !opts.Transient {
		ctx, cancel := b.c.reqCtx(ctx)
		defer cancel()
		pos, err := b.append(ctx, m, opts)
		if err != nil {
			return pubsub.Position{}, b.fail("publish", m.Topic, err)
		}
		return pos, nil
	}
	m.Position = pubsub.Position{}
	if !opts.Transient { // a transient message (presence diff) leaves the history alone
		if err := b.dropStream(ctx, m.Topic); err != nil {
			return pubsub.Position{}, b.fail("publish", m.Topic, fmt.Errorf("drop history: %w", err))
		}
	}
	if err := b.c.nc.Publish(b.names.liveSubject(m.Topic), encodeRecord(kindBroadcast, m, nil)); err != nil {
		return pubsub.Position{}, b.fail("publish", m.Topic, err)
	}
	return pubsub.Position{}, nil
}

// append stores m as the next record of its topic's history and returns its
// position. The write is conditional on the newest record being the one
// this node knows, so that seqs stay contiguous across nodes; on a
// conflict it reloads the newest record and tries again.
func (b *Broker) append(ctx context.Context, m *pubsub.Message, opts pubsub.PublishOptions) (pubsub.Position, error) {
	st := b.topicState(m.Topic)
	st.mu.Lock()
	defer st.mu.Unlock()
	size := uint64(min(opts.HistorySize, b.opts.MaxHistorySize))
	subject := b.names.historySubject(m.Topic)
	for attempt := 1; ; attempt++ {
		if !st.loaded || st.gen != b.c.gen.Load() {
			gen := b.c.gen.Load()
			t, _, _, err := b.loadTip(ctx, m.Topic)
			if err != nil {
				return pubsub.Position{}, err
			}
			st.tip, st.loaded, st.gen = t, true, gen
		}
		at := nowMs()
		old := st.tip
		h := histMeta{prev: old.streamSeq, expireAt: expiryMs(at, opts.HistoryTTL)}
		fresh := !old.alive(at)
		if fresh {
			h.epoch, h.seq, h.keptFrom = newEpoch(old.h.epoch), 1, 1
		} else {
			h.epoch, h.seq, h.keptFrom = old.h.epoch, old.h.seq+1, old.h.keptFrom
			if h.seq > size {
				h.keptFrom = max(h.keptFrom, h.seq-size+1)
			}
			h.markSeq, h.markStream = old.h.markSeq, old.h.markStream
			if old.kind == kindData && old.h.seq-old.h.markSeq > markSpan {
				h.markSeq, h.markStream = old.h.seq, old.streamSeq
			}
		}
		expect := old.streamSeq
		seq, err := b.c.publish(ctx, subject, encodeRecord(kindData, m, &h), &expect)
		if errors.Is(err, errConflict) && attempt < maxAppendAttempts {
			st.loaded = false
			continue
		}
		if err != nil {
			st.loaded = false
			return pubsub.Position{}, err
		}
		st.tip = tip{streamSeq: seq, valid: true, kind: kindData, h: h}
		m.Position = pubsub.Position{Epoch: h.epoch, Seq: h.seq}
		switch {
		case fresh && old.streamSeq != 0:
			b.purgeOld(ctx, m.Topic, subject, seq)
			st.trimmed = 0
		case h.seq-st.trimmed >= uint64(trimSlack(int(size))) && h.seq > size:
			if err := b.c.purgeKeep(ctx, subject, size+markerSlack); err != nil {
				b.log.Warn("trimming history failed", zap.String("topic", m.Topic), zap.Error(err))
			}
			st.trimmed = h.seq
		}
		return m.Position, nil
	}
}

// purgeOld removes the records of an earlier stream of topic, those
// before stream sequence below. A failure only costs storage: readers skip
// records of other epochs.
func (b *Broker) purgeOld(ctx context.Context, topic, subject string, below uint64) {
	if err := b.c.purge(ctx, subject, below); err != nil {
		b.log.Warn("purging an expired history stream failed", zap.String("topic", topic), zap.Error(err))
	}
}

// dropStream removes the history of topic if this node knows of one, as a
// publish without history must.
func (b *Broker) dropStream(ctx context.Context, topic string) error {
	sh := &b.topics[b.shardOf(topic)]
	sh.mu.Lock()
	st := sh.m[topic]
	sh.mu.Unlock()
	if st == nil {
		return nil
	}
	ctx, cancel := b.c.reqCtx(ctx)
	defer cancel()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := b.c.purge(ctx, b.names.historySubject(topic), 0); err != nil {
		return err
	}
	st.tip, st.loaded, st.gen = tip{}, true, b.c.gen.Load()
	sh.mu.Lock()
	if sh.m[topic] == st {
		delete(sh.m, topic)
	}
	sh.mu.Unlock()
	return nil
}

// loadTip reads the newest history record of topic: its tip, and the
// record itself when it decodes.
func (b *Broker) loadTip(ctx context.Context, topic string) (tip, byte, *pubsub.Message, error) {
	raw, err := b.c.last(ctx, b.names.historySubject(topic))
	if errors.Is(err, errNotFound) {
		return tip{}, 0, nil, nil
	}
	if err != nil {
		return tip{}, 0, nil, fmt.Errorf("read newest history record: %w", err)
	}
	kind, m, h, err := decodeRecord(raw.Data)
	if err == nil && (kind == kindBroadcast || m.Topic != topic) {
		err = fmt.Errorf("record of kind %d for topic %q: %w", kind, m.Topic, errRecord)
	}
	if err != nil {
		b.log.Warn("ignoring an invalid history record", zap.String("topic", topic), zap.Error(err))
		return tip{streamSeq: raw.Sequence}, 0, nil, nil
	}
	return tip{streamSeq: raw.Sequence, valid: true, kind: kind, h: h}, kind, m, nil
}

// topicState returns the state of topic, creating it.
func (b *Broker) topicState(topic string) *topicState {
	sh := &b.topics[b.shardOf(topic)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.m[topic]
	if st == nil {
		st = &topicState{}
		if sh.m == nil {
			sh.m = make(map[string]*topicState)
		}
		sh.m[topic] = st
	}
	return st
}

// noteStream records that topic has a stream, as a received record shows.
func (b *Broker) noteStream(topic string) {
	sh := &b.topics[b.shardOf(topic)]
	sh.mu.Lock()
	if _, ok := sh.m[topic]; !ok && b.life.Started() {
		if sh.m == nil {
			sh.m = make(map[string]*topicState)
		}
		sh.m[topic] = &topicState{}
	}
	sh.mu.Unlock()
}

// forgetExpired drops the states of topics whose stream has expired at
// time at: such a stream is gone for every node.
func (b *Broker) forgetExpired(at int64) {
	for i := range b.topics {
		sh := &b.topics[i]
		sh.mu.Lock()
		for topic, st := range sh.m {
			if !st.mu.TryLock() {
				continue
			}
			if st.loaded && st.tip.valid && st.tip.h.expireAt != 0 && at >= st.tip.h.expireAt {
				delete(sh.m, topic)
			}
			st.mu.Unlock()
		}
		sh.mu.Unlock()
	}
}

// nowMs is the clock of history expiry, in unix milliseconds.
var nowMs = func() int64 { return time.Now().UnixMilli() }

// expiryMs returns the unix-millisecond deadline ttl after at, or 0
// (never) when ttl is not positive.
func expiryMs(at int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	ms := max(ttl.Milliseconds(), 1)
	if at > math.MaxInt64-ms {
		return math.MaxInt64
	}
	return at + ms
}

// newEpoch returns a random epoch different from prev.
func newEpoch(prev string) string {
	for {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], rand.Uint64())
		if e := hex.EncodeToString(b[:]); e != prev {
			return e
		}
	}
}
