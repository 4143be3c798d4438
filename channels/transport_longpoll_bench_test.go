package channels

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// benchLPSubscriber is a subscription whose transport is a LongPoll
// session that nobody polls (the benchmark takes its frames).
func benchLPSubscriber(h *Hub, topic string) (*subscription, *lpSession) {
	s := &Socket{hub: h, ser: V2}
	ss := &lpSession{id: newSessionID(), sock: s, window: time.Minute, limit: 1 << 30}
	s.t = ss
	sub := &subscription{id: h.nextID.Add(1), sock: s, topic: topic}
	h.topics.add(sub, func() {})
	return sub, ss
}

// BenchmarkLongPollDeliver fans one broker message out to N LongPoll
// sessions and builds each session's poll answer (the JSON body with the
// frames as strings) every perPoll broadcasts: the server's work per
// delivery apart from the HTTP exchange itself. Compare with
// BenchmarkFanoutDeliver, which only queues (the WebSocket write is a
// writev of frames already on the wire).
func BenchmarkLongPollDeliver(b *testing.B) {
	for _, perPoll := range []int{1, 10} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("subs=%d/per_poll=%d", n, perPoll), func(b *testing.B) {
				h := newTestHub(b)
				sessions := make([]*lpSession, n)
				for i := range sessions {
					_, sessions[i] = benchLPSubscriber(h, "room:big")
				}
				m := &pubsub.Message{Topic: "room:big", Event: "e", Payload: []byte(`{"body":"hello","ts":1234567890}`), Node: h.node}
				tok := signToken(h.lp.key, h.node, newSessionID())
				var buf []byte
				poll := func() {
					for _, ss := range sessions {
						ss.mu.Lock()
						frames := ss.buf
						ss.buf, ss.bufBytes = frames[:0], 0
						ss.mu.Unlock()
						buf = appendLPMessages(buf[:0], frames, 200, tok)
						clear(frames)
					}
				}
				b.ReportAllocs()
				iters := 0
				for b.Loop() {
					h.deliver(m)
					iters++
					if iters%perPoll == 0 {
						poll()
					}
				}
				// With fewer iterations than perPoll (-benchtime 1x in CI)
				// the loop never polled: take the frames now, untimed, so
				// the answer is still built and checked.
				if iters%perPoll != 0 {
					poll()
				}
				if len(buf) == 0 {
					b.Fatal("no poll answer built")
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*n), "ns/delivery")
			})
		}
	}
}

// BenchmarkLongPollIdleSession opens sessions through ServeLongPoll and
// reports the heap each one holds while idle (no poll in flight):
// socket, session, expiry timer, table entries.
func BenchmarkLongPollIdleSession(b *testing.B) {
	const n = 5000
	for b.Loop() {
		h, err := NewHub(Config{}, pubsub.NewMemory(), nil)
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			w := httptest.NewRecorder()
			h.ServeLongPoll(w, httptest.NewRequest(http.MethodGet, "/socket/longpoll?vsn=2.0.0", nil))
			if w.Code != 200 {
				b.Fatalf("open: %d", w.Code)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := h.lp.count(); got != n {
			b.Fatalf("%d sessions open, want %d", got, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/session")
		h.Close()
	}
}
