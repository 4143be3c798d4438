package channels

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// serveHub serves h on a loopback test server and returns its ws:// base.
func serveHub(t *testing.T, h *Hub) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeWebSocket(w, r); err != nil {
			var he *HTTPError
			if errors.As(err, &he) {
				http.Error(w, he.Error(), he.Status)
				return
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func testRules(t *testing.T, spec RulesSpec) *Rules {
	t.Helper()
	r, err := CompileRules(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wsDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wsJoin(t *testing.T, c *websocket.Conn, topic string) {
	t.Helper()
	c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`["1","1",%q,"phx_join",{}]`, topic)))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("join %s: %s %v", topic, b, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A subscriber that stops reading is disconnected once its queue exceeds
// max_queue_size; a subscriber that reads gets every message, in order.
func TestSlowConsumerIsDisconnected(t *testing.T) {
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"}}}})
	h, err := NewHub(Config{Rules: rules, MaxQueueSize: 256 << 10, WriteTimeout: 500 * time.Millisecond}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	base := serveHub(t, h) + "/?vsn=2.0.0"
	slow := wsDial(t, base)
	fast := wsDial(t, base)
	wsJoin(t, slow, "room:1")
	wsJoin(t, fast, "room:1")

	// The publisher keeps at most `window` messages ahead of the reading
	// subscriber, so only the subscriber that stops reading can exceed
	// its budget, however slow the machine is. 4,000 messages of 8 KB are
	// more than the kernel buffers of a loopback connection absorb.
	const n, window = 4000, 16
	payload := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 8000))
	var read atomic.Int64
	received := make(chan int, 1)
	go func() {
		count := 0
		fast.SetReadDeadline(time.Now().Add(60 * time.Second))
		for count < n {
			_, b, err := fast.ReadMessage()
			if err != nil {
				t.Errorf("reading subscriber: %v after %d messages", err, count)
				break
			}
			want := fmt.Sprintf(`"seq%d"`, count)
			if !strings.Contains(string(b), want) {
				t.Errorf("message %d out of order: %.40s", count, b)
				break
			}
			count++
			read.Store(int64(count))
		}
		received <- count
	}()
	for i := 0; i < n; i++ {
		for int64(i)-read.Load() > window {
			if t.Failed() {
				t.FailNow()
			}
			time.Sleep(100 * time.Microsecond)
		}
		p := fmt.Sprintf(`{"id":"seq%d","p":%s}`, i, payload)
		if err := h.Broadcast(t.Context(), "room:1", "e", JSONPayload([]byte(p)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-received; got != n {
		t.Fatalf("reading subscriber got %d of %d messages in order", got, n)
	}
	waitFor(t, "slow consumer to be dropped", func() bool { return h.Subscribers("room:1") == 1 && h.Sockets() == 1 })
}

// Disconnect closes every socket of an id with 1001 and leaves the others.
func TestDisconnectByID(t *testing.T) {
	rules := testRules(t, RulesSpec{ID: "has(params.user) ? 'user:' + params.user : ''"})
	h, err := NewHub(Config{Rules: rules}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	base := serveHub(t, h)
	a1 := wsDial(t, base+"/?vsn=2.0.0&user=a")
	a2 := wsDial(t, base+"/?vsn=2.0.0&user=a")
	b := wsDial(t, base+"/?vsn=2.0.0&user=b")
	anon := wsDial(t, base+"/?vsn=2.0.0")
	waitFor(t, "4 sockets", func() bool { return h.Sockets() == 4 })
	if err := h.Disconnect(t.Context(), "user:a"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{a1, a2} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
			t.Fatalf("want close 1001, got %v", err)
		}
	}
	for _, c := range []*websocket.Conn{b, anon} {
		c.WriteMessage(websocket.TextMessage, []byte(`[null,"1","phoenix","heartbeat",{}]`))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, m, err := c.ReadMessage(); err != nil || !strings.Contains(string(m), "phx_reply") {
			t.Fatalf("untouched socket broke: %s %v", m, err)
		}
	}
	waitFor(t, "2 sockets left", func() bool { return h.Sockets() == 2 })
}

// Close shuts every socket with 1001 and refuses new ones.
func TestHubCloseGoesAway(t *testing.T) {
	h, err := NewHub(Config{}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serveHub(t, h)
	c := wsDial(t, base+"/?vsn=2.0.0")
	waitFor(t, "socket", func() bool { return h.Sockets() == 1 })
	h.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
		t.Fatalf("want close 1001, got %v", err)
	}
}
