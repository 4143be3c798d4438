package redisbroker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// startBench returns a started broker on the shared Redis, subscribed to
// topic, whose handler sends every delivery to the returned channel.
func startBench(b *testing.B, topic string) (*Broker, chan *pubsub.Message) {
	b.Helper()
	env := newEnv(b)
	opts := env.options(b)
	opts.Logger = zap.NewNop()
	br, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan *pubsub.Message, 1024)
	if err := br.Start(func(m *pubsub.Message) { got <- m }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Close() })
	if err := br.Subscribe(context.Background(), topic); err != nil {
		b.Fatal(err)
	}
	return br, got
}

// benchRoundTrip publishes one message at a time and waits for its
// delivery back through Redis.
func benchRoundTrip(b *testing.B, opts pubsub.PublishOptions) {
	const topic = "room:lobby"
	br, got := startBench(b, topic)
	payload := []byte(`{"body":"hello from the benchmark"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m := &pubsub.Message{Topic: topic, Event: "new_msg", Payload: payload, Node: "n1"}
		if _, err := br.Publish(ctx, m, opts); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			b.Fatal("message not delivered")
		}
	}
}

// BenchmarkRoundTrip is Publish plus delivery, one message in flight.
func BenchmarkRoundTrip(b *testing.B) {
	benchRoundTrip(b, pubsub.PublishOptions{})
}

// BenchmarkRoundTripHistory is BenchmarkRoundTrip with a history stream.
func BenchmarkRoundTripHistory(b *testing.B) {
	benchRoundTrip(b, pubsub.PublishOptions{HistorySize: 100, HistoryTTL: time.Minute})
}

// BenchmarkPublishParallel publishes from many goroutines (auto-pipelined
// by rueidis) and reports deliveries per second through Redis.
func BenchmarkPublishParallel(b *testing.B) {
	const topic = "room:lobby"
	br, got := startBench(b, topic)
	var delivered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range got {
			delivered.Add(1)
		}
	}()
	payload := []byte(`{"body":"hello from the benchmark"}`)
	b.ReportAllocs()
	b.SetParallelism(8)
	start := time.Now()
	var published atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			m := &pubsub.Message{Topic: topic, Event: "new_msg", Payload: payload, Node: "n1"}
			if _, err := br.Publish(ctx, m, pubsub.PublishOptions{}); err != nil {
				b.Error(err)
				return
			}
			published.Add(1)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < published.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(delivered.Load())/time.Since(start).Seconds(), "deliveries/s")
	b.StopTimer()
	_ = br.Close()
	close(got)
	<-done
}
