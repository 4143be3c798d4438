package webhook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a settable clock for signatures and circuit cool-downs.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1700000000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestClient returns a client closed at the end of the test, with its
// logs observed.
func newTestClient(t *testing.T, cfg Config) (*Client, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	cfg.Logger = zap.New(core)
	w := New(cfg)
	t.Cleanup(w.Close)
	return w, logs
}

// newTestServer starts a loopback server closed at the end of the test.
func newTestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections() // unblocks handlers waiting on a gate
		srv.Close()
	})
	return srv
}

// gate blocks handlers until opened; it opens at the end of the test,
// before the server closes.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or the request is abandoned. It reads
// the body first: the server notices a closed connection only after that.
func (g *gate) wait(r *http.Request) {
	io.Copy(io.Discard, r.Body)
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// countLogs returns how many entries have message msg.
func countLogs(logs *observer.ObservedLogs, msg string) int {
	return logs.FilterMessage(msg).Len()
}

type receivedRequest struct {
	method string
	header http.Header
	body   string
}

func TestWebhookCallHeadersAndSignature(t *testing.T) {
	tests := []struct {
		name   string
		secret string
	}{
		{"signed", "whsec_42"},
		{"unsigned", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan receivedRequest, 1)
			srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- receivedRequest{r.Method, r.Header.Clone(), string(b)}
				rw.Header().Set("Content-Type", "application/json")
				io.WriteString(rw, `{"status":"ok","id":"user_socket:42"}`)
			})
			clock := newFakeClock()
			w, _ := newTestClient(t, Config{Secret: tt.secret, Now: clock.Now})
			body := []byte(`{"socket":{"id":null},"params":{"token":"abc"}}`)

			resp, err := w.Call(context.Background(), srv.URL+"/socket/connect", "connect", body)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if resp.Status != 200 || string(resp.Body) != `{"status":"ok","id":"user_socket:42"}` {
				t.Fatalf("response = %d %q", resp.Status, resp.Body)
			}
			if resp.Latency <= 0 {
				t.Fatalf("latency = %v", resp.Latency)
			}
			req := <-got
			if req.method != http.MethodPost || req.body != string(body) {
				t.Fatalf("server got %s %q", req.method, req.body)
			}
			want := map[string]string{
				"Content-Type":     "application/json",
				"X-Channels-Event": "connect",
				"User-Agent":       "caddy-channels",
				"Content-Length":   strconv.Itoa(len(body)),
				"Accept-Encoding":  "",
			}
			for k, v := range want {
				if g := req.header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
			sig := req.header.Get("X-Channels-Signature")
			if tt.secret == "" {
				if _, ok := req.header["X-Channels-Signature"]; ok {
					t.Fatalf("unsigned call carries a signature %q", sig)
				}
				return
			}
			// Recompute independently: the timestamp is the fake clock's.
			wantSig := "t=1700000000,v1=" + hmacHex(tt.secret, "1700000000."+string(body))
			if sig != wantSig {
				t.Fatalf("signature = %q, want %q", sig, wantSig)
			}
			if err := Verify(tt.secret, sig, []byte(req.body), clock.Now(), time.Minute); err != nil {
				t.Fatalf("server-side verification: %v", err)
			}
			if err := Verify("wrong", sig, []byte(req.body), clock.Now(), time.Minute); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("verification with a wrong secret = %v", err)
			}
		})
	}
}

func TestWebhookCallReturnsAnyStatus(t *testing.T) {
	var otherHits atomic.Int32
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/other" {
			otherHits.Add(1)
			return
		}
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if code >= 300 && code < 400 {
			rw.Header().Set("Location", "/other")
		}
		rw.WriteHeader(code)
		if code != http.StatusNoContent {
			fmt.Fprintf(rw, "body %d", code)
		}
	})
	w, _ := newTestClient(t, Config{BreakerThreshold: 100})
	tests := []struct {
		status int
		body   string
	}{
		{200, "body 200"},
		{204, ""},
		{301, "body 301"},
		{302, "body 302"},
		{307, "body 307"},
		{400, "body 400"},
		{401, "body 401"},
		{403, "body 403"},
		{404, "body 404"},
		{500, "body 500"},
		{503, "body 503"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			resp, err := w.Call(context.Background(), srv.URL+"/"+strconv.Itoa(tt.status), "join", []byte(`{}`))
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if resp.Status != tt.status || string(resp.Body) != tt.body {
				t.Fatalf("response = %d %q, want %d %q", resp.Status, resp.Body, tt.status, tt.body)
			}
			if tt.body == "" && resp.Body != nil {
				t.Fatalf("empty body is %#v, want nil", resp.Body)
			}
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
	st := w.Stats()
	if st.Calls != uint64(len(tests)) || st.Failures != 2 || st.BreakerOpens != 0 {
		t.Fatalf("stats = %+v, want %d calls and the 2 5xx as failures", st, len(tests))
	}
}

func TestWebhookCallTimeout(t *testing.T) {
	g := newGate(t)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) { g.wait(r) })
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration // caller deadline; 0 = none
	}{
		{"config timeout", 50 * time.Millisecond, 0},
		{"caller deadline", 5 * time.Second, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, logs := newTestClient(t, Config{Timeout: tt.timeout})
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			resp, err := w.Call(ctx, srv.URL, "handle_in", []byte(`{}`))
			if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want upstream unavailable by deadline", err)
			}
			if resp.Status != 0 || resp.Latency < 50*time.Millisecond || resp.Latency > time.Second {
				t.Fatalf("response = %+v", resp)
			}
			if st := w.Stats(); st.Failures != 1 {
				t.Fatalf("stats = %+v, want 1 failure", st)
			}
			entries := logs.FilterMessage("webhook call failed").All()
			if len(entries) != 1 {
				t.Fatalf("%d failure logs, want 1", len(entries))
			}
			fields := entries[0].ContextMap()
			if entries[0].Level != zapcore.WarnLevel || fields["url"] != srv.URL || fields["event"] != "handle_in" ||
				fields["latency"] == nil || fields["error"] == nil {
				t.Fatalf("failure log = %v %v", entries[0].Level, fields)
			}
			if _, ok := fields["status"]; ok {
				t.Fatalf("failure log has a status without a response: %v", fields)
			}
		})
	}
}

func TestWebhookCallCancelledByCallerIsNotABreakerFailure(t *testing.T) {
	g := newGate(t)
	entered := make(chan struct{}, 4)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		g.wait(r)
	})
	w, _ := newTestClient(t, Config{BreakerThreshold: 1})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := w.Call(ctx, srv.URL, "join", nil)
	if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	g.open()
	if _, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil {
		t.Fatalf("call after a cancelled one: %v (the circuit must stay closed)", err)
	}
	if st := w.Stats(); st.Failures != 0 || st.BreakerOpens != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// closedAddr returns the address of a loopback listener that was closed.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWebhookCallConnectionFailures(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"refused", "http://" + closedAddr(t) + "/hook"},
		{"bad url", "http://[::1/hook"},
		{"unsupported scheme", "ftp://127.0.0.1/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, logs := newTestClient(t, Config{})
			resp, err := w.Call(context.Background(), tt.url, "connect", []byte(`{}`))
			if !errors.Is(err, ErrUpstreamUnavailable) {
				t.Fatalf("err = %v", err)
			}
			if resp.Status != 0 || resp.Body != nil {
				t.Fatalf("response = %+v", resp)
			}
			if !strings.HasPrefix(err.Error(), "webhook connect") {
				t.Fatalf("error %q lacks context", err)
			}
			if st := w.Stats(); st.Calls != 1 || st.Failures != 1 {
				t.Fatalf("stats = %+v", st)
			}
			if countLogs(logs, "webhook call failed") != 1 {
				t.Fatalf("failure not logged: %v", logs.All())
			}
		})
	}
}

// rawServer answers every connection with reply, then closes it.
func rawServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, reply)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

func TestWebhookCallGarbageAnswers(t *testing.T) {
	tests := []struct {
		name       string
		reply      string
		wantStatus int
	}{
		{"not http", "garbage garbage\r\n\r\n", 0},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":", 0},
		{"bad chunking", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc", 0},
		{"no answer", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, tt.reply)
			w, _ := newTestClient(t, Config{Timeout: time.Second})
			resp, err := w.Call(context.Background(), url, "join", []byte(`{}`))
			if !errors.Is(err, ErrUpstreamUnavailable) {
				t.Fatalf("err = %v", err)
			}
			if resp.Status != tt.wantStatus || resp.Body != nil {
				t.Fatalf("response = %+v", resp)
			}
		})
	}
	// A body that is not JSON is returned as is: parsing is the caller's.
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "\x00not json{") })
	w, _ := newTestClient(t, Config{})
	resp, err := w.Call(context.Background(), srv.URL, "join", nil)
	if err != nil || string(resp.Body) != "\x00not json{" {
		t.Fatalf("Call = %q, %v", resp.Body, err)
	}
}

func TestWebhookCallBodyCap(t *testing.T) {
	const limit = 1000
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		chunked := r.URL.Query().Get("chunked") == "1"
		if !chunked {
			rw.Header().Set("Content-Length", strconv.Itoa(n))
		}
		rw.WriteHeader(200)
		chunk := []byte(strings.Repeat("a", 100))
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := rw.Write(chunk[:k]); err != nil {
				return
			}
			if chunked {
				rw.(http.Flusher).Flush()
			}
			n -= k
		}
	})
	w, _ := newTestClient(t, Config{MaxResponseBytes: limit, BreakerThreshold: 100})
	tests := []struct {
		name    string
		n       int
		chunked bool
		ok      bool
	}{
		{"at limit, sized", limit, false, true},
		{"at limit, chunked", limit, true, true},
		{"small, chunked", 7, true, true},
		{"over by one, sized", limit + 1, false, false},
		{"over by one, chunked", limit + 1, true, false},
		{"huge, sized", 50 << 20, false, false},
		{"huge, chunked", 50 << 20, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := "0"
			if tt.chunked {
				c = "1"
			}
			url := fmt.Sprintf("%s/?n=%d&chunked=%s", srv.URL, tt.n, c)
			start := time.Now()
			resp, err := w.Call(context.Background(), url, "handle_in", nil)
			if tt.ok {
				if err != nil || len(resp.Body) != tt.n || strings.Trim(string(resp.Body), "a") != "" {
					t.Fatalf("Call = %d bytes, %v", len(resp.Body), err)
				}
				return
			}
			if !errors.Is(err, ErrUpstreamUnavailable) || !strings.Contains(err.Error(), "byte limit") {
				t.Fatalf("err = %v, want the size cap", err)
			}
			if resp.Status != 200 || resp.Body != nil {
				t.Fatalf("response = %d, %d bytes", resp.Status, len(resp.Body))
			}
			if time.Since(start) > time.Second {
				t.Fatalf("oversized answer took %v: it must not be read to the end", time.Since(start))
			}
		})
	}
}

func TestReadCappedBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		declared int64
		limit    int64
		want     string
		wantErr  bool
	}{
		{"empty unknown length", "", -1, 10, "", false},
		{"declared empty", "", 0, 10, "", false},
		{"exact", "0123456789", 10, 10, "0123456789", false},
		{"unknown length under", "abc", -1, 10, "abc", false},
		{"unknown length at", "0123456789", -1, 10, "0123456789", false},
		{"unknown length over", "0123456789x", -1, 10, "", true},
		{"declared over", "", 11, 10, "", true},
		{"declared short, real long", "0123456789x", 3, 10, "", true},
		{"grows past the first buffer", strings.Repeat("z", 5000), -1, 6000, strings.Repeat("z", 5000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readCappedBody(io.LimitReader(strings.NewReader(tt.body), 1<<20), tt.declared, tt.limit)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Fatalf("readCappedBody = %q, %v", got, err)
			}
			if tt.want == "" && got != nil {
				t.Fatalf("empty body is %#v, want nil", got)
			}
		})
	}
}

func TestWebhookBreaker(t *testing.T) {
	var status atomic.Int32
	status.Store(500)
	var hits atomic.Int32
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		rw.WriteHeader(int(status.Load()))
	})
	clock := newFakeClock()
	w, logs := newTestClient(t, Config{BreakerThreshold: 3, BreakerCooldown: 5 * time.Second, Now: clock.Now})
	call := func() (int, error) {
		resp, err := w.Call(context.Background(), srv.URL, "join", nil)
		return resp.Status, err
	}

	steps := []struct {
		name       string
		advance    time.Duration
		status     int32 // what the server answers
		wantStatus int
		wantOpen   bool // rejected by the circuit
		wantHits   int32
	}{
		{"failure 1", 0, 500, 500, false, 1},
		{"success resets the count", 0, 200, 200, false, 2},
		{"failure 1 again", 0, 502, 502, false, 3},
		{"failure 2", 0, 503, 503, false, 4},
		{"failure 3 opens", 0, 500, 500, false, 5},
		{"open: rejected", 0, 200, 0, true, 5},
		{"still open before cool-down", 4999 * time.Millisecond, 200, 0, true, 5},
		{"half-open trial fails", time.Millisecond, 500, 500, false, 6},
		{"re-opened", 0, 200, 0, true, 6},
		{"re-opened for a full cool-down", 4 * time.Second, 200, 0, true, 6},
		{"half-open trial succeeds", time.Second, 204, 204, false, 7},
		{"closed", 0, 200, 200, false, 8},
		{"a 4xx is not a failure", 0, 404, 404, false, 9},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		status.Store(s.status)
		st, err := call()
		if s.wantOpen {
			if !errors.Is(err, ErrUpstreamUnavailable) || !strings.Contains(err.Error(), "circuit open") {
				t.Fatalf("%s: err = %v, want circuit open", s.name, err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if st != s.wantStatus || hits.Load() != s.wantHits {
			t.Fatalf("%s: status %d hits %d, want %d %d", s.name, st, hits.Load(), s.wantStatus, s.wantHits)
		}
	}
	st := w.Stats()
	want := Stats{Calls: 13, Failures: 9, Rejected: 4, BreakerOpens: 2}
	if st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	for msg, n := range map[string]int{
		"webhook circuit opened, rejecting calls":                 1,
		"webhook circuit half-open, letting a trial call through": 2,
		"webhook circuit re-opened after a failed trial call":     1,
		"webhook circuit closed after a successful trial call":    1,
		"webhook call failed":                                     5, // rejected calls are not logged
	} {
		if got := countLogs(logs, msg); got != n {
			t.Errorf("%q logged %d times, want %d", msg, got, n)
		}
	}
	opened := logs.FilterMessage("webhook circuit opened, rejecting calls").All()[0]
	if opened.Level != zapcore.WarnLevel || opened.ContextMap()["url"] != srv.URL {
		t.Fatalf("open log = %v %v", opened.Level, opened.ContextMap())
	}
}

func TestWebhookBreakerLogVolumeWhileOpen(t *testing.T) {
	addr := "http://" + closedAddr(t) + "/hook"
	clock := newFakeClock()
	w, logs := newTestClient(t, Config{BreakerThreshold: 2, Now: clock.Now})
	for range 200 {
		w.Call(context.Background(), addr, "join", nil)
	}
	if n := len(logs.All()); n != 3 {
		t.Fatalf("%d log entries for 200 calls to a dead upstream, want 2 failures and 1 open: %v", n, logs.All())
	}
	if st := w.Stats(); st.Rejected != 198 || st.Failures != 200 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestWebhookBreakerHalfOpenLetsOneTrialThrough(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	g := newGate(t)
	entered := make(chan struct{}, 8)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			rw.WriteHeader(500)
			return
		}
		entered <- struct{}{}
		g.wait(r)
	})
	clock := newFakeClock()
	w, _ := newTestClient(t, Config{BreakerThreshold: 1, BreakerCooldown: time.Second, Now: clock.Now})
	if resp, _ := w.Call(context.Background(), srv.URL, "join", nil); resp.Status != 500 {
		t.Fatalf("status = %d", resp.Status)
	}
	fail.Store(false)
	clock.Advance(time.Second)

	trial := make(chan error, 1)
	go func() {
		_, err := w.Call(context.Background(), srv.URL, "join", nil)
		trial <- err
	}()
	<-entered // the trial is in flight
	for range 3 {
		if _, err := w.Call(context.Background(), srv.URL, "join", nil); err == nil || !strings.Contains(err.Error(), "circuit open") {
			t.Fatalf("call during the trial: %v, want circuit open", err)
		}
	}
	g.open()
	if err := <-trial; err != nil {
		t.Fatalf("trial: %v", err)
	}
	if _, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil {
		t.Fatalf("after the trial: %v", err)
	}
}

func TestWebhookBreakerCancelledTrialFreesTheSlot(t *testing.T) {
	g := newGate(t)
	var block atomic.Bool
	entered := make(chan struct{}, 8)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if !block.Load() {
			rw.WriteHeader(500)
			return
		}
		entered <- struct{}{}
		g.wait(r)
	})
	clock := newFakeClock()
	w, _ := newTestClient(t, Config{BreakerThreshold: 1, Now: clock.Now})
	w.Call(context.Background(), srv.URL, "join", nil) // opens
	clock.Advance(DefaultBreakerCooldown)
	block.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	if _, err := w.Call(ctx, srv.URL, "join", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("trial: %v", err)
	}
	// The cancelled trial said nothing: the next call is the new trial.
	block.Store(false)
	resp, err := w.Call(context.Background(), srv.URL, "join", nil)
	if err != nil || resp.Status != 500 {
		t.Fatalf("second trial = %d, %v", resp.Status, err)
	}
	if st := w.Stats(); st.BreakerOpens != 2 {
		t.Fatalf("stats = %+v, want the failed second trial to re-open", st)
	}
}

func TestWebhookBreakerIsPerURL(t *testing.T) {
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dead" {
			rw.WriteHeader(503)
		}
	})
	w, _ := newTestClient(t, Config{BreakerThreshold: 1, Now: newFakeClock().Now})
	w.Call(context.Background(), srv.URL+"/dead", "join", nil)
	if _, err := w.Call(context.Background(), srv.URL+"/dead", "join", nil); err == nil {
		t.Fatal("dead URL: want circuit open")
	}
	if resp, err := w.Call(context.Background(), srv.URL+"/alive", "join", nil); err != nil || resp.Status != 200 {
		t.Fatalf("other URL = %d, %v", resp.Status, err)
	}
}

func TestWebhookConcurrencyCap(t *testing.T) {
	const maxConc = 3
	g := newGate(t)
	var inFlight, peak atomic.Int32
	entered := make(chan struct{}, 16)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		g.wait(r)
	})
	w, _ := newTestClient(t, Config{MaxConcurrency: maxConc, Timeout: 5 * time.Second})

	var wg sync.WaitGroup
	errs := make(chan error, maxConc)
	for range maxConc {
		wg.Go(func() {
			_, err := w.Call(context.Background(), srv.URL, "join", nil)
			errs <- err
		})
	}
	for range maxConc {
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := w.Call(ctx, srv.URL, "join", nil)
	if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no free slot of 3") {
		t.Fatalf("call over the cap: %v", err)
	}
	if resp.Latency < 100*time.Millisecond {
		t.Fatalf("call over the cap failed after %v, before its deadline", resp.Latency)
	}
	g.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call within the cap: %v", err)
		}
	}
	if p := peak.Load(); p != maxConc {
		t.Fatalf("peak in flight = %d, want %d", p, maxConc)
	}
	if _, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil {
		t.Fatalf("slots not released: %v", err)
	}
}

func TestWebhookNotifyDelivers(t *testing.T) {
	got := make(chan receivedRequest, 8)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- receivedRequest{r.Method, r.Header.Clone(), string(b)}
		rw.WriteHeader(http.StatusNoContent)
	})
	w, logs := newTestClient(t, Config{Secret: "s", NotifyWorkers: 1})
	bodies := []string{`{"reason":"leave"}`, `{"reason":"closed"}`, `{"reason":"timeout"}`}
	for _, b := range bodies {
		if !w.Notify(srv.URL+"/leave", "leave", []byte(b)) {
			t.Fatal("Notify refused")
		}
	}
	for _, b := range bodies {
		select {
		case req := <-got:
			if req.body != b || req.header.Get("X-Channels-Event") != "leave" {
				t.Fatalf("got %q %v, want %q", req.body, req.header, b)
			}
			if err := Verify("s", req.header.Get("X-Channels-Signature"), []byte(req.body), time.Now(), time.Minute); err != nil {
				t.Fatalf("signature: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("notification not delivered")
		}
	}
	w.Close()
	if st := w.Stats(); st.Calls != 3 || st.Dropped != 0 || st.Failures != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if n := len(logs.All()); n != 0 {
		t.Fatalf("unexpected logs: %v", logs.All())
	}
}

func TestWebhookNotifyLogsRejections(t *testing.T) {
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		rw.WriteHeader(code)
	})
	w, logs := newTestClient(t, Config{NotifyWorkers: 1, BreakerThreshold: 100})
	for _, code := range []int{200, 202, 302, 404, 500} {
		w.Notify(srv.URL+"/"+strconv.Itoa(code), "leave", nil)
	}
	w.Close()
	var statuses []int64
	for _, e := range logs.All() {
		if e.Level != zapcore.WarnLevel || e.ContextMap()["url"] == nil || e.ContextMap()["latency"] == nil {
			t.Fatalf("log = %v %v", e.Level, e.ContextMap())
		}
		statuses = append(statuses, e.ContextMap()["status"].(int64))
	}
	if !slices.Equal(statuses, []int64{302, 404, 500}) {
		t.Fatalf("logged statuses %v, want the non-2xx ones", statuses)
	}
}

func TestWebhookNotifyWhenFull(t *testing.T) {
	g := newGate(t)
	entered := make(chan struct{}, 8)
	var delivered atomic.Int32
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		g.wait(r)
		delivered.Add(1)
	})
	clock := newFakeClock()
	w, logs := newTestClient(t, Config{QueueSize: 1, NotifyWorkers: 1, Now: clock.Now})
	if !w.Notify(srv.URL, "leave", []byte("1")) {
		t.Fatal("first Notify refused")
	}
	<-entered // the worker holds the first one
	if !w.Notify(srv.URL, "leave", []byte("2")) {
		t.Fatal("second Notify refused with room in the queue")
	}
	// A Notify that blocked on the full queue would hang here (the gate
	// holds the worker): the test would time out, not pass.
	for range 3 {
		if w.Notify(srv.URL, "leave", []byte("x")) {
			t.Fatal("Notify accepted with a full queue")
		}
	}
	if st := w.Stats(); st.Dropped != 3 || st.Pending != 2 {
		t.Fatalf("stats = %+v, want 3 dropped and 2 pending (one in delivery, one queued)", st)
	}
	drops := logs.FilterMessage("webhook notification dropped").All()
	if len(drops) != 1 || drops[0].Level != zapcore.WarnLevel || drops[0].ContextMap()["reason"] != "queue full" {
		t.Fatalf("drop logs = %v, want one rate-limited warning", drops)
	}
	clock.Advance(webhookDropLogInterval)
	w.Notify(srv.URL, "leave", nil)
	if n := countLogs(logs, "webhook notification dropped"); n != 2 {
		t.Fatalf("%d drop warnings after the interval, want 2", n)
	}
	g.open()
	w.Close()
	if n := delivered.Load(); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
	if st := w.Stats(); st.Pending != 0 {
		t.Fatalf("%d notifications pending after Close delivered them all", st.Pending)
	}
}

func TestWebhookCloseDrainsAndIsIdempotent(t *testing.T) {
	var delivered atomic.Int32
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		delivered.Add(1)
	})
	w, _ := newTestClient(t, Config{})
	const n = 40
	for i := range n {
		if !w.Notify(srv.URL, "leave", []byte(strconv.Itoa(i))) {
			t.Fatal("Notify refused")
		}
	}
	w.Close()
	if got := delivered.Load(); got != n {
		t.Fatalf("delivered %d before Close returned, want %d", got, n)
	}
	w.Close()
	if w.Notify(srv.URL, "leave", nil) {
		t.Fatal("Notify accepted after Close")
	}
	if st := w.Stats(); st.Dropped != 1 || st.Calls != n {
		t.Fatalf("stats = %+v", st)
	}
	// Calls still work after Close.
	if _, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil {
		t.Fatalf("Call after Close: %v", err)
	}
}

func TestWebhookCloseIsBounded(t *testing.T) {
	g := newGate(t)
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) { g.wait(r) })
	const timeout = 100 * time.Millisecond
	w, logs := newTestClient(t, Config{Timeout: timeout, NotifyWorkers: 1, BreakerThreshold: 100})
	const n = 100 // delivering them all would take n×timeout
	for range n {
		w.Notify(srv.URL, "leave", nil)
	}
	start := time.Now()
	w.Close()
	if d := time.Since(start); d < 2*timeout {
		t.Fatalf("Close took %v, want at least %v for the queue", d, 2*timeout)
	}
	st := w.Stats()
	// About two timed out (failures); the rest were abandoned, not
	// waited for (that would have taken n×timeout).
	if st.Dropped < n-3 || st.Dropped+st.Failures < n {
		t.Fatalf("stats = %+v", st)
	}
	if countLogs(logs, "webhook notifications abandoned at close") != 1 {
		t.Fatalf("abandon not logged: %v", logs.All())
	}
}

func TestWebhookConnectionReuse(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{}
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		switch r.URL.Path {
		case "/sized":
			io.WriteString(rw, `{"status":"ok"}`)
		case "/chunked":
			io.WriteString(rw, `{"status":`)
			rw.(http.Flusher).Flush()
			io.WriteString(rw, `"ok"}`)
		case "/empty":
			rw.WriteHeader(http.StatusNoContent)
		}
	})
	w, _ := newTestClient(t, Config{})
	for i := range 30 {
		path := []string{"/sized", "/chunked", "/empty"}[i%3]
		if _, err := w.Call(context.Background(), srv.URL+path, "join", []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if len(remotes) != 1 {
		t.Fatalf("30 sequential calls used %d connections, want 1", len(remotes))
	}
}

func TestWebhookTransportSettings(t *testing.T) {
	w, _ := newTestClient(t, Config{MaxConcurrency: 17})
	std := w.tls.(*stdExchanger)
	tr := std.transport
	if tr.Proxy != nil || !tr.DisableCompression || tr.MaxIdleConnsPerHost != 17 || std.client.CheckRedirect == nil || !tr.ForceAttemptHTTP2 {
		t.Fatalf("https transport = proxy %v, compression off %v, idle per host %d, h2 %v", tr.Proxy != nil, tr.DisableCompression, tr.MaxIdleConnsPerHost, tr.ForceAttemptHTTP2)
	}
	fc := w.plain.(*fastExchanger).client
	if fc.MaxConnsPerHost != fastMaxConnsPerHost || fc.MaxResponseBodySize != int(DefaultMaxResponseBytes) || fc.RetryIfErr == nil || fc.MaxIdleConnDuration != fastIdleConnDuration {
		t.Fatalf("http client = conns %d, body cap %d, retry rule set %v, idle %v", fc.MaxConnsPerHost, fc.MaxResponseBodySize, fc.RetryIfErr != nil, fc.MaxIdleConnDuration)
	}
	d := New(Config{})
	defer d.Close()
	want := Config{
		Timeout: DefaultTimeout, MaxResponseBytes: DefaultMaxResponseBytes,
		MaxConcurrency: DefaultMaxConcurrency, QueueSize: DefaultQueueSize,
		NotifyWorkers: DefaultNotifyWorkers, BreakerThreshold: DefaultBreakerThreshold,
		BreakerCooldown: DefaultBreakerCooldown,
	}
	got := d.cfg
	if got.Logger == nil || got.Now == nil {
		t.Fatal("nil logger or clock after defaults")
	}
	got.Logger, got.Now = nil, nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) || cap(d.queue) != DefaultQueueSize {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
}

func TestWebhookUpstreamStatesAreSwept(t *testing.T) {
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {})
	w, _ := newTestClient(t, Config{})
	for i := range webhookMaxIdleUpstreams + 200 {
		if _, err := w.Call(context.Background(), fmt.Sprintf("%s/?u=%d", srv.URL, i), "join", nil); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.RLock()
	n := len(w.upstreams)
	w.mu.RUnlock()
	if n > webhookMaxIdleUpstreams {
		t.Fatalf("%d per-URL states kept, want at most %d", n, webhookMaxIdleUpstreams)
	}
}

func TestWebhookConcurrentCallsRace(t *testing.T) {
	srv := newTestServer(t, func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "fail") {
			rw.WriteHeader(500)
			return
		}
		rw.Write(b)
	})
	w, _ := newTestClient(t, Config{Secret: "k", MaxConcurrency: 4, BreakerThreshold: 1000})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 20 {
				body := fmt.Appendf(nil, `{"i":%d,"j":%d}`, i, j)
				if j%5 == 0 {
					body = []byte(`"fail"`)
				}
				resp, err := w.Call(context.Background(), srv.URL, "handle_in", body)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Status == 200 && string(resp.Body) != string(body) {
					t.Errorf("echo = %q, want %q", resp.Body, body)
				}
				w.Notify(srv.URL, "leave", body)
			}
		})
	}
	wg.Wait()
	w.Close()
	if st := w.Stats(); st.Calls != 16*20*2 || st.Failures != 16*4*2 {
		t.Fatalf("stats = %+v", st)
	}
}

func BenchmarkWebhookCall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := New(Config{Secret: "bench"})
	defer w.Close()
	body := []byte(`{"socket":{"id":"user_socket:42","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},"topic":"room:lobby","event":"new_msg","payload":{"body":"hello"},"ref":"3","join_ref":"1"}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		resp, err := w.Call(ctx, srv.URL, "handle_in", body)
		if err != nil || resp.Status != http.StatusNoContent {
			b.Fatalf("Call = %d, %v", resp.Status, err)
		}
	}
}
