package natsbroker

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// fastFail bounds how long a call may take while NATS is down.
const fastFail = 250 * time.Millisecond

// ownOptions returns Options for a test's own server.
func ownOptions(t *testing.T, s *ownServer) Options {
	return Options{
		URLs:             []string{s.url()},
		Prefix:           randomPrefix(),
		PresenceTTL:      time.Second,
		ReconnectWait:    20 * time.Millisecond,
		MaxReconnectWait: 200 * time.Millisecond,
		Logger:           zaptest.NewLogger(t),
	}
}

// quick runs f and fails the test if it took longer than fastFail or did
// not fail with ErrUnavailable.
func quick(t *testing.T, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	if d := time.Since(start); d > fastFail {
		t.Errorf("%s took %v during the outage", what, d)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s during the outage: %v, want ErrUnavailable", what, err)
	}
}

func TestServerDownAtStart(t *testing.T) {
	s := startOwnServer(t)
	s.Stop()
	o := ownOptions(t, s)
	b := newTestBroker(t, o)
	r := &recorder{}
	start := time.Now()
	if err := b.Start(r.handle); err != nil {
		t.Fatalf("Start with NATS down: %v", err)
	}
	defer b.Close()
	p := newTestPresence(t, o)
	defer p.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Start and NewPresence took %v with NATS down", d)
	}
	if err := b.Subscribe(bg, "room:a"); err != nil {
		t.Fatalf("Subscribe during the outage: %v", err)
	}
	quick(t, "Publish", func() error {
		_, err := b.Publish(bg, &pubsub.Message{Topic: "room:a", Event: "lost"}, pubsub.PublishOptions{})
		return err
	})
	quick(t, "Publish with history", func() error {
		_, err := b.Publish(bg, &pubsub.Message{Topic: "room:a"}, pubsub.PublishOptions{HistorySize: 5})
		return err
	})
	quick(t, "History", func() error { _, err := b.History(bg, "room:a", pubsub.HistoryOptions{}); return err })
	quick(t, "Track", func() error { return p.Track(bg, "room:a", pubsub.PresenceEntry{ID: "r1"}) })
	quick(t, "List", func() error { _, err := p.List(bg, "room:a"); return err })

	s.Start()
	pubsubtest.WaitFor(t, 10*time.Second, "the broker to connect", b.c.nc.IsConnected)
	pubsubtest.WaitFor(t, 10*time.Second, "the presence manager to connect", p.c.nc.IsConnected)
	pos, err := b.Publish(bg, &pubsub.Message{Topic: "room:a", Event: "e1"}, pubsub.PublishOptions{HistorySize: 5})
	if err != nil || pos.Seq != 1 {
		t.Fatalf("Publish after connecting = %v, %v", pos, err)
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the message on the subscription made during the outage", func() bool {
		return len(r.all()) == 1
	})
	for _, id := range []string{"r1", "r2"} {
		if err := p.Track(bg, "room:a", pubsub.PresenceEntry{ID: id, Key: "k"}); err != nil {
			t.Fatalf("Track after connecting: %v", err)
		}
	}
	if es, err := p.List(bg, "room:a"); err != nil || len(es) != 2 {
		t.Errorf("List = %v, %v", es, err)
	}

	// An Untrack during an outage is done once the server is back.
	s.Stop()
	pubsubtest.WaitFor(t, 5*time.Second, "the outage to be seen", func() bool { return !p.c.nc.IsConnected() })
	start = time.Now()
	if err := p.Untrack(bg, "room:a", "r2"); err != nil || time.Since(start) > fastFail {
		t.Errorf("Untrack during the outage: %v after %v", err, time.Since(start))
	}
	s.Start()
	pubsubtest.WaitFor(t, 10*time.Second, "the queued Untrack", func() bool {
		es, err := p.List(bg, "room:a")
		return err == nil && len(es) == 1 && es[0].ID == "r1"
	})
}

func TestCloseWhileDisconnected(t *testing.T) {
	s := startOwnServer(t)
	s.Stop()
	before := runtime.NumGoroutine()
	o := ownOptions(t, s)
	b := newTestBroker(t, o)
	if err := b.Start(func(*pubsub.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(bg, "t"); err != nil {
		t.Fatal(err)
	}
	p := newTestPresence(t, o)
	p.OnExpire(func(string, pubsub.PresenceEntry) {})
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v while disconnected", d)
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the goroutines to stop", func() bool { return runtime.NumGoroutine() <= before })
}

func TestServerRestart(t *testing.T) {
	s := startOwnServer(t)
	o := ownOptions(t, s)
	a, ra := startBroker(t, o)
	b, _ := startBroker(t, o)
	// Presence in memory storage: the restart loses it, and each node
	// tracks its entries again from its own copy.
	po := o
	po.Storage = "memory"
	var mu sync.Mutex
	var expired []string
	pa, pb := newTestPresence(t, po), newTestPresence(t, po)
	defer pa.Close()
	defer pb.Close()
	for _, p := range []*Presence{pa, pb} {
		p.OnExpire(func(topic string, e pubsub.PresenceEntry) {
			mu.Lock()
			expired = append(expired, topic+"/"+e.ID)
			mu.Unlock()
		})
	}
	if err := pa.Track(bg, "room", pubsub.PresenceEntry{ID: "a1", Key: "alice", Node: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := pb.Track(bg, "room", pubsub.PresenceEntry{ID: "b1", Key: "bob", Node: "B"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(bg, "room"); err != nil {
		t.Fatal(err)
	}
	hist := pubsub.PublishOptions{HistorySize: 100}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			opts := hist
			if i%2 == 0 {
				opts = pubsub.PublishOptions{}
			}
			if _, err := b.Publish(bg, &pubsub.Message{Topic: "room", Event: fmt.Sprint(i)}, opts); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	// History only on odd events: even ones drop the stream, so use a
	// second topic for a history that spans the restart.
	publish(1, 1)
	p1, err := b.Publish(bg, &pubsub.Message{Topic: "log", Event: "l1"}, hist)
	if err != nil {
		t.Fatal(err)
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the first message", func() bool { return len(ra.all()) == 1 })

	s.Stop()
	pubsubtest.WaitFor(t, 5*time.Second, "the clients to see the outage", func() bool {
		return !a.c.nc.IsConnected() && !b.c.nc.IsConnected() && !pa.c.nc.IsConnected()
	})
	quick(t, "Publish", func() error {
		_, err := b.Publish(bg, &pubsub.Message{Topic: "room", Event: "lost"}, pubsub.PublishOptions{})
		return err
	})
	quick(t, "History", func() error { _, err := b.History(bg, "log", pubsub.HistoryOptions{}); return err })
	quick(t, "Track", func() error { return pa.Track(bg, "room", pubsub.PresenceEntry{ID: "a2"}) })
	time.Sleep(1500 * time.Millisecond) // longer than the presence TTL

	s.Start()
	for _, c := range []*client{a.c, b.c, pa.c, pb.c} {
		pubsubtest.WaitFor(t, 10*time.Second, "reconnection", c.nc.IsConnected)
	}
	if err := a.c.nc.Flush(); err != nil { // a's subscription is back on the server
		t.Fatal(err)
	}
	publish(2, 6)
	// Message 7 comes after 1–6 on the same subject and connection: once
	// it is here, a duplicate of an earlier one would be too.
	publish(7, 7)
	pubsubtest.WaitFor(t, 5*time.Second, "the messages after the restart", func() bool {
		all := ra.all()
		return len(all) > 0 && all[len(all)-1].Event == "7"
	})
	var got []string
	for _, m := range ra.all() {
		got = append(got, m.Event)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Errorf("delivered %v, want each message once, in order", got)
	}
	// File storage kept the history across the restart.
	p2, err := b.Publish(bg, &pubsub.Message{Topic: "log", Event: "l2"}, hist)
	if err != nil || p2 != (pubsub.Position{Epoch: p1.Epoch, Seq: 2}) {
		t.Errorf("history publish after the restart at %v (%v), want %s:2", p2, err, p1.Epoch)
	}
	res, err := a.History(bg, "log", pubsub.HistoryOptions{Since: &p1})
	if err != nil || !res.Recovered || len(res.Messages) != 1 || res.Messages[0].Event != "l2" {
		t.Errorf("history since %v = %+v, %v", p1, res, err)
	}
	// Presence was lost by the server and tracked again by each node.
	pubsubtest.WaitFor(t, 5*time.Second, "the entries to be tracked again", func() bool {
		es, err := pb.List(bg, "room")
		return err == nil && len(es) == 2
	})
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(expired) != 0 {
		t.Errorf("live entries reported expired: %v", expired)
	}
}
