package integration

// Protocol conformance suite: raw Phoenix frames through a real Caddy,
// following the checklist of the protocol specification (§8.1, §8.3, §8.6,
// §8.7; the WebSocket handshake items of §8.2 are in handshake_test.go).
//
// The engine is declarative, so the Phoenix test fixture (§8.0) is mapped
// onto rules: room:* joins freely and handles new_msg (broadcast), typing
// (broadcast_from), ping and binary_event (reply); custom:* joins with a CEL
// condition and a CEL reply; secret:* denies with a reason. Fixture
// behaviours that need channel code have no declarative equivalent and are
// not tested:
//   - the user_entered broadcast and joined push after a join, handle_out
//     interception with the "transport" key, and the you_left push from
//     terminate (items 28, 32, 77);
//   - crashes: "boom" → phx_error (items 30, 51), "join crashed" from a
//     crashing join and graceful stop on "close" (item 38);
//   - the binary_event push of 00 01 before the reply and the 03 04 suffix
//     (item 39): a declarative reply echoes the pushed bytes;
//   - terminate hooks on transport close (item 37): nothing observable;
//   - disconnect by socket id (item 35): not reachable over HTTP yet
//     (TestConformanceDisconnectBySocketID is skipped).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// confRules are the socket and channel rules of every mount: the fixture of
// §8.0 in declarative form. The id expression wraps its string branch in
// dyn() because CEL's conditional needs one type on both branches (string
// and null do not unify).
const confRules = `
		connect if "!has(params.reject) || params.reject != 'true'"
		assign user_id "has(params.user_id) ? params.user_id : null"
		id "has(params.user_id) ? dyn('user_sockets:' + params.user_id) : null"
		channel room:* {
			join allow
			handle_in new_msg broadcast
			handle_in typing broadcast_from
			handle_in ping reply
			handle_in binary_event reply
		}
		channel custom:* {
			join if "params.action == 'ok'" reply "{'action': params.action}"
		}
		channel secret:* {
			join deny "forbidden here"
		}
		channel whoami:* {
			join allow reply "{'user_id': assigns.user_id, 'topic': topic, 'subtopic': subtopic}"
		}`

// confCaddyfile mounts the rules several times, one mount per setting
// under test, so that the whole suite runs on one configuration:
//
//	/socket      check_origin //example.com, api_key, default limits
//	/ws/admin    default origin policy (conn), multi-segment mount (item 27)
//	/ws/limited  max_channels 1, check_origin off, no api_key
//	/ws/small    max_frame_size 1KB
//	/ws/idle     idle_timeout 200ms
//	/ws/origins  a list of origins with wildcards, schemes and ports
//	/ws/auth     connect only with auth token "1234" or "?>?"
var confCaddyfile = site(`	channels {
		check_origin //example.com
		api_key secret-key` + confRules + `
	}
	channels {
		path /ws/admin` + confRules + `
	}
	channels {
		path /ws/limited
		check_origin off
		max_channels 1` + confRules + `
	}
	channels {
		path /ws/small
		max_frame_size 1KB` + confRules + `
	}
	channels {
		path /ws/idle
		idle_timeout 200ms` + confRules + `
	}
	channels {
		path /ws/origins
		check_origin https://*.ex.com http://*.foo.example.com http://scheme.com //port.com:81` + confRules + `
	}
	channels {
		path /ws/auth
		connect if "auth_token == '1234' || auth_token == '?>?'"
		channel room:* {
			join allow
		}
	}`)

// v2q and v1q are the queries of V2 and V1 sockets.
var (
	v2q = q("vsn", "2.0.0")
	v1q = ""
)

// confStep is one step of a scripted exchange: a frame to send or a frame
// to expect (compared as JSON).
type confStep struct {
	send, want string
}

// confRun plays steps on c.
func confRun(c *client, steps []confStep) {
	c.t.Helper()
	for _, s := range steps {
		if s.send != "" {
			c.send(s.send)
		}
		if s.want != "" {
			c.expect(s.want)
		}
	}
}

// confSync sends a heartbeat with ref and expects its reply as the very next
// frame: every frame queued for c before the heartbeat was read must have
// been consumed already, so this proves that nothing else was pending.
func confSync(c *client, v1 bool, ref string) {
	c.t.Helper()
	if v1 {
		c.send(fmt.Sprintf(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":%q}`, ref))
		c.expect(fmt.Sprintf(`{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":%q}`, ref))
		return
	}
	c.send(fmt.Sprintf(`[null,%q,"phoenix","heartbeat",{}]`, ref))
	c.expect(fmt.Sprintf(`[null,%q,"phoenix","phx_reply",{"status":"ok","response":{}}]`, ref))
}

// confJoinV1 joins topic on a V1 socket (no join_ref) and expects ok.
func confJoinV1(c *client, ref, topic string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"topic":%q,"event":"phx_join","payload":{},"ref":%q}`, topic, ref))
	c.expect(fmt.Sprintf(`{"topic":%q,"event":"phx_reply","payload":{"status":"ok","response":{}},"ref":%q}`, topic, ref))
}

// confBinPush builds a client push (binary kind 0, 5-byte header).
func confBinPush(joinRef, ref, topic, event string, payload []byte) []byte {
	b := []byte{0, byte(len(joinRef)), byte(len(ref)), byte(len(topic)), byte(len(event))}
	b = append(b, joinRef+ref+topic+event...)
	return append(b, payload...)
}

// confBinReply builds a server reply (binary kind 1).
func confBinReply(joinRef, ref, topic, status string, payload []byte) []byte {
	b := []byte{1, byte(len(joinRef)), byte(len(ref)), byte(len(topic)), byte(len(status))}
	b = append(b, joinRef+ref+topic+status...)
	return append(b, payload...)
}

// confBinBroadcast builds a server broadcast (binary kind 2).
func confBinBroadcast(topic, event string, payload []byte) []byte {
	b := []byte{2, byte(len(topic)), byte(len(event))}
	b = append(b, topic+event...)
	return append(b, payload...)
}

// TestConformanceHeartbeat covers items 36 (first half) and 70 and §4.6:
// the heartbeat reply carries the same ref (raw JSON, numbers included) and
// a null join_ref whatever the client sent; any other event on "phoenix" is
// an unmatched topic.
func TestConformanceHeartbeat(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name  string
		query string
		steps []confStep
	}{
		{"v2", v2q, []confStep{
			{`[null,"1","phoenix","heartbeat",{}]`, `[null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`},
			{`["7","2","phoenix","heartbeat",{}]`, `[null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`},
			{`[null,3,"phoenix","heartbeat",{}]`, `[null,3,"phoenix","phx_reply",{"response":{},"status":"ok"}]`},
			{`[null,"4","phoenix","other",{}]`, `[null,"4","phoenix","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		}},
		{"v1", v1q, []confStep{
			{`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`,
				`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"phoenix"}`},
			{`{"topic":"phoenix","event":"other","payload":{},"ref":"2"}`,
				`{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"2","topic":"phoenix"}`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confRun(dial(t, "/socket", tt.query, nil), tt.steps)
		})
	}
}

// TestConformanceJoinEventLeave covers items 27 and 28 (adapted, V2 and
// V1) and §4.3/§4.4: join reply, a broadcast event (the sender sees the
// broadcast and then its ok reply), leave → ok reply then phx_close with
// ref = join_ref (V1: ref null, no join_ref key), then "unmatched topic"
// with a null join_ref. The mount /ws/admin has two path segments (27).
func TestConformanceJoinEventLeave(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name, path, query string
		steps             []confStep
	}{
		{"v2", "/socket", v2q, []confStep{
			{`["11","1","room:lobby28","phx_join",{}]`, `["11","1","room:lobby28","phx_reply",{"response":{},"status":"ok"}]`},
			{`["11","2","room:lobby28","new_msg",{"body":"hi!"}]`, `[null,null,"room:lobby28","new_msg",{"body":"hi!"}]`},
			{"", `["11","2","room:lobby28","phx_reply",{"response":{},"status":"ok"}]`},
			{`["11","3","room:lobby28","phx_leave",{}]`, `["11","3","room:lobby28","phx_reply",{"response":{},"status":"ok"}]`},
			{"", `["11","11","room:lobby28","phx_close",{}]`},
			{`["11","4","room:lobby28","new_msg",{"body":"Should ignore"}]`,
				`[null,"4","room:lobby28","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		}},
		{"v1", "/socket", v1q, []confStep{
			{`{"event":"phx_join","payload":{},"ref":"1","topic":"room:lobby28v1"}`,
				`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:lobby28v1"}`},
			{`{"event":"new_msg","payload":{"body":"hi!"},"ref":"2","topic":"room:lobby28v1"}`,
				`{"event":"new_msg","payload":{"body":"hi!"},"ref":null,"topic":"room:lobby28v1"}`},
			{"", `{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"room:lobby28v1"}`},
			{`{"event":"phx_leave","payload":{},"ref":"3","topic":"room:lobby28v1"}`,
				`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"3","topic":"room:lobby28v1"}`},
			{"", `{"event":"phx_close","payload":{},"ref":null,"topic":"room:lobby28v1"}`},
			{`{"event":"new_msg","payload":{"body":"Should ignore"},"ref":"4","topic":"room:lobby28v1"}`,
				`{"event":"phx_reply","payload":{"response":{"reason":"unmatched topic"},"status":"error"},"ref":"4","topic":"room:lobby28v1"}`},
		}},
		{"v2 multi-segment mount", "/ws/admin", v2q, []confStep{
			{`["11","1","room:admin-lobby1","phx_join",{}]`, `["11","1","room:admin-lobby1","phx_reply",{"response":{},"status":"ok"}]`},
		}},
		{"v1 multi-segment mount", "/ws/admin", v1q, []confStep{
			{`{"event":"phx_join","payload":{},"ref":"1","topic":"room:admin-lobby1"}`,
				`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:admin-lobby1"}`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confRun(dial(t, tt.path, tt.query, nil), tt.steps)
		})
	}
}

// TestConformanceUnjoinedTopic covers item 29 and §4.7: events for a topic
// the socket has not joined get "unmatched topic" with a null join_ref
// (whatever join_ref was sent, "" included), every time, and reach no
// subscriber of that topic.
func TestConformanceUnjoinedTopic(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", v2q, nil)
	b := dial(t, "/socket", v2q, nil)
	b.join("11", "1", "room:lobby29")
	for _, jr := range []string{`null`, `""`, `"11"`} {
		for i := range 2 {
			ref := fmt.Sprintf("%s-%d", strings.Trim(jr, `"`), i)
			a.send(fmt.Sprintf(`[%s,%q,"room:lobby29","new_msg",{"body":"hi!"}]`, jr, ref))
			a.expect(fmt.Sprintf(`[null,%q,"room:lobby29","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`, ref))
		}
	}
	confSync(b, false, "sync") // no broadcast reached the subscriber
}

// TestConformanceJoinUnmatchedTopic covers item 31: a join of a topic no
// channel rule matches gets "unmatched topic" with join_ref null.
func TestConformanceJoinUnmatchedTopic(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	confRun(dial(t, "/socket", v2q, nil), []confStep{
		{`["11","1","unmatched-topic","phx_join",{}]`,
			`[null,"1","unmatched-topic","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		{`["12","2","phoenix","phx_join",{}]`,
			`[null,"2","phoenix","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
	})
}

// TestConformanceJoinOutcomes covers item 38 (adapted) and §4.1 step 5: a
// CEL join condition with a CEL reply (ok carries the reply), a false
// condition and a condition that fails to evaluate (error
// {"reason":"unauthorized"}), a deny rule with its reason. A refused join
// leaves the topic unjoined. "join crashed" and graceful stop on "close"
// need channel code and do not apply.
func TestConformanceJoinOutcomes(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name  string
		steps []confStep
	}{
		{"cel reply", []confStep{
			{`["13","3","custom:ok","phx_join",{"action":"ok"}]`,
				`["13","3","custom:ok","phx_reply",{"response":{"action":"ok"},"status":"ok"}]`},
		}},
		{"cel false", []confStep{
			{`["11","1","custom:ignore","phx_join",{"action":"ignore"}]`,
				`["11","1","custom:ignore","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`},
			{`["11","2","custom:ignore","ping",{}]`,
				`[null,"2","custom:ignore","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		}},
		{"cel error", []confStep{
			{`["12","2","custom:noparams","phx_join",{}]`,
				`["12","2","custom:noparams","phx_reply",{"response":{"reason":"unauthorized"},"status":"error"}]`},
		}},
		{"deny reason", []confStep{
			{`["14","4","secret:x","phx_join",{}]`,
				`["14","4","secret:x","phx_reply",{"response":{"reason":"forbidden here"},"status":"error"}]`},
			{`["14","5","secret:x","ping",{}]`,
				`[null,"5","secret:x","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confRun(dial(t, "/socket", v2q, nil), tt.steps)
		})
	}
}

// TestConformanceDuplicateJoin covers item 32 and §4.8: the new join's
// reply, then phx_close for the old join_ref; one subscription remains (a
// broadcast arrives once), and the old join_ref is stale afterwards.
func TestConformanceDuplicateJoin(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", q("vsn", "2.0.0", "user_id", "1001"), nil)
	confRun(a, []confStep{
		{`["11","1","room:joiner","phx_join",{}]`, `["11","1","room:joiner","phx_reply",{"response":{},"status":"ok"}]`},
		{`["12","2","room:joiner","phx_join",{}]`, `["12","2","room:joiner","phx_reply",{"response":{},"status":"ok"}]`},
		{"", `["11","11","room:joiner","phx_close",{}]`},
		// Exactly one broadcast before the reply: one subscription.
		{`["12","3","room:joiner","new_msg",{"n":1}]`, `[null,null,"room:joiner","new_msg",{"n":1}]`},
		{"", `["12","3","room:joiner","phx_reply",{"response":{},"status":"ok"}]`},
		// The old join_ref is stale now: dropped without a reply.
		{`["11","4","room:joiner","ping",{}]`, ""},
		{`["12","5","room:joiner","ping",{"p":5}]`, `["12","5","room:joiner","phx_reply",{"response":{"p":5},"status":"ok"}]`},
	})
	b := dial(t, "/socket", v2q, nil)
	b.join("21", "1", "room:joiner")
	b.send(`["21","2","room:joiner","new_msg",{"n":2}]`)
	b.expect(`[null,null,"room:joiner","new_msg",{"n":2}]`)
	b.expect(`["21","2","room:joiner","phx_reply",{"response":{},"status":"ok"}]`)
	a.expect(`[null,null,"room:joiner","new_msg",{"n":2}]`)
	confSync(a, false, "sync") // not twice
}

// TestConformanceChannelLimitDefault covers item 33 and §2.10: with the
// default limit the 101st topic is refused with "too many channels joined"
// (carrying the join's join_ref); re-joining a joined topic does not count
// twice; after a leave a new topic can be joined.
func TestConformanceChannelLimitDefault(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	c := dial(t, "/socket", v2q, nil)
	for i := 1; i <= 100; i++ {
		c.join(fmt.Sprint(10+i), fmt.Sprint(i), fmt.Sprintf("room:limit-K-%d", i))
	}
	confRun(c, []confStep{
		{`["111","101","room:limit-K-101","phx_join",{}]`,
			`["111","101","room:limit-K-101","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`},
		{`["112","102","room:limit-K-1","phx_join",{}]`,
			`["112","102","room:limit-K-1","phx_reply",{"response":{},"status":"ok"}]`},
		{"", `["11","11","room:limit-K-1","phx_close",{}]`},
		{`["112","103","room:limit-K-1","phx_leave",{}]`,
			`["112","103","room:limit-K-1","phx_reply",{"response":{},"status":"ok"}]`},
		{"", `["112","112","room:limit-K-1","phx_close",{}]`},
		{`["113","104","room:limit-K-101","phx_join",{}]`,
			`["113","104","room:limit-K-101","phx_reply",{"response":{},"status":"ok"}]`},
		{`["114","105","room:limit-K-102","phx_join",{}]`,
			`["114","105","room:limit-K-102","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`},
	})
}

// TestConformanceChannelLimitConfigured covers item 34: max_channels 1.
func TestConformanceChannelLimitConfigured(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	confRun(dial(t, "/ws/limited", v2q, nil), []confStep{
		{`["11","1","room:limited-1","phx_join",{}]`, `["11","1","room:limited-1","phx_reply",{"response":{},"status":"ok"}]`},
		{`["12","2","room:limited-2","phx_join",{}]`,
			`["12","2","room:limited-2","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`},
		// Re-joining the joined topic does not count twice.
		{`["13","3","room:limited-1","phx_join",{}]`, `["13","3","room:limited-1","phx_reply",{"response":{},"status":"ok"}]`},
		{"", `["11","11","room:limited-1","phx_close",{}]`},
	})
}

// TestConformanceStaleJoinRef covers items 40 and 50 (over WebSocket) and
// §4.9: a non-null join_ref other than the channel's (including "") is
// dropped silently, for events and for phx_leave; a null join_ref is
// accepted and answered with the channel's join_ref.
func TestConformanceStaleJoinRef(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", v2q, nil)
	b := dial(t, "/socket", v2q, nil)
	a.join("11", "1", "room:lobby40")
	b.join("21", "1", "room:lobby40")
	confRun(a, []confStep{
		{`["99","2","room:lobby40","new_msg",{"body":"x"}]`, ""},
		{`["","3","room:lobby40","new_msg",{"body":"x"}]`, ""},
		{`[11,"4","room:lobby40","new_msg",{"body":"x"}]`, ""},
		{`[null,"5","room:lobby40","new_msg",{"body":"y"}]`, `[null,null,"room:lobby40","new_msg",{"body":"y"}]`},
		{"", `["11","5","room:lobby40","phx_reply",{"response":{},"status":"ok"}]`},
	})
	b.expect(`[null,null,"room:lobby40","new_msg",{"body":"y"}]`)
	confSync(b, false, "sync-1") // the stale ones were never broadcast
	confRun(a, []confStep{
		{`["stale","6","room:lobby40","phx_leave",{}]`, ""},
		{`[null,"7","room:lobby40","ping",{}]`, `["11","7","room:lobby40","phx_reply",{"response":{},"status":"ok"}]`},
		{`[null,"8","room:lobby40","phx_leave",{}]`, `["11","8","room:lobby40","phx_reply",{"response":{},"status":"ok"}]`},
		{"", `["11","11","room:lobby40","phx_close",{}]`},
		{`[null,"9","room:lobby40","new_msg",{}]`,
			`[null,"9","room:lobby40","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`},
	})
}

// TestConformanceLeaveUnjoined covers item 41 and §4.3: leaving a topic the
// socket has not joined (routable or not) is an ok reply carrying the
// message's join_ref.
func TestConformanceLeaveUnjoined(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	confRun(dial(t, "/socket", v2q, nil), []confStep{
		{`["11","1","room:never","phx_leave",{}]`, `["11","1","room:never","phx_reply",{"response":{},"status":"ok"}]`},
		{`[null,"2","nowhere","phx_leave",{}]`, `[null,"2","nowhere","phx_reply",{"response":{},"status":"ok"}]`},
	})
	confRun(dial(t, "/socket", v1q, nil), []confStep{
		{`{"event":"phx_leave","payload":{},"ref":"1","topic":"room:never"}`,
			`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:never"}`},
	})
}

// TestConformanceUnhandledEvent checks the declarative rule for events no
// handle_in entry names (in Phoenix a missing handle_in clause crashes the
// channel): an error reply {"reason":"unhandled event"} with the channel's
// join_ref, and the channel stays joined.
func TestConformanceUnhandledEvent(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	c := dial(t, "/socket", v2q, nil)
	c.join("11", "1", "room:unhandled")
	confRun(c, []confStep{
		{`["11","2","room:unhandled","nope",{}]`,
			`["11","2","room:unhandled","phx_reply",{"response":{"reason":"unhandled event"},"status":"error"}]`},
		{`[null,"3","room:unhandled","ping",{"still":"here"}]`,
			`["11","3","room:unhandled","phx_reply",{"response":{"still":"here"},"status":"ok"}]`},
	})
}

// TestConformanceBroadcastNonObject covers item 5 and §3.3: a broadcast of
// a payload that is not a JSON object cannot be encoded for V2 clients, so
// the event is refused with an error reply and nothing is broadcast.
func TestConformanceBroadcastNonObject(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", v2q, nil)
	b := dial(t, "/socket", v2q, nil)
	a.join("11", "1", "room:nonobj")
	b.join("21", "1", "room:nonobj")
	for i, payload := range []string{`"invalid"`, `[1,2]`, `42`, `true`, `null`} {
		for _, event := range []string{"new_msg", "typing"} {
			ref := fmt.Sprintf("%s-%d", event, i)
			a.send(fmt.Sprintf(`["11",%q,"room:nonobj",%q,%s]`, ref, event, payload))
			a.expect(fmt.Sprintf(`["11",%q,"room:nonobj","phx_reply",{"response":{"reason":"broadcast payload must be a JSON object"},"status":"error"}]`, ref))
		}
	}
	confSync(b, false, "sync")
	confSync(a, false, "sync")
}

// TestConformanceBroadcastSemantics covers item 75 and §4.11: broadcast reaches every subscriber, the sender included, which
// sees the broadcast before its ok reply {}; broadcast_from reaches every
// subscriber but the sender, which only gets its reply.
func TestConformanceBroadcastSemantics(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", v2q, nil)
	b := dial(t, "/socket", v2q, nil)
	a.join("11", "1", "room:X75")
	b.join("21", "1", "room:X75")

	a.send(`["11","2","room:X75","new_msg",{"key":"val"}]`)
	a.expect(`[null,null,"room:X75","new_msg",{"key":"val"}]`)
	a.expect(`["11","2","room:X75","phx_reply",{"response":{},"status":"ok"}]`)
	b.expect(`[null,null,"room:X75","new_msg",{"key":"val"}]`)

	a.send(`["11","3","room:X75","typing",{"key":"val"}]`)
	a.expect(`["11","3","room:X75","phx_reply",{"response":{},"status":"ok"}]`)
	b.expect(`[null,null,"room:X75","typing",{"key":"val"}]`)
	confSync(a, false, "sync") // the sender did not get its broadcast_from
	confSync(b, false, "sync")

	// Both directions: B's broadcast_from reaches A only.
	b.send(`["21","2","room:X75","typing",{"from":"b"}]`)
	b.expect(`["21","2","room:X75","phx_reply",{"response":{},"status":"ok"}]`)
	a.expect(`[null,null,"room:X75","typing",{"from":"b"}]`)
	confSync(b, false, "sync-2")
}

// TestConformanceMixedSerializers covers items 13 and 78: V1 and V2
// subscribers of one topic each get the broadcast in their own encoding,
// whoever sends it; V1 frames have exactly topic, event, payload and ref.
func TestConformanceMixedSerializers(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	v2 := dial(t, "/socket", v2q, nil)
	v1 := dial(t, "/socket", v1q, nil)
	v2.join("11", "1", "room:mix")
	confJoinV1(v1, "1", "room:mix")

	v2.send(`["11","2","room:mix","new_msg",{"body":"from v2"}]`)
	v2.expect(`[null,null,"room:mix","new_msg",{"body":"from v2"}]`)
	v2.expect(`["11","2","room:mix","phx_reply",{"response":{},"status":"ok"}]`)
	v1.expect(`{"event":"new_msg","payload":{"body":"from v2"},"ref":null,"topic":"room:mix"}`)

	v1.send(`{"topic":"room:mix","event":"new_msg","payload":{"body":"from v1"},"ref":"2"}`)
	v1.expect(`{"event":"new_msg","payload":{"body":"from v1"},"ref":null,"topic":"room:mix"}`)
	v1.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"2","topic":"room:mix"}`)
	v2.expect(`[null,null,"room:mix","new_msg",{"body":"from v1"}]`)

	v1.send(`{"topic":"room:mix","event":"typing","payload":{"t":1},"ref":"3"}`)
	v1.expect(`{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"3","topic":"room:mix"}`)
	v2.expect(`[null,null,"room:mix","typing",{"t":1}]`)
}

// TestConformanceBinaryReply covers items 9 and 39 (layout): a binary push
// from the client to a "reply" event is answered with a binary kind-1
// reply carrying the channel's join_ref, the ref, status "ok" and the same
// payload bytes. (The fixture's extra push and 03 04 suffix need channel
// code.)
func TestConformanceBinaryReply(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	c := dial(t, "/socket", v2q, nil)
	c.join("11", "1", "room:bin")
	push := confBinPush("11", "2", "room:bin", "binary_event", []byte{1, 2})
	wantPush := []byte{0x00, 0x02, 0x01, 0x08, 0x0c, 0x31, 0x31, 0x32, 0x72, 0x6f, 0x6f, 0x6d, 0x3a, 0x62, 0x69, 0x6e,
		0x62, 0x69, 0x6e, 0x61, 0x72, 0x79, 0x5f, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x01, 0x02}
	if string(push) != string(wantPush) {
		t.Fatalf("test frame builder: got % x, want % x", push, wantPush)
	}
	c.sendBinary(push)
	c.expectBinary([]byte{0x01, 0x02, 0x01, 0x08, 0x02, 0x31, 0x31, 0x32, 0x72, 0x6f, 0x6f, 0x6d, 0x3a, 0x62, 0x69, 0x6e,
		0x6f, 0x6b, 0x01, 0x02})

	// Null join_ref (empty in the binary layout), an empty payload and
	// non-ASCII metadata (item 11: lengths are UTF-8 byte counts).
	c.sendBinary(confBinPush("", "3", "room:bin", "ping", nil))
	c.expectBinary(confBinReply("11", "3", "room:bin", "ok", nil))
	c.join("🚀", "4", "room:café")
	c.sendBinary(confBinPush("🚀", "5", "room:café", "ping", []byte{0xff, 0x00}))
	c.expectBinary(confBinReply("🚀", "5", "room:café", "ok", []byte{0xff, 0x00}))
	// A text push to the same event replies with JSON.
	c.send(`["11","6","room:bin","binary_event",{"j":1}]`)
	c.expect(`["11","6","room:bin","phx_reply",{"response":{"j":1},"status":"ok"}]`)
}

// TestConformanceBinaryBroadcast covers items 8 and 78 (binary): a binary
// push to a "broadcast" event reaches V2 subscribers as a kind-2 frame, the
// sender first and then its JSON ok reply; V1 subscribers, who have no
// binary encoding, get nothing.
func TestConformanceBinaryBroadcast(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	a := dial(t, "/socket", v2q, nil)
	b := dial(t, "/socket", v2q, nil)
	v1 := dial(t, "/socket", v1q, nil)
	a.join("11", "1", "room:binb")
	b.join("21", "1", "room:binb")
	confJoinV1(v1, "1", "room:binb")

	payload := []byte{0x65, 0x66, 0x67, 0x00, 0xff}
	a.sendBinary(confBinPush("11", "2", "room:binb", "new_msg", payload))
	want := confBinBroadcast("room:binb", "new_msg", payload)
	a.expectBinary(want)
	a.expect(`["11","2","room:binb","phx_reply",{"response":{},"status":"ok"}]`)
	b.expectBinary(want)

	a.sendBinary(confBinPush("11", "3", "room:binb", "typing", payload))
	a.expect(`["11","3","room:binb","phx_reply",{"response":{},"status":"ok"}]`)
	b.expectBinary(confBinBroadcast("room:binb", "typing", payload))

	// The V1 subscriber skipped both and still gets JSON broadcasts.
	a.send(`["11","4","room:binb","new_msg",{"after":"binary"}]`)
	v1.expect(`{"event":"new_msg","payload":{"after":"binary"},"ref":null,"topic":"room:binb"}`)
}

// TestConformanceMalformedFrames covers items 15, 16 and 42: frames that
// are not valid messages close the socket with 1011 (invalid UTF-8 text:
// 1007), and other sockets stay fully functional.
func TestConformanceMalformedFrames(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name   string
		query  string
		binary bool
		data   string
		code   int
	}{
		{"v2 invalid json", v2q, false, `["11","2","room:bad","new_msg",{`, 1011},
		{"v2 four elements", v2q, false, `["11","2","room:bad","new_msg"]`, 1011},
		{"v2 empty array", v2q, false, `[]`, 1011},
		{"v2 object", v2q, false, `{"topic":"room:bad","event":"new_msg","payload":{},"ref":"2"}`, 1011},
		{"v2 topic not a string", v2q, false, `["11","2",7,"new_msg",{}]`, 1011},
		{"v2 binary kind 1", v2q, true, string(confBinReply("11", "2", "room:bad", "ok", []byte{1})), 1011},
		{"v2 binary kind 2", v2q, true, string(confBinBroadcast("room:bad", "new_msg", []byte{1})), 1011},
		{"v2 binary unknown kind", v2q, true, "\x07\x00\x00\x00\x00", 1011},
		{"v2 binary truncated header", v2q, true, "\x00\x02\x01", 1011},
		{"v2 binary field past end", v2q, true, "\x00\x02\x01\x08\x07" + "11", 1011},
		{"v2 binary empty", v2q, true, "", 1011},
		{"v2 invalid utf-8", v2q, false, "[\"11\",\"2\",\"room:bad\",\"new_msg\",{\"b\":\"\xff\xfe\"}]", 1007},
		{"v1 array", v1q, false, `[null,null,"room:bad","new_msg",{"m":1}]`, 1011},
		{"v1 missing ref", v1q, false, `{"topic":"room:bad","event":"new_msg","payload":{}}`, 1011},
		{"v1 missing payload", v1q, false, `{"topic":"room:bad","event":"new_msg","ref":"2"}`, 1011},
		{"v1 binary frame", v1q, true, string(confBinPush("", "2", "room:bad", "new_msg", []byte{1})), 1011},
		{"v1 invalid utf-8", v1q, false, "{\"topic\":\"room:bad\",\"event\":\"new_msg\",\"payload\":{\"b\":\"\xc3\"},\"ref\":\"2\"}", 1007},
	}
	other := dial(t, "/socket", v2q, nil)
	other.join("31", "1", "room:bad")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := dial(t, "/socket", tt.query, nil)
			if tt.query == v1q {
				confJoinV1(bad, "1", "room:bad")
			} else {
				bad.join("11", "1", "room:bad")
			}
			if tt.binary {
				bad.sendBinary([]byte(tt.data))
			} else {
				bad.send([]byte(tt.data))
			}
			bad.expectClose(tt.code)

			other := &client{t: t, conn: other.conn, resp: other.resp} // fail this subtest
			ref := fmt.Sprint(100 + i)
			other.send(fmt.Sprintf(`["31",%q,"room:bad","new_msg",{"i":%d}]`, ref, i))
			other.expect(fmt.Sprintf(`[null,null,"room:bad","new_msg",{"i":%d}]`, i))
			other.expect(fmt.Sprintf(`["31",%q,"room:bad","phx_reply",{"response":{},"status":"ok"}]`, ref))
			confSync(other, false, "sync-"+ref)
			fresh := dial(t, "/socket", v2q, nil)
			fresh.join("41", "1", "room:bad")
		})
	}
}

// TestConformanceOversizeFrame covers item 42 and §2.3 max_frame_size: a
// message above max_frame_size (1KB here) closes the socket with 1009;
// one just under it is served, and other sockets are untouched.
func TestConformanceOversizeFrame(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	other := dial(t, "/ws/small", v2q, nil)
	other.join("31", "1", "room:big")
	for _, tt := range []struct {
		name   string
		binary bool
		size   int
	}{{"text", false, 4000}, {"binary", true, 4000}, {"text of 2 MB: the close frame survives the unread rest", false, 2 << 20}} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, "/ws/small", v2q, nil)
			c.join("11", "1", "room:big")
			small := `["11","2","room:big","ping",{"s":"` + strings.Repeat("x", 900) + `"}]`
			c.send(small)
			c.expect(`["11","2","room:big","phx_reply",{"response":{"s":"` + strings.Repeat("x", 900) + `"},"status":"ok"}]`)
			big := `["11","3","room:big","new_msg",{"s":"` + strings.Repeat("x", tt.size) + `"}]`
			if tt.binary {
				c.sendBinary(confBinPush("11", "3", "room:big", "new_msg", make([]byte, tt.size)))
			} else {
				c.send(big)
			}
			c.expectClose(1009)
			other := &client{t: t, conn: other.conn, resp: other.resp} // fail this subtest
			other.send(`["31","2","room:big","new_msg",{"after":"big"}]`)
			other.expect(`[null,null,"room:big","new_msg",{"after":"big"}]`)
			other.expect(`["31","2","room:big","phx_reply",{"response":{},"status":"ok"}]`)
		})
	}
}

// TestConformanceIdleTimeout covers items 36 and 71 and §4.13: with
// idle_timeout 200ms a silent socket is closed with 1001 (not 1000, so
// phoenix.js reconnects) within 1 s; a socket that sends a heartbeat (or a
// WebSocket ping) every 100 ms stays open well past the timeout.
func TestConformanceIdleTimeout(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	t.Run("silent", func(t *testing.T) {
		c := dial(t, "/ws/idle", v2q, nil)
		c.join("11", "1", "room:idle")
		confSync(c, false, "2")
		start := time.Now()
		c.expectClose(1001)
		if d := time.Since(start); d > time.Second || d < 100*time.Millisecond {
			t.Fatalf("closed after %v, want about 200ms", d)
		}
	})
	t.Run("heartbeats", func(t *testing.T) {
		c := dial(t, "/ws/idle", v2q, nil)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for start, i := time.Now(), 0; time.Since(start) < 700*time.Millisecond; i++ {
			confSync(c, false, fmt.Sprint(i))
			<-tick.C
		}
		c.join("11", "x", "room:idle")
	})
	t.Run("pings", func(t *testing.T) {
		c := dial(t, "/ws/idle", v2q, nil)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for start := time.Now(); time.Since(start) < 700*time.Millisecond; <-tick.C {
			if err := c.conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(recvTimeout)); err != nil {
				t.Fatalf("ping: %v", err)
			}
		}
		confSync(c, false, "after-pings")
	})
}

// TestConformanceDisconnectBySocketID stands for item 35: a "disconnect" for a
// socket id closes its sockets with 1001. The engine implements it
// (Hub.Disconnect) but no HTTP endpoint reaches it yet.
func TestConformanceDisconnectBySocketID(t *testing.T) {
	t.Skip("item 35: disconnect by socket id is not reachable over HTTP yet")
}

// confAPI calls the publish API of mount with the given Authorization.
func confAPI(t *testing.T, method, mount, auth, body string) (int, string) {
	t.Helper()
	hdr := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		hdr.Set("Authorization", auth)
	}
	return httpDo(t, method, mount+"/api/broadcast", hdr, body)
}

// confJSONError checks a {"error": "<non-empty>"} body.
func confJSONError(t *testing.T, body string) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
	if s, ok := e["error"].(string); !ok || s == "" || len(e) != 1 {
		t.Fatalf(`error body: got %s, want {"error":"…"}`, body)
	}
}

// TestConformancePublishAPI covers item 76 (server-side broadcast) through
// POST {path}/api/broadcast: 202 and the frame at V1 and V2 subscribers,
// array bodies in order, a missing payload as {}.
func TestConformancePublishAPI(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	v2 := dial(t, "/socket", v2q, nil)
	v1 := dial(t, "/socket", v1q, nil)
	v2.join("11", "1", "room:api")
	confJoinV1(v1, "1", "room:api")
	const key = "Bearer secret-key"

	status, body := confAPI(t, "POST", "/socket", key, `{"topic":"room:api","event":"news","payload":{"k":"v"}}`)
	if status != http.StatusAccepted || !jsonEqual([]byte(body), []byte(`{"accepted":1}`)) {
		t.Fatalf("single: got %d %q, want 202 {\"accepted\":1}", status, body)
	}
	v2.expect(`[null,null,"room:api","news",{"k":"v"}]`)
	v1.expect(`{"event":"news","payload":{"k":"v"},"ref":null,"topic":"room:api"}`)

	status, body = confAPI(t, "POST", "/socket", key,
		`[{"topic":"room:api","event":"first","payload":{"n":1}},{"topic":"room:other","event":"x"},{"topic":"room:api","event":"second"}]`)
	if status != http.StatusAccepted || !jsonEqual([]byte(body), []byte(`{"accepted":3}`)) {
		t.Fatalf("array: got %d %q, want 202 {\"accepted\":3}", status, body)
	}
	v2.expect(`[null,null,"room:api","first",{"n":1}]`)
	v2.expect(`[null,null,"room:api","second",{}]`)
	v1.expect(`{"event":"first","payload":{"n":1},"ref":null,"topic":"room:api"}`)
	v1.expect(`{"event":"second","payload":{},"ref":null,"topic":"room:api"}`)
	confSync(v2, false, "sync")
	confSync(v1, true, "sync")
}

// TestConformancePublishAPIErrors checks that invalid requests publish
// nothing and are answered with a JSON error: 400 (bad body), 401
// (missing or wrong key), 404 (no api_key configured) and 405 (other
// methods, once authenticated).
func TestConformancePublishAPIErrors(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	sub := dial(t, "/socket", v2q, nil)
	sub.join("11", "1", "room:apierr")
	const key = "Bearer secret-key"
	tests := []struct {
		name, method, mount, auth, body string
		status                          int
		jsonError                       bool
	}{
		{"non-object payload", "POST", "/socket", key, `{"topic":"room:apierr","event":"e","payload":"str"}`, 400, true},
		{"array payload", "POST", "/socket", key, `{"topic":"room:apierr","event":"e","payload":[1]}`, 400, true},
		{"one bad item of many", "POST", "/socket", key, `[{"topic":"room:apierr","event":"e"},{"topic":"room:apierr","event":"e","payload":1}]`, 400, true},
		{"invalid json", "POST", "/socket", key, `{"topic":"room:apierr",`, 400, true},
		{"empty body", "POST", "/socket", key, ``, 400, true},
		{"missing topic", "POST", "/socket", key, `{"event":"e"}`, 400, true},
		{"missing event", "POST", "/socket", key, `{"topic":"room:apierr"}`, 400, true},
		{"reserved event", "POST", "/socket", key, `{"topic":"room:apierr","event":"phx_close"}`, 400, true},
		{"missing key", "POST", "/socket", "", `{"topic":"room:apierr","event":"e"}`, 401, true},
		{"wrong key", "POST", "/socket", "Bearer wrong", `{"topic":"room:apierr","event":"e"}`, 401, true},
		{"not bearer", "POST", "/socket", "Basic c2VjcmV0LWtleQ==", `{"topic":"room:apierr","event":"e"}`, 401, true},
		{"no api_key configured", "POST", "/ws/limited", key, `{"topic":"room:apierr","event":"e"}`, 404, true},
		{"get", "GET", "/socket", key, ``, 405, true},
		{"get unauthenticated", "GET", "/socket", "", ``, 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := confAPI(t, tt.method, tt.mount, tt.auth, tt.body)
			if status != tt.status {
				t.Fatalf("got %d %q, want %d", status, body, tt.status)
			}
			if tt.jsonError {
				confJSONError(t, body)
			}
		})
	}
	confSync(sub, false, "sync") // nothing was published
}
