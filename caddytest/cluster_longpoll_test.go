package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rrLongPoll is a LongPoll client whose every request goes to the next
// node in turn, as behind a round-robin balancer without stickiness.
type rrLongPoll struct {
	t     *testing.T
	bases []string // http://…/socket/longpoll of each node
	n     int
	token string
	got   []string // frames received, oldest first
}

// do sends one request to the next node and decodes the answer.
func (c *rrLongPoll) do(method, query, body string) (base string, a struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}) {
	c.t.Helper()
	base = c.bases[c.n%len(c.bases)]
	c.n++
	u := base + "?" + query
	if c.token != "" {
		u += "&token=" + c.token
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &a); err != nil {
		c.t.Fatalf("%s %s: HTTP %d %q: %v", method, u, resp.StatusCode, b, err)
	}
	if a.Token != "" {
		c.token = a.Token
	}
	return base, a
}

// post sends lines, expecting {"status":200}.
func (c *rrLongPoll) post(lines ...string) {
	c.t.Helper()
	if base, a := c.do("POST", "vsn=2.0.0", strings.Join(lines, "\n")); a.Status != 200 {
		c.t.Fatalf("POST via %s: status %d", base, a.Status)
	}
}

// pollFor polls (each poll on the next node) until a received frame
// contains want, and returns the frames received meanwhile.
func (c *rrLongPoll) pollFor(want string) {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		for _, f := range c.got {
			if strings.Contains(f, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no frame with %s; got %q", want, c.got)
		}
		base, a := c.do("GET", "vsn=2.0.0", "")
		switch a.Status {
		case 200:
			c.got = append(c.got, a.Messages...)
		case 204:
		default:
			c.t.Fatalf("poll via %s: status %d", base, a.Status)
		}
	}
}

// testClusterLongPoll drives one LongPoll session through both nodes in
// turn: every GET and POST lands on the other node than the one before.
func testClusterLongPoll(t *testing.T, wsURLs []string) {
	var bases []string
	for _, u := range wsURLs {
		bases = append(bases, "http"+strings.TrimPrefix(u, "ws")+"/longpoll")
	}
	c := &rrLongPoll{t: t, bases: bases}
	if _, a := c.do("GET", "vsn=2.0.0&user=lp", ""); a.Status != 410 || c.token == "" {
		t.Fatalf("open: %+v", a)
	}
	room := fmt.Sprintf("room:lp%d", time.Now().UnixNano())
	feed := fmt.Sprintf("feed:lp%d", time.Now().UnixNano())
	c.post(fmt.Sprintf(`["1","1",%q,"phx_join",{"name":"lena"}]`, room))
	c.post(fmt.Sprintf(`["2","2",%q,"phx_join",{}]`, feed))
	c.pollFor(`"presence_state"`)
	c.pollFor(`["2","2",` + fmt.Sprintf("%q", feed) + `,"phx_reply",{"response":{"_position"`)

	// A WebSocket client on node B sees lena, and lena sees it.
	ws, _, err := websocket.DefaultDialer.Dial(wsURLs[1]+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`["1","1",%q,"phx_join",{"name":"walt"}]`, room)))
	wsWait := func(want string) {
		t.Helper()
		for {
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("websocket: waiting for %s: %v", want, err)
			}
			if strings.Contains(string(b), want) {
				return
			}
		}
	}
	wsWait(`"lena"`)
	c.pollFor(`"walt"`)

	// Pushes from the LongPoll session reach the WebSocket client.
	for i := 1; i <= 5; i++ {
		c.post(fmt.Sprintf(`["1","m%d",%q,"msg",{"lp":%d}]`, i, room, i))
	}
	for i := 1; i <= 5; i++ {
		wsWait(fmt.Sprintf(`{"lp":%d}`, i))
	}

	// Broadcasts published on both nodes reach the session exactly once,
	// in order, however its polls are spread.
	const n = 60
	for i := 1; i <= n; i++ {
		node := strings.TrimSuffix(bases[i%2], "/longpoll")
		req, _ := http.NewRequest("POST", node+"/api/broadcast", strings.NewReader(fmt.Sprintf(`{"topic":%q,"event":"tick","payload":{"n":%d}}`, feed, i)))
		req.Header.Set("Authorization", "Bearer "+clusterAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("broadcast %d: %d", i, resp.StatusCode)
		}
		if i%10 == 0 { // some polls while publishing
			if _, a := c.do("GET", "vsn=2.0.0", ""); a.Status == 200 {
				c.got = append(c.got, a.Messages...)
			}
		}
	}
	c.pollFor(fmt.Sprintf(`{"n":%d}`, n))
	var seq []int
	for _, f := range c.got {
		var fr []json.RawMessage
		if json.Unmarshal([]byte(f), &fr) == nil && len(fr) == 5 && string(fr[3]) == `"tick"` {
			var p struct{ N int }
			json.Unmarshal(fr[4], &p)
			seq = append(seq, p.N)
		}
	}
	if len(seq) != n {
		t.Fatalf("%d ticks, want %d: %v", len(seq), n, seq)
	}
	for i, v := range seq {
		if v != i+1 {
			t.Fatalf("ticks out of order or repeated: %v", seq)
		}
	}
	t.Logf("one LongPoll session served by %d requests alternating between 2 nodes", c.n)
}
