package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSplitV2(t *testing.T) {
	tests := []struct {
		in      string
		el      [4]string // "" stands for nil
		payload string
		valid   bool
	}{
		{`["1","2","room:1","phx_join",{}]`, [4]string{`"1"`, `"2"`, `"room:1"`, `"phx_join"`}, `{}`, true},
		{`[null,"5","phoenix","heartbeat",{}]`, [4]string{"", `"5"`, `"phoenix"`, `"heartbeat"`}, `{}`, true},
		{`[3,4,"a,b","e\"v",{"x":[1,2]}]`, [4]string{"3", "4", `"a,b"`, `"e\"v"`}, `{"x":[1,2]}`, true},
		{`["1","2","t","e"]`, [4]string{}, "", false},
		{`["1","2","t","e",]`, [4]string{}, "", false},
		{`["1","2",null,"e",{}]`, [4]string{}, "", false},
		{`["1","2","t`, [4]string{}, "", false},
		{`["\`, [4]string{}, "", false},
		{`[]`, [4]string{}, "", false},
		{`{}`, [4]string{}, "", false},
		{``, [4]string{}, "", false},
	}
	for _, tt := range tests {
		el, payload, valid := splitV2([]byte(tt.in))
		if valid != tt.valid {
			t.Errorf("splitV2(%s) valid = %v, want %v", tt.in, valid, tt.valid)
			continue
		}
		if !valid {
			continue
		}
		for i := range el {
			if string(el[i]) != tt.el[i] || (tt.el[i] == "") != (el[i] == nil) {
				t.Errorf("splitV2(%s) element %d = %q, want %q", tt.in, i, el[i], tt.el[i])
			}
		}
		if string(payload) != tt.payload {
			t.Errorf("splitV2(%s) payload = %s, want %s", tt.in, payload, tt.payload)
		}
	}
}

func FuzzSplitV2(f *testing.F) {
	for _, s := range []string{`["1","2","room:1","phx_join",{}]`, `[null,"5","phoenix","heartbeat",{}]`, `[3,4,"a,b","e\"v",{"x":[1,2]}]`, `["\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		el, payload, valid := splitV2(b)
		if !valid {
			return
		}
		// Every part is a subslice of the frame, in order, and the frame
		// is rebuilt from them exactly.
		var re []byte
		re = append(re, '[')
		for _, e := range el {
			re = append(append(re, orNull(e)...), ',')
		}
		re = append(append(re, payload...), ']')
		if !bytes.Equal(re, b) {
			t.Fatalf("rebuilt %q from %q", re, b)
		}
		if topic, err := unquote(el[2]); err == nil && !bytes.Contains(el[2], []byte{'\\'}) && !bytes.Equal(topic, el[2][1:len(el[2])-1]) {
			t.Fatalf("unquote(%q) = %q", el[2], topic)
		}
	})
}

// TestFrame checks the WebSocket headers of the three length classes.
func TestFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000} {
		f := frame(1, bytes.Repeat([]byte("x"), n))
		var hdr []byte
		switch {
		case n <= 125:
			hdr = []byte{0x81, byte(n)}
		case n <= 0xFFFF:
			hdr = []byte{0x81, 126, byte(n >> 8), byte(n)}
		default:
			hdr = []byte{0x81, 127, 0, 0, 0, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}
		}
		if !bytes.Equal(f[:len(hdr)], hdr) || len(f) != len(hdr)+n {
			t.Errorf("frame of %d bytes: header % x, length %d", n, f[:len(hdr)], len(f))
		}
	}
}

// testClient is a WebSocket client of the ceiling server.
type testClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, url string) *testClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testClient{t: t, conn: conn}
}

func (c *testClient) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads the next frames and compares them with want, in order.
func (c *testClient) expect(want ...string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, w := range want {
		_, got, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("reading %s: %v", w, err)
		}
		if string(got) != w {
			c.t.Fatalf("got %s, want %s", got, w)
		}
	}
}

func newTestServer(t *testing.T, naive bool) *httptest.Server {
	s := newServer()
	s.naive = naive
	mux := http.NewServeMux()
	mux.HandleFunc("/socket/websocket", s.serveWS)
	mux.HandleFunc("/socket/api/broadcast", s.serveBroadcast)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestScenarios(t *testing.T) {
	t.Run("writev", func(t *testing.T) { testScenarios(t, false) })
	t.Run("naive", func(t *testing.T) { testScenarios(t, true) })
}

func testScenarios(t *testing.T, naive bool) {
	srv := newTestServer(t, naive)
	a, b := dial(t, srv.URL), dial(t, srv.URL)

	a.send(`[null,"1","phoenix","heartbeat",{}]`)
	a.expect(`[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	a.send(`["2","2","room:1","echo",{}]`)
	a.expect(`[null,"2","room:1","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)

	a.send(`["3","3","room:1","phx_join",{"p":1}]`)
	a.expect(`["3","3","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	b.send(`["1","1","room:1","phx_join",{}]`)
	b.expect(`["1","1","room:1","phx_reply",{"response":{},"status":"ok"}]`)

	a.send(`["3","4","room:1","echo",{"ts":123,"body":"hi"}]`)
	a.expect(`["3","4","room:1","phx_reply",{"response":{"ts":123,"body":"hi"},"status":"ok"}]`)
	a.send(`["3","5","room:1","other",{}]`)
	a.expect(`["3","5","room:1","phx_reply",{"response":{"reason":"unhandled event"},"status":"error"}]`)

	a.send(`["3","6","room:1","msg",{"n":1}]`)
	a.expect(`[null,null,"room:1","msg",{"n":1}]`, `["3","6","room:1","phx_reply",{"response":{},"status":"ok"}]`)
	b.expect(`[null,null,"room:1","msg",{"n":1}]`)

	post := func(key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/socket/api/broadcast", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("wrong", `{"topic":"room:1","event":"e","payload":{}}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", code)
	}
	if code := post(apiKey, `{"topic":"room:1","event":"e"}`); code != http.StatusBadRequest {
		t.Fatalf("missing payload: %d", code)
	}
	if code := post(apiKey, `[{"topic":"room:1","event":"e","payload":{"i":1}},{"topic":"room:\u0031","event":"e","payload":{"i":2}}]`); code != http.StatusAccepted {
		t.Fatalf("broadcast: %d", code)
	}
	for _, c := range []*testClient{a, b} {
		c.expect(`[null,null,"room:1","e",{"i":1}]`, `[null,null,"room:\u0031","e",{"i":2}]`)
	}

	// Leave, then a duplicate join of b.
	a.send(`["3","7","room:1","phx_leave",{}]`)
	a.expect(`["3","7","room:1","phx_reply",{"response":{},"status":"ok"}]`, `["3","3","room:1","phx_close",{}]`)
	b.send(`["2","2","room:1","phx_join",{}]`)
	b.expect(`["2","2","room:1","phx_reply",{"response":{},"status":"ok"}]`, `["1","1","room:1","phx_close",{}]`)
	if code := post(apiKey, `{"topic":"room:1","event":"e","payload":{"i":3}}`); code != http.StatusAccepted {
		t.Fatalf("broadcast: %d", code)
	}
	b.expect(`[null,null,"room:1","e",{"i":3}]`) // once, to the new join only
	b.send(`["2","3","room:1","echo",{}]`)
	b.expect(`["2","3","room:1","phx_reply",{"response":{},"status":"ok"}]`)

	// A close from the client is answered with a close frame.
	a.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := a.conn.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("after close: %v", err)
	}
}

func TestRefusesV1(t *testing.T) {
	srv := newTestServer(t, false)
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/socket/websocket", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial without vsn: %v, %v", resp, err)
	}
}

// writeCounter is a net.Conn that records each Write.
type writeCounter struct {
	net.Conn
	writes [][]byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// TestWriteEach checks that the naive mode writes each frame with its own
// Write, in order.
func TestWriteEach(t *testing.T) {
	batch := [][]byte{[]byte("a"), []byte("bc"), []byte("def")}
	var w writeCounter
	if err := writeEach(&w, batch); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) != len(batch) {
		t.Fatalf("%d writes for %d frames", len(w.writes), len(batch))
	}
	for i, f := range batch {
		if !bytes.Equal(w.writes[i], f) {
			t.Fatalf("write %d = %q, want %q", i, w.writes[i], f)
		}
	}
}
