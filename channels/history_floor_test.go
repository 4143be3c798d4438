package channels

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// lateBroker is the in-memory broker whose deliveries can be held back,
// as a Redis node's pub/sub connection may hand the node a message after
// a history read on another connection has already returned it.
type lateBroker struct {
	*pubsub.Memory
	mu      sync.Mutex
	holding bool
	held    []*pubsub.Message
	handler pubsub.Handler
}

func (b *lateBroker) Start(h pubsub.Handler) error {
	b.handler = h
	return b.Memory.Start(func(m *pubsub.Message) {
		b.mu.Lock()
		if b.holding {
			b.held = append(b.held, m)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		h(m)
	})
}

// release delivers the held messages and stops holding.
func (b *lateBroker) release() {
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	for _, m := range held {
		b.handler(m)
	}
}

// A message the history read returned and the broker delivers live only
// after the catch-up ended is not queued twice.
func TestCatchUpDropsLateDeliveryOfReplayedMessage(t *testing.T) {
	b := &lateBroker{Memory: pubsub.NewMemory()}
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "feed:*",
		Join:    &GateSpec{Action: "allow"},
		History: &HistorySpec{Size: 10},
	}}})
	h, err := NewHub(Config{Rules: rules}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	url := serveHub(t, h)
	c := wsDial(t, url+"/websocket?vsn=2.0.0")
	c.WriteMessage(websocket.TextMessage, []byte(`["1","1","feed:x","phx_join",{}]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, reply, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	_, pos, _ := strings.Cut(string(reply), `"_position":"`)
	pos, _, _ = strings.Cut(pos, `"`)

	// A second socket stays subscribed, so the topic's subscription lives.
	c2 := wsDial(t, url+"/websocket?vsn=2.0.0")
	wsJoin(t, c2, "feed:x")

	// m1 is stored, its delivery held back; the rejoin replays it.
	b.mu.Lock()
	b.holding = true
	b.mu.Unlock()
	if err := h.Broadcast(context.Background(), "feed:x", "tick", JSONPayload([]byte(`{"n":1}`)), 0); err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`["2","2","feed:x","phx_join",{"_since":"`+pos+`"}]`))
	want := []string{`"phx_reply"`, `{"n":1}`, `"phx_close"`}
	for _, w := range want {
		_, f, err := c.ReadMessage()
		if err != nil || !strings.Contains(string(f), w) {
			t.Fatalf("got %s (%v), want a frame with %s", f, err, w)
		}
	}
	// Now the broker delivers m1 live, then m2: m2 is next, m1 is not repeated.
	b.release()
	if err := h.Broadcast(context.Background(), "feed:x", "tick", JSONPayload([]byte(`{"n":2}`)), 0); err != nil {
		t.Fatal(err)
	}
	_, f, err := c.ReadMessage()
	if err != nil || !strings.Contains(string(f), `{"n":2}`) {
		t.Fatalf("after the late delivery got %s (%v), want {\"n\":2}", f, err)
	}
}
