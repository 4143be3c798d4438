package redisbroker

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// inbox is a Handler that keeps the payloads it receives.
type inbox struct {
	mu   sync.Mutex
	msgs []*pubsub.Message
}

func (in *inbox) handle(m *pubsub.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

// payloads returns the payloads received on topic.
func (in *inbox) payloads(topic string) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, m := range in.msgs {
		if m.Topic == topic {
			out = append(out, string(m.Payload))
		}
	}
	return out
}

// has reports whether payload was received on topic.
func (in *inbox) has(topic, payload string) bool {
	for _, p := range in.payloads(topic) {
		if p == payload {
			return true
		}
	}
	return false
}

// faultOptions returns Options for srv with short timeouts and an
// observed logger.
func faultOptions(srv *server) (Options, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	return Options{
		URL:            srv.url(0),
		KeyPrefix:      "fault:",
		DialTimeout:    300 * time.Millisecond,
		CommandTimeout: 500 * time.Millisecond,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		PresenceTTL:    time.Second,
		Logger:         zap.New(core),
	}, logs
}

// publishUntilDelivered publishes numbered messages on topic from b until
// one reaches in, and returns the payloads whose Publish succeeded.
func publishUntilDelivered(t *testing.T, b *Broker, in *inbox, topic string) []string {
	t.Helper()
	var sent []string
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		payload := fmt.Sprintf(`"probe-%d"`, i)
		if _, err := b.Publish(deadlineCtx(t, time.Second), &pubsub.Message{Topic: topic, Payload: []byte(payload)}, pubsub.PublishOptions{}); err == nil {
			sent = append(sent, payload)
		}
		for range 10 {
			for _, p := range sent {
				if in.has(topic, p) {
					return sent
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("nothing published on %s was delivered within 10s", topic)
	return nil
}

// checkGoroutines waits until at most before goroutines run.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisDownAtStart starts a broker and a presence manager while Redis
// is down: both start, calls fail fast with ErrUnavailable, the error is
// logged, and everything works once Redis is up.
func TestRedisDownAtStart(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newServer(t) // not started yet
	opts, logs := faultOptions(srv)
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	start := time.Now()
	if err := b.Start(in.handle); err != nil {
		t.Fatalf("Start with Redis down: %v", err)
	}
	if d := time.Since(start); d > 2*opts.DialTimeout+time.Second {
		t.Errorf("Start took %v with Redis down", d)
	}
	if err := b.Subscribe(deadlineCtx(t, time.Second), "t"); err != nil {
		t.Errorf("Subscribe with Redis down: %v", err)
	}
	p, err := NewPresence(opts)
	if err != nil {
		t.Fatalf("NewPresence with Redis down: %v", err)
	}
	calls := map[string]func() error{
		"publish": func() error {
			_, err := b.Publish(deadlineCtx(t, 5*time.Second), &pubsub.Message{Topic: "t"}, pubsub.PublishOptions{HistorySize: 5})
			return err
		},
		"history": func() error {
			_, err := b.History(deadlineCtx(t, 5*time.Second), "t", pubsub.HistoryOptions{})
			return err
		},
		"track": func() error {
			return p.Track(deadlineCtx(t, 5*time.Second), "t", pubsub.PresenceEntry{ID: "r1", Key: "k"})
		},
		"list": func() error {
			_, err := p.List(deadlineCtx(t, 5*time.Second), "t")
			return err
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > opts.CommandTimeout+500*time.Millisecond {
			t.Errorf("%s with Redis down took %v", name, d)
		}
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n == 0 {
		t.Error("no error logged while Redis is down")
	}

	srv.Start()
	publishUntilDelivered(t, b, in, "t")
	pubsubtest.WaitFor(t, 5*time.Second, "Track to work", func() bool {
		return p.Track(deadlineCtx(t, time.Second), "t", pubsub.PresenceEntry{ID: "r1", Key: "k"}) == nil
	})
	pos, err := b.Publish(deadlineCtx(t, time.Second), &pubsub.Message{Topic: "t", Payload: []byte(`1`)}, pubsub.PublishOptions{HistorySize: 5})
	if err != nil || pos.Seq != 1 {
		t.Errorf("Publish after Redis came up: %v, %v", pos, err)
	}
	if es, err := p.List(deadlineCtx(t, time.Second), "t"); err != nil || len(es) != 1 {
		t.Errorf("List after Redis came up: %v, %v", es, err)
	}
	if logs.FilterMessageSnippet("restored").Len() == 0 {
		t.Error("no log of the restored connection")
	}
	_ = b.Close()
	_ = p.Close()
	srv.Stop()
	checkGoroutines(t, before)
}

// TestRedisRestartLosesData kills Redis under two nodes and restarts it
// empty: calls fail fast meanwhile, subscriptions and presence entries are
// restored, no message is delivered twice, and history gets a new epoch.
func TestRedisRestartLosesData(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newServer(t)
	srv.Start()
	opts, logs := faultOptions(srv)
	nodes := make([]*Broker, 2)
	inboxes := make([]*inbox, 2)
	for i := range nodes {
		b, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		inboxes[i] = &inbox{}
		if err := b.Start(inboxes[i].handle); err != nil {
			t.Fatal(err)
		}
		nodes[i] = b
		for _, topic := range []string{"t", fmt.Sprintf("only-%d", i)} {
			if err := b.Subscribe(deadlineCtx(t, time.Second), topic); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := nodes[0], nodes[1]
	pa, err := NewPresence(opts)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := NewPresence(opts)
	if err != nil {
		t.Fatal(err)
	}
	var expired atomic.Int32
	pa.OnExpire(func(string, pubsub.PresenceEntry) { expired.Add(1) })
	pb.OnExpire(func(string, pubsub.PresenceEntry) { expired.Add(1) })
	for _, tr := range []struct {
		p  *Presence
		id string
	}{{pa, "ra"}, {pb, "rb"}} {
		if err := tr.p.Track(deadlineCtx(t, time.Second), "t", pubsub.PresenceEntry{ID: tr.id, Key: tr.id}); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := a.Publish(deadlineCtx(t, time.Second), &pubsub.Message{Topic: "t", Payload: []byte(`"h1"`)}, pubsub.PublishOptions{HistorySize: 10})
	if err != nil {
		t.Fatal(err)
	}

	// Node b publishes numbered messages throughout the outage.
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		mu       sync.Mutex
		sent     []string
		slowFail time.Duration
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			payload := fmt.Sprintf(`"n-%d"`, i)
			start := time.Now()
			_, err := b.Publish(deadlineCtx(t, 5*time.Second), &pubsub.Message{Topic: "t", Payload: []byte(payload)}, pubsub.PublishOptions{})
			mu.Lock()
			if err == nil {
				sent = append(sent, payload)
			} else {
				slowFail = max(slowFail, time.Since(start))
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("Publish during the outage: %v, want ErrUnavailable", err)
				}
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	})
	pubsubtest.WaitFor(t, 5*time.Second, "publishes before the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sent) >= 10
	})
	srv.Stop()
	time.Sleep(500 * time.Millisecond) // the outage itself, not a wait
	if _, err := a.History(deadlineCtx(t, 5*time.Second), "t", pubsub.HistoryOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("History during the outage: %v, want ErrUnavailable", err)
	}
	if err := pa.Track(deadlineCtx(t, 5*time.Second), "t", pubsub.PresenceEntry{ID: "late"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Track during the outage: %v, want ErrUnavailable", err)
	}
	srv.Start() // empty: every key is lost

	// Subscriptions come back on both nodes, for shared and single-node topics.
	publishUntilDelivered(t, b, inboxes[0], "t")
	publishUntilDelivered(t, a, inboxes[1], "only-1")
	publishUntilDelivered(t, b, inboxes[0], "only-0")
	stop.Store(true)
	wg.Wait()
	if _, err := b.Publish(deadlineCtx(t, time.Second), &pubsub.Message{Topic: "t", Payload: []byte(`"last"`)}, pubsub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, in := range inboxes {
		pubsubtest.WaitFor(t, 5*time.Second, "the last message", func() bool { return in.has("t", `"last"`) })
		seen := map[string]bool{}
		for _, p := range in.payloads("t") {
			if seen[p] {
				t.Errorf("node %d got %s twice", i, p)
			}
			seen[p] = true
		}
	}
	mu.Lock()
	// Each failed with ErrUnavailable (checked above) before the caller's
	// 5 s deadline: the command timeout, not the caller, ended it. The
	// duration is logged, not asserted: a loaded machine stretches it.
	if slowFail >= 5*time.Second {
		t.Errorf("a Publish during the outage failed only at the caller's deadline (%v)", slowFail)
	}
	t.Logf("%d publishes succeeded around the outage; slowest failure %v", len(sent), slowFail)
	mu.Unlock()

	// History: the stream was lost, so the old position does not recover.
	res, err := a.History(deadlineCtx(t, time.Second), "t", pubsub.HistoryOptions{Since: &hist})
	if err != nil || res.Recovered || res.Latest.Epoch == hist.Epoch || res.Latest.Seq != 0 {
		t.Errorf("History since %v after the restart: %+v, %v; want a new empty stream", hist, res, err)
	}

	// Presence: each owner restores its entries within a refresh period;
	// nothing is reported expired.
	pubsubtest.WaitFor(t, 3*opts.PresenceTTL, "presence entries restored", func() bool {
		es, err := pb.List(deadlineCtx(t, time.Second), "t")
		return err == nil && len(es) == 2
	})
	time.Sleep(opts.PresenceTTL + 200*time.Millisecond)
	if es, err := pa.List(deadlineCtx(t, time.Second), "t"); err != nil || len(es) != 2 {
		t.Errorf("entries after another TTL: %v, %v", es, err)
	}
	if n := expired.Load(); n != 0 {
		t.Errorf("%d entries of live nodes reported expired", n)
	}
	if logs.FilterMessageSnippet("connection lost").Len() == 0 {
		t.Error("the lost connection was not logged")
	}
	for _, e := range logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		if !strings.Contains(e.Message, "redis") && !strings.Contains(e.Message, "presence") {
			t.Errorf("unexpected error log %q", e.Message)
		}
	}
	for _, n := range nodes {
		_ = n.Close()
	}
	_ = pa.Close()
	_ = pb.Close()
	srv.Stop()
	checkGoroutines(t, before)
}

// TestRedisUnresponsive pauses Redis: calls fail within the command
// timeout instead of hanging, Close does not hang, and delivery resumes
// once Redis answers again.
func TestRedisUnresponsive(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newServer(t)
	srv.Start()
	opts, _ := faultOptions(srv)
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	if err := b.Start(in.handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(deadlineCtx(t, time.Second), "t"); err != nil {
		t.Fatal(err)
	}
	p, err := NewPresence(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	calls := map[string]func() error{
		"publish": func() error {
			_, err := b.Publish(deadlineCtx(t, 10*time.Second), &pubsub.Message{Topic: "t"}, pubsub.PublishOptions{})
			return err
		},
		"history": func() error {
			_, err := b.History(deadlineCtx(t, 10*time.Second), "t", pubsub.HistoryOptions{})
			return err
		},
		"track": func() error {
			return p.Track(deadlineCtx(t, 10*time.Second), "t", pubsub.PresenceEntry{ID: "r"})
		},
		"list": func() error {
			_, err := p.List(deadlineCtx(t, 10*time.Second), "t")
			return err
		},
		"subscribe": func() error { return b.Subscribe(deadlineCtx(t, 10*time.Second), "u") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if name == "subscribe" {
			if err != nil {
				t.Errorf("Subscribe while Redis hangs: %v, want nil (subscribed once it is back)", err)
			}
		} else if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s while Redis hangs: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > opts.CommandTimeout+time.Second {
			t.Errorf("%s while Redis hangs took %v", name, d)
		}
	}
	srv.Resume()
	resumed = true
	publishUntilDelivered(t, b, in, "t")
	publishUntilDelivered(t, b, in, "u")

	// Close does not hang on a hung server either.
	srv.Pause()
	resumed = false
	start := time.Now()
	_ = b.Close()
	_ = p.Close()
	if d := time.Since(start); d > 2*opts.CommandTimeout+time.Second {
		t.Errorf("Close while Redis hangs took %v", d)
	}
	srv.Resume()
	resumed = true
	srv.Stop()
	checkGoroutines(t, before)
}

// TestRedisPauseKeepsLiveEntries pauses Redis for longer than the presence
// TTL: the deadlines of the live nodes' entries lapse meanwhile, but no
// leave is reported once Redis answers again, since sweeping waits for the
// nodes to refresh. A node closed afterwards is still reported once.
func TestRedisPauseKeepsLiveEntries(t *testing.T) {
	srv := newServer(t)
	srv.Start()
	opts, _ := faultOptions(srv)
	var mu sync.Mutex
	reports := map[string]int{}
	ps := make([]*Presence, 3)
	for i := range ps {
		p, err := NewPresence(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		p.OnExpire(func(_ string, e pubsub.PresenceEntry) {
			mu.Lock()
			reports[e.ID]++
			mu.Unlock()
		})
		if err := p.Track(deadlineCtx(t, time.Second), "t", pubsub.PresenceEntry{ID: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	time.Sleep(opts.PresenceTTL) // sweeps run: the pause must be detected by its gap
	srv.Pause()
	time.Sleep(opts.PresenceTTL * 3 / 2)
	srv.Resume()
	time.Sleep(2 * opts.PresenceTTL)
	mu.Lock()
	if len(reports) != 0 {
		t.Errorf("live entries reported expired after the pause: %v", reports)
	}
	mu.Unlock()
	es, err := ps[0].List(deadlineCtx(t, time.Second), "t")
	if err != nil || len(es) != 3 {
		t.Fatalf("entries after the pause: %v, %v", es, err)
	}
	_ = ps[2].Close()
	pubsubtest.WaitFor(t, 3*opts.PresenceTTL, "the closed node's entry to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reports["r2"] > 0
	})
	time.Sleep(opts.PresenceTTL / 2)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(reports) != "map[r2:1]" {
		t.Errorf("reports %v, want r2 once", reports)
	}
}
