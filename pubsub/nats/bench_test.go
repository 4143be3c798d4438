package natsbroker

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// benchBroker returns a started broker subscribed to "room:lobby" whose
// Handler calls f.
func benchBroker(b *testing.B, f func(*pubsub.Message)) *Broker {
	b.Helper()
	o := testOptions(b)
	o.Logger = zap.NewNop()
	if testing.Verbose() {
		o.Logger = zap.NewExample()
	}
	br := newTestBroker(b, o)
	if err := br.Start(f); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Close() })
	if err := br.Subscribe(bg, "room:lobby"); err != nil {
		b.Fatal(err)
	}
	return br
}

// BenchmarkRoundTrip publishes one message and waits for its delivery
// back to the same node, through the server.
func BenchmarkRoundTrip(b *testing.B) {
	cases := []struct {
		name string
		opts pubsub.PublishOptions
	}{
		{"broadcast", pubsub.PublishOptions{}},
		{"history", pubsub.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			got := make(chan struct{}, 1)
			br := benchBroker(b, func(*pubsub.Message) { got <- struct{}{} })
			payload := []byte(`{"body":"hello world"}`)
			b.ReportAllocs()
			for b.Loop() {
				m := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: payload}
				if _, err := br.Publish(bg, m, c.opts); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// BenchmarkPipelined publishes with up to 1024 messages in flight and
// measures until every message was delivered: the throughput of one node
// publishing to itself through the server.
func BenchmarkPipelined(b *testing.B) {
	window := make(chan struct{}, 1024)
	var delivered atomic.Int64
	br := benchBroker(b, func(*pubsub.Message) {
		delivered.Add(1)
		<-window
	})
	payload := []byte(`{"body":"hello world"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		select {
		case window <- struct{}{}:
		case <-time.After(10 * time.Second):
			b.Fatalf("%d of %d delivered", delivered.Load(), b.N)
		}
		m := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: payload}
		if _, err := br.Publish(bg, m, pubsub.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered", delivered.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPresence tracks, lists and untracks one entry per iteration
// on a topic holding 10 entries.
func BenchmarkPresence(b *testing.B) {
	o := testOptions(b)
	o.Logger = zap.NewNop()
	p := newTestPresence(b, o)
	defer p.Close()
	for i := range 10 {
		if err := p.Track(bg, "room", pubsub.PresenceEntry{ID: "base" + strconv.Itoa(i), Key: "k"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i)
		i++
		if err := p.Track(bg, "room", pubsub.PresenceEntry{ID: id, Key: "u", Meta: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		if es, err := p.List(bg, "room"); err != nil || len(es) != 11 {
			b.Fatalf("List = %d entries, %v", len(es), err)
		}
		if err := p.Untrack(bg, "room", id); err != nil {
			b.Fatal(err)
		}
	}
}
