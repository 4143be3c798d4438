package pubsubtest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// NewBroker returns a new, not yet started Broker. It may register cleanups
// with t.Cleanup; the suite closes the broker itself.
type NewBroker func(t *testing.T) pubsub.Broker

// RunBroker runs the Broker conformance tests as subtests of t, each on a
// fresh broker made by newBroker.
func RunBroker(t *testing.T, newBroker NewBroker) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, newBroker NewBroker)
	}{
		{"Start", testStart},
		{"InvalidArguments", testInvalidArguments},
		{"DeliversSubscribedTopicsOnly", testDeliversSubscribedTopicsOnly},
		{"MessageFields", testMessageFields},
		{"UnsubscribeCounts", testUnsubscribeCounts},
		{"PublishOrderConcurrent", testPublishOrderConcurrent},
		{"PublishOrderWithoutHistory", testPublishOrderWithoutHistory},
		{"HistoryNewStream", testHistoryNewStream},
		{"HistorySince", testHistorySince},
		{"HistorySizeChanges", testHistorySizeChanges},
		{"HistoryTTL", testHistoryTTL},
		{"StreamExpiryNewEpoch", testStreamExpiryNewEpoch},
		{"HistoryTTLExtendsStream", testHistoryTTLExtendsStream},
		{"PublishWithoutHistoryDropsStream", testPublishWithoutHistoryDropsStream},
		{"HistoryTopicsIndependent", testHistoryTopicsIndependent},
		{"Close", testClose},
		{"CloseBeforeStart", testCloseBeforeStart},
		{"CloseStopsGoroutines", testCloseStopsGoroutines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newBroker) })
	}
}

// started returns a started broker of newBroker with a recorder as its
// Handler; the broker is closed when the test ends.
func started(t *testing.T, newBroker NewBroker) (pubsub.Broker, *recorder) {
	t.Helper()
	b := newBroker(t)
	r := newRecorder()
	if err := b.Start(r.handle); err != nil {
		_ = b.Close()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		if v := r.err(); v != "" {
			t.Errorf("handler: %s", v)
		}
	})
	return b, r
}

func mustSubscribe(t *testing.T, b pubsub.Broker, topic string) {
	t.Helper()
	if err := b.Subscribe(bg(t), topic); err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
}

func mustUnsubscribe(t *testing.T, b pubsub.Broker, topic string) {
	t.Helper()
	if err := b.Unsubscribe(bg(t), topic); err != nil {
		t.Fatalf("Unsubscribe(%s): %v", topic, err)
	}
}

func mustPublish(t *testing.T, b pubsub.Broker, topic, event string, opts pubsub.PublishOptions) pubsub.Position {
	t.Helper()
	pos, err := b.Publish(bg(t), &pubsub.Message{Topic: topic, Event: event, Payload: []byte(`{}`)}, opts)
	if err != nil {
		t.Fatalf("Publish(%s, %s): %v", topic, event, err)
	}
	return pos
}

func mustHistory(t *testing.T, b pubsub.Broker, topic string, opts pubsub.HistoryOptions) pubsub.HistoryResult {
	t.Helper()
	res, err := b.History(bg(t), topic, opts)
	if err != nil {
		t.Fatalf("History(%s): %v", topic, err)
	}
	return res
}

// events returns the events of msgs, checking that each carries a position
// of epoch with consecutive seqs.
func events(t *testing.T, msgs []*pubsub.Message, epoch string) []string {
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

// waitCount waits until r holds n messages of topic.
func waitCount(t *testing.T, r *recorder, topic string, n int) []*pubsub.Message {
	t.Helper()
	WaitFor(t, waitTimeout, fmt.Sprintf("%d messages on %s", n, topic), func() bool { return r.count(topic) >= n })
	return r.topic(topic)
}

func testStart(t *testing.T, newBroker NewBroker) {
	b := newBroker(t)
	defer b.Close()
	ctx := bg(t)
	calls := []struct {
		name string
		err  error
	}{
		{"subscribe", b.Subscribe(ctx, "a")},
		{"unsubscribe", b.Unsubscribe(ctx, "a")},
		{"publish", func() error {
			_, err := b.Publish(ctx, &pubsub.Message{Topic: "a"}, pubsub.PublishOptions{})
			return err
		}()},
		{"history", func() error { _, err := b.History(ctx, "a", pubsub.HistoryOptions{}); return err }()},
	}
	for _, c := range calls {
		if !errors.Is(c.err, pubsub.ErrNotStarted) {
			t.Errorf("%s before Start: %v, want ErrNotStarted", c.name, c.err)
		}
	}
	if err := b.Start(nil); !errors.Is(err, pubsub.ErrInvalidArgument) {
		t.Errorf("Start(nil) = %v, want ErrInvalidArgument", err)
	}
	if err := b.Start(func(*pubsub.Message) {}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := b.Start(func(*pubsub.Message) {}); !errors.Is(err, pubsub.ErrAlreadyStarted) {
		t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
}

func testInvalidArguments(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	ctx := bg(t)
	calls := []struct {
		name string
		err  error
	}{
		{"subscribe", b.Subscribe(ctx, "")},
		{"unsubscribe", b.Unsubscribe(ctx, "")},
		{"publish empty topic", func() error { _, err := b.Publish(ctx, &pubsub.Message{}, pubsub.PublishOptions{}); return err }()},
		{"publish nil", func() error { _, err := b.Publish(ctx, nil, pubsub.PublishOptions{}); return err }()},
		{"history", func() error { _, err := b.History(ctx, "", pubsub.HistoryOptions{}); return err }()},
	}
	for _, c := range calls {
		if !errors.Is(c.err, pubsub.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
}

func testDeliversSubscribedTopicsOnly(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	mustSubscribe(t, b, "room:a")
	// Published right after Subscribe returns: must be delivered.
	m := &pubsub.Message{Topic: "room:a", Event: "e1", Payload: []byte{1, 2}, Binary: true, Exclude: 9, Node: "n1"}
	pos, err := b.Publish(bg(t), m, pubsub.PublishOptions{})
	if err != nil || !pos.IsZero() {
		t.Fatalf("Publish = %v, %v; want zero position", pos, err)
	}
	mustPublish(t, b, "room:b", "e2", pubsub.PublishOptions{})
	mustPublish(t, b, "room:a", "e3", pubsub.PublishOptions{})
	got := waitCount(t, r, "room:a", 2)
	if !slices.Equal(names(got), []string{"e1", "e3"}) {
		t.Fatalf("delivered %v on room:a, want [e1 e3]", names(got))
	}
	d := got[0]
	if string(d.Payload) != "\x01\x02" || !d.Binary || d.Exclude != 9 || d.Node != "n1" || !d.Position.IsZero() || d.Topic != "room:a" {
		t.Errorf("delivered %+v, want the published message unchanged", d)
	}
	quiet()
	if n := r.count("room:b"); n != 0 {
		t.Errorf("%d messages delivered on the unsubscribed room:b", n)
	}
}

func testMessageFields(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	big := make([]byte, 1<<16)
	for i := range big {
		big[i] = byte(i * 7)
	}
	topic := "room:ünïcode/🙂 with spaces"
	msgs := []*pubsub.Message{
		{Topic: topic, Event: "json", Payload: []byte(`{"body":"hi","n":[1,2]}`), Node: "node-a"},
		{Topic: topic, Event: "", Payload: nil},
		{Topic: topic, Event: "binary", Payload: big, Binary: true, Exclude: 1<<64 - 1, Node: "n"},
		{Topic: topic, Event: "history", Payload: []byte(`"x"`), Exclude: 3},
	}
	mustSubscribe(t, b, topic)
	type want struct {
		event, payload, node string
		binary               bool
		exclude              uint64
	}
	var wants []want
	var positions []pubsub.Position
	for i, m := range msgs {
		wants = append(wants, want{m.Event, string(m.Payload), m.Node, m.Binary, m.Exclude})
		opts := pubsub.PublishOptions{}
		if i == 3 {
			opts.HistorySize = 5
		}
		pos, err := b.Publish(bg(t), m, opts)
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		positions = append(positions, pos)
	}
	got := waitCount(t, r, topic, len(msgs))
	for i, m := range got {
		w := wants[i]
		if m.Topic != topic || m.Event != w.event || string(m.Payload) != w.payload || m.Node != w.node ||
			m.Binary != w.binary || m.Exclude != w.exclude || m.Position != positions[i] {
			t.Errorf("message %d delivered as {%q %q %d bytes %q %v %d %v}, want {%q %d bytes %q %v %d %v}", i,
				m.Topic, m.Event, len(m.Payload), m.Node, m.Binary, m.Exclude, m.Position,
				w.event, len(w.payload), w.node, w.binary, w.exclude, positions[i])
		}
	}
	if positions[3].Seq != 1 || positions[3].Epoch == "" {
		t.Errorf("history publish at %v, want seq 1", positions[3])
	}
	res := mustHistory(t, b, topic, pubsub.HistoryOptions{})
	if len(res.Messages) != 1 || res.Messages[0].Event != "history" || string(res.Messages[0].Payload) != `"x"` ||
		res.Messages[0].Exclude != 3 || res.Messages[0].Topic != topic || res.Messages[0].Position != positions[3] {
		t.Errorf("history = %+v", res.Messages)
	}
}

func testUnsubscribeCounts(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	steps := []struct {
		op   string // "sub", "unsub", "pub" (delivered) or "drop" (published, not delivered)
		want int    // messages delivered so far, after a "pub"
	}{
		{"unsub", 0}, // never subscribed: no-op
		{"sub", 0},
		{"sub", 0},
		{"pub", 1},
		{"unsub", 0},
		{"pub", 2}, // still subscribed once
		{"unsub", 0},
		{"drop", 2},
		{"unsub", 0}, // extra: no-op
		{"drop", 2},
		{"sub", 0},
		{"pub", 3},
	}
	var want []string
	for i, s := range steps {
		switch s.op {
		case "sub":
			mustSubscribe(t, b, "t")
		case "unsub":
			mustUnsubscribe(t, b, "t")
		case "pub", "drop":
			ev := strconv.Itoa(i)
			mustPublish(t, b, "t", ev, pubsub.PublishOptions{})
			if s.op == "pub" {
				want = append(want, ev)
				waitCount(t, r, "t", s.want)
			} else {
				quiet()
			}
			if got := names(r.topic("t")); !slices.Equal(got, want) {
				t.Fatalf("step %d: delivered %v, want %v", i, got, want)
			}
		}
	}
	mustUnsubscribe(t, b, "t")
	mustPublish(t, b, "t", "late", pubsub.PublishOptions{})
	quiet()
	if got := names(r.topic("t")); !slices.Equal(got, want) {
		t.Fatalf("after the last unsubscribe: delivered %v, want %v", got, want)
	}
}

func testPublishOrderConcurrent(t *testing.T, newBroker NewBroker) {
	const publishers, perPublisher = 4, 100
	b, r := started(t, newBroker)
	mustSubscribe(t, b, "t")
	opts := pubsub.PublishOptions{HistorySize: publishers * perPublisher}
	returned := make([][]uint64, publishers)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				m := &pubsub.Message{Topic: "t", Event: "e", Payload: fmt.Appendf(nil, "%d/%d", p, i)}
				pos, err := b.Publish(bg(t), m, opts)
				if err != nil {
					t.Error(err)
					return
				}
				returned[p] = append(returned[p], pos.Seq)
			}
		})
	}
	// Unrelated topics churn concurrently.
	for p := range 2 {
		wg.Go(func() {
			topic := "other:" + strconv.Itoa(p)
			for i := range perPublisher / 4 {
				if err := b.Subscribe(bg(t), topic); err != nil {
					t.Error(err)
				}
				if _, err := b.Publish(bg(t), &pubsub.Message{Topic: topic}, pubsub.PublishOptions{HistorySize: i % 3}); err != nil {
					t.Error(err)
				}
				if err := b.Unsubscribe(bg(t), topic); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := waitCount(t, r, "t", publishers*perPublisher)
	if len(got) != publishers*perPublisher {
		t.Fatalf("%d messages delivered, want %d", len(got), publishers*perPublisher)
	}
	next := make([]int, publishers)
	for i, m := range got {
		if m.Position.Seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d: delivery order differs from seq order", i, m.Position.Seq)
		}
		var p, n int
		if _, err := fmt.Sscanf(string(m.Payload), "%d/%d", &p, &n); err != nil {
			t.Fatal(err)
		}
		if p < 0 || p >= publishers || n != next[p] {
			t.Fatalf("delivery %d is %s, out of its publisher's order", i, m.Payload)
		}
		next[p]++
		if returned[p][n] != m.Position.Seq {
			t.Fatalf("Publish of %s returned seq %d, delivered as %d", m.Payload, returned[p][n], m.Position.Seq)
		}
	}
	res := mustHistory(t, b, "t", pubsub.HistoryOptions{})
	if len(res.Messages) != publishers*perPublisher || res.Latest.Seq != publishers*perPublisher {
		t.Errorf("history holds %d messages up to %v", len(res.Messages), res.Latest)
	}
}

func testPublishOrderWithoutHistory(t *testing.T, newBroker NewBroker) {
	const publishers, perPublisher = 3, 100
	b, r := started(t, newBroker)
	mustSubscribe(t, b, "t")
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				m := &pubsub.Message{Topic: "t", Event: "e", Payload: fmt.Appendf(nil, "%d/%d", p, i)}
				if _, err := b.Publish(bg(t), m, pubsub.PublishOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := waitCount(t, r, "t", publishers*perPublisher)
	next := make([]int, publishers)
	for i, m := range got {
		var p, n int
		if _, err := fmt.Sscanf(string(m.Payload), "%d/%d", &p, &n); err != nil {
			t.Fatal(err)
		}
		if p < 0 || p >= publishers || n != next[p] {
			t.Fatalf("delivery %d is %s, out of its publisher's order", i, m.Payload)
		}
		if !m.Position.IsZero() {
			t.Fatalf("delivery %d has position %v without history", i, m.Position)
		}
		next[p]++
	}
	quiet()
	if n := r.count("t"); n != publishers*perPublisher {
		t.Errorf("%d messages delivered, want %d", n, publishers*perPublisher)
	}
}
