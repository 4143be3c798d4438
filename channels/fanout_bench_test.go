package channels

import (
	"context"
	"fmt"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// benchFanoutSizes are the subscriber counts of the fan-out benchmarks.
var benchFanoutSizes = []int{1, 100, 1000, 10000}

// benchDrainEvery is how many broadcasts the test subscribers' queues
// collect before they are emptied: their preallocated capacity, so
// queuing never allocates and emptying costs little per delivery.
const benchDrainEvery = 64

// benchSubscribers adds n V2 test subscribers of topic to a new hub.
func benchSubscribers(b *testing.B, n int, topic string) (*Hub, []*subscription) {
	b.Helper()
	h := newTestHub(b)
	subs := make([]*subscription, n)
	for i := range subs {
		subs[i] = newTestSubscriber(h, V2, topic)
	}
	return h, subs
}

// drainQueues empties the subscribers' queues without releasing them.
func drainQueues(subs []*subscription) {
	for _, s := range subs {
		clear(s.sock.wsq().pending)
		s.sock.wsq().pending = s.sock.wsq().pending[:0]
		s.sock.wsq().bytes = 0
	}
}

// runFanout calls publish in a benchmark loop and reports ns/delivery; it
// checks that the last subscriber got every broadcast of the last round.
func runFanout(b *testing.B, subs []*subscription, publish func()) {
	b.Helper()
	b.ReportAllocs()
	iters := 0
	for b.Loop() {
		if iters%benchDrainEvery == 0 {
			drainQueues(subs)
		}
		publish()
		iters++
	}
	if want := (iters-1)%benchDrainEvery + 1; len(subs[len(subs)-1].sock.wsq().pending) != want {
		b.Fatalf("last subscriber holds %d frames, want %d", len(subs[len(subs)-1].sock.wsq().pending), want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*len(subs)), "ns/delivery")
}

// BenchmarkFanoutDeliver fans one broker message out to N local
// subscribers (Hub.deliver: encode once, queue the frame on each).
func BenchmarkFanoutDeliver(b *testing.B) {
	for _, n := range benchFanoutSizes {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h, subs := benchSubscribers(b, n, "room:big")
			m := &pubsub.Message{Topic: "room:big", Event: "e", Payload: []byte(`{"body":"hello","ts":1234567890}`), Node: h.node}
			runFanout(b, subs, func() { h.deliver(m) })
		})
	}
}

// BenchmarkFanoutBroadcast publishes with Hub.Broadcast through the
// in-memory broker to N local subscribers: the path of the HTTP API and of
// handle_in broadcast, without the network.
func BenchmarkFanoutBroadcast(b *testing.B) {
	ctx := context.Background()
	p := JSONPayload([]byte(`{"body":"hello","ts":1234567890}`))
	for _, n := range benchFanoutSizes {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h, subs := benchSubscribers(b, n, "room:big")
			if err := h.broker.Subscribe(ctx, "room:big"); err != nil {
				b.Fatal(err)
			}
			runFanout(b, subs, func() {
				if err := h.Broadcast(ctx, "room:big", "e", p, 0); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
