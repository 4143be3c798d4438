package pubsub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock replaces the package clock for one test.
type fakeClock struct{ t time.Time }

func useFakeClock(t *testing.T) *fakeClock {
	t.Helper()
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	old := now
	now = func() time.Time { return c.t }
	t.Cleanup(func() { now = old })
	return c
}

func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// recorder is a Handler that keeps every message it gets.
type recorder struct {
	mu   sync.Mutex
	msgs []*Message
}

func (r *recorder) handle(m *Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// got returns "topic/event" of every message received so far.
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		out = append(out, m.Topic+"/"+m.Event)
	}
	return out
}

func startMemory(t *testing.T) (*Memory, *recorder) {
	t.Helper()
	b := NewMemory()
	r := &recorder{}
	if err := b.Start(r.handle); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, r
}

var ctx = context.Background()

func mustPublish(t *testing.T, b *Memory, topic, event string, opts PublishOptions) Position {
	t.Helper()
	pos, err := b.Publish(ctx, &Message{Topic: topic, Event: event, Payload: []byte(`{}`)}, opts)
	if err != nil {
		t.Fatalf("Publish(%s, %s): %v", topic, event, err)
	}
	return pos
}

func mustHistory(t *testing.T, b *Memory, topic string, opts HistoryOptions) HistoryResult {
	t.Helper()
	res, err := b.History(ctx, topic, opts)
	if err != nil {
		t.Fatalf("History(%s): %v", topic, err)
	}
	return res
}

// events returns the events of msgs, checking that each carries a position
// of epoch with consecutive seqs.
func events(t *testing.T, msgs []*Message, epoch string) []string {
	t.Helper()
	var out []string
	for i, m := range msgs {
		if m.Position.Epoch != epoch {
			t.Errorf("message %d epoch %q, want %q", i, m.Position.Epoch, epoch)
		}
		if i > 0 && m.Position.Seq != msgs[i-1].Position.Seq+1 {
			t.Errorf("message %d seq %d after %d", i, m.Position.Seq, msgs[i-1].Position.Seq)
		}
		out = append(out, m.Event)
	}
	return out
}

// topicCount returns the number of topics b holds state for.
func topicCount(b *Memory) (topics, streams int) {
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		topics += len(sh.topics)
		sh.mu.RUnlock()
		streams += int(sh.streams.Load())
	}
	return topics, streams
}

func TestMemoryStart(t *testing.T) {
	b := NewMemory()
	defer b.Close()
	calls := []struct {
		name string
		err  error
	}{
		{"subscribe", b.Subscribe(ctx, "a")},
		{"unsubscribe", b.Unsubscribe(ctx, "a")},
		{"publish", func() error { _, err := b.Publish(ctx, &Message{Topic: "a"}, PublishOptions{}); return err }()},
		{"history", func() error { _, err := b.History(ctx, "a", HistoryOptions{}); return err }()},
	}
	for _, c := range calls {
		if !errors.Is(c.err, ErrNotStarted) {
			t.Errorf("%s before Start: %v, want ErrNotStarted", c.name, c.err)
		}
	}
	if err := b.Start(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Start(nil) = %v, want ErrInvalidArgument", err)
	}
	if err := b.Start(func(*Message) {}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := b.Start(func(*Message) {}); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
}

func TestMemoryInvalidArguments(t *testing.T) {
	b, _ := startMemory(t)
	calls := []struct {
		name string
		err  error
	}{
		{"subscribe", b.Subscribe(ctx, "")},
		{"unsubscribe", b.Unsubscribe(ctx, "")},
		{"publish empty topic", func() error { _, err := b.Publish(ctx, &Message{}, PublishOptions{}); return err }()},
		{"publish nil", func() error { _, err := b.Publish(ctx, nil, PublishOptions{}); return err }()},
		{"history", func() error { _, err := b.History(ctx, "", HistoryOptions{}); return err }()},
	}
	for _, c := range calls {
		if !errors.Is(c.err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
}

func TestMemoryDeliversSubscribedTopicsOnly(t *testing.T) {
	b, r := startMemory(t)
	if err := b.Subscribe(ctx, "room:a"); err != nil {
		t.Fatal(err)
	}
	m := &Message{Topic: "room:a", Event: "e1", Payload: []byte{1, 2}, Binary: true, Exclude: 9, Node: "n1"}
	pos, err := b.Publish(ctx, m, PublishOptions{})
	if err != nil || !pos.IsZero() {
		t.Fatalf("Publish = %v, %v; want zero position", pos, err)
	}
	mustPublish(t, b, "room:b", "e2", PublishOptions{})
	mustPublish(t, b, "room:a", "e3", PublishOptions{})
	if got, want := r.got(), []string{"room:a/e1", "room:a/e3"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	d := r.msgs[0]
	if d != m || string(d.Payload) != "\x01\x02" || !d.Binary || d.Exclude != 9 || d.Node != "n1" || !d.Position.IsZero() {
		t.Errorf("delivered %+v, want the published message unchanged", d)
	}
	if topics, streams := topicCount(b); topics != 1 || streams != 0 {
		t.Errorf("state for %d topics, %d streams; want 1, 0", topics, streams)
	}
}

func TestMemoryUnsubscribe(t *testing.T) {
	b, r := startMemory(t)
	steps := []struct {
		op      string // "sub", "unsub" or "pub"
		want    int    // messages delivered so far, after a "pub"
		wantErr bool
	}{
		{"unsub", 0, false}, // never subscribed: no-op
		{"sub", 0, false},
		{"sub", 0, false},
		{"pub", 1, false},
		{"unsub", 0, false},
		{"pub", 2, false}, // still subscribed once
		{"unsub", 0, false},
		{"pub", 2, false},
		{"unsub", 0, false}, // extra: no-op
		{"pub", 2, false},
		{"sub", 0, false},
		{"pub", 3, false},
	}
	for i, s := range steps {
		var err error
		switch s.op {
		case "sub":
			err = b.Subscribe(ctx, "t")
		case "unsub":
			err = b.Unsubscribe(ctx, "t")
		case "pub":
			mustPublish(t, b, "t", strconv.Itoa(i), PublishOptions{})
			if n := len(r.got()); n != s.want {
				t.Fatalf("step %d: %d delivered, want %d", i, n, s.want)
			}
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.op, err)
		}
	}
	if err := b.Unsubscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if topics, _ := topicCount(b); topics != 0 {
		t.Errorf("state kept for %d topics after the last unsubscribe", topics)
	}
}

func TestMemoryPublishOrderConcurrent(t *testing.T) {
	const publishers, perPublisher = 8, 400
	b := NewMemory()
	defer b.Close()
	var seqs []uint64    // written by the handler, serialized per topic
	var sources []string // payload of each delivered message
	if err := b.Start(func(m *Message) {
		if m.Topic != "t" {
			return // other topics are delivered concurrently
		}
		seqs = append(seqs, m.Position.Seq)
		sources = append(sources, string(m.Payload))
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	opts := PublishOptions{HistorySize: publishers * perPublisher}
	returned := make([][]uint64, publishers)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				m := &Message{Topic: "t", Event: "e", Payload: fmt.Appendf(nil, "%d/%d", p, i)}
				pos, err := b.Publish(ctx, m, opts)
				if err != nil {
					t.Error(err)
					return
				}
				returned[p] = append(returned[p], pos.Seq)
			}
		})
	}
	// Unrelated topics churn concurrently.
	for p := range 4 {
		wg.Go(func() {
			topic := "other:" + strconv.Itoa(p)
			for i := range perPublisher {
				_ = b.Subscribe(ctx, topic)
				if _, err := b.Publish(ctx, &Message{Topic: topic}, PublishOptions{HistorySize: i % 3}); err != nil {
					t.Error(err)
				}
				_ = b.Unsubscribe(ctx, topic)
			}
		})
	}
	wg.Wait()
	if len(seqs) != publishers*perPublisher {
		t.Fatalf("%d messages delivered, want %d", len(seqs), publishers*perPublisher)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d: delivery order differs from seq order", i, s)
		}
	}
	next := make([]int, publishers)
	for i, src := range sources {
		var p, n int
		if _, err := fmt.Sscanf(src, "%d/%d", &p, &n); err != nil {
			t.Fatal(err)
		}
		if n != next[p] {
			t.Fatalf("delivery %d is %s, want %d/%d", i, src, p, next[p])
		}
		next[p]++
		if returned[p][n] != seqs[i] {
			t.Fatalf("Publish of %s returned seq %d, delivered as %d", src, returned[p][n], seqs[i])
		}
	}
	res := mustHistory(t, b, "t", HistoryOptions{})
	if len(res.Messages) != publishers*perPublisher || res.Latest.Seq != publishers*perPublisher {
		t.Errorf("history holds %d messages up to %v", len(res.Messages), res.Latest)
	}
}

func TestMemoryHistoryNewStream(t *testing.T) {
	b, r := startMemory(t)
	res := mustHistory(t, b, "t", HistoryOptions{Limit: -1})
	if res.Latest.Epoch == "" || res.Latest.Seq != 0 || !res.Recovered || res.Messages != nil {
		t.Fatalf("History of a new topic = %+v, want an empty stream", res)
	}
	if _, err := ParsePosition(res.Latest.String()); err != nil {
		t.Fatalf("epoch %q does not parse: %v", res.Latest.Epoch, err)
	}
	epoch := res.Latest.Epoch
	pos := mustPublish(t, b, "t", "e1", PublishOptions{HistorySize: 10})
	if pos != (Position{Epoch: epoch, Seq: 1}) {
		t.Fatalf("first publish at %v, want %s:1", pos, epoch)
	}
	if len(r.got()) != 0 {
		t.Errorf("delivered %v without a subscription", r.got())
	}
	since := res.Latest
	res = mustHistory(t, b, "t", HistoryOptions{Since: &since})
	if got := events(t, res.Messages, epoch); !res.Recovered || !slices.Equal(got, []string{"e1"}) || res.Latest != pos {
		t.Errorf("History since %v = %v recovered %v latest %v", since, got, res.Recovered, res.Latest)
	}
}

func TestMemoryHistorySince(t *testing.T) {
	b, _ := startMemory(t)
	opts := PublishOptions{HistorySize: 3}
	var epoch string
	for i := 1; i <= 5; i++ {
		pos := mustPublish(t, b, "t", "e"+strconv.Itoa(i), opts)
		epoch = pos.Epoch
		if pos.Seq != uint64(i) {
			t.Fatalf("publish %d got seq %d", i, pos.Seq)
		}
	}
	at := func(seq uint64) *Position { return &Position{Epoch: epoch, Seq: seq} }
	tests := []struct {
		name      string
		opts      HistoryOptions
		want      []string
		recovered bool
	}{
		{"all kept", HistoryOptions{}, []string{"e3", "e4", "e5"}, true},
		{"newest 2", HistoryOptions{Limit: 2}, []string{"e4", "e5"}, true},
		{"limit above size", HistoryOptions{Limit: 9}, []string{"e3", "e4", "e5"}, true},
		{"position only", HistoryOptions{Limit: -1}, nil, true},
		{"since oldest gap", HistoryOptions{Since: at(2)}, []string{"e3", "e4", "e5"}, true},
		{"since middle", HistoryOptions{Since: at(3)}, []string{"e4", "e5"}, true},
		{"since paged", HistoryOptions{Since: at(2), Limit: 2}, []string{"e3", "e4"}, true},
		{"since paged on", HistoryOptions{Since: at(4), Limit: 2}, []string{"e5"}, true},
		{"since latest", HistoryOptions{Since: at(5)}, nil, true},
		{"since latest position only", HistoryOptions{Since: at(4), Limit: -1}, nil, true},
		{"since too old", HistoryOptions{Since: at(1)}, nil, false},
		{"since zero", HistoryOptions{Since: at(0)}, nil, false},
		{"since future", HistoryOptions{Since: at(6)}, nil, false},
		{"other epoch", HistoryOptions{Since: &Position{Epoch: epoch + "x", Seq: 4}}, nil, false},
		{"zero position", HistoryOptions{Since: &Position{}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustHistory(t, b, "t", tt.opts)
			if got := events(t, res.Messages, epoch); !slices.Equal(got, tt.want) {
				t.Errorf("messages %v, want %v", got, tt.want)
			}
			if res.Recovered != tt.recovered {
				t.Errorf("recovered %v, want %v", res.Recovered, tt.recovered)
			}
			if res.Latest != *at(5) {
				t.Errorf("latest %v, want %s:5", res.Latest, epoch)
			}
		})
	}
}

func TestMemoryHistorySizeChanges(t *testing.T) {
	b, _ := startMemory(t)
	publish := func(from, to, size int) {
		for i := from; i <= to; i++ {
			mustPublish(t, b, "t", strconv.Itoa(i), PublishOptions{HistorySize: size})
		}
	}
	check := func(want ...string) {
		t.Helper()
		res := mustHistory(t, b, "t", HistoryOptions{})
		if got := events(t, res.Messages, res.Latest.Epoch); !slices.Equal(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
	}
	publish(1, 10, 10) // grows the ring past its initial capacity
	check("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	publish(11, 11, 3) // shrinks
	check("9", "10", "11")
	publish(12, 14, 5) // grows again
	check("10", "11", "12", "13", "14")
	publish(15, 21, 1)
	check("21")
}

func TestMemoryHistoryTTL(t *testing.T) {
	clock := useFakeClock(t)
	b, _ := startMemory(t)
	opts := PublishOptions{HistorySize: 10, HistoryTTL: 10 * time.Second}
	p1 := mustPublish(t, b, "t", "e1", opts)
	clock.advance(4 * time.Second)
	mustPublish(t, b, "t", "e2", opts)
	epoch := p1.Epoch

	clock.advance(5 * time.Second) // e1 is 9s old
	res := mustHistory(t, b, "t", HistoryOptions{})
	if got := events(t, res.Messages, epoch); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Fatalf("at 9s: %v", got)
	}

	clock.advance(time.Second) // e1 is 10s old: expired
	since0 := Position{Epoch: epoch, Seq: 0}
	since1 := Position{Epoch: epoch, Seq: 1}
	res = mustHistory(t, b, "t", HistoryOptions{})
	if got := events(t, res.Messages, epoch); !slices.Equal(got, []string{"e2"}) || res.Latest.Seq != 2 {
		t.Fatalf("at 10s: %v latest %v", got, res.Latest)
	}
	if res = mustHistory(t, b, "t", HistoryOptions{Since: &since0}); res.Recovered || res.Messages != nil {
		t.Errorf("since %v after expiry: %+v, want not recovered", since0, res)
	}
	res = mustHistory(t, b, "t", HistoryOptions{Since: &since1})
	if got := events(t, res.Messages, epoch); !res.Recovered || !slices.Equal(got, []string{"e2"}) {
		t.Errorf("since %v: %v recovered %v", since1, got, res.Recovered)
	}

	clock.advance(4 * time.Second) // e2 expired and so is the stream
	since2 := Position{Epoch: epoch, Seq: 2}
	res = mustHistory(t, b, "t", HistoryOptions{Since: &since2})
	if res.Recovered || res.Latest.Epoch == epoch || res.Latest.Seq != 0 {
		t.Fatalf("after stream expiry: %+v, want a new empty stream", res)
	}
	// History passed no TTL: the new empty stream never expires.
	clock.advance(time.Hour)
	p := mustPublish(t, b, "t", "e3", opts)
	if p != (Position{Epoch: res.Latest.Epoch, Seq: 1}) {
		t.Errorf("publish after recreation at %v, want %s:1", p, res.Latest.Epoch)
	}
}

func TestMemoryStreamExpiryNewEpoch(t *testing.T) {
	clock := useFakeClock(t)
	b, r := startMemory(t)
	if err := b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	opts := PublishOptions{HistorySize: 5, HistoryTTL: time.Minute}
	p1 := mustPublish(t, b, "t", "e1", opts)
	clock.advance(59 * time.Second)
	p2 := mustPublish(t, b, "t", "e2", opts) // refreshes the stream
	clock.advance(59 * time.Second)
	p3 := mustPublish(t, b, "t", "e3", opts)
	if p1.Epoch != p2.Epoch || p2.Epoch != p3.Epoch || p3.Seq != 3 {
		t.Fatalf("positions %v %v %v, want one stream", p1, p2, p3)
	}
	clock.advance(time.Minute)
	p4 := mustPublish(t, b, "t", "e4", opts)
	if p4.Epoch == p3.Epoch || p4.Seq != 1 {
		t.Fatalf("publish after expiry at %v, want a new epoch at seq 1", p4)
	}
	if got := r.got(); len(got) != 4 || r.msgs[3].Position != p4 {
		t.Errorf("delivered %v, last at %v", got, r.msgs[3].Position)
	}
}

func TestMemoryHistoryTTLExtendsStream(t *testing.T) {
	clock := useFakeClock(t)
	b, _ := startMemory(t)
	opts := PublishOptions{HistorySize: 5, HistoryTTL: time.Minute}
	p := mustPublish(t, b, "t", "e1", opts)
	for range 3 {
		clock.advance(50 * time.Second)
		mustHistory(t, b, "t", HistoryOptions{Limit: -1, TTL: time.Minute})
	}
	// e1 has expired, but the stream lives on: a client that saw e1 is up
	// to date, one that saw nothing is not.
	res := mustHistory(t, b, "t", HistoryOptions{Since: &p})
	if !res.Recovered || res.Latest != p || res.Messages != nil {
		t.Errorf("since latest after entry expiry: %+v", res)
	}
	since0 := Position{Epoch: p.Epoch}
	if res = mustHistory(t, b, "t", HistoryOptions{Since: &since0}); res.Recovered {
		t.Errorf("since %v recovered although e1 expired", since0)
	}
	if next := mustPublish(t, b, "t", "e2", opts); next != (Position{Epoch: p.Epoch, Seq: 2}) {
		t.Errorf("next publish at %v", next)
	}
}

func TestMemoryPublishWithoutHistoryDropsStream(t *testing.T) {
	b, r := startMemory(t)
	if err := b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	p1 := mustPublish(t, b, "t", "e1", PublishOptions{HistorySize: 5})
	m := &Message{Topic: "t", Event: "e2", Position: Position{Epoch: "stale", Seq: 9}}
	if pos, err := b.Publish(ctx, m, PublishOptions{}); err != nil || !pos.IsZero() || !m.Position.IsZero() {
		t.Fatalf("publish without history = %v, %v; message at %v", pos, err, m.Position)
	}
	res := mustHistory(t, b, "t", HistoryOptions{Since: &p1})
	if res.Recovered || res.Latest.Epoch == p1.Epoch {
		t.Errorf("recovery across a message without history: %+v", res)
	}
	if got := r.got(); !slices.Equal(got, []string{"t/e1", "t/e2"}) {
		t.Errorf("delivered %v", got)
	}
}

func TestMemorySweepDropsIdleTopics(t *testing.T) {
	clock := useFakeClock(t)
	b, _ := startMemory(t)
	// Find two topics of the same shard.
	a := "a"
	var other string
	for i := 0; other == ""; i++ {
		if s := "b" + strconv.Itoa(i); b.shard(s) == b.shard(a) {
			other = s
		}
	}
	mustPublish(t, b, a, "e", PublishOptions{HistorySize: 3, HistoryTTL: time.Second})
	if topics, streams := topicCount(b); topics != 1 || streams != 1 {
		t.Fatalf("%d topics, %d streams after publish", topics, streams)
	}
	clock.advance(2 * time.Second)
	if err := b.Subscribe(ctx, other); err != nil {
		t.Fatal(err)
	}
	if topics, streams := topicCount(b); topics != 1 || streams != 0 {
		t.Errorf("%d topics, %d streams after the sweep; want 1, 0", topics, streams)
	}
	if err := b.Unsubscribe(ctx, other); err != nil {
		t.Fatal(err)
	}
	if topics, streams := topicCount(b); topics != 0 || streams != 0 {
		t.Errorf("%d topics, %d streams at the end", topics, streams)
	}
}

func TestMemoryClose(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewMemory()
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	if err := b.Start(func(m *Message) {
		calls++
		if m.Event == "block" {
			close(entered)
			<-release
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = b.Publish(ctx, &Message{Topic: "t", Event: "block"}, PublishOptions{HistorySize: 1}) }()
	<-entered
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v during a delivery", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	errs := []struct {
		name string
		err  error
	}{
		{"start", b.Start(func(*Message) {})},
		{"subscribe", b.Subscribe(ctx, "t")},
		{"unsubscribe", b.Unsubscribe(ctx, "t")},
		{"publish", func() error { _, err := b.Publish(ctx, &Message{Topic: "t"}, PublishOptions{}); return err }()},
		{"history", func() error { _, err := b.History(ctx, "t", HistoryOptions{}); return err }()},
	}
	for _, e := range errs {
		if !errors.Is(e.err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", e.name, e.err)
		}
	}
	if calls != 1 {
		t.Errorf("handler called %d times, want 1", calls)
	}
	if topics, streams := topicCount(b); topics != 0 || streams != 0 {
		t.Errorf("%d topics, %d streams after Close", topics, streams)
	}
	// Goroutines that were told to stop exit soon, but on a loaded
	// machine not within any fixed few milliseconds: wait for the count.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Errorf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
}

func TestMemoryCloseBeforeStart(t *testing.T) {
	b := NewMemory()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(*Message) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestRingWraps(t *testing.T) {
	var r memRing
	for i := range 23 {
		r.push(memEntry{m: &Message{Event: strconv.Itoa(i)}}, 7)
	}
	if r.n != 7 || len(r.buf) != 7 {
		t.Fatalf("ring holds %d in %d slots", r.n, len(r.buf))
	}
	for i := range 7 {
		if got, want := r.at(i).m.Event, strconv.Itoa(16+i); got != want {
			t.Errorf("entry %d = %s, want %s", i, got, want)
		}
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		at   int64
		ttl  time.Duration
		want int64
	}{
		{100, 0, 0},
		{100, -time.Second, 0},
		{100, 5, 105},
		{1 << 62, 1 << 62, 1<<63 - 1},
	}
	for _, tt := range tests {
		if got := expiry(tt.at, tt.ttl); got != tt.want {
			t.Errorf("expiry(%d, %d) = %d, want %d", tt.at, tt.ttl, got, tt.want)
		}
	}
}

func BenchmarkMemoryPublish(b *testing.B) {
	br := NewMemory()
	defer br.Close()
	n := 0
	if err := br.Start(func(*Message) { n++ }); err != nil {
		b.Fatal(err)
	}
	if err := br.Subscribe(ctx, "room:lobby"); err != nil {
		b.Fatal(err)
	}
	m := &Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Publish(ctx, m, PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("handler not called")
	}
}

func BenchmarkMemoryPublishHistory(b *testing.B) {
	br := NewMemory()
	defer br.Close()
	n := 0
	if err := br.Start(func(*Message) { n++ }); err != nil {
		b.Fatal(err)
	}
	if err := br.Subscribe(ctx, "room:lobby"); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"body":"hi"}`)
	opts := PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		m := &Message{Topic: "room:lobby", Event: "new_msg", Payload: payload}
		if _, err := br.Publish(ctx, m, opts); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("handler not called")
	}
}

func TestMemoryTransientPublishKeepsStream(t *testing.T) {
	b, r := startMemory(t)
	if err := b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	p1 := mustPublish(t, b, "t", "e1", PublishOptions{HistorySize: 5})
	m := &Message{Topic: "t", Event: "presence_diff"}
	if pos, err := b.Publish(ctx, m, PublishOptions{Transient: true, HistorySize: 5}); err != nil || !pos.IsZero() || !m.Position.IsZero() {
		t.Fatalf("transient publish = %v, %v; message at %v", pos, err, m.Position)
	}
	p2 := mustPublish(t, b, "t", "e2", PublishOptions{HistorySize: 5})
	if p2.Epoch != p1.Epoch || p2.Seq != p1.Seq+1 {
		t.Fatalf("transient message touched the stream: %v then %v", p1, p2)
	}
	res := mustHistory(t, b, "t", HistoryOptions{Since: &p1})
	if !res.Recovered || len(res.Messages) != 1 || res.Messages[0].Event != "e2" {
		t.Errorf("history after a transient message: %+v", res)
	}
	if got := r.got(); !slices.Equal(got, []string{"t/e1", "t/presence_diff", "t/e2"}) {
		t.Errorf("delivered %v", got)
	}
}
