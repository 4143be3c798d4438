package chat_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
)

const secret = "test-webhook-secret"

// sign returns an X-Channels-Signature value for body at unix time ts,
// computed independently of the package under test.
func sign(key, body string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "%d.%s", ts, body)
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(mac.Sum(nil)))
}

// post sends a webhook request with the given event and signature headers
// (an empty value leaves the header out) and returns status and body.
func post(t *testing.T, h http.Handler, path, event, signature, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if event != "" {
		req.Header.Set("X-Channels-Event", event)
	}
	if signature != "" {
		req.Header.Set("X-Channels-Signature", signature)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// hook sends a correctly signed webhook request.
func hook(t *testing.T, h http.Handler, path, event, body string) (int, string) {
	t.Helper()
	return post(t, h, path, event, sign(secret, body, time.Now().Unix()), body)
}

// socketJSON is the "socket" object of a request for a signed-in user.
func socketJSON(assigns string) string {
	return `{"id":"user_socket:alice","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":` + assigns + `}`
}

func TestSignatureIsRequired(t *testing.T) {
	body := `{"socket":` + socketJSON(`{"user":"alice","room":"lobby"}`) +
		`,"topic":"room:lobby","event":"whoami","payload":{},"ref":"3","join_ref":"2"}`
	now := time.Now().Unix()
	valid := sign(secret, body, now)
	okBody := `{"reply":{"status":"ok","response":{"room":"lobby","user":"alice"}}}` + "\n"
	unauthorized := `{"error":"invalid signature"}` + "\n"
	cases := []struct {
		name      string
		event     string
		signature string
		status    int
		body      string
	}{
		{"valid", "handle_in", valid, 200, okBody},
		{"keys are case-sensitive", "handle_in", "T" + valid[1:], 401, unauthorized},
		{"spaces and unknown keys", "handle_in", "t=" + fmt.Sprint(now) + ", v0=abc, " + valid[strings.Index(valid, "v1="):], 200, okBody},
		{"second v1 matches", "handle_in", valid + ",v1=" + strings.Repeat("00", 32), 200, okBody},
		{"4 minutes old", "handle_in", sign(secret, body, now-240), 200, okBody},
		{"missing", "handle_in", "", 401, unauthorized},
		{"wrong secret", "handle_in", sign("other-secret", body, now), 401, unauthorized},
		{"other body", "handle_in", sign(secret, body+" ", now), 401, unauthorized},
		{"6 minutes old", "handle_in", sign(secret, body, now-360), 401, unauthorized},
		{"6 minutes ahead", "handle_in", sign(secret, body, now+360), 401, unauthorized},
		{"timestamp changed", "handle_in", strings.Replace(valid, fmt.Sprint(now), fmt.Sprint(now-1), 1), 401, unauthorized},
		{"no timestamp", "handle_in", valid[strings.Index(valid, "v1="):], 401, unauthorized},
		{"no v1", "handle_in", "t=" + fmt.Sprint(now), 401, unauthorized},
		{"v1 not hex", "handle_in", "t=" + fmt.Sprint(now) + ",v1=zz", 401, unauthorized},
		{"timestamp not a number", "handle_in", "t=now,v1=00", 401, unauthorized},
		{"two timestamps", "handle_in", "t=1," + valid, 401, unauthorized},
		{"wrong event header", "join", valid, 400, `{"error":"X-Channels-Event must be handle_in"}` + "\n"},
		{"no event header", "", valid, 400, `{"error":"X-Channels-Event must be handle_in"}` + "\n"},
	}
	h := chat.New(secret, t.Logf).Handler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, got := post(t, h, "/channels/event", tc.event, tc.signature, body)
			if status != tc.status || got != tc.body {
				t.Errorf("got %d %q, want %d %q", status, got, tc.status, tc.body)
			}
		})
	}
}

func TestHexCaseIsAccepted(t *testing.T) {
	// hex digits may come in either case; only the timestamp must be exact.
	body := `{"socket":` + socketJSON(`{}`) + `,"topic":"room:lobby","reason":"leave"}`
	now := time.Now().Unix()
	sig := sign(secret, body, now)
	i := strings.Index(sig, "v1=") + 3
	upper := sig[:i] + strings.ToUpper(sig[i:])
	if status, got := post(t, chat.New(secret, t.Logf).Handler(), "/channels/leave", "leave", upper, body); status != 204 || got != "" {
		t.Errorf("got %d %q, want 204 and no body", status, got)
	}
}

func TestNoSecretSkipsSignatures(t *testing.T) {
	body := `{"socket":` + socketJSON(`{"user":"alice"}`) + `,"topic":"room:lobby","reason":"closed"}`
	if status, got := post(t, chat.New("", t.Logf).Handler(), "/channels/leave", "leave", "", body); status != 204 || got != "" {
		t.Errorf("got %d %q, want 204 and no body", status, got)
	}
}

func TestRoutes(t *testing.T) {
	h := chat.New(secret, t.Logf).Handler()
	cases := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/socket/connect", 405},
		{http.MethodGet, "/channels/event", 405},
		{http.MethodGet, "/login", 405},
		{http.MethodPost, "/nowhere", 404},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	body := `{"socket":{},"topic":"` + strings.Repeat("x", chat.MaxBody) + `"}`
	status, got := hook(t, chat.New(secret, t.Logf).Handler(), "/channels/leave", "leave", body)
	if want := `{"error":"body too large"}` + "\n"; status != 413 || got != want {
		t.Errorf("got %d %q, want 413 %q", status, got, want)
	}
}

func TestLogin(t *testing.T) {
	app := chat.New(secret, t.Logf)
	h := app.Handler()
	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		wantErr     string
	}{
		{"json", "application/json", `{"name":"alice"}`, 200, ""},
		{"json with charset", "application/json; charset=utf-8", `{"name":"bob"}`, 200, ""},
		{"form", "application/x-www-form-urlencoded", "name=carol", 200, ""},
		{"empty name", "application/json", `{"name":""}`, 400, `{"error":"issuing token: name must have 1 to 32 characters"}` + "\n"},
		{"bad characters", "application/x-www-form-urlencoded", "name=a%20b", 400, `{"error":"issuing token: name may only contain letters, digits, '_', '-' and '.', got \"a b\""}` + "\n"},
		{"bad json", "application/json", `{"name":`, 400, `{"error":"decoding body: unexpected EOF"}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				if rec.Body.String() != tc.wantErr {
					t.Errorf("body %q, want %q", rec.Body, tc.wantErr)
				}
				return
			}
			// The token must get the user through connect.
			token, ok := strings.CutPrefix(rec.Body.String(), `{"token":"`)
			token, ok2 := strings.CutSuffix(token, "\"}\n")
			if !ok || !ok2 {
				t.Fatalf("login answered %q", rec.Body)
			}
			name := strings.TrimPrefix(strings.TrimPrefix(tc.body, "name="), `{"name":"`)
			name = strings.TrimSuffix(name, `"}`)
			body := `{"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},"params":{"token":"` + token + `","vsn":"2.0.0"},"headers":{},"auth_token":null}`
			status, got := hook(t, h, "/socket/connect", "connect", body)
			want := `{"status":"ok","id":"user_socket:` + name + `","assigns":{"user":"` + name + `"}}` + "\n"
			if status != 200 || got != want {
				t.Errorf("connect: got %d %q, want 200 %q", status, got, want)
			}
		})
	}
}

func TestConnect(t *testing.T) {
	app := chat.New(secret, t.Logf)
	alice, err := app.IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := chat.New("another-secret", nil).IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	// A token whose name was swapped keeps the signature of "alice".
	forged := "Ym9i" + alice[strings.Index(alice, "."):]
	socket := `{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"203.0.113.7","assigns":{}}`
	ok := `{"status":"ok","id":"user_socket:alice","assigns":{"user":"alice"}}` + "\n"
	refused := `{"status":"error"}` + "\n"
	cases := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"params.token", `{"socket":` + socket + `,"params":{"token":"` + alice + `","vsn":"2.0.0"},"headers":{"user-agent":"test"},"auth_token":null}`, 200, ok},
		{"authToken", `{"socket":` + socket + `,"params":{"vsn":"2.0.0"},"headers":{},"auth_token":"` + alice + `"}`, 200, ok},
		{"no token", `{"socket":` + socket + `,"params":{"vsn":"2.0.0"},"headers":{},"auth_token":null}`, 403, refused},
		{"token not a string", `{"socket":` + socket + `,"params":{"token":{"a":"1"}},"headers":{},"auth_token":null}`, 403, refused},
		{"garbage token", `{"socket":` + socket + `,"params":{"token":"x.y.z"},"headers":{},"auth_token":null}`, 403, refused},
		{"forged name", `{"socket":` + socket + `,"params":{"token":"` + forged + `"},"headers":{},"auth_token":null}`, 403, refused},
		{"other secret", `{"socket":` + socket + `,"params":{"token":"` + foreign + `"},"headers":{},"auth_token":null}`, 403, refused},
		{"not json", `{"socket":`, 400, `{"error":"decoding connect request: unexpected end of JSON input"}` + "\n"},
	}
	h := app.Handler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, got := hook(t, h, "/socket/connect", "connect", tc.body)
			if status != tc.status || got != tc.want {
				t.Errorf("got %d %q, want %d %q", status, got, tc.status, tc.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	cases := []struct {
		name    string
		assigns string
		topic   string
		want    string
	}{
		{"lobby", `{"user":"alice"}`, "room:lobby", `{"response":{"joined":"room:lobby"},"assigns":{"room":"lobby"}}`},
		{"member of a private room", `{"user":"bob"}`, "room:private-staff", `{"response":{"joined":"room:private-staff"},"assigns":{"room":"private-staff"}}`},
		{"not a member", `{"user":"carol"}`, "room:private-staff", `{"status":"error","response":{"reason":"not a member"}}`},
		{"private room without members", `{"user":"alice"}`, "room:private-other", `{"status":"error","response":{"reason":"not a member"}}`},
		{"no user assign", `{}`, "room:lobby", `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"other topic", `{"user":"alice"}`, "admin:1", `{"status":"error","response":{"reason":"unknown topic"}}`},
		{"empty subtopic", `{"user":"alice"}`, "room:", `{"status":"error","response":{"reason":"unknown topic"}}`},
	}
	h := chat.New(secret, t.Logf).Handler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"socket":` + socketJSON(tc.assigns) + `,"topic":"` + tc.topic + `","payload":{"since":0},"join_ref":"1"}`
			status, got := hook(t, h, "/channels/join", "join", body)
			if status != 200 || got != tc.want+"\n" {
				t.Errorf("got %d %q, want 200 %q", status, got, tc.want)
			}
		})
	}
}

func TestHandleIn(t *testing.T) {
	const member = `{"user":"alice","room":"lobby"}`
	const renamed = `{"user":"alice","room":"lobby","nick":"Al"}`
	cases := []struct {
		name    string
		assigns string
		event   string
		payload string // the "payload" and, for binary pushes, "binary" members
		want    string
	}{
		{"new_msg", member, "new_msg", `"payload":{"body":"hi"}`,
			`{"broadcast":[{"event":"new_msg","payload":{"body":"hi","user":"alice"}}],"reply":{"status":"ok","response":{}}}`},
		{"new_msg with a nick", renamed, "new_msg", `"payload":{"body":"hi"}`,
			`{"broadcast":[{"event":"new_msg","payload":{"body":"hi","nick":"Al","user":"alice"}}],"reply":{"status":"ok","response":{}}}`},
		{"new_msg without body", member, "new_msg", `"payload":{}`,
			`{"reply":{"status":"error","response":{"reason":"body must be a non-empty string"}}}`},
		{"new_msg too long", member, "new_msg", `"payload":{"body":"` + strings.Repeat("a", 4001) + `"}`,
			`{"reply":{"status":"error","response":{"reason":"body is longer than 4000 bytes"}}}`},
		{"new_msg with a list payload", member, "new_msg", `"payload":[1]`,
			`{"reply":{"status":"error","response":{"reason":"payload must be a JSON object"}}}`},
		{"new_msg binary", member, "new_msg", `"payload":null,"binary":"AAE="`,
			`{"reply":{"status":"error","response":{"reason":"payload must be a JSON object"}}}`},
		{"shout", member, "shout", `"payload":{"body":"HEY"}`,
			`{"broadcast_from":[{"event":"shout","payload":{"body":"HEY","user":"alice"}}],"reply":{"status":"ok","response":{}}}`},
		{"whoami", member, "whoami", `"payload":{}`,
			`{"reply":{"status":"ok","response":{"room":"lobby","user":"alice"}}}`},
		{"whoami after rename", renamed, "whoami", `"payload":null`,
			`{"reply":{"status":"ok","response":{"nick":"Al","room":"lobby","user":"alice"}}}`},
		{"rename", member, "rename", `"payload":{"nick":" Al "}`,
			`{"assigns":{"nick":"Al"},"reply":{"status":"ok","response":{"nick":"Al"}}}`},
		{"rename without nick", member, "rename", `"payload":{"nick":7}`,
			`{"reply":{"status":"error","response":{"reason":"nick must have 1 to 32 characters"}}}`},
		{"bye", member, "bye", `"payload":{}`,
			`{"reply":{"status":"ok","response":{}},"stop":{"reason":"bye"}}`},
		{"ping_me", member, "ping_me", `"payload":{"n":1}`,
			`{"push":[{"event":"pong","payload":{"n":1}}]}`},
		{"echo json", member, "echo", `"payload":{"a":[1,2]}`,
			`{"reply":{"status":"ok","response":{"a":[1,2]}}}`},
		{"echo binary", member, "echo", `"payload":null,"binary":"AAH/"`,
			`{"reply":{"status":"ok","binary":"AAH/"}}`},
		{"echo bad payload", member, "echo", `"payload":"x"`,
			`{"reply":{"status":"error","response":{"reason":"payload must be a JSON object"}}}`},
		{"unknown", member, "dance", `"payload":{}`,
			`{"reply":{"status":"error","response":{"reason":"unknown event"}}}`},
	}
	h := chat.New(secret, t.Logf).Handler()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"socket":` + socketJSON(tc.assigns) + `,"topic":"room:lobby","event":"` + tc.event + `",` + tc.payload + `,"ref":"5","join_ref":"3"}`
			status, got := hook(t, h, "/channels/event", "handle_in", body)
			if status != 200 || got != tc.want+"\n" {
				t.Errorf("got %d %s, want 200 %s", status, got, tc.want)
			}
		})
	}
}

func TestLeave(t *testing.T) {
	app := chat.New(secret, t.Logf)
	h := app.Handler()
	reasons := []string{"leave", "closed", "timeout", "duplicate_join", "shutdown", "disconnect"}
	var wg sync.WaitGroup
	for _, reason := range reasons {
		wg.Go(func() {
			body := `{"socket":` + socketJSON(`{"user":"alice","room":"lobby"}`) + `,"topic":"room:lobby","reason":"` + reason + `"}`
			if status, got := hook(t, h, "/channels/leave", "leave", body); status != 204 || got != "" {
				t.Errorf("%s: got %d %q, want 204 and no body", reason, status, got)
			}
		})
	}
	wg.Wait()
	anonymous := `{"socket":{"id":null,"transport":"websocket","vsn":"1.0.0","remote_ip":"::1","assigns":{}},"topic":"room:x","reason":"closed"}`
	if status, _ := hook(t, h, "/channels/leave", "leave", anonymous); status != 204 {
		t.Fatalf("anonymous leave: status %d", status)
	}

	got := app.Leaves()
	if len(got) != len(reasons)+1 {
		t.Fatalf("recorded %d leaves, want %d: %+v", len(got), len(reasons)+1, got)
	}
	seen := map[string]bool{}
	for _, ev := range got[:len(reasons)] {
		if ev.SocketID != "user_socket:alice" || ev.User != "alice" || ev.Topic != "room:lobby" {
			t.Errorf("recorded %+v", ev)
		}
		seen[ev.Reason] = true
	}
	for _, reason := range reasons {
		if !seen[reason] {
			t.Errorf("reason %q not recorded", reason)
		}
	}
	if last, want := got[len(reasons)], (chat.LeaveEvent{Topic: "room:x", Reason: "closed"}); last != want {
		t.Errorf("anonymous leave recorded as %+v, want %+v", last, want)
	}
	// Leaves returns a copy.
	got[0].Topic = "changed"
	if app.Leaves()[0].Topic == "changed" {
		t.Error("Leaves shares its slice with the app")
	}
}
