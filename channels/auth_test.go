package channels

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// tableVerifier accepts the tokens of its table: the engine's side of
// authentication is under test here; real JWTs are verified in jwtauth
// and through Caddy in caddytest.
type tableVerifier struct {
	mu     sync.Mutex
	tokens map[string]tableToken
	seen   []string
}

type tableToken struct {
	claims map[string]any
	exp    time.Time
}

func (v *tableVerifier) Verify(_ context.Context, token string) (map[string]any, time.Time, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen = append(v.seen, token)
	t, ok := v.tokens[token]
	if !ok {
		return nil, time.Time{}, errors.New("bad signature")
	}
	return t.claims, t.exp, nil
}

func authHub(t *testing.T, auth AuthConfig, spec RulesSpec) (*Hub, string) {
	t.Helper()
	h, err := NewHub(Config{Rules: testRules(t, spec), Auth: auth}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, serveHub(t, h)
}

// Without a valid token the handshake gets 403; the token comes from the
// phoenix.js auth token subprotocol first, then the "token" param.
func TestAuthRefusesWithoutValidToken(t *testing.T) {
	v := &tableVerifier{tokens: map[string]tableToken{"good": {claims: map[string]any{"sub": "u1"}}}}
	h, base := authHub(t, AuthConfig{Verifier: v}, RulesSpec{})
	for _, c := range []struct {
		name  string
		query string
		proto []string
		want  int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"bad param token", "&token=bad", nil, http.StatusForbidden},
		{"good param token", "&token=good", nil, http.StatusSwitchingProtocols},
		{"good subprotocol token", "", []string{"phoenix", AuthTokenProtocolPrefix + base64.RawStdEncoding.EncodeToString([]byte("good"))}, http.StatusSwitchingProtocols},
		{"subprotocol wins over param", "&token=good", []string{"phoenix", AuthTokenProtocolPrefix + base64.RawStdEncoding.EncodeToString([]byte("bad"))}, http.StatusForbidden},
	} {
		d := websocket.Dialer{Subprotocols: c.proto}
		conn, resp, err := d.Dial(base+"/?vsn=2.0.0"+c.query, nil)
		got := 0
		if err == nil {
			got = http.StatusSwitchingProtocols
			conn.Close()
		} else if resp != nil {
			got = resp.StatusCode
		}
		if got != c.want {
			t.Errorf("%s: status %d (%v), want %d", c.name, got, err, c.want)
		}
	}
	if n := h.Stats().Refusals[RefusedAuth]; n != 3 {
		t.Fatalf("%d auth refusals, want 3", n)
	}
}

// The claims are `claims` in the connect gate, assigns, the id, joins,
// join replies and presence metas.
func TestClaimsInExpressions(t *testing.T) {
	v := &tableVerifier{tokens: map[string]tableToken{
		"alice": {claims: map[string]any{"sub": "alice", "role": "member", "channels": []any{"room:a"}}},
		"guest": {claims: map[string]any{"sub": "guest", "role": "guest"}},
	}}
	token, err := CompileExpr(ExprToken, "headers['x-token']")
	if err != nil {
		t.Fatal(err)
	}
	h, base := authHub(t, AuthConfig{Verifier: v, Token: token}, RulesSpec{
		Connect: &GateSpec{Action: "if", Expr: "claims.role == 'member'"},
		Assign:  []AssignSpec{{Key: "name", Expr: "claims.sub"}},
		ID:      "'user_socket:' + claims.sub",
		Channels: []ChannelSpec{{Pattern: "room:*",
			Join:     &GateSpec{Action: "if", Expr: "topic in claims.channels", Reply: "{'you': claims.sub}"},
			Presence: &PresenceSpec{Meta: "{'role': claims.role}"},
		}},
	})
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0", http.Header{"X-Token": {"guest"}}); st != http.StatusForbidden {
		t.Fatalf("guest: %d, want 403 from the connect rule", st)
	}
	if st, _ := dialStatus(t, base+"/?vsn=2.0.0&token=alice", nil); st != http.StatusForbidden {
		t.Fatalf("a token outside the token expression: %d, want 403", st)
	}
	_, c := dialStatus(t, base+"/?vsn=2.0.0", http.Header{"X-Token": {"alice"}})
	if c == nil {
		t.Fatal("alice refused")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.WriteMessage(websocket.TextMessage, []byte(`["1","1","room:b","phx_join",{}]`))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("join outside claims.channels: %s %v", b, err)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`["2","2","room:a","phx_join",{}]`))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `{"response":{"you":"alice"},"status":"ok"}`) {
		t.Fatalf("join reply: %s %v", b, err)
	}
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"presence_state"`) || !strings.Contains(string(b), `"role":"member"`) {
		t.Fatalf("presence_state: %s %v", b, err)
	}
	if got := h.socketsWithID("user_socket:alice"); len(got) != 1 || got[0].assigns["name"] != "alice" {
		t.Fatalf("id and assigns from claims: %v", got)
	}
}

// A socket is closed with CloseTokenExpired when its token's exp passes
// (leave reason token_expired); expire off keeps it open.
func TestTokenExpiryClosesSocket(t *testing.T) {
	exp := time.Now().Add(300 * time.Millisecond)
	v := &tableVerifier{tokens: map[string]tableToken{"short": {claims: map[string]any{"sub": "a"}, exp: exp}}}
	h, base := authHub(t, AuthConfig{Verifier: v}, RulesSpec{})
	_, c := dialStatus(t, base+"/?vsn=2.0.0&token=short", nil)
	if c == nil {
		t.Fatal("refused")
	}
	_, code := readUntilClose(t, c)
	if code != CloseTokenExpired {
		t.Fatalf("close code %d, want %d", code, CloseTokenExpired)
	}
	if time.Now().Before(exp) {
		t.Fatal("closed before the token expired")
	}
	if n := h.Stats().Refusals[RefusedTokenExpired]; n != 1 {
		t.Fatalf("%d token_expired, want 1", n)
	}

	_, keepBase := authHub(t, AuthConfig{Verifier: v, KeepPastExpiry: true}, RulesSpec{})
	_, k := dialStatus(t, keepBase+"/?vsn=2.0.0&token=short", nil)
	if k == nil {
		t.Fatal("refused")
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond) // past exp: the socket must still answer
	k.WriteMessage(websocket.TextMessage, []byte(`[null,"1","phoenix","heartbeat",{}]`))
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := k.ReadMessage(); err != nil || !strings.Contains(string(b), "phx_reply") {
		t.Fatalf("expire off: socket did not answer after exp: %s %v", b, err)
	}
}

// A join jwt gate lets a join through with a join token of the topic
// (its "channel" claim) issued to the socket's own sub; its claims are
// join_claims in the condition, the reply and presence.
func TestJoinToken(t *testing.T) {
	v := &tableVerifier{tokens: map[string]tableToken{
		"conn":       {claims: map[string]any{"sub": "alice"}},
		"room1":      {claims: map[string]any{"sub": "alice", "channel": "room:1", "role": "mod"}},
		"room1-bob":  {claims: map[string]any{"sub": "bob", "channel": "room:1", "role": "mod"}},
		"room1-anon": {claims: map[string]any{"channel": "room:1", "role": "guest"}},
		"room2":      {claims: map[string]any{"sub": "alice", "channel": "room:2", "role": "mod"}},
		"banned":     {claims: map[string]any{"sub": "alice", "channel": "room:1", "role": "banned"}},
	}}
	h, base := authHub(t, AuthConfig{Verifier: v}, RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*",
		Join:     &GateSpec{Action: "jwt", Expr: "join_claims.role != 'banned'", Reply: "{'role': join_claims.role}"},
		Presence: &PresenceSpec{Meta: "{'role': join_claims.role}"},
	}}})
	_, c := dialStatus(t, base+"/?vsn=2.0.0&token=conn", nil)
	if c == nil {
		t.Fatal("refused")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, tc := range []struct{ payload, want string }{
		{`{}`, `"reason":"unauthorized"`},                    // no token
		{`{"token":"forged"}`, `"reason":"unauthorized"`},    // not verified
		{`{"token":"room2"}`, `"reason":"unauthorized"`},     // another topic
		{`{"token":"room1-bob"}`, `"reason":"unauthorized"`}, // another user
		{`{"token":"banned"}`, `"reason":"unauthorized"`},    // verified, but the condition is false
		{`{"token":"room1-anon"}`, `{"response":{"role":"guest"},"status":"ok"}`},
	} {
		c.WriteMessage(websocket.TextMessage, []byte(`["1","1","room:1","phx_join",`+tc.payload+`]`))
		_, b, err := c.ReadMessage()
		if err != nil || !strings.Contains(string(b), tc.want) {
			t.Fatalf("join with %s: %s %v, want %s", tc.payload, b, err, tc.want)
		}
		if strings.Contains(tc.want, "ok") {
			if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"role":"guest"`) {
				t.Fatalf("presence_state: %s %v", b, err)
			}
		}
	}
	if n := h.Stats().Refusals[RefusedJoinToken]; n != 4 {
		t.Fatalf("%d join_token refusals, want 4 (the condition's refusal is not one)", n)
	}
}

// A token accepted within the verifier's leeway (exp just passed) gives a
// socket that lives until exp + leeway, not one that closes at once.
func TestTokenExpiryHonoursLeeway(t *testing.T) {
	exp := time.Now().Add(-200 * time.Millisecond)
	const leeway = 3 * time.Second // room for a loaded machine to dial and heartbeat before exp + leeway
	v := &tableVerifier{tokens: map[string]tableToken{"late": {claims: map[string]any{"sub": "a"}, exp: exp}}}
	_, base := authHub(t, AuthConfig{Verifier: v, Leeway: leeway}, RulesSpec{})
	_, c := dialStatus(t, base+"/?vsn=2.0.0&token=late", nil)
	if c == nil {
		t.Fatal("refused")
	}
	c.WriteMessage(websocket.TextMessage, []byte(`[null,"1","phoenix","heartbeat",{}]`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), "phx_reply") {
		t.Fatalf("socket closed before exp + leeway: %s %v", b, err)
	}
	_, code := readUntilClose(t, c)
	if code != CloseTokenExpired || time.Now().Before(exp.Add(leeway)) {
		t.Fatalf("close %d at %v after exp, want %d at exp + leeway or later", code, time.Since(exp), CloseTokenExpired)
	}
}
