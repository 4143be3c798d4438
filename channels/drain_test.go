package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/webhook"
)

func TestDrainBatchSize(t *testing.T) {
	def := DrainConfig{}.withDefaults()
	tests := []struct {
		d    DrainConfig
		n    int
		want int
	}{
		{def, 0, 10000},
		{def, 5, 10000},
		{def, 140000, 10000},  // 14 batches of 10,000 fit in 30 s at one per 2 s
		{def, 1000000, 71429}, // 1,000,000 in 14 batches
		{DrainConfig{Batch: 2, Interval: time.Second, Timeout: 5 * time.Second}, 9, 3}, // 3 batches in 5 s
		{DrainConfig{Batch: 2, Interval: time.Second, Timeout: time.Second}, 9, 9},     // no time for a second batch
	}
	for _, tt := range tests {
		if got := tt.d.batchSize(tt.n); got != tt.want {
			t.Errorf("%+v.batchSize(%d) = %d, want %d", tt.d, tt.n, got, tt.want)
		}
	}
}

// countingPresence is the in-memory presence manager counting Untrack
// calls, so that a test can see every drained socket's presence leave.
type countingPresence struct {
	*pubsub.MemoryPresence
	untracked atomic.Int32
}

func (p *countingPresence) Untrack(ctx context.Context, topic, id string) error {
	p.untracked.Add(1)
	return p.MemoryPresence.Untrack(ctx, topic, id)
}

// leaveRecorder is a real HTTP app receiving leave webhooks.
type leaveRecorder struct {
	mu      sync.Mutex
	reasons []string
	url     string
}

func newLeaveRecorder(t *testing.T) *leaveRecorder {
	rec := &leaveRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var leave struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(body, &leave); err != nil {
			t.Errorf("leave webhook body %q: %v", body, err)
		}
		rec.mu.Lock()
		rec.reasons = append(rec.reasons, leave.Reason)
		rec.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL + "/leave"
	return rec
}

func (rec *leaveRecorder) got() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reasons)
}

// Close drains: batches of drain.batch, one per drain.interval, every
// socket closed with 1001, new sockets refused meanwhile, and a leave
// webhook (reason shutdown) and a presence leave for each drained socket.
func TestDrainClosesInBatches(t *testing.T) {
	const sockets, batch, interval = 12, 4, 300 * time.Millisecond
	leaves := newLeaveRecorder(t)
	hooks := webhook.New(webhook.Config{})
	presence := &countingPresence{MemoryPresence: pubsub.NewMemoryPresence()}
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern:  "room:*",
		Join:     &GateSpec{Action: "allow"},
		Leave:    &LeaveSpec{Upstream: leaves.url},
		Presence: &PresenceSpec{},
	}}})
	h, err := NewHub(Config{Rules: rules, Webhooks: hooks, Drain: DrainConfig{Batch: batch, Interval: interval, Timeout: 20 * time.Second}}, nil, presence)
	if err != nil {
		t.Fatal(err)
	}
	url := serveHub(t, h)
	conns := make([]*websocket.Conn, sockets)
	for i := range conns {
		conns[i] = wsDial(t, url+"/websocket?vsn=2.0.0")
		wsJoin(t, conns[i], "room:lobby")
	}

	type closed struct {
		at   time.Time
		code int
	}
	ends := make(chan closed, sockets)
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(time.Time{})
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					code := -1
					if ce, ok := err.(*websocket.CloseError); ok {
						code = ce.Code
					}
					ends <- closed{time.Now(), code}
					return
				}
			}
		}()
	}
	start := time.Now()
	closeDone := make(chan error, 1)
	go func() { closeDone <- h.Close() }()

	var times []time.Time
	for range sockets {
		e := <-ends
		if e.code != CloseGoingAway {
			t.Errorf("socket closed with %d, want 1001", e.code)
		}
		times = append(times, e.at)
		if len(times) == 1 {
			// The drain is under way: a new socket is refused.
			_, resp, err := websocket.DefaultDialer.Dial(url+"/websocket?vsn=2.0.0", nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("dial during the drain: %v, %v; want 503", resp, err)
			}
		}
	}
	if err := <-closeDone; err != nil {
		t.Fatal(err)
	}
	// Batch k cannot be sent before k intervals have passed; how soon a
	// client reads its close does not matter.
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for k := 1; k < sockets/batch; k++ {
		if first := times[k*batch]; first.Sub(start) < time.Duration(k)*interval {
			t.Errorf("socket %d closed %v after the drain began, before batch %d was due (%v)", k*batch+1, first.Sub(start), k+1, time.Duration(k)*interval)
		}
	}
	if took := time.Since(start); took < time.Duration(sockets/batch-1)*interval {
		t.Errorf("Close returned after %v, before the last batch was due", took)
	}
	hooks.CloseWithin(10 * time.Second) // delivers every queued leave
	if got := leaves.got(); len(got) != sockets || slices.ContainsFunc(got, func(r string) bool { return r != LeaveReasonShutdown }) {
		t.Errorf("leave webhooks = %v, want %d with reason %q", got, sockets, LeaveReasonShutdown)
	}
	if n := presence.untracked.Load(); n != sockets {
		t.Errorf("presence leaves = %d, want %d", n, sockets)
	}
}

// Leave webhooks of a drain wait for room in the webhook queue instead of
// being dropped: with a queue of 2, all 20 drained sockets' leaves arrive.
func TestDrainDeliversEveryLeave(t *testing.T) {
	const sockets = 20
	leaves := newLeaveRecorder(t)
	hooks := webhook.New(webhook.Config{QueueSize: 2, NotifyWorkers: 1})
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Join:    &GateSpec{Action: "allow"},
		Leave:   &LeaveSpec{Upstream: leaves.url},
	}}})
	h, err := NewHub(Config{Rules: rules, Webhooks: hooks}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveHub(t, h)
	for i := range sockets {
		c := wsDial(t, url+"/websocket?vsn=2.0.0")
		wsJoin(t, c, fmt.Sprintf("room:%d", i))
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	hooks.CloseWithin(10 * time.Second)
	if got := leaves.got(); len(got) != sockets {
		t.Errorf("%d leave webhooks arrived, want %d", len(got), sockets)
	}
	if n := hooks.Stats().Dropped; n != 0 {
		t.Errorf("%d notifications dropped", n)
	}
}

// A peer that never answers the close is cut at the drain deadline.
func TestDrainCutsSilentPeersAtTimeout(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	h, err := NewHub(Config{Logger: zap.New(core), Drain: DrainConfig{Timeout: 200 * time.Millisecond}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveHub(t, h)
	c := wsDial(t, url+"/websocket?vsn=2.0.0") // never reads: the close is not answered
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("cutting them").Len() != 1 {
		t.Errorf("no log of sockets cut at the deadline: %v", logs.All())
	}
	// The connection is gone: after the close frame, reading ends.
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) // a bound, not a wait
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "timeout") {
			t.Fatalf("connection still open after the drain: %v", err)
		}
		break
	}
}
