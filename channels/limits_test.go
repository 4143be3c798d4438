package channels

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rate
		err  bool
	}{
		{in: "20/1s", want: Rate{N: 20, Per: time.Second}},
		{in: "5/s", want: Rate{N: 5, Per: time.Second}},
		{in: "100/m", want: Rate{N: 100, Per: time.Minute}},
		{in: "3/500ms", want: Rate{N: 3, Per: 500 * time.Millisecond}},
		{in: "20", err: true},
		{in: "0/1s", err: true},
		{in: "-1/1s", err: true},
		{in: "x/1s", err: true},
		{in: "5/0s", err: true},
		{in: "5/-1s", err: true},
		{in: "5/fortnight", err: true},
		{in: "", err: true},
	} {
		got, err := ParseRate(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err == nil {
			if back, err := ParseRate(got.String()); err != nil || back != got {
				t.Errorf("%v does not round-trip through String: %v %v", got, back, err)
			}
		}
	}
}

// A bucket lets a burst through, then one event per N/Per as time passes.
func TestBucket(t *testing.T) {
	r := Rate{N: 2, Per: time.Second, Burst: 4}
	var b bucket
	t0 := time.Unix(1000, 0)
	for i := range 4 {
		if !b.allow(r, t0) {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if b.allow(r, t0) {
		t.Fatal("fifth event at once allowed")
	}
	if b.allow(r, t0.Add(400*time.Millisecond)) {
		t.Fatal("allowed after 0.8 tokens refilled")
	}
	if !b.allow(r, t0.Add(500*time.Millisecond)) {
		t.Fatal("refused after a token refilled")
	}
	if b.full(r, t0.Add(time.Second)) {
		t.Fatal("full after 1s, which refills 2 of 4 tokens")
	}
	if !b.full(r, t0.Add(3*time.Second)) {
		t.Fatal("not full after 3s")
	}
	for i := range 4 {
		if !b.allow(r, t0.Add(10*time.Second)) {
			t.Fatalf("after a long pause, event %d of a new burst refused: the bucket overfilled or lost tokens", i+1)
		}
	}
	if b.allow(r, t0.Add(10*time.Second)) {
		t.Fatal("the bucket holds more than its burst")
	}
}

func TestIPCounts(t *testing.T) {
	c := make(ipCounts)
	if !c.take("a", 2) || !c.take("a", 2) {
		t.Fatal("two sockets under a cap of 2 refused")
	}
	if c.take("a", 2) {
		t.Fatal("third socket under a cap of 2 allowed")
	}
	if !c.take("b", 2) {
		t.Fatal("another address refused")
	}
	c.release("a")
	if !c.take("a", 2) {
		t.Fatal("refused after a release")
	}
	c.release("a")
	c.release("a")
	c.release("b")
	if len(c) != 0 {
		t.Fatalf("addresses without sockets are kept: %v", c)
	}
	if !c.take("a", 0) || len(c) != 0 {
		t.Fatal("no cap must count nothing")
	}
}

// The connect-rate table stays bounded while 300,000 distinct addresses
// connect, and an address over its rate is still refused.
func TestConnectRatesBounded(t *testing.T) {
	r := Rate{N: 1, Per: time.Hour} // nothing refills during the test
	var c connectRates
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	now := time.Unix(1000, 0)
	for i := range 300_000 {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		if !c.allow(ip, r, DefaultMaxAddresses, now) {
			t.Fatalf("first connect of %s refused", ip)
		}
	}
	if n := c.len(); n > DefaultMaxAddresses {
		t.Fatalf("the table holds %d addresses, more than %d", n, DefaultMaxAddresses)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 32<<20 {
		t.Fatalf("the table of %d addresses holds %d MiB", c.len(), grown>>20)
	}
	t.Logf("%d addresses remembered, heap %+d KiB", c.len(), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)
	if c.allow("192.0.2.1", r, DefaultMaxAddresses, now) && c.allow("192.0.2.1", r, DefaultMaxAddresses, now) {
		t.Fatal("a second connect of one address within its rate allowed on a full table")
	}
	// Idle addresses are forgotten first: once every bucket refilled, the
	// next sweep empties the table but for the new address.
	later := now.Add(2 * time.Hour)
	c.allow("192.0.2.2", r, DefaultMaxAddresses, later)
	if n := c.len(); n != 1 {
		t.Fatalf("after every address went idle, %d are remembered, want 1", n)
	}
}

// limitsHub serves a hub with lim and a room:* channel that broadcasts
// "msg" (and "typing", limited per event to 2 an hour).
func limitsHub(t *testing.T, lim LimitsConfig) (*Hub, string) {
	t.Helper()
	rules := testRules(t, RulesSpec{
		ID: "has(params.user) ? params.user : null",
		Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"}, HandleIn: []HandleInSpec{
			{Event: "msg", Action: "broadcast"},
			{Event: "typing", Action: "broadcast_from", Limit: "2/1h"},
		}}}})
	h, err := NewHub(Config{Rules: rules, Limits: lim, ClientIP: func(r *http.Request) string {
		if ip := r.Header.Get("X-Test-Client"); ip != "" {
			return ip
		}
		return "127.0.0.1"
	}}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, serveHub(t, h)
}

// readUntilClose reads frames until the socket closes; it returns them and
// the close code (0 if the read ended otherwise).
func readUntilClose(t *testing.T, c *websocket.Conn) (frames []string, code int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return frames, ce.Code
			}
			t.Fatalf("read ended without a close frame: %v", err)
		}
		frames = append(frames, string(b))
	}
}

// A socket over its message limit gets error replies {"reason":"rate
// limited"}; one that keeps going at 3× its limit is closed with 1008.
// Its neighbour in the topic gets every broadcast that was let through,
// and pushes as before.
func TestMessageLimitAndFlood(t *testing.T) {
	h, base := limitsHub(t, LimitsConfig{Messages: Rate{N: 5, Per: time.Hour}})
	abuser := wsDial(t, base+"/?vsn=2.0.0")
	neighbour := wsDial(t, base+"/?vsn=2.0.0")
	wsJoin(t, abuser, "room:1")
	wsJoin(t, neighbour, "room:1")
	// 5 let through, 10 refused (the flood bucket holds (3-1) × 5), the
	// 16th refusal closes; the rest is never read.
	for i := range 30 {
		abuser.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","%d","room:1","msg",{"n":%d}]`, i+2, i))
	}
	frames, code := readUntilClose(t, abuser)
	if code != ClosePolicyViolation {
		t.Fatalf("close code %d, want %d", code, ClosePolicyViolation)
	}
	var oks, limited, broadcasts int
	for _, f := range frames {
		switch {
		case strings.Contains(f, `"phx_reply"`) && strings.Contains(f, `"status":"ok"`):
			oks++
		case strings.Contains(f, `"phx_reply"`) && strings.Contains(f, `{"reason":"rate limited"}`):
			limited++
		case strings.Contains(f, `"msg"`):
			broadcasts++
		default:
			t.Fatalf("unexpected frame %s", f)
		}
	}
	if oks != 5 || broadcasts != 5 || limited != 10 {
		t.Fatalf("abuser got %d ok replies, %d broadcasts, %d rate limited; want 5, 5, 10", oks, broadcasts, limited)
	}
	neighbour.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 5 {
		_, b, err := neighbour.ReadMessage()
		if err != nil || !strings.Contains(string(b), fmt.Sprintf(`{"n":%d}`, i)) {
			t.Fatalf("neighbour's broadcast %d: %s %v", i, b, err)
		}
	}
	neighbour.WriteMessage(websocket.TextMessage, []byte(`["1","9","room:1","msg",{"n":"mine"}]`))
	for got := 0; got < 2; got++ { // its own broadcast and its reply, in either order
		_, b, err := neighbour.ReadMessage()
		if err != nil || !strings.Contains(string(b), `"mine"`) && !strings.Contains(string(b), `"status":"ok"`) {
			t.Fatalf("neighbour after the flood: %s %v", b, err)
		}
	}
	st := h.Stats()
	if st.Refusals[RefusedMessageRate] != 11 || st.Refusals[RefusedFlood] != 1 {
		t.Fatalf("refusals %v: want 11 message_rate (10 answered, 1 closing) and 1 flood", st.Refusals)
	}
}

// A handle_in limit applies to its event only; the join limit to joins.
func TestEventAndJoinLimits(t *testing.T) {
	h, base := limitsHub(t, LimitsConfig{Joins: Rate{N: 2, Per: time.Hour}})
	c := wsDial(t, base+"/?vsn=2.0.0")
	wsJoin(t, c, "room:1")
	wsJoin(t, c, "room:2")
	c.WriteMessage(websocket.TextMessage, []byte(`["3","3","room:3","phx_join",{}]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `{"response":{"reason":"rate limited"},"status":"error"}`) {
		t.Fatalf("third join: %s %v", b, err)
	}
	for i, want := range []string{`"ok"`, `"ok"`, `"rate limited"`} {
		c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","t%d","room:1","typing",{}]`, i))
		if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("typing %d: %s %v, want %s", i, b, err, want)
		}
	}
	// msg has no limit of its own and there is no message limit.
	for i := range 5 {
		c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","m%d","room:1","msg",{}]`, i))
	}
	for got := 0; got < 10; got++ {
		if _, b, err := c.ReadMessage(); err != nil || strings.Contains(string(b), "rate limited") {
			t.Fatalf("msg %d: %s %v", got, b, err)
		}
	}
	if st := h.Stats(); st.Refusals[RefusedJoinRate] != 1 || st.Refusals[RefusedEventRate] != 1 {
		t.Fatalf("refusals %v: want 1 join_rate and 1 event_rate", st.Refusals)
	}
}

// dialStatus dials and returns the handshake's HTTP status.
func dialStatus(t *testing.T, url string, header http.Header) (int, *websocket.Conn) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		return http.StatusSwitchingProtocols, c
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode, nil
}

// max_sockets_per_ip and max_sockets_per_id answer 429 past their cap,
// count each address and id on its own, and free a slot when a socket
// ends.
func TestSocketCaps(t *testing.T) {
	h, base := limitsHub(t, LimitsConfig{MaxSocketsPerIP: 2, MaxSocketsPerID: 1})
	from := func(ip string) http.Header { return http.Header{"X-Test-Client": {ip}} }
	_, a1 := dialStatus(t, base+"/?vsn=2.0.0", from("192.0.2.1"))
	_, a2 := dialStatus(t, base+"/?vsn=2.0.0&user=u1", from("192.0.2.1"))
	if a1 == nil || a2 == nil {
		t.Fatal("the first two sockets of an address refused")
	}
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0", from("192.0.2.1")); st != http.StatusTooManyRequests {
		t.Fatalf("third socket of an address: %d, want 429", st)
	}
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0&user=u1", from("192.0.2.2")); st != http.StatusTooManyRequests {
		t.Fatalf("second socket of an id: %d, want 429", st)
	}
	if st, c := dialStatus(t, base+"/?vsn=2.0.0&user=u2", from("192.0.2.2")); st != http.StatusSwitchingProtocols || c == nil {
		t.Fatalf("another address and id: %d", st)
	}
	a2.Close()
	waitFor(t, "the closed socket to end", func() bool { return h.Sockets() == 2 })
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0&user=u1", from("192.0.2.1")); st != http.StatusSwitchingProtocols {
		t.Fatalf("after a socket of the address and id ended: %d, want 101", st)
	}
	if st := h.Stats(); st.Refusals[RefusedSocketsPerIP] != 1 || st.Refusals[RefusedSocketsPerID] != 1 {
		t.Fatalf("refusals %v", st.Refusals)
	}
	h.mu.Lock()
	counted := len(h.perIP)
	h.mu.Unlock()
	if counted != 2 {
		t.Fatalf("%d addresses counted, want 2", counted)
	}
}

// limit connects per ip answers 429 past the rate, per address.
func TestConnectRateLimit(t *testing.T) {
	h, base := limitsHub(t, LimitsConfig{ConnectsPerIP: Rate{N: 2, Per: time.Hour}})
	from := func(ip string) http.Header { return http.Header{"X-Test-Client": {ip}} }
	for i := range 2 {
		if st, c := dialStatus(t, base+"/?vsn=2.0.0", from("192.0.2.1")); st != http.StatusSwitchingProtocols {
			t.Fatalf("connect %d: %d", i+1, st)
		} else {
			c.Close() // closing frees no connect: the rate counts connects, not sockets
		}
	}
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0", from("192.0.2.1")); st != http.StatusTooManyRequests {
		t.Fatalf("third connect: %d, want 429", st)
	}
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0", from("192.0.2.9")); st != http.StatusSwitchingProtocols {
		t.Fatalf("another address: %d", st)
	}
	if n := h.Stats().Refusals[RefusedConnectRate]; n != 1 {
		t.Fatalf("%d connect_rate refusals, want 1", n)
	}
}

// Pushes that are answered with an error (an unhandled event, a topic not
// joined) count against the message limit too: a client cannot flood the
// server with error replies.
func TestMessageLimitCountsRefusedPushes(t *testing.T) {
	_, base := limitsHub(t, LimitsConfig{Messages: Rate{N: 2, Per: time.Hour}})
	c := wsDial(t, base+"/?vsn=2.0.0")
	wsJoin(t, c, "room:1")
	for i, tc := range []struct{ frame, want string }{
		{`["1","2","room:1","nope",{}]`, `"unhandled event"`},
		{`[null,"3","room:9","msg",{}]`, `"unmatched topic"`},
		{`["1","4","room:1","nope",{}]`, `"rate limited"`},
		{`[null,"5","room:9","msg",{}]`, `"rate limited"`},
	} {
		c.WriteMessage(websocket.TextMessage, []byte(tc.frame))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), tc.want) {
			t.Fatalf("push %d: %s %v, want %s", i, b, err, tc.want)
		}
	}
}
