package channels

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is a loopback server that counts the connections it
// accepted and closed.
type countingServer struct {
	*httptest.Server
	opened atomic.Int64
	closed chan struct{}
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	cs := &countingServer{closed: make(chan struct{}, 1024)}
	cs.Server = httptest.NewUnstartedServer(h)
	cs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cs.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.closed <- struct{}{}
		}
	}
	cs.Start()
	t.Cleanup(func() {
		cs.CloseClientConnections()
		cs.Close()
	})
	return cs
}

func TestWebhookH1UsedForHTTPOnly(t *testing.T) {
	w, _ := newTestWebhooks(t, WebhookConfig{})
	for url, lean := range map[string]bool{
		"http://127.0.0.1:9/hook?a=1": true,
		"http://localhost/":           true,
		"http://[::1]:80":             true,
		"https://127.0.0.1/hook":      false,
		"http://user:pw@127.0.0.1/":   false,
		"http://[::1/hook":            false,
		"ftp://127.0.0.1/hook":        false,
		"http://bücher.example/hook":  false,
	} {
		if got := w.h1TargetOf(url) != nil; got != lean {
			t.Errorf("lean client for %q = %v, want %v", url, got, lean)
		}
	}
	if tg := w.h1TargetOf("http://localhost/"); tg.pool.addr != "localhost:80" || tg.host != "localhost" || tg.uri != "/" {
		t.Errorf("target = %+v %q", tg, tg.pool.addr)
	}
}

func TestWebhookH1KeepAliveReuse(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			rw.Write(b[:1])
			rw.(http.Flusher).Flush()
			rw.Write(b[1:])
		case "/empty":
			rw.WriteHeader(http.StatusNoContent)
		case "/continue":
			rw.WriteHeader(http.StatusContinue)
			rw.Write(b)
		default:
			rw.Write(b)
		}
	})
	w, _ := newTestWebhooks(t, WebhookConfig{Secret: "s"})
	paths := []string{"/sized", "/chunked", "/empty", "/continue"}
	for i := range 40 {
		p := paths[i%len(paths)]
		resp, err := w.Call(context.Background(), srv.URL+p, "handle_in", []byte(`{"n":1}`))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		want := `{"n":1}`
		if p == "/empty" {
			want = ""
		}
		if string(resp.Body) != want {
			t.Fatalf("%s: body %q, want %q", p, resp.Body, want)
		}
	}
	if n := srv.opened.Load(); n != 1 {
		t.Fatalf("40 sequential calls opened %d connections, want 1", n)
	}
	if st := w.Stats(); st.Calls != 40 || st.Failures != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestWebhookH1ConnectionClose(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Connection", "close")
		io.WriteString(rw, `{}`)
	})
	w, _ := newTestWebhooks(t, WebhookConfig{})
	for range 5 {
		if resp, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil || string(resp.Body) != "{}" {
			t.Fatalf("Call = %q, %v", resp.Body, err)
		}
	}
	if n := srv.opened.Load(); n != 5 {
		t.Fatalf("5 calls answered with Connection: close opened %d connections, want 5", n)
	}
}

func TestWebhookH1StaleConnectionIsRetried(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, `{}`) })
	w, logs := newTestWebhooks(t, WebhookConfig{BreakerThreshold: 1})
	for i := range 4 {
		if resp, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil || string(resp.Body) != "{}" {
			t.Fatalf("call %d = %q, %v", i, resp.Body, err)
		}
		srv.CloseClientConnections() // the server drops its idle connection
	}
	if n := srv.opened.Load(); n != 4 {
		t.Fatalf("%d connections, want 4 (one per call)", n)
	}
	if st := w.Stats(); st.Failures != 0 || countLogs(logs, "webhook call failed") != 0 {
		t.Fatalf("stats = %+v, logs %v", st, logs.All())
	}
}

// scriptedServer answers the n-th request on each connection with
// answers[n]; an answer of "" closes the connection without one.
func scriptedServer(t *testing.T, answers ...string) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for _, a := range answers {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if a == "" {
						return
					}
					if _, err := io.WriteString(c, a); err != nil {
						return
					}
				}
			})
		}
	})
	return "http://" + ln.Addr().String() + "/hook", conns
}

func TestWebhookH1Answers(t *testing.T) {
	tests := []struct {
		name     string
		answer   string
		status   int
		body     string
		wantErr  string
		reusable bool
	}{
		{"sized", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"long header line", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 10000) + "\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"head over the limit", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 70000) + "\r\n\r\n", 0, "", "over", false},
		{"chunked with trailer", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n", 201, "{}", "", true},
		{"interim answers", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\n{}", 200, "{}", "", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", false},
		{"5xx", "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 503, "", "", true},
		{"garbage", "garbage\r\n\r\n", 0, "", "malformed", false},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, "", "malformed", false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 0, "", "Content-Length", false},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, "", "101", false},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", 0, "", "unexpected EOF", false},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", 200, "", "unexpected EOF", false},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 200, "", "chunk", false},
		{"oversize", "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", 200, "", "byte limit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A connection answers twice when it may be reused (so it
			// serves both calls), else once and closes.
			script := []string{tt.answer}
			if tt.reusable {
				script = append(script, tt.answer)
			}
			url, conns := scriptedServer(t, script...)
			w, _ := newTestWebhooks(t, WebhookConfig{Timeout: 5 * time.Second, MaxResponseBytes: 1000})
			for range 2 {
				resp, err := w.Call(context.Background(), url, "join", []byte(`{}`))
				if tt.wantErr != "" {
					if !errors.Is(err, ErrUpstreamUnavailable) || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("err = %v, want %q", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if resp.Status != tt.status || string(resp.Body) != tt.body {
					t.Fatalf("response = %d %q, want %d %q", resp.Status, resp.Body, tt.status, tt.body)
				}
			}
			want := int64(2)
			if tt.reusable {
				want = 1
			}
			if n := conns.Load(); n != want {
				t.Fatalf("%d connections, want %d", n, want)
			}
		})
	}
}

func TestWebhookH1NoRetryOnceAnswerStarted(t *testing.T) {
	// The second answer on the connection is cut after its status line,
	// then the connection closes: the call fails, without a retry.
	url, conns := scriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 200 OK\r\n")
	w, _ := newTestWebhooks(t, WebhookConfig{})
	if _, err := w.Call(context.Background(), url, "join", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Call(context.Background(), url, "join", nil); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: no retry after answer bytes", n)
	}
}

func TestWebhookH1StaleRetryOnlyOnce(t *testing.T) {
	// Every connection answers one request, then closes without answering
	// the next: the retried call succeeds on a fresh connection.
	url, conns := scriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "")
	w, _ := newTestWebhooks(t, WebhookConfig{})
	for i := range 3 {
		if resp, err := w.Call(context.Background(), url, "join", nil); err != nil || string(resp.Body) != "{}" {
			t.Fatalf("call %d = %q, %v", i, resp.Body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	// A fresh connection that closes without an answer is not retried.
	url, conns = scriptedServer(t, "")
	if _, err := w.Call(context.Background(), url, "join", nil); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestWebhookH1SlowServerTimesOut(t *testing.T) {
	g := newGate(t)
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) { g.wait(r) })
	w, _ := newTestWebhooks(t, WebhookConfig{Timeout: 100 * time.Millisecond})
	resp, err := w.Call(context.Background(), srv.URL, "handle_in", []byte(`{}`))
	if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if resp.Status != 0 {
		t.Fatalf("status = %d", resp.Status)
	}
	g.open()
	// The timed-out connection was dropped; the next call works.
	if _, err := w.Call(context.Background(), srv.URL, "handle_in", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := srv.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestWebhookH1OversizeDropsConnection(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			rw.Write(make([]byte, 5000))
			return
		}
		io.WriteString(rw, `{}`)
	})
	w, _ := newTestWebhooks(t, WebhookConfig{MaxResponseBytes: 100})
	if _, err := w.Call(context.Background(), srv.URL+"/big", "join", nil); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if resp, err := w.Call(context.Background(), srv.URL+"/small", "join", nil); err != nil || string(resp.Body) != "{}" {
		t.Fatalf("Call = %q, %v", resp.Body, err)
	}
	if n := srv.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the oversized answer's is dropped)", n)
	}
}

func TestWebhookH1PoolBoundAndClose(t *testing.T) {
	g := newGate(t)
	var entered atomic.Int64
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if entered.Add(1) <= 3 {
			g.wait(r)
		}
		io.WriteString(rw, `{}`)
	})
	w := NewWebhooks(WebhookConfig{MaxConcurrency: 3})
	// URLs differ so the per-URL concurrency caps do not serialise them;
	// they share one address, hence one pool of at most 3 idle connections.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, err := w.Call(context.Background(), srv.URL+"/"+string(rune('a'+i)), "join", nil); err != nil {
				t.Error(err)
			}
		})
	}
	for entered.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	g.open()
	wg.Wait()
	if n := w.h1Pool(strings.TrimPrefix(srv.URL, "http://")).idleCount(); n > 3 {
		t.Fatalf("%d idle connections, want at most 3", n)
	}
	opened := srv.opened.Load()
	kept := int64(w.h1Pool(strings.TrimPrefix(srv.URL, "http://")).idleCount())
	w.Close()
	// Every connection ends: the extra ones at once, the idle ones by
	// Close.
	for range opened {
		select {
		case <-srv.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connections still open after Close (%d opened, %d idle before Close)", opened, kept)
		}
	}
}

func TestH1TokenChars(t *testing.T) {
	for _, name := range []string{"Content-Length", "X-A_b.c~!#$%&'*+^`|"} {
		if !isH1Token([]byte(name)) {
			t.Errorf("%q is a token", name)
		}
	}
	for _, name := range []string{"a b", "a:b", "a\x7fb", "é", `a"b`, "a\\b", "a{b"} {
		if isH1Token([]byte(name)) {
			t.Errorf("%q is not a token", name)
		}
	}
}

// BenchmarkWebhookCallH1 measures the client side alone: the server is a
// loopback listener answering a fixed 204 without allocating.
func BenchmarkWebhookCallH1(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				answer := []byte("HTTP/1.1 204 No Content\r\n\r\n")
				for {
					// Requests are small: one read holds one request.
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	w := NewWebhooks(WebhookConfig{Secret: "bench"})
	defer w.Close()
	url := "http://" + ln.Addr().String() + "/hook"
	body := []byte(`{"socket":{"id":"user_socket:42","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},"topic":"room:lobby","event":"new_msg","payload":{"body":"hello"},"ref":"3","join_ref":"1"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := w.Call(ctx, url, "handle_in", body)
		if err != nil || resp.Status != http.StatusNoContent {
			b.Fatalf("Call = %d, %v", resp.Status, err)
		}
	}
}
