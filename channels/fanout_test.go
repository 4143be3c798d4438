package channels

import (
	"bytes"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// newTestSubscriber returns a subscription whose send queue collects frames
// without a writer (writing is preset, so no goroutine starts).
func newTestSubscriber(h *Hub, ser Serializer, topic string) *subscription {
	s := &Socket{hub: h, ser: ser}
	s.t = &sendQueue{maxBytes: 1 << 30, writing: true, pending: make([]*Frame, 0, 64), flushed: make(chan struct{})}
	sub := &subscription{id: h.nextID.Add(1), sock: s, topic: topic}
	h.topics.add(sub, func() {})
	return sub
}

func newTestHub(t testing.TB) *Hub {
	h, err := NewHub(Config{}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// A broadcast is encoded once per serializer: every subscriber of one
// protocol version gets the very same *Frame, and broadcast_from skips only
// the sender.
func TestDeliverEncodesOncePerSerializer(t *testing.T) {
	h := newTestHub(t)
	var subs []*subscription
	for i := 0; i < 6; i++ {
		ser := V2
		if i%3 == 0 {
			ser = V1
		}
		subs = append(subs, newTestSubscriber(h, ser, "room:1"))
	}
	h.deliver(&pubsub.Message{Topic: "room:1", Event: "e", Payload: []byte(`{"a":1}`), Node: h.node, Exclude: subs[1].id})

	var v1, v2 *Frame
	for i, s := range subs {
		got := s.sock.wsq().pending
		if i == 1 {
			if len(got) != 0 {
				t.Fatalf("excluded sender got %d frames", len(got))
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("subscriber %d got %d frames, want 1", i, len(got))
		}
		ref := &v2
		want := `[null,null,"room:1","e",{"a":1}]`
		if s.sock.ser == V1 {
			ref = &v1
			want = `{"event":"e","payload":{"a":1},"ref":null,"topic":"room:1"}`
		}
		if *ref == nil {
			*ref = got[0]
		} else if *ref != got[0] {
			t.Fatalf("subscriber %d got a separately encoded frame", i)
		}
		if !bytes.Equal(got[0].Payload(), []byte(want)) {
			t.Fatalf("subscriber %d got %s, want %s", i, got[0].Payload(), want)
		}
	}

	// Exclude applies only to messages published by this node.
	for _, s := range subs {
		s.sock.wsq().pending = s.sock.wsq().pending[:0]
	}
	h.deliver(&pubsub.Message{Topic: "room:1", Event: "e", Payload: []byte(`{}`), Node: "other-node", Exclude: subs[1].id})
	if len(subs[1].sock.wsq().pending) != 1 {
		t.Fatal("exclude of another node's message must not apply here")
	}
}

// Fan-out does no per-subscriber allocation: delivering to 1,000
// subscribers allocates about as much as delivering to one.
func TestDeliverNoPerSubscriberAllocation(t *testing.T) {
	allocs, subs := deliverAllocs(newTestHub(t), 1000)
	if allocs > 5 {
		t.Fatalf("deliver to 1000 subscribers made %.0f allocations, want at most 5 (encode once, nothing per subscriber)", allocs)
	}
	for _, s := range subs {
		if len(s.sock.wsq().pending) != 1 {
			t.Fatal("a subscriber missed the broadcast")
		}
	}
}

// deliverAllocs joins n V2 subscribers to room:big on h and returns the
// allocations of delivering one broadcast to them (queues emptied between
// runs), and the subscribers, each holding the last run's frame.
func deliverAllocs(h *Hub, n int) (float64, []*subscription) {
	var subs []*subscription
	for range n {
		subs = append(subs, newTestSubscriber(h, V2, "room:big"))
	}
	m := &pubsub.Message{Topic: "room:big", Event: "e", Payload: []byte(`{"a":1}`), Node: h.node}
	allocs := testing.AllocsPerRun(50, func() {
		for _, s := range subs {
			s.sock.wsq().pending = s.sock.wsq().pending[:0]
			s.sock.wsq().bytes = 0
		}
		h.deliver(m)
	})
	return allocs, subs
}

// A binary broadcast reaches V2 subscribers as a kind-2 frame and is
// skipped for V1 subscribers, which have no binary encoding.
func TestDeliverBinarySkipsV1(t *testing.T) {
	h := newTestHub(t)
	v1 := newTestSubscriber(h, V1, "room:b")
	v2 := newTestSubscriber(h, V2, "room:b")
	h.deliver(&pubsub.Message{Topic: "room:b", Event: "ev", Payload: []byte{1, 2}, Binary: true, Node: h.node})
	if len(v1.sock.wsq().pending) != 0 {
		t.Fatal("V1 subscriber got a binary broadcast")
	}
	want := []byte{2, 6, 2, 'r', 'o', 'o', 'm', ':', 'b', 'e', 'v', 1, 2}
	if got := v2.sock.wsq().pending; len(got) != 1 || !got[0].IsBinary() || !bytes.Equal(got[0].Payload(), want) {
		t.Fatalf("V2 subscriber got %v", got)
	}
}

// wsq is the socket's transport as the send queue a test installed.
func (s *Socket) wsq() *sendQueue { return s.t.(*sendQueue) }
