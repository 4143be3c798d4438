package integration

// Abuse limits through a real Caddy: per-socket message, event and join
// rates (error reply {"reason":"rate limited"}, then 1008 once the
// refusals reach (flood_factor-1)× the limit), open sockets per client
// address and per id, and the connect rate per address (429; LongPoll:
// HTTP 429 {"status":500}). The client address is Caddy's: X-Forwarded-For
// counts only from a trusted proxy.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// siteTrusting is site() on a server that trusts 127.0.0.0/8 as proxies,
// so that X-Forwarded-For sets the client address.
func siteTrusting(t *testing.T, channelsBlock string) string {
	t.Helper()
	const anchor = "persist_config off\n"
	if !strings.Contains(globalOptions, anchor) {
		t.Fatalf("globalOptions lacks %q", anchor)
	}
	g := strings.Replace(globalOptions, anchor, anchor+"\tservers {\n\t\ttrusted_proxies static 127.0.0.0/8\n\t}\n", 1)
	return g + "http://localhost:9080 {\n" + channelsBlock + "\n\trespond \"fallthrough\" 404\n}\n"
}

// from is the header of a request forwarded for ip.
func from(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

// framesUntilClose reads every frame up to the server's close and returns
// them with the close code.
func (c *client) framesUntilClose() ([]string, int) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(recvTimeout))
	var frames []string
	for {
		_, b, err := c.conn.ReadMessage()
		if err == nil {
			frames = append(frames, string(b))
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			c.t.Fatalf("want a close frame, got %v after %q", err, frames)
		}
		return frames, ce.Code
	}
}

// splitFrames sorts V2 frames into replies (a ref) and the rest
// (broadcasts, ref null), keeping their order.
func splitFrames(t *testing.T, frames []string) (replies, others []string) {
	t.Helper()
	for _, f := range frames {
		var arr []json.RawMessage
		if err := json.Unmarshal([]byte(f), &arr); err != nil || len(arr) != 5 {
			t.Fatalf("not a V2 frame: %s", f)
		}
		if string(arr[1]) == "null" {
			others = append(others, f)
		} else {
			replies = append(replies, f)
		}
	}
	return replies, others
}

// sameFrames fails unless got and want hold the same frames (as JSON), in
// order.
func sameFrames(t *testing.T, what string, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = jsonEqual([]byte(got[i]), []byte(want[i]))
	}
	if !ok {
		t.Fatalf("%s:\n got: %s\nwant: %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// rateLimited is the error reply of a refused push or join.
func rateLimited(joinRef, ref, topic string) string {
	return fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"error","response":{"reason":"rate limited"}}]`, joinRef, ref, topic)
}

// okReply is an empty ok reply.
func okReply(joinRef, ref, topic string) string {
	return fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"ok","response":{}}]`, joinRef, ref, topic)
}

// lpOpenWith makes a LongPoll open request with hdr and returns the HTTP
// status and the raw body.
func lpOpenWith(t *testing.T, path, query string, hdr http.Header) (int, string) {
	t.Helper()
	return httpDo(t, http.MethodGet, path+"/longpoll?"+query, hdr, "")
}

// wantLPRefused fails unless a LongPoll open answers HTTP 429 with
// {"status":500} (phoenix.js retries that with backoff).
func wantLPRefused(t *testing.T, path, query string, hdr http.Header) {
	t.Helper()
	status, body := lpOpenWith(t, path, query, hdr)
	if status != http.StatusTooManyRequests || !jsonEqual([]byte(body), []byte(`{"status":500}`)) {
		t.Fatalf("LongPoll open: HTTP %d %s, want 429 {\"status\":500}", status, body)
	}
}

// wantLPOpened fails unless a LongPoll open answers a new session; it
// returns the session token.
func wantLPOpened(t *testing.T, path, query string, hdr http.Header) string {
	t.Helper()
	status, body := lpOpenWith(t, path, query, hdr)
	var a lpAnswer
	if err := json.Unmarshal([]byte(body), &a); status != http.StatusOK || err != nil || a.Status != 410 || a.Token == "" {
		t.Fatalf("LongPoll open: HTTP %d %s, want a session", status, body)
	}
	return a.Token
}

// limit messages 5/1h (nothing refills during the test): heartbeats and
// joins do not count; exactly 5 pushes get their ok reply and broadcast,
// the next 10 ((3-1)×5, flood_factor 3) get {"reason":"rate limited"},
// the 16th closes the socket with 1008. A neighbour in the topic gets
// exactly the 5 broadcasts. The limit is per socket: a new socket of the
// same client pushes again.
func TestLimitMessagesThenFlood(t *testing.T) {
	path := freshPath("lim-msg")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		limit messages 5/1h
		channel room:* {
			join allow
			handle_in new_msg broadcast
		}
	}`, path)))
	const topic = "room:flood"
	a := dial(t, path, v2q, nil)
	b := dial(t, path, v2q, nil)
	a.join("1", "1", topic)
	b.join("1", "1", topic)
	for i := range 3 {
		a.heartbeat(fmt.Sprintf("h%d", i))
	}

	const pushes = 16
	for i := 1; i <= pushes; i++ {
		a.send(fmt.Sprintf(`["1","%d",%q,"new_msg",{"n":%d}]`, 100+i, topic, i))
	}
	frames, code := a.framesUntilClose()
	if code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008 (frames %q)", code, frames)
	}
	replies, broadcasts := splitFrames(t, frames)
	var wantReplies, wantBroadcasts []string
	for i := 1; i <= 5; i++ {
		wantReplies = append(wantReplies, okReply("1", fmt.Sprint(100+i), topic))
		wantBroadcasts = append(wantBroadcasts, fmt.Sprintf(`[null,null,%q,"new_msg",{"n":%d}]`, topic, i))
	}
	for i := 6; i <= 15; i++ {
		wantReplies = append(wantReplies, rateLimited("1", fmt.Sprint(100+i), topic))
	}
	sameFrames(t, "sender's replies", replies, wantReplies)
	sameFrames(t, "sender's broadcasts", broadcasts, wantBroadcasts)

	// The neighbour got the 5 broadcasts and nothing else.
	for _, w := range wantBroadcasts {
		b.expect(w)
	}
	b.heartbeat("flush")

	c := dial(t, path, v2q, nil)
	c.join("1", "1", topic)
	c.send(`["1","2","room:flood","new_msg",{"n":"fresh"}]`)
	c.expect(`[null,null,"room:flood","new_msg",{"n":"fresh"}]`)
	c.expect(okReply("1", "2", topic))
	b.expect(`[null,null,"room:flood","new_msg",{"n":"fresh"}]`)

	// 11 refusals (the 16th push counts too), one flood.
	wantRefusals(t, path, map[string]int{"message_rate": 11, "flood": 1})
}

// handle_in … limit 2/1h limits that event only, per socket: other events
// and other sockets go on; 2×2 refusals are answered, the 5th closes 1008.
func TestLimitEventRate(t *testing.T) {
	path := freshPath("lim-event")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		channel room:* {
			join allow
			handle_in new_msg broadcast limit 2/1h
			handle_in ping reply
		}
	}`, path)))
	const topic = "room:ev"
	a := dial(t, path, v2q, nil)
	b := dial(t, path, v2q, nil)
	a.join("1", "1", topic)
	b.join("1", "1", topic)

	msg := func(ref int) string { return fmt.Sprintf(`["1","%d",%q,"new_msg",{"n":%d}]`, ref, topic, ref) }
	ping := func(ref int) string { return fmt.Sprintf(`["1","%d",%q,"ping",{"p":%d}]`, ref, topic, ref) }
	pingOK := func(ref int) string {
		return fmt.Sprintf(`["1","%d",%q,"phx_reply",{"status":"ok","response":{"p":%d}}]`, ref, topic, ref)
	}
	// 2 new_msg pass, then the bucket is empty; ping is not limited.
	for _, f := range []string{msg(2), msg(3), ping(4), msg(5), ping(6), msg(7)} {
		a.send(f)
	}
	for _, n := range []int{2, 3} {
		a.expect(fmt.Sprintf(`[null,null,%q,"new_msg",{"n":%d}]`, topic, n))
		a.expect(okReply("1", fmt.Sprint(n), topic))
		b.expect(fmt.Sprintf(`[null,null,%q,"new_msg",{"n":%d}]`, topic, n))
	}
	a.expect(pingOK(4))
	a.expect(rateLimited("1", "5", topic))
	a.expect(pingOK(6))
	a.expect(rateLimited("1", "7", topic))

	// b has its own bucket.
	b.send(`["1","2","room:ev","new_msg",{"n":"b"}]`)
	b.expect(`[null,null,"room:ev","new_msg",{"n":"b"}]`)
	b.expect(okReply("1", "2", topic))
	a.expect(`[null,null,"room:ev","new_msg",{"n":"b"}]`)

	// Refusals 3 and 4 are answered, the 5th floods.
	for _, f := range []string{msg(8), msg(9), msg(10)} {
		a.send(f)
	}
	frames, code := a.framesUntilClose()
	if code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008 (frames %q)", code, frames)
	}
	sameFrames(t, "frames before the close", frames, []string{rateLimited("1", "8", topic), rateLimited("1", "9", topic)})
	b.heartbeat("flush")
	wantRefusals(t, path, map[string]int{"event_rate": 5, "flood": 1})
}

// limit joins 2/1h: two joins pass, the next get {"reason":"rate
// limited"}; leaves and pushes are not joins; the 5th refused join closes
// the socket with 1008 (flood_factor 3).
func TestLimitJoins(t *testing.T) {
	path := freshPath("lim-join")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		limit joins 2/1h
		channel room:* {
			join allow
			handle_in ping reply
		}
	}`, path)))
	a := dial(t, path, v2q, nil)
	a.join("1", "1", "room:1")
	a.join("2", "2", "room:2")
	a.send(`["3","3","room:3","phx_join",{}]`)
	a.expect(rateLimited("3", "3", "room:3"))
	a.send(`["1","4","room:1","phx_leave",{}]`)
	a.expect(okReply("1", "4", "room:1"))
	a.expect(`["1","1","room:1","phx_close",{}]`)
	a.send(`["5","5","room:1","phx_join",{}]`)
	a.expect(rateLimited("5", "5", "room:1"))
	a.send(`["2","6","room:2","ping",{}]`)
	a.expect(okReply("2", "6", "room:2"))
	for _, ref := range []string{"7", "8", "9"} {
		a.send(fmt.Sprintf(`[%q,%q,"room:x%s","phx_join",{}]`, ref, ref, ref))
	}
	frames, code := a.framesUntilClose()
	if code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008 (frames %q)", code, frames)
	}
	sameFrames(t, "frames before the close", frames, []string{rateLimited("7", "7", "room:x7"), rateLimited("8", "8", "room:x8")})
	// Another socket joins freely.
	dial(t, path, v2q, nil).join("1", "1", "room:1")
	wantRefusals(t, path, map[string]int{"join_rate": 5, "flood": 1})
}

// max_sockets_per_ip 2 behind a trusted proxy: each X-Forwarded-For address
// holds 2 open sockets (WebSocket or LongPoll), the 3rd gets 429 (LongPoll:
// 429 {"status":500}); a closed socket frees its place. Without trusted
// proxies the header is ignored: every socket is 127.0.0.1's.
func TestLimitSocketsPerIPForwarded(t *testing.T) {
	path := freshPath("lim-ip")
	loadCaddyfile(t, siteTrusting(t, fmt.Sprintf(`	channels {
		path %s
		max_sockets_per_ip 2
		channel room:* {
			join allow
		}
	}`, path)))
	const ip1, ip2 = "203.0.113.1", "203.0.113.2"
	one := hsWantStatus(t, path, v2q, from(ip1), 101)
	hsWantStatus(t, path, v2q, from(ip1), 101)
	hsWantStatus(t, path, v2q, from(ip1), 429)
	wantLPRefused(t, path, v2q, from(ip1))
	hsWantStatus(t, path, v2q, from(ip2), 101)
	wantLPOpened(t, path, v2q, from(ip2)) // a LongPoll session holds a place too
	hsWantStatus(t, path, v2q, from(ip2), 429)
	hsWantStatus(t, path, v2q, nil, 101).join("1", "1", "room:local") // 127.0.0.1 itself
	one.join("1", "1", "room:one")

	one.conn.Close()
	waitSockets(t, path, 3) // ip1's other one, ip2's and the local one
	hsWantStatus(t, path, v2q, from(ip1), 101)
	wantRefusals(t, path, map[string]int{"sockets_per_ip": 3})

	// Without trusted proxies, X-Forwarded-For is the client's word only.
	untrusted := freshPath("lim-ip-untrusted")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		max_sockets_per_ip 2
		channel room:* {
			join allow
		}
	}`, untrusted)))
	hsWantStatus(t, untrusted, v2q, from(ip1), 101)
	hsWantStatus(t, untrusted, v2q, from(ip2), 101)
	hsWantStatus(t, untrusted, v2q, from("203.0.113.3"), 429)
	wantLPRefused(t, untrusted, v2q, from("203.0.113.4"))
	wantRefusals(t, untrusted, map[string]int{"sockets_per_ip": 2})
}

// max_sockets_per_id 2: a third socket with the same id gets 429 (LongPoll
// too), other ids and anonymous sockets are not capped, and a closed socket
// frees its place.
func TestLimitSocketsPerID(t *testing.T) {
	path := freshPath("lim-id")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		id "has(params.user) ? 'user_socket:' + params.user : ''"
		max_sockets_per_id 2
		channel room:* {
			join allow
		}
	}`, path)))
	u1 := q("vsn", "2.0.0", "user", "u1")
	first := hsWantStatus(t, path, u1, nil, 101)
	hsWantStatus(t, path, u1, nil, 101)
	hsWantStatus(t, path, u1, nil, 429)
	wantLPRefused(t, path, u1, nil)
	hsWantStatus(t, path, q("vsn", "2.0.0", "user", "u2"), nil, 101)
	for range 3 {
		hsWantStatus(t, path, v2q, nil, 101)
	}
	first.join("1", "1", "room:id")

	first.conn.Close()
	waitSockets(t, path, 5)
	hsWantStatus(t, path, u1, nil, 101).join("1", "1", "room:id")
	wantRefusals(t, path, map[string]int{"sockets_per_id": 2})
}

// limit connects 2/1h per ip: an address gets two new sockets whatever
// became of them, then 429 (LongPoll: 429 {"status":500}); other addresses
// have their own budget, and requests on an open LongPoll session are not
// connects.
func TestLimitConnectRatePerIP(t *testing.T) {
	path := freshPath("lim-connects")
	loadCaddyfile(t, siteTrusting(t, fmt.Sprintf(`	channels {
		path %s
		limit connects 2/1h per ip
		longpoll {
			window 1s
		}
		channel room:* {
			join allow
		}
	}`, path)))
	const ip1, ip2, ip3 = "198.51.100.1", "198.51.100.2", "198.51.100.3"
	a := hsWantStatus(t, path, v2q, from(ip1), 101)
	b := hsWantStatus(t, path, v2q, from(ip1), 101)
	a.conn.Close()
	b.conn.Close()
	waitSockets(t, path, 0)
	hsWantStatus(t, path, v2q, from(ip1), 429)
	wantLPRefused(t, path, v2q, from(ip1))

	hsWantStatus(t, path, v2q, from(ip2), 101).join("1", "1", "room:c")
	wantLPOpened(t, path, v2q, from(ip2))
	hsWantStatus(t, path, v2q, from(ip2), 429)

	// ip3: one LongPoll open, then posts on its session, then one more
	// connect, which is its second.
	token := wantLPOpened(t, path, v2q, from(ip3))
	for i := range 3 {
		status, body := httpDo(t, http.MethodPost, path+"/longpoll?"+v2q+"&token="+token,
			http.Header{"X-Forwarded-For": {ip3}, "Content-Type": {"application/json"}},
			fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, i+1))
		if status != http.StatusOK || !strings.Contains(body, `"status":200`) {
			t.Fatalf("post on the session: HTTP %d %s", status, body)
		}
	}
	hsWantStatus(t, path, v2q, from(ip3), 101)
	hsWantStatus(t, path, v2q, from(ip3), 429)
	wantRefusals(t, path, map[string]int{"connect_rate": 4})
}
