package integration

// End-to-end tests of the webhooks of docs/webhooks.md through a real
// Caddy: raw gorilla frames (V2, and V1 where noted) against real loopback
// backends, either the example chat app (examples/backend/chat) or a
// recording backend built by each test.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/channels"
	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
	"github.com/caddy-channels/caddy-channels/webhook"
)

const (
	// whChatSecret is the webhook_secret shared by Caddy and the chat app.
	whChatSecret = "chat-webhook-secret"
	// whAPIKey is the api_key of the mounts that expose the HTTP API.
	whAPIKey = "webhook-test-api-key"
	// whUnavailable is the error reply of a failed join or handle_in call.
	whUnavailable = `{"status":"error","response":{"reason":"upstream_unavailable"}}`
	// whLeaveWait bounds the wait for a leave notification.
	whLeaveWait = 3 * time.Second
)

// whRefused dials, expects the upgrade to be refused and returns the status.
func whRefused(t *testing.T, path, query string, hdr http.Header) int {
	t.Helper()
	c, resp, err := tryDial(t, path, query, hdr)
	if err == nil {
		c.conn.Close()
		t.Fatalf("dial %s?%s: upgraded, want a refusal", path, query)
	}
	if resp == nil {
		t.Fatalf("dial %s?%s: no HTTP response: %v", path, query, err)
	}
	return resp.StatusCode
}

// whAuthProtocol is the Sec-WebSocket-Protocol header phoenix.js sends
// with its authToken option: standard base64 without padding.
func whAuthProtocol(token string) http.Header {
	return http.Header{"Sec-Websocket-Protocol": {
		"phoenix, " + channels.AuthTokenProtocolPrefix + base64.RawStdEncoding.EncodeToString([]byte(token)),
	}}
}

// whCloseCode reads until the server's close frame and returns its code,
// or -1 and the error if the connection ended otherwise. It never fails
// the test, so it may run in a goroutine.
func whCloseCode(conn *websocket.Conn) (int, error) {
	conn.SetReadDeadline(time.Now().Add(recvTimeout))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, nil
		}
		return -1, err
	}
}

// whRequest is one call a recording backend received.
type whRequest struct {
	path   string
	header http.Header
	body   []byte
}

// whBackend is a loopback app that records every request before answer
// handles it.
type whBackend struct {
	url string

	mu   sync.Mutex
	reqs []whRequest
}

// newWHBackend starts a recording backend, closed when the test ends.
func newWHBackend(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *whBackend {
	t.Helper()
	b := &whBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, whRequest{path: r.URL.Path, header: r.Header.Clone(), body: body})
		b.mu.Unlock()
		answer(w, r, body)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// requests returns the requests received on path so far.
func (b *whBackend) requests(path string) []whRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []whRequest
	for _, r := range b.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// count returns how many requests path received.
func (b *whBackend) count(path string) int { return len(b.requests(path)) }

// waitRequests waits until path received n requests and returns them.
func (b *whBackend) waitRequests(t *testing.T, path string, n int) []whRequest {
	t.Helper()
	eventually(t, whLeaveWait, fmt.Sprintf("%d requests on %s", n, path), func() bool { return b.count(path) >= n })
	return b.requests(path)
}

// whWrite answers with status and, unless empty, a body.
func whWrite(w http.ResponseWriter, status int, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// whSleep waits d or until the caller of r gives up.
func whSleep(r *http.Request, d time.Duration) {
	select {
	case <-r.Context().Done():
	case <-time.After(d):
	}
}

// whEvent returns the "event" field of a handle_in body.
func whEvent(body []byte) string {
	var req struct {
		Event string `json:"event"`
	}
	json.Unmarshal(body, &req)
	return req.Event
}

// whDeadURL returns the URL of a loopback port nothing listens on.
func whDeadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/dead"
}

// whSignature matches the documented X-Channels-Signature format.
var whSignature = regexp.MustCompile(`^t=[0-9]+,v1=[0-9a-f]{64}$`)

// whCheckRequest checks the headers of a webhook call (signed with secret,
// or unsigned when secret is empty) and compares its body, which must be
// compact JSON, with want.
func whCheckRequest(t *testing.T, r whRequest, event, secret, want string) {
	t.Helper()
	what := event + " " + r.path
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, got)
	}
	if got := r.header.Get("X-Channels-Event"); got != event {
		t.Errorf("%s: X-Channels-Event %q, want %q", what, got, event)
	}
	if got := r.header.Get("User-Agent"); got != "caddy-channels" {
		t.Errorf("%s: User-Agent %q, want caddy-channels", what, got)
	}
	sig := r.header.Get("X-Channels-Signature")
	switch {
	case secret == "" && sig != "":
		t.Errorf("%s: unsigned call carries X-Channels-Signature %q", what, sig)
	case secret != "":
		if !whSignature.MatchString(sig) {
			t.Errorf("%s: X-Channels-Signature %q does not have the documented format", what, sig)
		}
		if err := webhook.Verify(secret, sig, r.body, time.Now(), 0); err != nil {
			t.Errorf("%s: signature does not verify with the secret: %v (header %q, body %s)", what, err, sig, r.body)
		}
		if err := webhook.Verify(secret+"x", sig, r.body, time.Now(), 0); err == nil {
			t.Errorf("%s: signature verifies with another secret", what)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.body); err != nil || !bytes.Equal(compact.Bytes(), r.body) {
		t.Errorf("%s: body is not compact JSON: %s", what, r.body)
	}
	if !jsonEqual(r.body, []byte(want)) {
		t.Errorf("%s: body mismatch\n got: %s\nwant: %s", what, r.body, want)
	}
}

// whChat starts the example chat app, fronted by Caddy at /socket (with
// the HTTP API) and at /ws/idle (idle_timeout 200ms). extra is appended to
// the site.
func whChat(t *testing.T, extra ...string) *chat.App {
	t.Helper()
	app := chat.New(whChatSecret, nil)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	loadCaddyfile(t, site(whChatChannels(srv.URL, "/socket", "api_key "+whAPIKey)+"\n"+
		whChatChannels(srv.URL, "/ws/idle", "idle_timeout 200ms"), extra...))
	return app
}

// whChatChannels is a channels block fronting the chat app at path: the
// Caddyfile of examples/backend with setting added.
func whChatChannels(appURL, path, setting string) string {
	return fmt.Sprintf(`	channels {
		path %[2]s
		%[3]s
		connect upstream %[1]s/socket/connect {
			forward_headers User-Agent
		}
		webhook_secret %[4]s
		webhook_timeout 2s
		channel room:* {
			join upstream %[1]s/channels/join
			handle_in typing broadcast_from
			handle_in * upstream %[1]s/channels/event
			leave upstream %[1]s/channels/leave
		}
	}`, appURL, path, setting, whChatSecret)
}

// whToken issues a login token of the chat app.
func whToken(t *testing.T, app *chat.App, name string) string {
	t.Helper()
	tok, err := app.IssueToken(name)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// whChatDial connects name to the chat app at path with protocol V2.
func whChatDial(t *testing.T, app *chat.App, path, name string) *client {
	t.Helper()
	return dial(t, path, q("token", whToken(t, app, name), "vsn", "2.0.0"), nil)
}

// whChatJoin joins a room on a V2 socket and expects the app's ok reply.
func whChatJoin(c *client, joinRef, topic string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",{}]`, joinRef, joinRef, topic))
	c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"ok","response":{"joined":%q}}]`, joinRef, joinRef, topic, topic))
}

// whWaitLeave waits for a leave notification of the chat app.
func whWaitLeave(t *testing.T, app *chat.App, want chat.LeaveEvent) {
	t.Helper()
	deadline := time.Now().Add(whLeaveWait)
	for !slices.Contains(app.Leaves(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no leave notification %+v after %v; received: %+v", want, whLeaveWait, app.Leaves())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// whLeave is the leave notification the chat app records for name.
func whLeave(name, topic, reason string) chat.LeaveEvent {
	return chat.LeaveEvent{SocketID: "user_socket:" + name, User: name, Topic: topic, Reason: reason}
}

// TestWebhookChatConnect: the connect webhook of the chat app decides the
// upgrade: a valid login token (in params or as the phoenix.js authToken)
// is accepted; a missing, invalid or foreign token is refused with 403.
func TestWebhookChatConnect(t *testing.T) {
	app := whChat(t)
	valid := whToken(t, app, "alice")
	foreign, err := chat.New("another-secret", nil).IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		query  string
		hdr    http.Header
		status int // 0: upgraded
	}{
		{"token in params", q("token", valid, "vsn", "2.0.0"), nil, 0},
		{"token in params, V1", q("token", valid), nil, 0},
		{"phoenix.js authToken", q("vsn", "2.0.0"), whAuthProtocol(valid), 0},
		{"no token", q("vsn", "2.0.0"), nil, http.StatusForbidden},
		{"empty token", q("token", "", "vsn", "2.0.0"), nil, http.StatusForbidden},
		{"invalid token", q("token", "bogus", "vsn", "2.0.0"), nil, http.StatusForbidden},
		{"token tampered with", q("token", valid+"x", "vsn", "2.0.0"), nil, http.StatusForbidden},
		{"token of another app", q("token", foreign, "vsn", "2.0.0"), nil, http.StatusForbidden},
		{"invalid authToken", q("vsn", "2.0.0"), whAuthProtocol("bogus"), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status != 0 {
				if got := whRefused(t, "/socket", tt.query, tt.hdr); got != tt.status {
					t.Fatalf("status %d, want %d", got, tt.status)
				}
				return
			}
			c := dial(t, "/socket", tt.query, tt.hdr)
			if tt.hdr != nil {
				if got := c.resp.Header.Get("Sec-Websocket-Protocol"); got != "phoenix" {
					t.Errorf("negotiated subprotocol %q, want phoenix", got)
				}
			}
			confSync(c, !strings.Contains(tt.query, "vsn"), "1")
		})
	}
}

// TestWebhookChatRoom plays a chat session against the example app:
// joins decided by the app, broadcasts, broadcast_from, declarative typing,
// replies carrying assigns from connect and join, assigns updated by an
// answer, a push, a binary echo, and a stop.
func TestWebhookChatRoom(t *testing.T) {
	app := whChat(t)
	alice := whChatDial(t, app, "/socket", "alice")
	bob := whChatDial(t, app, "/socket", "bob")
	carol := whChatDial(t, app, "/socket", "carol")
	vic := dial(t, "/socket", q("token", whToken(t, app, "vic")), nil) // V1

	whChatJoin(alice, "1", "room:lobby")
	whChatJoin(bob, "5", "room:lobby")
	vic.send(`{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}`)
	vic.expect(`{"topic":"room:lobby","event":"phx_reply","payload":{"status":"ok","response":{"joined":"room:lobby"}},"ref":"1"}`)

	// Private rooms: members only; the app's refusal is the reply, and the
	// refused topic stays unjoined.
	whChatJoin(alice, "2", "room:private-staff")
	carol.send(`["1","1","room:private-staff","phx_join",{}]`)
	carol.expect(`["1","1","room:private-staff","phx_reply",{"status":"error","response":{"reason":"not a member"}}]`)
	carol.send(`["1","2","room:private-staff","new_msg",{"body":"let me in"}]`)
	carol.expect(`[null,"2","room:private-staff","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`)

	// new_msg: broadcast to the room, the sender included (V1 too), then
	// the reply.
	alice.send(`["1","10","room:lobby","new_msg",{"body":"hi"}]`)
	alice.expect(`[null,null,"room:lobby","new_msg",{"body":"hi","user":"alice"}]`)
	alice.expect(`["1","10","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"room:lobby","new_msg",{"body":"hi","user":"alice"}]`)
	vic.expect(`{"topic":"room:lobby","event":"new_msg","payload":{"body":"hi","user":"alice"},"ref":null}`)

	// shout: broadcast_from, the sender gets only the reply.
	alice.send(`["1","11","room:lobby","shout",{"body":"yo"}]`)
	alice.expect(`["1","11","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"room:lobby","shout",{"body":"yo","user":"alice"}]`)
	vic.expect(`{"topic":"room:lobby","event":"shout","payload":{"body":"yo","user":"alice"},"ref":null}`)
	confSync(alice, false, "s1")

	// typing is declarative (broadcast_from) next to handle_in * upstream.
	bob.send(`["5","12","room:lobby","typing",{"on":true}]`)
	bob.expect(`["5","12","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	alice.expect(`[null,null,"room:lobby","typing",{"on":true}]`)
	vic.expect(`{"topic":"room:lobby","event":"typing","payload":{"on":true},"ref":null}`)
	confSync(bob, false, "s2")

	// whoami sees the channel's assigns: user from connect, room from join.
	alice.send(`["1","13","room:lobby","whoami",{}]`)
	alice.expect(`["1","13","room:lobby","phx_reply",{"status":"ok","response":{"user":"alice","room":"lobby"}}]`)
	vic.send(`{"topic":"room:lobby","event":"whoami","payload":{},"ref":"2"}`)
	vic.expect(`{"topic":"room:lobby","event":"phx_reply","payload":{"status":"ok","response":{"user":"vic","room":"lobby"}},"ref":"2"}`)

	// rename merges an assign that later calls of this channel see.
	alice.send(`["1","14","room:lobby","rename",{"nick":"Al"}]`)
	alice.expect(`["1","14","room:lobby","phx_reply",{"status":"ok","response":{"nick":"Al"}}]`)
	alice.send(`["1","15","room:lobby","whoami",{}]`)
	alice.expect(`["1","15","room:lobby","phx_reply",{"status":"ok","response":{"user":"alice","room":"lobby","nick":"Al"}}]`)
	alice.send(`["1","16","room:lobby","new_msg",{"body":"again"}]`)
	alice.expect(`[null,null,"room:lobby","new_msg",{"body":"again","user":"alice","nick":"Al"}]`)
	alice.expect(`["1","16","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"room:lobby","new_msg",{"body":"again","user":"alice","nick":"Al"}]`)
	vic.expect(`{"topic":"room:lobby","event":"new_msg","payload":{"body":"again","user":"alice","nick":"Al"},"ref":null}`)
	// ... but not the other channels of the socket, nor later joins.
	alice.send(`["2","17","room:private-staff","whoami",{}]`)
	alice.expect(`["2","17","room:private-staff","phx_reply",{"status":"ok","response":{"user":"alice","room":"private-staff"}}]`)
	whChatJoin(alice, "3", "room:other")
	alice.send(`["3","18","room:other","whoami",{}]`)
	alice.expect(`["3","18","room:other","phx_reply",{"status":"ok","response":{"user":"alice","room":"other"}}]`)

	// ping_me: a push on the channel (its join_ref, no ref) and no reply.
	alice.send(`["1","19","room:lobby","ping_me",{"x":1}]`)
	alice.expect(`["1",null,"room:lobby","pong",{"x":1}]`)
	confSync(alice, false, "s3")
	vic.send(`{"topic":"room:lobby","event":"ping_me","payload":{"x":2},"ref":"3"}`)
	vic.expect(`{"topic":"room:lobby","event":"pong","payload":{"x":2},"ref":null}`)
	confSync(vic, true, "s4")

	// echo: binary in (kind 0), binary reply out (kind 1); JSON stays JSON.
	alice.sendBinary(confBinPush("1", "20", "room:lobby", "echo", []byte{0, 1, 0xff}))
	alice.expectBinary(confBinReply("1", "20", "room:lobby", "ok", []byte{0, 1, 0xff}))
	alice.send(`["1","21","room:lobby","echo",{"a":[1,2]}]`)
	alice.expect(`["1","21","room:lobby","phx_reply",{"status":"ok","response":{"a":[1,2]}}]`)

	// bye: the reply, then phx_close with the channel's join_ref; the topic
	// is no longer joined and the app gets no leave notification for it.
	alice.send(`["1","22","room:lobby","bye",{}]`)
	alice.expect(`["1","22","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	alice.expect(`["1","1","room:lobby","phx_close",{}]`)
	alice.send(`["1","23","room:lobby","new_msg",{"body":"gone?"}]`)
	alice.expect(`[null,"23","room:lobby","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`)
	confSync(bob, false, "s5")

	// When alice's socket closes, only her remaining channels are notified.
	alice.conn.Close()
	whWaitLeave(t, app, whLeave("alice", "room:other", "closed"))
	whWaitLeave(t, app, whLeave("alice", "room:private-staff", "closed"))
	webhooksSettled(t, "/socket", 3) // bob, carol, vic
	for _, l := range app.Leaves() {
		if l.Topic == "room:lobby" && l.User == "alice" {
			t.Errorf("leave notification after stop: %+v", l)
		}
	}
}

// TestWebhookChatLeaveReasons checks the reason of each leave
// notification the chat app receives, and the two ways of disconnecting
// a socket id: the disconnect API and a "disconnect" broadcast.
func TestWebhookChatLeaveReasons(t *testing.T) {
	app := whChat(t)
	auth := http.Header{"Authorization": {"Bearer " + whAPIKey}}

	t.Run("leave", func(t *testing.T) {
		c := whChatDial(t, app, "/socket", "lea")
		whChatJoin(c, "1", "room:leave")
		c.send(`["1","2","room:leave","phx_leave",{}]`)
		c.expect(`["1","2","room:leave","phx_reply",{"status":"ok","response":{}}]`)
		c.expect(`["1","1","room:leave","phx_close",{}]`)
		whWaitLeave(t, app, whLeave("lea", "room:leave", "leave"))
	})

	t.Run("closed", func(t *testing.T) {
		c := whChatDial(t, app, "/socket", "cleo")
		whChatJoin(c, "1", "room:closed")
		c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		if code, err := whCloseCode(c.conn); code != websocket.CloseNormalClosure {
			t.Errorf("close echo %d (%v), want 1000", code, err)
		}
		whWaitLeave(t, app, whLeave("cleo", "room:closed", "closed"))
	})

	t.Run("duplicate_join", func(t *testing.T) {
		c := whChatDial(t, app, "/socket", "dupe")
		whChatJoin(c, "1", "room:dup")
		whChatJoin(c, "3", "room:dup")
		c.expect(`["1","1","room:dup","phx_close",{}]`)
		whWaitLeave(t, app, whLeave("dupe", "room:dup", "duplicate_join"))
	})

	t.Run("disconnect API", func(t *testing.T) {
		c := whChatDial(t, app, "/socket", "dora")
		whChatJoin(c, "1", "room:disc")
		status, body := httpDo(t, http.MethodPost, "/socket/api/disconnect", auth, `{"id":"user_socket:dora"}`)
		if status != http.StatusAccepted || !jsonEqual([]byte(body), []byte(`{"accepted":1}`)) {
			t.Fatalf("disconnect API: %d %s, want 202 {\"accepted\":1}", status, body)
		}
		c.expectClose(websocket.CloseGoingAway)
		whWaitLeave(t, app, whLeave("dora", "room:disc", "disconnect"))
	})

	t.Run("disconnect broadcast", func(t *testing.T) {
		ava1 := whChatDial(t, app, "/socket", "ava")
		ava2 := whChatDial(t, app, "/socket", "ava")
		bo := whChatDial(t, app, "/socket", "bo")
		whChatJoin(ava1, "1", "room:bc")
		whChatJoin(ava2, "1", "room:bc2")
		whChatJoin(bo, "1", "room:bc")
		status, body := httpDo(t, http.MethodPost, "/socket/api/broadcast", auth,
			`{"topic":"user_socket:ava","event":"disconnect"}`)
		if status != http.StatusAccepted {
			t.Fatalf("broadcast API: %d %s, want 202", status, body)
		}
		ava1.expectClose(websocket.CloseGoingAway)
		ava2.expectClose(websocket.CloseGoingAway)
		confSync(bo, false, "1")
		whWaitLeave(t, app, whLeave("ava", "room:bc", "disconnect"))
		whWaitLeave(t, app, whLeave("ava", "room:bc2", "disconnect"))
		bo.send(`["1","2","room:bc","whoami",{}]`)
		bo.expect(`["1","2","room:bc","phx_reply",{"status":"ok","response":{"user":"bo","room":"bc"}}]`)
	})

	t.Run("timeout", func(t *testing.T) {
		c := whChatDial(t, app, "/ws/idle", "tim")
		whChatJoin(c, "1", "room:idle")
		c.expectClose(websocket.CloseGoingAway)
		whWaitLeave(t, app, whLeave("tim", "room:idle", "timeout"))
	})
}

// TestWebhookChatShutdown: removing the handler from the config closes its
// sockets with 1001 and notifies their channels with reason shutdown.
func TestWebhookChatShutdown(t *testing.T) {
	app := whChat(t)
	c := whChatDial(t, app, "/socket", "shay")
	whChatJoin(c, "1", "room:shut")

	// Read concurrently so that the close handshake completes while the
	// new config loads (the old one waits for its sockets).
	closed := make(chan int, 1)
	go func() {
		code, _ := whCloseCode(c.conn)
		closed <- code
	}()
	loadCaddyfile(t, site(`	respond /socket/* "no sockets here" 200`))
	if code := <-closed; code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	whWaitLeave(t, app, whLeave("shay", "room:shut", "shutdown"))
}

// TestWebhookRequests checks what the app receives: headers, signature
// (with the secret given as a placeholder) and the exact body of each
// call, for V2 and V1 sockets, and binary answers.
func TestWebhookRequests(t *testing.T) {
	const secret = "secret-from-the-environment"
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.URL.Path {
		case "/connect":
			if bytes.Contains(body, []byte(`"token":"anon"`)) {
				whWrite(w, 200, `{"status":"ok"}`)
				return
			}
			whWrite(w, 200, `{"status":"ok","id":"user_socket:u1","assigns":{"user":"u1","role":"member"}}`)
		case "/join":
			whWrite(w, 200, `{"response":{"welcome":true},"assigns":{"room":"a"}}`)
		case "/event":
			switch whEvent(body) {
			case "stash":
				whWrite(w, 200, `{"assigns":{"n":1},"reply":{"status":"ok","response":{"done":true}}}`)
			case "upload":
				whWrite(w, 200, `{"push":[{"event":"blob","binary":"AQI="}],"reply":{"binary":"AAH/"}}`)
			case "binpush":
				whWrite(w, 200, `{"push":[{"event":"blob","binary":"AQI="}]}`)
			default:
				whWrite(w, 200, `{"reply":{"status":"ok","response":{}}}`)
			}
		case "/leave":
			whWrite(w, http.StatusNoContent, "")
		}
	})
	t.Setenv("CHANNELS_TEST_WEBHOOK_SECRET", secret)
	t.Setenv("CHANNELS_TEST_CONNECT_URL", b.url+"/connect")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		connect upstream {env.CHANNELS_TEST_CONNECT_URL} {
			forward_headers Cookie Authorization X-Multi X-Absent
		}
		webhook_secret {env.CHANNELS_TEST_WEBHOOK_SECRET}
		channel room:* {
			join upstream %[1]s/join
			handle_in * upstream %[1]s/event
			leave upstream %[1]s/leave
		}
	}`, b.url)))

	t.Run("v2", func(t *testing.T) {
		hdr := whAuthProtocol("tok-123")
		hdr["Cookie"] = []string{"sid=1"}
		hdr["Authorization"] = []string{"Bearer zz"}
		hdr["X-Multi"] = []string{"one", "two"}
		hdr["X-Other"] = []string{"not forwarded"}
		c := dial(t, "/socket", "token=abc&vsn=2.0.0&a[b]=1&list[]=x&list[]=y", hdr)
		reqs := b.waitRequests(t, "/connect", 1)
		whCheckRequest(t, reqs[0], "connect", secret, `{
			"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},
			"params":{"token":"abc","vsn":"2.0.0","a":{"b":"1"},"list":["x","y"]},
			"headers":{"cookie":"sid=1","authorization":"Bearer zz","x-multi":"one, two"},
			"auth_token":"tok-123"}`)

		sock := `{"id":"user_socket:u1","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1",`
		c.send(`["1","1","room:a","phx_join",{"p":1}]`)
		c.expect(`["1","1","room:a","phx_reply",{"status":"ok","response":{"welcome":true}}]`)
		whCheckRequest(t, b.requests("/join")[0], "join", secret,
			`{"socket":`+sock+`"assigns":{"user":"u1","role":"member"}},"topic":"room:a","payload":{"p":1},"join_ref":"1"}`)

		c.send(`["1","2","room:a","stash",{"x":1}]`)
		c.expect(`["1","2","room:a","phx_reply",{"status":"ok","response":{"done":true}}]`)
		c.send(`["1","3","room:a","look",[1,"two"]]`)
		c.expect(`["1","3","room:a","phx_reply",{"status":"ok","response":{}}]`)
		c.sendBinary(confBinPush("1", "4", "room:a", "upload", []byte{0, 1, 0xff}))
		// The push (server push: kind 0, 4-byte header) before the reply.
		c.expectBinary(append([]byte{0, 1, 6, 4}, "1room:ablob\x01\x02"...))
		c.expectBinary(confBinReply("1", "4", "room:a", "ok", []byte{0, 1, 0xff}))
		ev := b.requests("/event")
		if len(ev) != 3 {
			t.Fatalf("%d handle_in calls, want 3", len(ev))
		}
		whCheckRequest(t, ev[0], "handle_in", secret, `{"socket":`+sock+`"assigns":{"user":"u1","role":"member","room":"a"}},`+
			`"topic":"room:a","event":"stash","payload":{"x":1},"ref":"2","join_ref":"1"}`)
		whCheckRequest(t, ev[1], "handle_in", secret, `{"socket":`+sock+`"assigns":{"user":"u1","role":"member","room":"a","n":1}},`+
			`"topic":"room:a","event":"look","payload":[1,"two"],"ref":"3","join_ref":"1"}`)
		whCheckRequest(t, ev[2], "handle_in", secret, `{"socket":`+sock+`"assigns":{"user":"u1","role":"member","room":"a","n":1}},`+
			`"topic":"room:a","event":"upload","payload":null,"binary":"AAH/","ref":"4","join_ref":"1"}`)

		c.send(`["1","5","room:a","phx_leave",{}]`)
		c.expect(`["1","5","room:a","phx_reply",{"status":"ok","response":{}}]`)
		c.expect(`["1","1","room:a","phx_close",{}]`)
		leaves := b.waitRequests(t, "/leave", 1)
		whCheckRequest(t, leaves[0], "leave", secret, `{"socket":`+sock+`"assigns":{"user":"u1","role":"member","room":"a","n":1}},`+
			`"topic":"room:a","reason":"leave"}`)
	})

	t.Run("v1 anonymous", func(t *testing.T) {
		base := len(b.requests("/connect"))
		c := dial(t, "/socket", "token=anon", nil)
		reqs := b.waitRequests(t, "/connect", base+1)
		whCheckRequest(t, reqs[base], "connect", secret, `{
			"socket":{"id":null,"transport":"websocket","vsn":"1.0.0","remote_ip":"127.0.0.1","assigns":{}},
			"params":{"token":"anon"},"headers":{},"auth_token":null}`)

		sock := `{"id":null,"transport":"websocket","vsn":"1.0.0","remote_ip":"127.0.0.1",`
		joins, events := len(b.requests("/join")), len(b.requests("/event"))
		c.send(`{"topic":"room:b","event":"phx_join","payload":{},"ref":"1"}`)
		c.expect(`{"topic":"room:b","event":"phx_reply","payload":{"status":"ok","response":{"welcome":true}},"ref":"1"}`)
		whCheckRequest(t, b.requests("/join")[joins], "join", secret,
			`{"socket":`+sock+`"assigns":{}},"topic":"room:b","payload":{},"join_ref":null}`)
		c.send(`{"topic":"room:b","event":"look","payload":{"y":2},"ref":"2"}`)
		c.expect(`{"topic":"room:b","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"2"}`)
		whCheckRequest(t, b.requests("/event")[events], "handle_in", secret,
			`{"socket":`+sock+`"assigns":{"room":"a"}},"topic":"room:b","event":"look","payload":{"y":2},"ref":"2","join_ref":null}`)

		// Binary answers cannot reach a V1 client: an error reply instead.
		const v1Binary = `{"status":"error","response":{"reason":"binary payloads need protocol version 2.0.0"}}`
		c.send(`{"topic":"room:b","event":"upload","payload":{},"ref":"3"}`)
		c.expect(`{"topic":"room:b","event":"phx_reply","payload":` + v1Binary + `,"ref":"3"}`)
		c.send(`{"topic":"room:b","event":"binpush","payload":{},"ref":"4"}`)
		c.expect(`{"topic":"room:b","event":"phx_reply","payload":` + v1Binary + `,"ref":"4"}`)
		confSync(c, true, "5")

		// The client closes: leave with reason closed.
		c.conn.Close()
		leaves := b.waitRequests(t, "/leave", 2)
		whCheckRequest(t, leaves[1], "leave", secret,
			`{"socket":`+sock+`"assigns":{"room":"a"}},"topic":"room:b","reason":"closed"}`)
	})
}

// TestWebhookConnectFailures: every documented failure of the connect
// call answers the upgrade with 503, a refusal with 403, and an ok with
// the upgrade; nothing is retried and calls are unsigned without a secret.
func TestWebhookConnectFailures(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch strings.TrimPrefix(r.URL.Path, "/connect/") {
		case "slow":
			whSleep(r, 2*time.Second)
			whWrite(w, 200, `{}`)
		case "500":
			whWrite(w, 500, `{"status":"ok"}`)
		case "401":
			whWrite(w, 401, "")
		case "403":
			whWrite(w, 403, `{"status":"ok"}`)
		case "refuse":
			whWrite(w, 200, `{"status":"error"}`)
		case "garbage":
			whWrite(w, 200, `not json`)
		case "redirect":
			w.Header().Set("Location", "/connect/ok")
			w.WriteHeader(http.StatusFound)
		case "ok":
			whWrite(w, 200, `{}`)
		case "empty":
			whWrite(w, 200, "")
		}
	})
	dead := whDeadURL(t)
	cases := []struct {
		name   string
		status int // 0: upgraded
	}{
		{"slow", http.StatusServiceUnavailable},
		{"500", http.StatusServiceUnavailable},
		{"garbage", http.StatusServiceUnavailable},
		{"redirect", http.StatusServiceUnavailable},
		{"dead", http.StatusServiceUnavailable},
		{"401", http.StatusForbidden},
		{"403", http.StatusForbidden},
		{"refuse", http.StatusForbidden},
		{"ok", 0},
		{"empty", 0},
	}
	var blocks []string
	for _, tc := range cases {
		url := b.url + "/connect/" + tc.name
		if tc.name == "dead" {
			url = dead
		}
		blocks = append(blocks, fmt.Sprintf(`	channels {
		path /c/%s
		webhook_timeout 200ms
		connect upstream %s
		channel room:* {
			join allow
		}
	}`, tc.name, url))
	}
	loadCaddyfile(t, site(strings.Join(blocks, "\n")))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			if tc.status == 0 {
				c := dial(t, "/c/"+tc.name, q("vsn", "2.0.0"), nil)
				c.join("1", "1", "room:x")
			} else if got := whRefused(t, "/c/"+tc.name, q("vsn", "2.0.0"), nil); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			elapsed := time.Since(start)
			if tc.name == "slow" && (elapsed < 180*time.Millisecond || elapsed > 1500*time.Millisecond) {
				t.Errorf("refused after %v, want about the 200ms webhook_timeout", elapsed)
			}
			if tc.name == "dead" {
				return
			}
			reqs := b.requests("/connect/" + tc.name)
			if len(reqs) != 1 {
				t.Fatalf("%d calls, want exactly 1 (no retries, redirects not followed)", len(reqs))
			}
			whCheckRequest(t, reqs[0], "connect", "", `{
				"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},
				"params":{"vsn":"2.0.0"},"headers":{},"auth_token":null}`)
		})
	}
	if n := b.count("/connect/ok"); n != 1 {
		t.Errorf("the redirect was followed: /connect/ok got %d calls, want 1", n)
	}
}

// TestWebhookJoinFailures: a failed join call answers the join with
// {"reason":"upstream_unavailable"}; the socket stays up (heartbeats and
// other channels work) and the topic stays unjoined. A 401/403 refuses
// with unauthorized, an error status refuses with the app's response.
func TestWebhookJoinFailures(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch strings.TrimPrefix(r.URL.Path, "/join/") {
		case "slow":
			whSleep(r, 2*time.Second)
			whWrite(w, 200, `{}`)
		case "500":
			whWrite(w, 500, "")
		case "garbage":
			whWrite(w, 200, `{"status":`)
		case "401":
			whWrite(w, 401, "")
		case "403":
			whWrite(w, 403, "")
		case "refuse":
			whWrite(w, 200, `{"status":"error","response":{"reason":"not a member"},"assigns":{"x":1}}`)
		case "custom":
			whWrite(w, 200, `{"status":"banned"}`)
		}
	})
	dead := whDeadURL(t)
	cases := []struct {
		name, reply string
	}{
		{"slow", whUnavailable},
		{"500", whUnavailable},
		{"garbage", whUnavailable},
		{"dead", whUnavailable},
		{"401", `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"403", `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"refuse", `{"status":"error","response":{"reason":"not a member"}}`},
		{"custom", `{"status":"banned","response":{}}`},
	}
	var rules strings.Builder
	for _, tc := range cases {
		url := b.url + "/join/" + tc.name
		if tc.name == "dead" {
			url = dead
		}
		fmt.Fprintf(&rules, "\n\t\tchannel %s:* {\n\t\t\tjoin upstream %s\n\t\t}", tc.name, url)
	}
	loadCaddyfile(t, site(`	channels {
		webhook_timeout 200ms`+rules.String()+`
		channel ok:* {
			join allow
			handle_in ping reply
		}
	}`))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, "/socket", q("vsn", "2.0.0"), nil)
			topic := tc.name + ":x"
			start := time.Now()
			c.send(fmt.Sprintf(`["1","1",%q,"phx_join",{}]`, topic))
			c.expect(fmt.Sprintf(`["1","1",%q,"phx_reply",%s]`, topic, tc.reply))
			if elapsed := time.Since(start); tc.name == "slow" && elapsed > 1500*time.Millisecond {
				t.Errorf("answered after %v, want about the 200ms webhook_timeout", elapsed)
			}
			confSync(c, false, "2")
			c.join("3", "3", "ok:x")
			c.send(`["3","4","ok:x","ping",{"still":"here"}]`)
			c.expect(`["3","4","ok:x","phx_reply",{"status":"ok","response":{"still":"here"}}]`)
			c.send(fmt.Sprintf(`["1","5",%q,"ping",{}]`, topic))
			c.expect(fmt.Sprintf(`[null,"5",%q,"phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`, topic))
		})
	}

	t.Run("v1", func(t *testing.T) {
		c := dial(t, "/socket", "", nil)
		c.send(`{"topic":"500:v1","event":"phx_join","payload":{},"ref":"1"}`)
		c.expect(`{"topic":"500:v1","event":"phx_reply","payload":` + whUnavailable + `,"ref":"1"}`)
		confSync(c, true, "2")
	})
}

// TestWebhookHandleInFailures: a failed handle_in call answers the push
// with {"reason":"upstream_unavailable"} and the channel stays joined; 204
// and empty answers are a noreply.
func TestWebhookHandleInFailures(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch strings.TrimPrefix(r.URL.Path, "/event/") {
		case "slow":
			whSleep(r, 2*time.Second)
			whWrite(w, 200, `{"reply":{}}`)
		case "500":
			whWrite(w, 500, `{"reply":{}}`)
		case "garbage":
			whWrite(w, 200, `<html>`)
		case "401":
			whWrite(w, 401, `{"reply":{}}`)
		case "nocontent":
			whWrite(w, http.StatusNoContent, "")
		case "empty":
			whWrite(w, 200, "")
		case "badbinary":
			whWrite(w, 200, `{"reply":{"binary":"!!not base64"}}`)
		}
	})
	dead := whDeadURL(t)
	cases := []struct {
		name  string
		reply string // "": no reply
	}{
		{"slow", whUnavailable},
		{"500", whUnavailable},
		{"garbage", whUnavailable},
		{"401", whUnavailable},
		{"dead", whUnavailable},
		{"badbinary", whUnavailable},
		{"nocontent", ""},
		{"empty", ""},
	}
	var rules strings.Builder
	for _, tc := range cases {
		url := b.url + "/event/" + tc.name
		if tc.name == "dead" {
			url = dead
		}
		fmt.Fprintf(&rules, "\n\t\t\thandle_in %s upstream %s", tc.name, url)
	}
	loadCaddyfile(t, site(`	channels {
		webhook_timeout 200ms
		channel ev:* {
			join allow
			handle_in ping reply`+rules.String()+`
		}
	}`))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, "/socket", q("vsn", "2.0.0"), nil)
			c.join("1", "1", "ev:x")
			c.send(fmt.Sprintf(`["1","2","ev:x",%q,{}]`, tc.name))
			if tc.reply != "" {
				c.expect(fmt.Sprintf(`["1","2","ev:x","phx_reply",%s]`, tc.reply))
			} else {
				confSync(c, false, "3")
			}
			c.send(`["1","4","ev:x","ping",{"joined":true}]`)
			c.expect(`["1","4","ev:x","phx_reply",{"status":"ok","response":{"joined":true}}]`)
		})
	}
}

// TestWebhookCircuitBreaker: 5 consecutive failures open the circuit of
// an upstream URL; the 6th call fails at once without a request; after
// the 5 s cool-down (the longest wait of this file) a trial call goes
// through and closes the circuit.
func TestWebhookCircuitBreaker(t *testing.T) {
	var healthy atomic.Bool
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if !healthy.Load() {
			whWrite(w, 500, "")
			return
		}
		whWrite(w, 200, `{"reply":{"status":"ok","response":{"up":true}}}`)
	})
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		channel br:* {
			join allow
			handle_in ping reply
			handle_in * upstream %s/breaker
		}
	}`, b.url)))
	c := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	c.join("1", "1", "br:x")

	for i := 1; i <= 5; i++ {
		c.send(fmt.Sprintf(`["1","%d","br:x","work",{}]`, i))
		c.expect(fmt.Sprintf(`["1","%d","br:x","phx_reply",%s]`, i, whUnavailable))
		if n := b.count("/breaker"); n != i {
			t.Fatalf("after %d pushes the backend saw %d calls", i, n)
		}
	}
	opened := time.Now()
	healthy.Store(true) // the circuit, not the backend, answers from now on
	c.send(`["1","6","br:x","work",{}]`)
	c.expect(`["1","6","br:x","phx_reply",` + whUnavailable + `]`)
	if n := b.count("/breaker"); n != 5 {
		t.Fatalf("the 6th call reached the backend (%d calls): the circuit did not open", n)
	}
	c.send(`["1","7","br:x","ping",{}]`)
	c.expect(`["1","7","br:x","phx_reply",{"status":"ok","response":{}}]`)

	time.Sleep(time.Until(opened.Add(webhook.DefaultBreakerCooldown + 100*time.Millisecond)))
	for i := 8; i <= 9; i++ {
		c.send(fmt.Sprintf(`["1","%d","br:x","work",{}]`, i))
		c.expect(fmt.Sprintf(`["1","%d","br:x","phx_reply",{"status":"ok","response":{"up":true}}]`, i))
	}
	if n := b.count("/breaker"); n != 7 {
		t.Fatalf("the backend saw %d calls, want 7 (trial call, then a closed circuit)", n)
	}
}

// TestWebhookConcurrentJoins: joins of 20 sockets to a slow join webhook
// are decided concurrently and all succeed.
func TestWebhookConcurrentJoins(t *testing.T) {
	const sockets = 20
	const delay = 100 * time.Millisecond
	var inflight, peak atomic.Int32
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		whSleep(r, delay)
		inflight.Add(-1)
		var req struct {
			Topic string `json:"topic"`
		}
		json.Unmarshal(body, &req)
		whWrite(w, 200, fmt.Sprintf(`{"response":{"topic":%q}}`, req.Topic))
	})
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		channel slow:* {
			join upstream %s/join
		}
	}`, b.url)))
	cs := make([]*client, sockets)
	for i := range cs {
		cs[i] = dial(t, "/socket", q("vsn", "2.0.0"), nil)
	}
	start := time.Now()
	for i, c := range cs {
		c.send(fmt.Sprintf(`["1","1","slow:%d","phx_join",{}]`, i))
	}
	for i, c := range cs {
		c.expect(fmt.Sprintf(`["1","1","slow:%d","phx_reply",{"status":"ok","response":{"topic":"slow:%d"}}]`, i, i))
	}
	elapsed := time.Since(start)
	if n := b.count("/join"); n != sockets {
		t.Errorf("%d join calls, want %d", n, sockets)
	}
	if elapsed >= sockets*delay {
		t.Errorf("the joins took %v, as long as one after another (%v)", elapsed, sockets*delay)
	}
	if p := peak.Load(); p < 2 {
		t.Errorf("at most %d join call in flight, want concurrent calls", p)
	}
	t.Logf("%d joins in %v, %d calls in flight at most", sockets, elapsed, peak.Load())
}

// TestWebhookMixedRules: declarative and upstream rules mix per channel
// and per event; a named event wins over "*", whichever of the two is
// upstream.
func TestWebhookMixedRules(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.URL.Path {
		case "/join":
			whWrite(w, 200, `{"response":{"via":"upstream"}}`)
		case "/event":
			whWrite(w, 200, fmt.Sprintf(`{"reply":{"status":"ok","response":{"upstream":%q}}}`, whEvent(body)))
		}
	})
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		channel room:* {
			join upstream %[1]s/join
			handle_in typing broadcast_from
			handle_in * upstream %[1]s/event
		}
		channel decl:* {
			join allow
			handle_in * broadcast
			handle_in special upstream %[1]s/event
		}
		channel plain:* {
			join allow
			handle_in echo reply
		}
	}`, b.url)))
	alice := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	bob := dial(t, "/socket", q("vsn", "2.0.0"), nil)

	// Upstream join and "*", declarative typing.
	for _, c := range []*client{alice, bob} {
		c.send(`["1","1","room:r","phx_join",{}]`)
		c.expect(`["1","1","room:r","phx_reply",{"status":"ok","response":{"via":"upstream"}}]`)
	}
	alice.send(`["1","2","room:r","typing",{"on":true}]`)
	alice.expect(`["1","2","room:r","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"room:r","typing",{"on":true}]`)
	alice.send(`["1","3","room:r","new_msg",{"body":"hi"}]`)
	alice.expect(`["1","3","room:r","phx_reply",{"status":"ok","response":{"upstream":"new_msg"}}]`)
	confSync(bob, false, "s1")

	// Declarative join and "*", upstream named event.
	for _, c := range []*client{alice, bob} {
		c.join("2", "4", "decl:d")
	}
	alice.send(`["2","5","decl:d","special",{}]`)
	alice.expect(`["2","5","decl:d","phx_reply",{"status":"ok","response":{"upstream":"special"}}]`)
	confSync(bob, false, "s2")
	alice.send(`["2","6","decl:d","other",{"n":1}]`)
	alice.expect(`[null,null,"decl:d","other",{"n":1}]`)
	alice.expect(`["2","6","decl:d","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"decl:d","other",{"n":1}]`)

	// A channel without webhooks.
	alice.join("3", "7", "plain:p")
	alice.send(`["3","8","plain:p","echo",{"e":1}]`)
	alice.expect(`["3","8","plain:p","phx_reply",{"status":"ok","response":{"e":1}}]`)
	confSync(alice, false, "s3")

	if n := b.count("/join"); n != 2 {
		t.Errorf("%d join calls, want 2 (room:r only)", n)
	}
	var events []string
	for _, r := range b.requests("/event") {
		events = append(events, whEvent(r.body))
	}
	if want := []string{"new_msg", "special"}; !slices.Equal(events, want) {
		t.Errorf("handle_in calls for %q, want %q", events, want)
	}
}

// TestWebhookHandleInAnswer: every field of a handle_in answer at once is
// applied in the documented order (broadcasts, broadcast_from, pushes,
// reply, stop) without a leave call for the stop; binary items reach V2
// clients as binary frames and V1 clients not at all; items that cannot be
// sent are skipped while the rest of the answer applies.
func TestWebhookHandleInAnswer(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/leave" {
			whWrite(w, http.StatusNoContent, "")
			return
		}
		switch whEvent(body) {
		case "all":
			whWrite(w, 200, `{
				"broadcast": [{"event":"new_msg","payload":{"body":"hi"}},{"event":"bin","binary":"AAH/"}],
				"broadcast_from": [{"event":"typing","payload":{"user":"alice"}}],
				"push": [{"event":"pong","payload":{}},{"event":"blob","binary":"AAH/"}],
				"assigns": {"nick":"Al"},
				"reply": {"status":"ok","response":{"nick":"Al"}},
				"stop": {"reason":"bye"}}`)
		case "messy":
			whWrite(w, 200, `{
				"broadcast": [{"payload":{"a":1}},{"event":"phx_reply","payload":{}},{"event":"arr","payload":[1]},
					{"event":"b64","binary":"!!"},{"event":"good","payload":{"a":1}}],
				"push": [{"payload":{}},{"event":"arr","payload":[1]},{"event":"b64","binary":"!!"},{"event":"p","payload":{"b":2}}],
				"reply": {"status":"error","response":{"why":"partial"}}}`)
		}
	})
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		channel room:* {
			join allow
			handle_in * upstream %[1]s/event
			leave upstream %[1]s/leave
		}
	}`, b.url)))

	t.Run("all fields", func(t *testing.T) {
		alice := dial(t, "/socket", q("vsn", "2.0.0"), nil)
		bob := dial(t, "/socket", q("vsn", "2.0.0"), nil)
		vic := dial(t, "/socket", "", nil)
		alice.join("1", "1", "room:all")
		bob.join("1", "1", "room:all")
		confJoinV1(vic, "1", "room:all")
		alice.join("2", "2", "room:other")

		alice.send(`["1","3","room:all","all",{}]`)
		alice.expect(`[null,null,"room:all","new_msg",{"body":"hi"}]`)
		alice.expectBinary(confBinBroadcast("room:all", "bin", []byte{0, 1, 0xff}))
		alice.expect(`["1",null,"room:all","pong",{}]`)
		alice.expectBinary(append([]byte{0, 1, 8, 4}, "1room:allblob\x00\x01\xff"...))
		alice.expect(`["1","3","room:all","phx_reply",{"status":"ok","response":{"nick":"Al"}}]`)
		alice.expect(`["1","1","room:all","phx_close",{}]`)
		confSync(alice, false, "4")
		bob.expect(`[null,null,"room:all","new_msg",{"body":"hi"}]`)
		bob.expectBinary(confBinBroadcast("room:all", "bin", []byte{0, 1, 0xff}))
		bob.expect(`[null,null,"room:all","typing",{"user":"alice"}]`)
		confSync(bob, false, "2")
		vic.expect(`{"topic":"room:all","event":"new_msg","payload":{"body":"hi"},"ref":null}`)
		vic.expect(`{"topic":"room:all","event":"typing","payload":{"user":"alice"},"ref":null}`)
		confSync(vic, true, "2")

		// The stop ended room:all without a leave call; leaving room:other
		// makes one.
		alice.send(`["2","5","room:other","phx_leave",{}]`)
		alice.expect(`["2","5","room:other","phx_reply",{"status":"ok","response":{}}]`)
		alice.expect(`["2","2","room:other","phx_close",{}]`)
		leaves := b.waitRequests(t, "/leave", 1)
		time.Sleep(100 * time.Millisecond)
		if leaves = b.requests("/leave"); len(leaves) != 1 || !bytes.Contains(leaves[0].body, []byte(`"topic":"room:other"`)) {
			for _, l := range leaves {
				t.Logf("leave call: %s", l.body)
			}
			t.Fatalf("%d leave calls, want exactly the one of room:other (none for the stop)", len(leaves))
		}
	})

	t.Run("invalid items skipped", func(t *testing.T) {
		alice := dial(t, "/socket", q("vsn", "2.0.0"), nil)
		bob := dial(t, "/socket", q("vsn", "2.0.0"), nil)
		alice.join("1", "1", "room:messy")
		bob.join("1", "1", "room:messy")
		alice.send(`["1","2","room:messy","messy",{}]`)
		alice.expect(`[null,null,"room:messy","good",{"a":1}]`)
		alice.expect(`["1",null,"room:messy","p",{"b":2}]`)
		alice.expect(`["1","2","room:messy","phx_reply",{"status":"error","response":{"why":"partial"}}]`)
		confSync(alice, false, "3")
		bob.expect(`[null,null,"room:messy","good",{"a":1}]`)
		confSync(bob, false, "2")
	})
}

// TestWebhookConnectThenRules: with connect upstream, assign rules run
// after the webhook and see its assigns, and an id rule overrides the
// webhook's id (which the disconnect API then uses).
func TestWebhookConnectThenRules(t *testing.T) {
	b := newWHBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.URL.Path {
		case "/connect":
			whWrite(w, 200, `{"id":"user_socket:hook","assigns":{"user":"u9"}}`)
		case "/join":
			whWrite(w, 200, `{}`)
		}
	})
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		api_key %[2]s
		connect upstream %[1]s/connect
		assign tag "assigns.user + '!'"
		id "'custom:' + assigns.user"
		channel room:* {
			join upstream %[1]s/join
		}
	}`, b.url, whAPIKey)))
	c := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	c.join("1", "1", "room:r")
	whCheckRequest(t, b.requests("/join")[0], "join", "", `{"socket":{"id":"custom:u9","transport":"websocket","vsn":"2.0.0",`+
		`"remote_ip":"127.0.0.1","assigns":{"user":"u9","tag":"u9!"}},"topic":"room:r","payload":{},"join_ref":"1"}`)

	auth := http.Header{"Authorization": {"Bearer " + whAPIKey}}
	if status, body := httpDo(t, http.MethodPost, "/socket/api/disconnect", auth, `{"id":"custom:u9"}`); status != http.StatusAccepted {
		t.Fatalf("disconnect API: %d %s", status, body)
	}
	c.expectClose(websocket.CloseGoingAway)
}
