package pubsub

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkMemorySubscribeUnsubscribe is the broker side of one join and
// leave of a topic that other sockets keep subscribed.
func BenchmarkMemorySubscribeUnsubscribe(b *testing.B) {
	bg := context.Background()
	br := NewMemory()
	defer br.Close()
	if err := br.Start(func(*Message) {}); err != nil {
		b.Fatal(err)
	}
	if err := br.Subscribe(bg, "room:lobby"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Subscribe(bg, "room:lobby"); err != nil {
			b.Fatal(err)
		}
		if err := br.Unsubscribe(bg, "room:lobby"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPublishParallel publishes from every CPU at once, each
// goroutine to a topic of its own, as many rooms broadcasting at the same
// time do: it shows contention between unrelated topics.
func BenchmarkMemoryPublishParallel(b *testing.B) {
	bg := context.Background()
	br := NewMemory()
	defer br.Close()
	var delivered atomic.Int64
	if err := br.Start(func(*Message) { delivered.Add(1) }); err != nil {
		b.Fatal(err)
	}
	const topics = 256
	for i := range topics {
		if err := br.Subscribe(bg, "room:"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var published atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		m := &Message{Topic: "room:" + strconv.Itoa(int(next.Add(1)%topics)), Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}
		n := int64(0)
		for pb.Next() {
			if _, err := br.Publish(bg, m, PublishOptions{}); err != nil {
				b.Error(err)
				return
			}
			n++
		}
		published.Add(n)
	})
	if got, want := delivered.Load(), published.Load(); got != want {
		b.Fatalf("delivered %d of %d messages", got, want)
	}
}
