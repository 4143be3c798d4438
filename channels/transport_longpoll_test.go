package channels

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/webhook"
)

// lpHub serves a hub with LongPoll at /socket/longpoll and WebSocket at
// /socket/websocket, and returns the server's base URL.
func lpHub(t *testing.T, cfg Config) (*Hub, string) {
	t.Helper()
	if cfg.Rules == nil {
		cfg.Rules = testRules(t, RulesSpec{
			ID: "has(params.user) ? 'user:' + params.user : ''",
			Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"},
				HandleIn: []HandleInSpec{{Event: "new_msg", Action: "broadcast"}}}},
		})
	}
	h, err := NewHub(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/socket/longpoll":
			h.ServeLongPoll(w, r)
		case "/socket/websocket":
			if err := h.ServeWebSocket(w, r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// lpAnswer is a LongPoll answer body.
type lpAnswer struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
	Reason   string   `json:"reason"`
}

// lpDo makes one request and decodes its answer; it fails the test on
// anything but the HTTP status want.
func lpDo(t *testing.T, method, url string, hdr http.Header, body string, want int) lpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	var a lpAnswer
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, url, b, err)
		}
	}
	if len(b) > 0 && want != http.StatusNotFound && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", method, url, resp.Header.Get("Cache-Control"))
	}
	return a
}

var ndjson = http.Header{"Content-Type": {"application/x-ndjson"}}

// lpOpenSession opens a session with query q and returns its URL (token
// last, as phoenix.js ≤ 1.8.16 sends it).
func lpOpenSession(t *testing.T, base, q string) string {
	t.Helper()
	a := lpDo(t, "GET", base+"/socket/longpoll?"+q+"&", nil, "", 200)
	if a.Status != 410 || a.Token == "" || a.Messages == nil || len(a.Messages) != 0 {
		t.Fatalf("open: %+v, want status 410, a token and no messages", a)
	}
	return base + "/socket/longpoll?" + q + "&token=" + a.Token
}

// lpPollUntil polls until the collected messages number at least n.
func lpPollUntil(t *testing.T, url string, n int) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(10 * time.Second); len(got) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d: %q", len(got), n, got)
		}
		a := lpDo(t, "GET", url, nil, "", 200)
		switch a.Status {
		case 200:
			got = append(got, a.Messages...)
		case 204:
		default:
			t.Fatalf("poll: %+v", a)
		}
	}
	return got
}

// The exchange of protocol §5.5: a join, an ndjson batch with a stale
// entry, a base64 binary push, all answered in one poll, oldest first.
func TestLongPollBatchExchange(t *testing.T) {
	_, base := lpHub(t, Config{LongPoll: LongPollConfig{Window: 200 * time.Millisecond}})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	if a := lpDo(t, "POST", url, http.Header{"Content-Type": {"application/json"}}, `["1","1","room:lobby","phx_join",{}]`, 200); a.Status != 200 {
		t.Fatalf("join: %+v", a)
	}
	batch := `["1","2","room:lobby","new_msg",{"body":"hi1"}]` + "\n" +
		`["1","3","room:lobby","new_msg",{"body":"hi2"}]` + "\r\n" +
		`["stale","stale","room:lobby","new_msg",{"body":"stale"}]`
	if a := lpDo(t, "POST", url, ndjson, batch, 200); a.Status != 200 {
		t.Fatalf("batch: %+v", a)
	}
	// A binary push of an unhandled event: the reply names it.
	bin := []byte{0, 1, 1, 10, 3, '1', '4'}
	bin = append(bin, "room:lobby"...)
	bin = append(bin, "bin"...)
	bin = append(bin, 1, 2, 3)
	line := base64.StdEncoding.EncodeToString(bin)
	if a := lpDo(t, "POST", url, ndjson, line+"\n"+`["1","5","room:lobby","new_msg",{"body":"hi3"}]`, 200); a.Status != 200 {
		t.Fatalf("binary batch: %+v", a)
	}
	want := []string{
		`["1","1","room:lobby","phx_reply",{"response":{},"status":"ok"}]`,
		`[null,null,"room:lobby","new_msg",{"body":"hi1"}]`,
		`["1","2","room:lobby","phx_reply",{"response":{},"status":"ok"}]`,
		`[null,null,"room:lobby","new_msg",{"body":"hi2"}]`,
		`["1","3","room:lobby","phx_reply",{"response":{},"status":"ok"}]`,
		`["1","4","room:lobby","phx_reply",{"response":{"reason":"unhandled event"},"status":"error"}]`,
		`[null,null,"room:lobby","new_msg",{"body":"hi3"}]`,
		`["1","5","room:lobby","phx_reply",{"response":{},"status":"ok"}]`,
	}
	got := lpPollUntil(t, url, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages:\n got %q\nwant %q", got, want)
	}
	// Nothing more: the poll waits the window and answers 204.
	if a := lpDo(t, "GET", url, nil, "", 200); a.Status != 204 || len(a.Messages) != 0 || a.Token == "" {
		t.Fatalf("idle poll: %+v, want 204 with the token", a)
	}
}

// Broadcasts reach WebSocket and LongPoll subscribers of one topic alike.
func TestLongPollMixedWithWebSocket(t *testing.T) {
	_, base := lpHub(t, Config{})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	lpDo(t, "POST", url, ndjson, `["1","1","room:mix","phx_join",{}]`, 200)
	ws := wsDial(t, "ws"+strings.TrimPrefix(base, "http")+"/socket/websocket?vsn=2.0.0")
	wsJoin(t, ws, "room:mix")
	ws.WriteMessage(1, []byte(`["1","2","room:mix","new_msg",{"from":"ws"}]`))
	lpDo(t, "POST", url, ndjson, `["1","2","room:mix","new_msg",{"from":"lp"}]`, 200)
	got := lpPollUntil(t, url, 4)
	if !strings.Contains(strings.Join(got, "\n"), `{"from":"ws"}`) || !strings.Contains(strings.Join(got, "\n"), `{"from":"lp"}`) {
		t.Fatalf("longpoll got %q, want both broadcasts", got)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("websocket read: %v (saw %v)", err, seen)
		}
		if s := string(b); strings.Contains(s, `"new_msg"`) {
			seen[s] = true
		}
	}
}

// Every refusal of §5.3 and of the limits, and that none of them harms
// the session.
func TestLongPollRefusals(t *testing.T) {
	h, base := lpHub(t, Config{MaxFrameSize: 1000, LongPoll: LongPollConfig{Window: 100 * time.Millisecond}})
	url := lpOpenSession(t, base, "vsn=2.0.0&user=7")
	lpDo(t, "POST", url, ndjson, `["1","1","room:r","phx_join",{}]`, 200)
	tok := url[strings.LastIndex(url, "token=")+len("token="):]

	t.Run("version mismatch", func(t *testing.T) {
		if a := lpDo(t, "GET", base+"/socket/longpoll?vsn=123.1.1", nil, "", 200); a.Status != 403 || a.Token != "" {
			t.Fatalf("%+v, want 403", a)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		lpDo(t, "PUT", url, nil, "", 400)
	})
	t.Run("preflight", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", url, nil)
		req.Header.Set("Access-Control-Request-Headers", "x-phoenix-authtoken")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Headers") != "x-phoenix-authtoken" ||
			resp.Header.Get("Access-Control-Allow-Methods") != "get, post, options" || resp.Header.Get("Access-Control-Max-Age") != "3600" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("forged token in the header", func(t *testing.T) {
		forged := tok[:len(tok)-2] + "xx"
		if a := lpDo(t, "POST", base+"/socket/longpoll?vsn=2.0.0", http.Header{"X-Phoenix-Longpoll-Token": {forged}}, `["1","9","room:r","new_msg",{}]`, 200); a.Status != 410 {
			t.Fatalf("%+v, want 410", a)
		}
		if a := lpDo(t, "GET", base+"/socket/longpoll?vsn=2.0.0", http.Header{"X-Phoenix-Longpoll-Token": {forged}}, "", 200); a.Status != 410 || a.Token != "" {
			t.Fatalf("%+v, want 410 without a session", a)
		}
	})
	t.Run("another session's id under our signature is not enough", func(t *testing.T) {
		node, _, _ := verifyToken(h.lp.key, tok)
		other := signToken([]byte("another key"), node, newSessionID())
		if a := lpDo(t, "POST", base+"/socket/longpoll?vsn=2.0.0&token="+other, ndjson, `["1","9","room:r","new_msg",{}]`, 200); a.Status != 410 {
			t.Fatalf("%+v, want 410", a)
		}
		unknown := signToken(h.lp.key, node, newSessionID())
		if a := lpDo(t, "GET", base+"/socket/longpoll?vsn=2.0.0&token="+unknown, nil, "", 200); a.Status != 410 || a.Token != "" {
			t.Fatalf("%+v, want 410 for a session that does not exist", a)
		}
	})
	t.Run("the header wins over a stale query token", func(t *testing.T) {
		if a := lpDo(t, "POST", base+"/socket/longpoll?vsn=2.0.0&token=bogus", http.Header{"X-Phoenix-Longpoll-Token": {tok}, "Content-Type": {"application/x-ndjson"}}, `["1","2","room:r","new_msg",{"n":1}]`, 200); a.Status != 200 {
			t.Fatalf("%+v, want 200", a)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		body := strings.Repeat(`["1","3","room:r","new_msg",{}]`+"\n", 100*1000/30+10)
		if a := lpDo(t, "POST", url, ndjson, body, 413); a.Status != 413 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("oversized line", func(t *testing.T) {
		a := lpDo(t, "POST", url, ndjson, `["1","3","room:r","new_msg",{"x":"`+strings.Repeat("x", 1000)+`"}]`, 400)
		if !strings.Contains(a.Reason, "max_frame_size") {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("bad ndjson: nothing of the batch is handled", func(t *testing.T) {
		a := lpDo(t, "POST", url, ndjson, `["1","4","room:r","new_msg",{"bad":1}]`+"\n!!not base64", 400)
		if !strings.Contains(a.Reason, "line 2") {
			t.Fatalf("%+v", a)
		}
		a = lpDo(t, "POST", url, ndjson, `["1","4","room:r","new_msg",{"bad":2}]`+"\n"+`["1","5","room:r"`, 400)
		if !strings.Contains(a.Reason, "message 2") {
			t.Fatalf("%+v", a)
		}
	})
	// After every refusal the session still works, and received nothing
	// of the refused batches.
	lpDo(t, "POST", url, ndjson, `["1","6","room:r","new_msg",{"after":true}]`, 200)
	var all []string
	for !strings.Contains(strings.Join(all, ""), `"after":true`) {
		all = append(all, lpPollUntil(t, url, 1)...)
	}
	if s := strings.Join(all, "\n"); strings.Contains(s, `"bad"`) {
		t.Fatalf("a refused batch was handled: %q", all)
	}
}

// Lines after the first 100 of a batch are ignored, as Phoenix does.
func TestLongPollBatchCap(t *testing.T) {
	_, base := lpHub(t, Config{})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	lpDo(t, "POST", url, ndjson, `["1","1","room:cap","phx_join",{}]`, 200)
	var lines []string
	for i := 1; i <= 101; i++ {
		lines = append(lines, fmt.Sprintf(`["1","%d","room:cap","new_msg",{"body":"msg%d"}]`, i+1, i))
	}
	if a := lpDo(t, "POST", url, ndjson, strings.Join(lines, "\n"), 200); a.Status != 200 {
		t.Fatalf("%+v", a)
	}
	got := lpPollUntil(t, url, 1+200)
	var bodies []string
	for _, m := range got {
		if strings.Contains(m, `"new_msg"`) {
			bodies = append(bodies, m)
		}
	}
	if len(bodies) != 100 || !strings.Contains(bodies[99], `"msg100"`) {
		t.Fatalf("%d broadcasts, last %q; want msg1…msg100", len(bodies), bodies[len(bodies)-1])
	}
}

// A session that stops polling expires after 1.5 windows: its channels
// leave, and its token answers 410.
func TestLongPollSessionExpires(t *testing.T) {
	h, base := lpHub(t, Config{LongPoll: LongPollConfig{Window: 100 * time.Millisecond}})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	lpDo(t, "POST", url, ndjson, `["1","1","room:exp","phx_join",{}]`, 200)
	waitFor(t, "the session to expire", func() bool { return h.Subscribers("room:exp") == 0 && h.Sockets() == 0 })
	if a := lpDo(t, "POST", url, ndjson, `["1","2","room:exp","new_msg",{}]`, 200); a.Status != 410 {
		t.Fatalf("POST after expiry: %+v, want 410", a)
	}
	if a := lpDo(t, "GET", url, nil, "", 200); a.Status != 410 {
		t.Fatalf("GET after expiry: %+v, want 410", a)
	}
	if n := h.lp.count(); n != 0 {
		t.Fatalf("%d sessions left in the table", n)
	}
}

// A disconnect by socket id ends the session: the waiting poll answers
// 410, and so does every later request.
func TestLongPollDisconnectByID(t *testing.T) {
	h, base := lpHub(t, Config{})
	url := lpOpenSession(t, base, "vsn=2.0.0&user=456")
	lpDo(t, "POST", url, ndjson, `["1","1","room:d1","phx_join",{}]`+"\n"+`["2","2","room:d2","phx_join",{}]`, 200)
	lpPollUntil(t, url, 2)
	done := make(chan lpAnswer)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		var a lpAnswer
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
		}
		done <- a
	}()
	waitFor(t, "the poll to wait", func() bool {
		ss := h.lp.get(strings.Split(url[strings.LastIndex(url, "token=")+6:], ".")[1])
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.wake != nil
	})
	if err := h.Disconnect(t.Context(), "user:456"); err != nil {
		t.Fatal(err)
	}
	if a := <-done; a.Status != 410 {
		t.Fatalf("waiting poll: %+v, want 410", a)
	}
	waitFor(t, "the channels to leave", func() bool { return h.Subscribers("room:d1")+h.Subscribers("room:d2") == 0 })
	if a := lpDo(t, "POST", url, ndjson, `["1","3","room:d1","new_msg",{}]`, 200); a.Status != 410 {
		t.Fatalf("POST after the disconnect: %+v", a)
	}
}

// A session that buffers more than max_queue_size is closed.
func TestLongPollSlowSessionClosed(t *testing.T) {
	h, base := lpHub(t, Config{MaxQueueSize: 4096})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	lpDo(t, "POST", url, ndjson, `["1","1","room:slow","phx_join",{}]`, 200)
	waitFor(t, "the join", func() bool { return h.Subscribers("room:slow") == 1 })
	for i := 0; i < 100 && h.Subscribers("room:slow") == 1; i++ {
		h.Broadcast(t.Context(), "room:slow", "e", JSONPayload([]byte(`{"x":"`+strings.Repeat("y", 200)+`"}`)), 0)
	}
	waitFor(t, "the slow session to close", func() bool { return h.Subscribers("room:slow") == 0 })
	if st := h.Stats(); st.SlowConsumers != 1 {
		t.Fatalf("stats %+v, want one slow consumer", st)
	}
	// What was buffered is still handed out once, then the session is gone.
	if a := lpDo(t, "GET", url, nil, "", 200); a.Status != 200 || len(a.Messages) == 0 {
		t.Fatalf("first poll after the close: status %d, %d messages", a.Status, len(a.Messages))
	}
	if a := lpDo(t, "GET", url, nil, "", 200); a.Status != 410 {
		t.Fatalf("second poll: %+v, want 410", a)
	}
}

// An app's own "token" connect param is a connect param, not a session
// token; the session token phoenix.js appends last wins.
func TestLongPollAppTokenParam(t *testing.T) {
	rules := testRules(t, RulesSpec{Connect: &GateSpec{Action: "if", Expr: "params.token == 'app-secret'"},
		Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"}}}})
	_, base := lpHub(t, Config{Rules: rules})
	if a := lpDo(t, "GET", base+"/socket/longpoll?token=wrong&vsn=2.0.0&", nil, "", 200); a.Status != 403 {
		t.Fatalf("wrong app token: %+v, want 403", a)
	}
	url := lpOpenSession(t, base, "token=app-secret&vsn=2.0.0")
	if a := lpDo(t, "POST", url, ndjson, `["1","1","room:t","phx_join",{}]`, 200); a.Status != 200 {
		t.Fatalf("%+v", a)
	}
	if got := lpPollUntil(t, url, 1); !strings.Contains(got[0], `"ok"`) {
		t.Fatalf("%q", got)
	}
}

// LongPoll off answers 404.
func TestLongPollOff(t *testing.T) {
	_, base := lpHub(t, Config{LongPoll: LongPollConfig{Off: true}})
	lpDo(t, "GET", base+"/socket/longpoll?vsn=2.0.0", nil, "", 404)
}

// A POST whose messages take longer than the window to handle answers
// {"status":408}: the message being handled when the window passed is
// finished, the ones after it are not handled, and the session lives on.
func TestLongPollPublishWindowPassed(t *testing.T) {
	const window = 100 * time.Millisecond
	joins := make(chan string, 4)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Topic string `json:"topic"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		joins <- body.Topic
		if body.Topic == "slow:1" {
			// The decision outlasts the POST's window; a sleep is the
			// condition under test here (load only makes it longer).
			time.Sleep(window + 50*time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(app.Close)
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{
		{Pattern: "slow:*", Join: &GateSpec{Action: "upstream", Upstream: app.URL + "/join"}},
		{Pattern: "room:*", Join: &GateSpec{Action: "allow"}},
	}})
	h, base := lpHub(t, Config{Rules: rules, Webhooks: webhook.New(webhook.Config{}), LongPoll: LongPollConfig{Window: window}})
	url := lpOpenSession(t, base, "vsn=2.0.0")
	batch := `["1","1","slow:1","phx_join",{}]` + "\n" + `["2","2","room:after","phx_join",{}]`
	if a := lpDo(t, "POST", url, ndjson, batch, 200); a.Status != 408 {
		t.Fatalf("POST outlasting the window: %+v, want 408", a)
	}
	if got := <-joins; got != "slow:1" {
		t.Fatalf("join webhook for %q, want slow:1", got)
	}
	if n := h.Subscribers("room:after"); n != 0 {
		t.Fatalf("the message after the window was handled: %d subscribers", n)
	}
	// The slow join itself completed and the session still works.
	msgs := lpPollUntil(t, url, 1)
	if !strings.Contains(msgs[0], `"slow:1","phx_reply",{"response":{},"status":"ok"}`) {
		t.Fatalf("slow join reply %q", msgs[0])
	}
	if a := lpDo(t, "POST", url, ndjson, `["2","3","room:after","phx_join",{}]`, 200); a.Status != 200 {
		t.Fatalf("POST after the 408: %+v", a)
	}
	waitFor(t, "the later join", func() bool { return h.Subscribers("room:after") == 1 })
}

// A drain ends LongPoll sessions like WebSocket sockets: a waiting poll
// answers 410 (phoenix.js reconnects, elsewhere), each session's channels
// leave with reason shutdown, new sessions are refused meanwhile, and no
// session is left in the table.
func TestDrainEndsLongPollSessions(t *testing.T) {
	const sessions = 3
	leaves := newLeaveRecorder(t)
	hooks := webhook.New(webhook.Config{})
	t.Cleanup(hooks.Close)
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Join:    &GateSpec{Action: "allow"},
		Leave:   &LeaveSpec{Upstream: leaves.url},
	}}})
	h, base := lpHub(t, Config{Rules: rules, Webhooks: hooks, Drain: DrainConfig{Batch: 1, Interval: 50 * time.Millisecond, Timeout: 10 * time.Second}})
	urls := make([]string, sessions)
	for i := range urls {
		urls[i] = lpOpenSession(t, base, "vsn=2.0.0")
		lpDo(t, "POST", urls[i], ndjson, `["1","1","room:drain","phx_join",{}]`, 200)
		lpPollUntil(t, urls[i], 1) // the join reply
	}
	polls := make(chan lpAnswer, sessions)
	for _, url := range urls {
		go func() {
			resp, err := http.Get(url)
			var a lpAnswer
			if err == nil {
				json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
			}
			polls <- a
		}()
	}
	waitFor(t, "every poll to wait", func() bool {
		n := 0
		for _, url := range urls {
			ss := h.lp.get(strings.Split(url[strings.LastIndex(url, "token=")+6:], ".")[1])
			ss.mu.Lock()
			if ss.wake != nil {
				n++
			}
			ss.mu.Unlock()
		}
		return n == sessions
	})
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	first := <-polls
	if first.Status != 410 {
		t.Fatalf("waiting poll during the drain: %+v, want 410", first)
	}
	// The drain is under way: a new session is refused.
	if a := lpDo(t, "GET", base+"/socket/longpoll?vsn=2.0.0", nil, "", http.StatusServiceUnavailable); a.Status != 500 {
		t.Errorf("opening a session during the drain: %+v, want status 500", a)
	}
	for range sessions - 1 {
		if a := <-polls; a.Status != 410 {
			t.Errorf("waiting poll during the drain: %+v, want 410", a)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	hooks.CloseWithin(10 * time.Second) // delivers every queued leave
	if got := leaves.got(); len(got) != sessions || slices.ContainsFunc(got, func(r string) bool { return r != LeaveReasonShutdown }) {
		t.Errorf("leave webhooks = %v, want %d with reason %q", got, sessions, LeaveReasonShutdown)
	}
	waitFor(t, "the session table to empty", func() bool { return h.lp.count() == 0 })
}

// A session that is opened and never polled again expires on its own
// timer goroutine; the timer is set under the session's lock, so its first
// firing (which may come before AfterFunc returns) reads it safely. Under
// -race this failed while the timer was assigned outside the lock (seen in
// TestChaosRedis on a loaded machine).
func TestLongPollExpiryOfANeverPolledSession(t *testing.T) {
	h, base := lpHub(t, Config{LongPoll: LongPollConfig{Window: 20 * time.Millisecond}})
	for range 20 {
		lpOpenSession(t, base, "vsn=2.0.0")
	}
	waitFor(t, "every session to expire", func() bool { return h.Sockets() == 0 && h.lp.count() == 0 })
}
