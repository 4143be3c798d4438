package pubsub

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// now is the clock of the in-memory implementations; tests replace it.
var now = time.Now

const (
	// memoryShards is the number of lock shards topics are spread over.
	memoryShards = 64
	// sweepInterval is the least time between two sweeps of a shard.
	sweepInterval = time.Second
)

// Broker states.
const (
	stateNew int32 = iota
	stateStarted
	stateClosed
)

// Memory is the in-process Broker of a single node, the default backend.
//
// Publish delivers synchronously: the Handler runs on the publisher's
// goroutine before Publish returns, so a socket sees its own broadcast before
// any later reply. Storing a message in history, assigning its position and
// delivering it happen under one per-topic lock, so concurrent publishers
// cannot reorder Seq against delivery. Topics are spread over 64 lock shards;
// publishers of unrelated topics share nothing but a shard's read lock.
//
// History streams are ring buffers bounded by HistorySize, whose entries
// expire HistoryTTL after their publish; a stream that sees neither a
// publish nor a History call (with a TTL) for HistoryTTL is dropped, and the
// next one gets a new epoch. Expired entries are dropped when their topic is
// accessed, and a shard holding streams is swept at most once a second when
// any of its topics is accessed. Topics without subscribers or history use no
// memory. Memory starts no goroutines. It ignores the ctx of every call,
// since it never blocks on anything but its own locks.
type Memory struct {
	state   atomic.Int32
	startMu sync.Mutex
	handler Handler
	seed    maphash.Seed
	shards  [memoryShards]memShard
}

var _ Broker = (*Memory)(nil)

// memShard holds the topics whose name hashes to it.
type memShard struct {
	mu        sync.RWMutex
	topics    map[string]*memTopic
	nextSweep atomic.Int64 // unix nanoseconds
	streams   atomic.Int64 // topics of this shard with a stream
	_         [16]byte     // keep shards on separate cache lines
}

// memTopic is the state of one topic. mu orders publishes and guards subs
// and stream. A topic with no subscription and no stream is retired: dead is
// set under mu and the topic is removed from its shard; whoever finds a dead
// topic looks it up again.
type memTopic struct {
	mu     sync.Mutex
	dead   atomic.Bool
	subs   int
	stream *memStream
}

// memStream is the history of one topic.
type memStream struct {
	epoch    string
	top      uint64 // Seq of the newest message, 0 if none yet
	expireAt int64  // unix nanoseconds; 0 = never
	ring     memRing
}

// memEntry is one message kept in a stream.
type memEntry struct {
	m        *Message
	expireAt int64 // unix nanoseconds; 0 = never
}

// memRing is a FIFO of entries that grows on demand up to the history size.
type memRing struct {
	buf  []memEntry
	head int
	n    int
}

// NewMemory returns a Memory broker; call Start before using it.
func NewMemory() *Memory {
	return &Memory{seed: maphash.MakeSeed()}
}

// Start registers the handler. See Broker.Start.
func (b *Memory) Start(h Handler) error {
	if h == nil {
		return fmt.Errorf("pubsub: start memory broker: nil handler: %w", ErrInvalidArgument)
	}
	b.startMu.Lock()
	defer b.startMu.Unlock()
	switch b.state.Load() {
	case stateStarted:
		return fmt.Errorf("pubsub: start memory broker: %w", ErrAlreadyStarted)
	case stateClosed:
		return fmt.Errorf("pubsub: start memory broker: %w", ErrClosed)
	}
	b.handler = h
	b.state.Store(stateStarted)
	return nil
}

// Subscribe counts one subscription of topic. See Broker.Subscribe.
func (b *Memory) Subscribe(_ context.Context, topic string) error {
	if err := b.check("subscribe", topic); err != nil {
		return err
	}
	sh := b.shard(topic)
	b.sweep(sh)
	for {
		t := b.acquire(sh, topic)
		if t == nil {
			return fmt.Errorf("pubsub: memory subscribe %q: %w", topic, ErrClosed)
		}
		t.mu.Lock()
		if t.dead.Load() {
			t.mu.Unlock()
			continue
		}
		t.subs++
		t.mu.Unlock()
		return nil
	}
}

// Unsubscribe undoes one Subscribe of topic. See Broker.Unsubscribe.
func (b *Memory) Unsubscribe(_ context.Context, topic string) error {
	if err := b.check("unsubscribe", topic); err != nil {
		return err
	}
	sh := b.shard(topic)
	t := sh.lookup(topic)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	if t.subs > 0 {
		t.subs--
	}
	if st := t.stream; st != nil && st.expired(now().UnixNano()) {
		sh.setStream(t, nil)
	}
	idle := t.retireIfIdle()
	t.mu.Unlock()
	if idle {
		sh.remove(topic, t)
	}
	return nil
}

// Publish stores m if the topic keeps history and delivers it to the handler
// if the topic is subscribed. See Broker.Publish.
func (b *Memory) Publish(_ context.Context, m *Message, opts PublishOptions) (Position, error) {
	if m == nil {
		return Position{}, fmt.Errorf("pubsub: memory publish: nil message: %w", ErrInvalidArgument)
	}
	if err := b.check("publish", m.Topic); err != nil {
		return Position{}, err
	}
	sh := b.shard(m.Topic)
	b.sweep(sh)
	if opts.Transient {
		opts = PublishOptions{Transient: true}
	}
	keep := opts.HistorySize > 0
	for {
		var t *memTopic
		if keep {
			if t = b.acquire(sh, m.Topic); t == nil {
				return Position{}, fmt.Errorf("pubsub: memory publish %q: %w", m.Topic, ErrClosed)
			}
		} else if t = sh.lookup(m.Topic); t == nil {
			// Neither subscribed nor keeping history: nothing to do.
			m.Position = Position{}
			return Position{}, nil
		}
		pos, idle, ok := b.publishTo(sh, t, m, opts)
		if !ok {
			if !keep {
				// A retired topic had no subscription and no stream.
				m.Position = Position{}
				return Position{}, nil
			}
			continue
		}
		if idle {
			sh.remove(m.Topic, t)
		}
		return pos, nil
	}
}

// publishTo stores and delivers m under t's lock. It reports whether t was
// retired afterwards, and ok false if t was already retired.
func (b *Memory) publishTo(sh *memShard, t *memTopic, m *Message, opts PublishOptions) (pos Position, idle, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead.Load() {
		return Position{}, false, false
	}
	switch {
	case opts.Transient:
	case opts.HistorySize > 0:
		pos = sh.append(t, m, opts, now().UnixNano())
	default:
		// The stream could not replay this message: drop it so that no
		// later recovery claims to be gap-free across it.
		sh.setStream(t, nil)
	}
	m.Position = pos
	if t.subs > 0 {
		b.handler(m)
	}
	return pos, t.retireIfIdle(), true
}

// History reads topic's stream, creating it if needed. See Broker.History.
func (b *Memory) History(_ context.Context, topic string, opts HistoryOptions) (HistoryResult, error) {
	if err := b.check("history", topic); err != nil {
		return HistoryResult{}, err
	}
	sh := b.shard(topic)
	b.sweep(sh)
	for {
		t := b.acquire(sh, topic)
		if t == nil {
			return HistoryResult{}, fmt.Errorf("pubsub: memory history %q: %w", topic, ErrClosed)
		}
		t.mu.Lock()
		if t.dead.Load() {
			t.mu.Unlock()
			continue
		}
		at := now().UnixNano()
		st, created := sh.ensure(t, at, opts.TTL)
		if !created && opts.TTL > 0 && st.expireAt != 0 {
			st.expireAt = max(st.expireAt, expiry(at, opts.TTL))
		}
		res := st.read(opts)
		t.mu.Unlock()
		return res, nil
	}
}

// Close drops all state; see Broker.Close. It waits for in-flight
// deliveries, so the handler is not called once Close returns.
func (b *Memory) Close() error {
	b.startMu.Lock()
	if b.state.Load() == stateClosed {
		b.startMu.Unlock()
		return nil
	}
	b.state.Store(stateClosed)
	b.startMu.Unlock()
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for _, t := range sh.topics {
			t.mu.Lock() // waits for a delivery in progress
			t.dead.Store(true)
			t.subs = 0
			t.stream = nil
			t.mu.Unlock()
		}
		sh.topics = nil
		sh.streams.Store(0)
		sh.mu.Unlock()
	}
	return nil
}

// check validates a call's topic and the broker's state.
func (b *Memory) check(op, topic string) error {
	if topic == "" {
		return fmt.Errorf("pubsub: memory %s: empty topic: %w", op, ErrInvalidArgument)
	}
	switch b.state.Load() {
	case stateNew:
		return fmt.Errorf("pubsub: memory %s %q: %w", op, topic, ErrNotStarted)
	case stateClosed:
		return fmt.Errorf("pubsub: memory %s %q: %w", op, topic, ErrClosed)
	}
	return nil
}

// shard returns the shard of topic.
func (b *Memory) shard(topic string) *memShard {
	return &b.shards[maphash.String(b.seed, topic)%memoryShards]
}

// acquire returns the live state of topic, creating it if needed, or nil
// once the broker is closed.
func (b *Memory) acquire(sh *memShard, topic string) *memTopic {
	if t := sh.lookup(topic); t != nil && !t.dead.Load() {
		return t
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if b.state.Load() == stateClosed {
		return nil
	}
	t := sh.topics[topic]
	if t == nil || t.dead.Load() {
		t = &memTopic{}
		if sh.topics == nil {
			sh.topics = make(map[string]*memTopic)
		}
		sh.topics[topic] = t
	}
	return t
}

// sweep drops the expired streams and entries of sh, at most once per
// sweepInterval and only if sh holds streams. Topics busy publishing are
// skipped.
func (b *Memory) sweep(sh *memShard) {
	if sh.streams.Load() == 0 {
		return
	}
	at := now().UnixNano()
	next := sh.nextSweep.Load()
	if at < next || !sh.nextSweep.CompareAndSwap(next, at+int64(sweepInterval)) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for name, t := range sh.topics {
		if !t.mu.TryLock() {
			continue
		}
		sh.live(t, at)
		if t.retireIfIdle() {
			delete(sh.topics, name)
		}
		t.mu.Unlock()
	}
}

// lookup returns the state of topic, or nil.
func (sh *memShard) lookup(topic string) *memTopic {
	sh.mu.RLock()
	t := sh.topics[topic]
	sh.mu.RUnlock()
	return t
}

// remove deletes the retired t from sh unless it was replaced already.
func (sh *memShard) remove(topic string, t *memTopic) {
	sh.mu.Lock()
	if sh.topics[topic] == t {
		delete(sh.topics, topic)
	}
	sh.mu.Unlock()
}

// setStream replaces t's stream, keeping sh's stream count. t.mu is held.
func (sh *memShard) setStream(t *memTopic, st *memStream) {
	switch {
	case t.stream == nil && st != nil:
		sh.streams.Add(1)
	case t.stream != nil && st == nil:
		sh.streams.Add(-1)
	}
	t.stream = st
}

// live drops t's stream if it has expired, or else its expired entries, and
// returns what is left. t.mu is held.
func (sh *memShard) live(t *memTopic, at int64) *memStream {
	st := t.stream
	if st == nil {
		return nil
	}
	if st.expired(at) {
		sh.setStream(t, nil)
		return nil
	}
	st.trim(at)
	return st
}

// ensure returns t's live stream, creating an empty one with a new epoch
// and the given TTL if there is none, and reports whether it did. t.mu is
// held.
func (sh *memShard) ensure(t *memTopic, at int64, ttl time.Duration) (*memStream, bool) {
	prev := ""
	if t.stream != nil {
		prev = t.stream.epoch
	}
	if st := sh.live(t, at); st != nil {
		return st, false
	}
	st := &memStream{epoch: newEpoch(prev), expireAt: expiry(at, ttl)}
	sh.setStream(t, st)
	return st, true
}

// append adds m to t's stream, (re)creating the stream with a new epoch if
// needed, and returns m's position. t.mu is held.
func (sh *memShard) append(t *memTopic, m *Message, opts PublishOptions, at int64) Position {
	st, _ := sh.ensure(t, at, opts.HistoryTTL)
	exp := expiry(at, opts.HistoryTTL)
	st.top++
	st.expireAt = exp
	m.Position = Position{Epoch: st.epoch, Seq: st.top}
	st.ring.push(memEntry{m: m, expireAt: exp}, opts.HistorySize)
	return m.Position
}

// retireIfIdle marks t dead if it has no subscription and no stream, and
// reports whether it did. t.mu is held.
func (t *memTopic) retireIfIdle() bool {
	if t.subs == 0 && t.stream == nil {
		t.dead.Store(true)
		return true
	}
	return false
}

// expired reports whether the whole stream has expired at time at.
func (st *memStream) expired(at int64) bool {
	return st.expireAt != 0 && at >= st.expireAt
}

// trim drops the entries that have expired at time at.
func (st *memStream) trim(at int64) {
	r := &st.ring
	for r.n > 0 {
		e := r.buf[r.head]
		if e.expireAt == 0 || at < e.expireAt {
			return
		}
		r.pop()
	}
	r.buf, r.head = nil, 0
}

// read selects messages as HistoryOptions describes.
func (st *memStream) read(opts HistoryOptions) HistoryResult {
	res := HistoryResult{Latest: Position{Epoch: st.epoch, Seq: st.top}}
	n := st.ring.n
	var start int
	if since := opts.Since; since == nil {
		res.Recovered = true
		start = n - limited(n, opts.Limit)
	} else {
		first := st.top - uint64(n) + 1 // Seq of the oldest kept entry
		switch {
		case since.Epoch != st.epoch || since.Seq > st.top:
			return res
		case since.Seq == st.top:
			res.Recovered = true
			return res
		case since.Seq+1 < first:
			return res
		}
		res.Recovered = true
		start = int(since.Seq + 1 - first)
		n = start + limited(n-start, opts.Limit)
	}
	if n > start {
		res.Messages = make([]*Message, n-start)
		for i := range res.Messages {
			res.Messages[i] = st.ring.at(start + i).m
		}
	}
	return res
}

// limited applies a HistoryOptions.Limit to n available messages.
func limited(n, limit int) int {
	switch {
	case limit < 0:
		return 0
	case limit > 0 && limit < n:
		return limit
	}
	return n
}

// push appends e, dropping the oldest entries beyond size (size > 0).
func (r *memRing) push(e memEntry, size int) {
	for r.n >= size {
		r.pop()
	}
	if r.n == len(r.buf) || len(r.buf) > size {
		r.resize(min(size, max(4, 2*len(r.buf))))
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

// pop drops the oldest entry.
func (r *memRing) pop() {
	r.buf[r.head] = memEntry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// at returns the i-th oldest entry.
func (r *memRing) at(i int) memEntry {
	return r.buf[(r.head+i)%len(r.buf)]
}

// resize moves the entries to a buffer of capacity c (c >= n).
func (r *memRing) resize(c int) {
	buf := make([]memEntry, c)
	for i := 0; i < r.n; i++ {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// expiry returns the unix-nanosecond deadline ttl after at, or 0 (never)
// when ttl is not positive.
func expiry(at int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	if at > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return at + int64(ttl)
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
