// Package integration runs the channels handler inside a real Caddy (the
// caddytest package) and talks to it with real WebSocket clients: gorilla
// raw-frame clients here and the phoenix npm client in js/.
//
// Every test in this package shares one in-process Caddy whose admin
// endpoint is localhost:2999; tests must not run in parallel.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/gorilla/websocket"

	_ "github.com/caddy-channels/caddy-channels"
)

const (
	httpPort = 9080
	baseURL  = "http://localhost:9080"
	wsBase   = "ws://localhost:9080"
	// recvTimeout bounds every wait for a frame.
	recvTimeout = 5 * time.Second
)

// globalOptions are required by caddytest: the admin port it talks to,
// unprivileged ports, no trust store changes, instant reloads.
const globalOptions = `{
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	persist_config off
}
`

// site wraps a channels block in a site on :9080; extra goes after it.
func site(channelsBlock string, extra ...string) string {
	return globalOptions + "http://localhost:9080 {\n" + channelsBlock + "\n" + strings.Join(extra, "\n") + "\n\trespond \"fallthrough\" 404\n}\n"
}

// loadCaddyfile loads a Caddyfile into the shared Caddy.
func loadCaddyfile(t *testing.T, caddyfile string) *caddytest.Tester {
	t.Helper()
	// caddytest skips (rather than fails) when its prerequisites are
	// missing; in CI a skipped integration test must not pass silently.
	t.Cleanup(func() {
		if t.Skipped() && os.Getenv("CI") != "" {
			t.Error("integration test skipped in CI: caddytest prerequisites missing")
		}
	})
	tester := caddytest.NewTester(t)
	tester.InitServer(caddyfile, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return tester
}

// client is a raw WebSocket client speaking Phoenix frames.
type client struct {
	t    *testing.T
	conn *websocket.Conn
	resp *http.Response
}

// dial connects to path + "/websocket" with the given query and headers and
// fails the test if the upgrade does not succeed.
func dial(t *testing.T, path, query string, hdr http.Header) *client {
	t.Helper()
	c, resp, err := tryDial(t, path, query, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s?%s: %v (status %d)", path, query, err, status)
	}
	return c
}

// tryDial connects and returns the handshake response even on failure. It
// dials over IPv4, so that the server sees 127.0.0.1 (webhooks' remote_ip)
// whatever localhost resolves to.
func tryDial(t *testing.T, path, query string, hdr http.Header) (*client, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: recvTimeout,
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "tcp4", addr)
		},
	}
	u := wsBase + path + "/websocket"
	if query != "" {
		u += "?" + query
	}
	conn, resp, err := d.Dial(u, hdr)
	// Right after a config load, Caddy's previous server (grace_period
	// 1ns) may still reset a connection it had just accepted: retry that
	// case only.
	for try := 0; err != nil && retriableAfterReload(err) && try < 5; try++ {
		time.Sleep(20 * time.Millisecond)
		conn, resp, err = d.Dial(u, hdr)
	}
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: t, conn: conn, resp: resp}
	t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

// send writes a text frame; v is marshalled unless it is a string.
func (c *client) send(v any) {
	c.t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(recvTimeout))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// sendBinary writes a binary frame.
func (c *client) sendBinary(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(recvTimeout))
	if err := c.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads the next data frame.
func (c *client) recv() (int, []byte) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(recvTimeout))
	mt, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return mt, b
}

// expect reads the next frame and compares it as JSON with want.
func (c *client) expect(want string) {
	c.t.Helper()
	mt, got := c.recv()
	if mt != websocket.TextMessage {
		c.t.Fatalf("got a binary frame % x, want text %s", got, want)
	}
	if !jsonEqual(got, []byte(want)) {
		c.t.Fatalf("frame mismatch\n got: %s\nwant: %s", got, want)
	}
}

// expectBinary reads the next frame and compares its bytes with want.
func (c *client) expectBinary(want []byte) {
	c.t.Helper()
	mt, got := c.recv()
	if mt != websocket.BinaryMessage || !bytes.Equal(got, want) {
		c.t.Fatalf("frame mismatch\n got: (type %d) % x\nwant: % x", mt, got, want)
	}
}

// expectClose reads until the server's close frame and checks its code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(recvTimeout))
	for {
		_, b, err := c.conn.ReadMessage()
		if err == nil {
			continue // frames queued before the close
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			c.t.Fatalf("want close %d, got %v (last frame %s)", code, err, b)
		}
		if ce.Code != code {
			c.t.Fatalf("want close code %d, got %d (%q)", code, ce.Code, ce.Text)
		}
		return
	}
}

// join joins topic with V2 refs and expects an ok reply.
func (c *client) join(joinRef, ref, topic string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",{}]`, joinRef, ref, topic))
	c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"ok","response":{}}]`, joinRef, ref, topic))
}

// jsonEqual compares two JSON texts after parsing.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// httpDo performs a request and returns its status and body.
func httpDo(t *testing.T, method, path string, hdr http.Header, body string) (int, string) {
	t.Helper()
	resp := doAcrossReload(t, &http.Client{Timeout: recvTimeout}, method, path, hdr, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// doAcrossReload performs a request on the shared Caddy with cl, repeating
// it while the previous server of a config load drops it (see
// retriableAfterReload).
func doAcrossReload(t *testing.T, cl *http.Client, method, path string, hdr http.Header, body string) *http.Response {
	t.Helper()
	var resp *http.Response
	var err error
	for try := 0; ; try++ {
		var req *http.Request
		req, err = http.NewRequest(method, baseURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err = cl.Do(req)
		if err == nil || !retriableAfterReload(err) || try == 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// retriableAfterReload reports whether err is how the previous server of
// a config load (grace_period 1ns; both listen with SO_REUSEPORT) drops a
// connection it had just accepted: a reset or an EOF before any response.
// Such a request never reached the handler, so repeating it is safe.
func retriableAfterReload(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricsText is the admin endpoint's /metrics page.
func metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return string(b)
}

// webhooksSettled waits until the handler at path holds sockets open
// sockets and has no leave notification queued or in delivery. A socket
// leaves the count only after its leave notifications were queued, so
// once this holds every notification of the sockets that closed has
// reached the app (or failed): a check that none was sent can follow.
func webhooksSettled(t *testing.T, path string, sockets int) {
	t.Helper()
	want := []string{
		fmt.Sprintf("caddy_channels_sockets{path=%q,transport=\"websocket\"} %d\n", path, sockets),
		fmt.Sprintf("caddy_channels_webhook_pending_notifications{path=%q} 0\n", path),
	}
	eventually(t, recvTimeout, fmt.Sprintf("%d sockets and no pending notification on %s", sockets, path), func() bool {
		text := metricsText(t)
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
}

// q builds a query string.
func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}
