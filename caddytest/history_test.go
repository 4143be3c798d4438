package integration

// History and catch-up: positions in the ref of broadcast frames, "_since"
// replay in order with no gap and no duplicate while broadcasts continue,
// "_recovered" for stale epochs and positions out of reach, on_join.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const historyRules = `
		api_key k
		channel feed:* {
			join allow
			handle_in post broadcast
			history 50
			presence
		}
		channel load:* {
			join allow
			handle_in post broadcast
			history 2000
		}
		channel seed:* {
			join allow
			history 10 ttl 1h {
				on_join 3
			}
		}`

// apiBroadcast publishes one message through the HTTP API.
func apiBroadcast(t *testing.T, topic, event, payload string) {
	t.Helper()
	status, body := httpDo(t, "POST", "/socket/api/broadcast", http.Header{"Authorization": {"Bearer k"}},
		fmt.Sprintf(`{"topic":%q,"event":%q,"payload":%s}`, topic, event, payload))
	if status != 202 {
		t.Fatalf("broadcast: %d %s", status, body)
	}
}

// position splits a ref "<epoch>:<seq>".
func position(t *testing.T, ref any) (string, int) {
	t.Helper()
	s, ok := ref.(string)
	i := strings.LastIndexByte(s, ':')
	if !ok || i <= 0 {
		t.Fatalf("ref %v is not a position", ref)
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("ref %v: %v", ref, err)
	}
	return s[:i], n
}

// joinResponse decodes the response of an ok join reply.
func joinResponse(t *testing.T, f frame) map[string]any {
	t.Helper()
	var p struct {
		Response map[string]any `json:"response"`
	}
	if err := json.Unmarshal(f.Payload, &p); err != nil || p.Response == nil {
		t.Fatalf("join reply payload %s is not an object response", f.Payload)
	}
	return p.Response
}

// pushPaced has pub push total "post" messages {"i":1..total} to topic
// (joined with join_ref "1"), paced a little, on its own goroutine; the
// channel is closed when all are written.
func pushPaced(pub *client, topic string, total int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i++ {
			pub.conn.WriteMessage(1, []byte(fmt.Sprintf(`["1","m%d",%q,"post",{"i":%d}]`, i, topic, i)))
			if i%20 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return done
}

// awaitBroadcast reads c's "post" broadcasts until one at position seq
// or later: that many were published by then.
func awaitBroadcast(c *client, seq int) {
	c.t.Helper()
	for {
		if _, n := position(c.t, c.nextEvent("post").Ref); n >= seq {
			return
		}
	}
}

// uniqueTopic returns a topic no earlier test run used: the hub, and so
// its history, survives config reloads.
func uniqueTopic(prefix string) string {
	return fmt.Sprintf("%s:%d", prefix, time.Now().UnixNano())
}

func TestHistoryPositionsAndReplay(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+historyRules+"\n}"))
	topic := uniqueTopic("feed")
	a := dial(t, "/socket", "vsn=2.0.0", nil)
	resp := joinResponse(t, a.joinWith("1", "1", topic, `{}`))
	if _, ok := resp["_recovered"]; ok {
		t.Errorf("a join without _since got _recovered: %v", resp)
	}
	start, _ := resp["_position"].(string)
	epoch, seq0 := position(t, start)
	if seq0 != 0 {
		t.Errorf("new stream's position = %s, want seq 0", start)
	}
	for i := 1; i <= 5; i++ {
		apiBroadcast(t, topic, "msg", fmt.Sprintf(`{"n":%d}`, i))
	}
	for i := 1; i <= 5; i++ {
		f := a.nextEvent("msg")
		e, n := position(t, f.Ref)
		if e != epoch || n != i || f.JoinRef != nil || string(f.Payload) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("broadcast %d = %+v (payload %s)", i, f, f.Payload)
		}
	}
	// Presence diffs of the same topic are not part of the stream.
	p := dial(t, "/socket", "vsn=2.0.0", nil)
	p.joinWith("1", "1", topic, `{}`)
	apiBroadcast(t, topic, "msg", `{"n":6}`)
	if _, n := position(t, a.nextEvent("msg").Ref); n != 6 {
		t.Fatalf("seq after presence diffs = %d, want 6", n)
	}

	// Rejoin from 2: 3..6 replayed after the reply, then live 7.
	b := dial(t, "/socket", "vsn=2.0.0", nil)
	resp = joinResponse(t, b.joinWith("1", "1", topic, fmt.Sprintf(`{"_since":"%s:2"}`, epoch)))
	if resp["_recovered"] != true || resp["_position"] != epoch+":6" {
		t.Fatalf("join with _since = %v", resp)
	}
	apiBroadcast(t, topic, "msg", `{"n":7}`)
	for want := 3; want <= 7; want++ {
		f := b.nextEvent("msg")
		if _, n := position(t, f.Ref); n != want || string(f.Payload) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Fatalf("replay: got seq %d payload %s, want %d", n, f.Payload, want)
		}
	}

	// A stale epoch, a position from the future and a malformed one: not
	// recovered, no replay.
	for i, since := range []string{`"nope:3"`, fmt.Sprintf(`"%s:99"`, epoch), `"garbage"`, `42`} {
		c := dial(t, "/socket", "vsn=2.0.0", nil)
		resp := joinResponse(t, c.joinWith("1", "1", topic, `{"_since":`+since+`}`))
		if resp["_recovered"] != false || resp["_position"] != fmt.Sprintf("%s:%d", epoch, 7+i) {
			t.Fatalf("_since %s: response %v", since, resp)
		}
		apiBroadcast(t, topic, "msg", `{"live":true}`)
		if f := c.nextEvent("msg"); string(f.Payload) != `{"live":true}` {
			t.Fatalf("_since %s: first message %s, want the live one", since, f.Payload)
		}
	}
}

func TestHistoryOnJoin(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+historyRules+"\n}"))
	topic := uniqueTopic("seed")
	for i := 1; i <= 5; i++ {
		apiBroadcast(t, topic, "msg", fmt.Sprintf(`{"n":%d}`, i))
	}
	c := dial(t, "/socket", "vsn=2.0.0", nil)
	resp := joinResponse(t, c.joinWith("1", "1", topic, `{}`))
	_, latest := position(t, resp["_position"])
	if latest != 5 {
		t.Fatalf("_position = %v", resp["_position"])
	}
	for want := 3; want <= 5; want++ {
		if _, n := position(t, c.nextEvent("msg").Ref); n != want {
			t.Fatalf("on_join pushed seq %d, want %d", n, want)
		}
	}
	// V1 clients get the position in the ref field too.
	v1 := dial(t, "/socket", "vsn=1.0.0", nil)
	v1.send(fmt.Sprintf(`{"topic":%q,"event":"phx_join","payload":{},"ref":"1"}`, topic))
	for i := 0; i < 4; i++ { // the reply, then 3 pushes
		_, b := v1.recv()
		var m struct {
			Event string `json:"event"`
			Ref   any    `json:"ref"`
		}
		json.Unmarshal(b, &m)
		if i > 0 {
			if _, n := position(t, m.Ref); m.Event != "msg" || n != i+2 {
				t.Fatalf("V1 on_join frame %d: %s", i, b)
			}
		}
	}
}

// TestHistoryCatchUpUnderLoad rejoins with _since while a publisher keeps
// broadcasting: every message arrives exactly once, in order.
func TestHistoryCatchUpUnderLoad(t *testing.T) {
	loadCaddyfile(t, site("channels {\n"+historyRules+"\n}"))
	topic := uniqueTopic("load")
	pub := dial(t, "/socket", "vsn=2.0.0", nil)
	pub.joinWith("1", "1", topic, `{}`)
	first := dial(t, "/socket", "vsn=2.0.0", nil)
	resp := joinResponse(t, first.joinWith("1", "1", topic, `{}`))
	epoch, _ := position(t, resp["_position"])

	const total = 400
	done := pushPaced(pub, topic, total)
	// The first subscriber reads a while, then "loses" its socket.
	last := 0
	for last < 60 {
		f := first.nextEvent("post")
		_, n := position(t, f.Ref)
		if n != last+1 {
			t.Fatalf("live stream: seq %d after %d", n, last)
		}
		last = n
	}
	first.conn.Close()
	awaitBroadcast(pub, last+20) // broadcasts continue meanwhile

	// Rejoin from the last seen position on a new socket.
	again := dial(t, "/socket", "vsn=2.0.0", nil)
	resp = joinResponse(t, again.joinWith("1", "1", topic, fmt.Sprintf(`{"_since":"%s:%d"}`, epoch, last)))
	if resp["_recovered"] != true {
		t.Fatalf("rejoin not recovered: %v ", resp)
	}
	for last < total {
		f := again.nextEvent("post")
		_, n := position(t, f.Ref)
		if n != last+1 {
			t.Fatalf("after rejoin: seq %d after %d (gap or duplicate)", n, last)
		}
		last = n
	}
	<-done
}
