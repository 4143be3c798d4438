package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// scheme is one way of reaching the app: plain http:// (fasthttp) or
// https:// with HTTP/2 (net/http). The contract tests run on both.
type scheme struct {
	name   string
	start  func(t *testing.T, h http.HandlerFunc) *httptest.Server
	config func(srv *httptest.Server, cfg Config) Config
	proto  int // HTTP major version the app sees
}

var schemes = []scheme{
	{
		name:   "http",
		start:  newTestServer,
		config: func(_ *httptest.Server, cfg Config) Config { return cfg },
		proto:  1,
	},
	{
		name: "https",
		start: func(t *testing.T, h http.HandlerFunc) *httptest.Server {
			srv := httptest.NewUnstartedServer(h)
			srv.EnableHTTP2 = true
			srv.StartTLS()
			t.Cleanup(func() {
				srv.CloseClientConnections()
				srv.Close()
			})
			return srv
		},
		config: func(srv *httptest.Server, cfg Config) Config {
			cfg.TLSConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			return cfg
		},
		proto: 2,
	},
}

// forEachScheme runs test once per scheme.
func forEachScheme(t *testing.T, test func(t *testing.T, sc scheme)) {
	for _, sc := range schemes {
		t.Run(sc.name, func(t *testing.T) { test(t, sc) })
	}
}

// The request: method, headers, signature, body and protocol, the same
// on both exchangers.
func TestContractRequest(t *testing.T) {
	forEachScheme(t, func(t *testing.T, sc scheme) {
		got := make(chan *http.Request, 1)
		bodies := make(chan string, 1)
		srv := sc.start(t, func(rw http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- r
			bodies <- string(b)
			rw.WriteHeader(http.StatusNoContent)
		})
		clock := newFakeClock()
		w, _ := newTestClient(t, sc.config(srv, Config{Secret: "s3cret", Now: clock.Now}))
		body := []byte(`{"topic":"room:1"}`)
		resp, err := w.Call(context.Background(), srv.URL+"/hooks/join?x=1", "join", body)
		if err != nil || resp.Status != http.StatusNoContent || resp.Body != nil {
			t.Fatalf("Call = %+v, %v", resp, err)
		}
		r, b := <-got, <-bodies
		if r.Method != http.MethodPost || r.URL.RequestURI() != "/hooks/join?x=1" || b != string(body) || r.ProtoMajor != sc.proto {
			t.Fatalf("request %s %s %q proto %d", r.Method, r.URL.RequestURI(), b, r.ProtoMajor)
		}
		want := map[string]string{
			"Content-Type":         "application/json",
			"User-Agent":           "caddy-channels",
			"X-Channels-Event":     "join",
			"X-Channels-Signature": Sign("s3cret", clock.Now(), body),
			"Accept-Encoding":      "",
		}
		for k, v := range want {
			if r.Header.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, r.Header.Get(k), v)
			}
		}
		if err := Verify("s3cret", r.Header.Get("X-Channels-Signature"), []byte(b), clock.Now(), 0); err != nil {
			t.Errorf("signature does not verify: %v", err)
		}
	})
}

// Any answer is returned as is, redirects included (never followed).
func TestContractAnswers(t *testing.T) {
	forEachScheme(t, func(t *testing.T, sc scheme) {
		srv := sc.start(t, func(rw http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/redirect":
				http.Redirect(rw, r, "/elsewhere", http.StatusFound)
			case "/elsewhere":
				t.Error("a redirect was followed")
			case "/missing":
				http.Error(rw, "no such hook", http.StatusNotFound)
			case "/busy":
				rw.WriteHeader(http.StatusServiceUnavailable)
			default:
				io.WriteString(rw, `{"status":"ok"}`)
			}
		})
		w, _ := newTestClient(t, sc.config(srv, Config{BreakerThreshold: 100}))
		for path, want := range map[string]struct {
			status int
			body   string
		}{
			"/ok":       {200, `{"status":"ok"}`},
			"/redirect": {302, ""},
			"/missing":  {404, "no such hook\n"},
			"/busy":     {503, ""},
		} {
			resp, err := w.Call(context.Background(), srv.URL+path, "join", nil)
			if err != nil || resp.Status != want.status || (want.body != "" && string(resp.Body) != want.body) {
				t.Errorf("%s: %d %q %v, want %d %q", path, resp.Status, resp.Body, err, want.status, want.body)
			}
		}
	})
}

// Timeouts, caller cancellations and oversized answers fail the same way
// on both exchangers; only timeouts count against the breaker.
func TestContractFailures(t *testing.T) {
	forEachScheme(t, func(t *testing.T, sc scheme) {
		g := newGate(t)
		arrived := make(chan struct{}, 4)
		srv := sc.start(t, func(rw http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/slow":
				arrived <- struct{}{}
				g.wait(r)
			case "/big":
				rw.Write([]byte(strings.Repeat("x", 5000)))
			}
		})
		w, _ := newTestClient(t, sc.config(srv, Config{Timeout: 200 * time.Millisecond, MaxResponseBytes: 1000, BreakerThreshold: 100}))

		resp, err := w.Call(context.Background(), srv.URL+"/slow", "handle_in", nil)
		if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.DeadlineExceeded) || resp.Status != 0 {
			t.Fatalf("slow: %+v, %v", resp, err)
		}

		<-arrived
		// A call cancelled while the app holds it returns at once.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			resp, err := w.Call(ctx, srv.URL+"/slow", "leave", nil)
			if !errors.Is(err, ErrUpstreamUnavailable) || !errors.Is(err, context.Canceled) || resp.Status != 0 {
				t.Errorf("cancelled: %+v, %v", resp, err)
			}
		})
		<-arrived
		cancel()
		wg.Wait()

		resp, err = w.Call(context.Background(), srv.URL+"/big", "join", nil)
		if !errors.Is(err, ErrUpstreamUnavailable) || resp.Status != 200 || resp.Body != nil {
			t.Fatalf("oversized: %+v, %v", resp, err)
		}
		if st := w.Stats(); st.Calls != 3 || st.Failures != 2 {
			t.Fatalf("stats %+v: want 3 calls, 2 failures (the cancelled call is neither)", st)
		}
	})
}

// Sequential calls share one connection.
func TestContractConnectionReuse(t *testing.T) {
	forEachScheme(t, func(t *testing.T, sc scheme) {
		var mu sync.Mutex
		remotes := map[string]bool{}
		srv := sc.start(t, func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			remotes[r.RemoteAddr] = true
			mu.Unlock()
			io.WriteString(rw, `{}`)
		})
		w, _ := newTestClient(t, sc.config(srv, Config{}))
		for range 20 {
			if _, err := w.Call(context.Background(), srv.URL, "join", nil); err != nil {
				t.Fatal(err)
			}
		}
		if len(remotes) != 1 {
			t.Fatalf("20 sequential calls used %d connections", len(remotes))
		}
	})
}
