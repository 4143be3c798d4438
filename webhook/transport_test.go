package webhook

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

// Every URL goes to the exchanger of its scheme; a URL of another
// scheme fails without a request.
func TestExchangerOfScheme(t *testing.T) {
	w, _ := newTestClient(t, Config{})
	for url, want := range map[string]exchanger{
		"http://127.0.0.1:9/hook?a=1": w.plain,
		"HTTP://localhost/":           w.plain,
		"https://127.0.0.1/hook":      w.tls,
		"Https://[::1]/":              w.tls,
		"ftp://127.0.0.1/hook":        nil,
		"127.0.0.1/hook":              nil,
	} {
		if got := w.exchangerOf(url); got != want {
			t.Errorf("exchanger of %q = %T, want %T", url, got, want)
		}
	}
	if _, err := w.Call(context.Background(), "ftp://127.0.0.1/hook", "join", nil); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("ftp URL: err = %v", err)
	}
}

func TestWebhookPlainKeepAliveReuse(t *testing.T) {
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
	w, _ := newTestClient(t, Config{Secret: "s"})
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

func TestWebhookPlainConnectionClose(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Connection", "close")
		io.WriteString(rw, `{}`)
	})
	w, _ := newTestClient(t, Config{})
	for range 5 {
		if resp, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil || string(resp.Body) != "{}" {
			t.Fatalf("Call = %q, %v", resp.Body, err)
		}
	}
	if n := srv.opened.Load(); n != 5 {
		t.Fatalf("5 calls answered with Connection: close opened %d connections, want 5", n)
	}
}

func TestWebhookPlainStaleConnectionIsRetried(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, `{}`) })
	w, logs := newTestClient(t, Config{BreakerThreshold: 1})
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

func TestWebhookPlainAnswers(t *testing.T) {
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
		{"head over the limit", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 70000) + "\r\n\r\n", 0, "", "small read buffer", false},
		{"chunked with trailer", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n", 201, "{}", "", true},
		{"interim answers", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\n{}", 200, "{}", "", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", "", false},
		{"5xx", "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 503, "", "", true},
		{"garbage", "garbage\r\n\r\n", 0, "", "cannot find whitespace", false},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, "", "reading response headers", false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 0, "", "Content-Length", false},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 101, "", "", false},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", 0, "", "EOF", false},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", 0, "", "EOF", false},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", "hex", false},
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
			w, _ := newTestClient(t, Config{Timeout: 5 * time.Second, MaxResponseBytes: 1000})
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

func TestWebhookPlainNoRetryOnceAnswerStarted(t *testing.T) {
	// The second answer on the connection is cut inside its body, then
	// the connection closes: the call fails, without a retry.
	url, conns := scriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{")
	w, _ := newTestClient(t, Config{})
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

func TestWebhookPlainStaleRetryOnlyOnce(t *testing.T) {
	// Every connection answers one request, then closes without answering
	// the next: the retried call succeeds on a fresh connection.
	url, conns := scriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "")
	w, _ := newTestClient(t, Config{})
	for i := range 3 {
		if resp, err := w.Call(context.Background(), url, "join", nil); err != nil || string(resp.Body) != "{}" {
			t.Fatalf("call %d = %q, %v", i, resp.Body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	// A server that closes every connection without an answer gets the
	// call twice (once retried), never more.
	url, conns = scriptedServer(t, "")
	if _, err := w.Call(context.Background(), url, "join", nil); !errors.Is(err, ErrUpstreamUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (one retry)", n)
	}
}

func TestWebhookPlainSlowServerTimesOut(t *testing.T) {
	g := newGate(t)
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) { g.wait(r) })
	w, _ := newTestClient(t, Config{Timeout: 100 * time.Millisecond})
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

func TestWebhookPlainOversizeDropsConnection(t *testing.T) {
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			rw.Write(make([]byte, 5000))
			return
		}
		io.WriteString(rw, `{}`)
	})
	w, _ := newTestClient(t, Config{MaxResponseBytes: 100})
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

func TestWebhookPlainCloseEndsConnections(t *testing.T) {
	g := newGate(t)
	entered := make(chan struct{}, 6)
	srv := newCountingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if r.URL.Path <= "/c" {
			g.wait(r)
		}
		io.WriteString(rw, `{}`)
	})
	w := New(Config{MaxConcurrency: 3})
	// URLs differ so the per-URL concurrency caps do not serialise them;
	// they share one address, hence one pool of at most 3 connections.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, err := w.Call(context.Background(), srv.URL+"/"+string(rune('a'+i)), "join", nil); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 {
		<-entered
	}
	g.open()
	wg.Wait()
	opened := srv.opened.Load()
	if opened > 6 {
		t.Fatalf("%d connections for 6 calls", opened)
	}
	w.Close()
	// Every connection ends once the client is closed.
	for range opened {
		select {
		case <-srv.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connections still open after Close (%d opened)", opened)
		}
	}
}

// benchCall measures Call on http:// with the exchanger that pick
// returns: the server is a loopback listener answering a fixed 204
// without allocating, so the figure is the client's side.
func benchCall(b *testing.B, pick func(*Client) exchanger) {
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
	w := New(Config{Secret: "bench"})
	defer w.Close()
	w.plain = pick(w)
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

// BenchmarkWebhookCallPlain is a signed call to an http:// upstream with
// the exchanger in use (fasthttp).
func BenchmarkWebhookCallPlain(b *testing.B) {
	benchCall(b, func(w *Client) exchanger { return w.plain })
}

// BenchmarkWebhookCallPlainStd is the same call over net/http, the
// candidate fasthttp was chosen over (BENCHMARKS.md).
func BenchmarkWebhookCallPlainStd(b *testing.B) {
	benchCall(b, func(w *Client) exchanger { return w.tls })
}
