package integration

// WebSocket handshake conformance (protocol specification §2.2–§2.5, §8.2
// and §8.5): version negotiation, non-upgrade requests, check_origin,
// connect refusal, connect params and the auth-token subprotocol. The mounts
// are those of confCaddyfile (conformance_test.go).
//
// Not applicable: custom error handlers ({:error, :rate_limit} → 429, item
// 22: a refused connect is always 403), configured subprotocols other than
// phoenix (item 20 is adapted to "phoenix"), connect_info (item 25) and
// path variables in mount paths (item 24, second half).

import (
	"fmt"
	"net/http"
	"testing"
)

// hsDial attempts a handshake and returns the HTTP status (101 on
// success) and the client, nil when the upgrade failed.
func hsDial(t *testing.T, path, query string, hdr http.Header) (int, *client) {
	t.Helper()
	c, resp, err := tryDial(t, path, query, hdr)
	if err == nil {
		return resp.StatusCode, c
	}
	if resp == nil {
		t.Fatalf("dial %s?%s: %v", path, query, err)
	}
	return resp.StatusCode, nil
}

// hsWantStatus fails unless the handshake answered want; it returns the
// client of a successful upgrade.
func hsWantStatus(t *testing.T, path, query string, hdr http.Header, want int) *client {
	t.Helper()
	got, c := hsDial(t, path, query, hdr)
	if got != want {
		t.Fatalf("handshake %s?%s %v: got HTTP %d, want %d", path, query, hdr, got, want)
	}
	return c
}

// TestHandshakeVersionNegotiation covers item 23 and §2.2: no vsn → V1
// object frames, 1.0.x → V1, 2.0.x → V2 arrays (last value of a repeated
// key wins); any other, unparsable or non-string vsn → HTTP 403.
func TestHandshakeVersionNegotiation(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name   string
		query  string
		status int
		v1     bool
	}{
		{"absent", "", 101, true},
		{"other params only", q("token", "abc"), 101, true},
		{"1.0.0", q("vsn", "1.0.0"), 101, true},
		{"2.0.0", q("vsn", "2.0.0"), 101, false},
		{"2.0.9", q("vsn", "2.0.9"), 101, false},
		{"repeated key last wins", "vsn=1.0.0&vsn=2.0.0", 101, false},
		{"123.1.1", q("vsn", "123.1.1"), 403, false},
		{"2.1.0", q("vsn", "2.1.0"), 403, false},
		{"3.0.0", q("vsn", "3.0.0"), 403, false},
		{"not semver", q("vsn", "two"), 403, false},
		{"two parts", q("vsn", "2.0"), 403, false},
		{"empty", "vsn=", 403, false},
		{"list", "vsn[]=x", 403, false},
		{"map", "vsn[a]=2.0.0", 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hsWantStatus(t, "/socket", tt.query, nil, tt.status)
			if c != nil {
				confSync(c, tt.v1, "1")
			}
		})
	}
}

// TestHandshakeNonUpgrade covers item 18 and §2.1/§2.3: a plain GET or
// another method is 400; an invalid upgrade is 400; the connect rules
// (and vsn) run before upgrade validation, so a refused connect is 403
// even without an upgrade.
func TestHandshakeNonUpgrade(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	upgrade := func(version string) http.Header {
		return http.Header{
			"Connection":            {"Upgrade"},
			"Upgrade":               {"websocket"},
			"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
			"Sec-Websocket-Version": {version},
		}
	}
	tests := []struct {
		name, method, query string
		hdr                 http.Header
		status              int
	}{
		{"plain get", "GET", "vsn=2.0.0", nil, 400},
		{"plain get v1", "GET", "", nil, 400},
		{"post", "POST", "vsn=2.0.0", nil, 400},
		{"put with upgrade headers", "PUT", "vsn=2.0.0", upgrade("13"), 400},
		{"wrong websocket version", "GET", "vsn=2.0.0", upgrade("12"), 400},
		{"plain get refused connect", "GET", "vsn=2.0.0&reject=true", nil, 403},
		{"plain get bad vsn", "GET", "vsn=123.1.1", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/socket/websocket"
			if tt.query != "" {
				path += "?" + tt.query
			}
			if status, body := httpDo(t, tt.method, path, tt.hdr, ""); status != tt.status {
				t.Fatalf("%s %s: got %d %q, want %d", tt.method, path, status, body, tt.status)
			}
		})
	}
}

// TestHandshakeCheckOrigin covers items 19 and 61–67 and §2.4: list
// entries match on host with optional scheme and port (a scheme implies
// its default port), "*." matches the domain and any subdomain, there is
// no subdomain match without a wildcard, host-less origins ("null",
// file://, an empty header) are refused, a missing Origin is always
// allowed, the default policy compares with the request's own scheme, host
// and port, and "off" allows everything.
func TestHandshakeCheckOrigin(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	const none = "\x00" // no Origin header at all
	tests := []struct {
		mount  string
		origin string
		status int
	}{
		// check_origin //example.com (items 19, 63, 64, 67)
		{"/socket", "https://example.com", 101},
		{"/socket", "http://example.com", 101},
		{"/socket", "http://example.com:8080", 101},
		{"/socket", "http://example.com/", 101},
		{"/socket", "http://notallowed.com", 403},
		{"/socket", "http://org1.example.com", 403},
		{"/socket", "http://example.com.evil.com", 403},
		{"/socket", "null", 403},
		{"/socket", "file://", 403},
		{"/socket", "", 403},
		{"/socket", none, 101},
		// https://*.ex.com http://*.foo.example.com http://scheme.com //port.com:81 (items 61, 62)
		{"/ws/origins", "https://org1.ex.com", 101},
		{"/ws/origins", "https://a.b.ex.com", 101},
		{"/ws/origins", "https://ex.com", 101},
		{"/ws/origins", "http://org1.ex.com", 403},
		{"/ws/origins", "https://org1.prefix-ex.com", 403},
		{"/ws/origins", "https://ex.com.org", 403},
		{"/ws/origins", "http://org1.foo.example.com", 101},
		{"/ws/origins", "http://foo.example.com", 101},
		{"/ws/origins", "http://bad.example.com", 403},
		{"/ws/origins", "http://org1.prefix-foo.example.com", 403},
		{"/ws/origins", "http://org1.bar.example.com", 403},
		{"/ws/origins", "http://scheme.com", 101},
		{"/ws/origins", "http://scheme.com:80", 101},
		{"/ws/origins", "https://scheme.com", 403},
		{"/ws/origins", "http://scheme.com:8080", 403},
		{"/ws/origins", "http://port.com:81", 101},
		{"/ws/origins", "https://port.com:81", 101},
		{"/ws/origins", "http://port.com:82", 403},
		{"/ws/origins", "http://port.com", 403},
		{"/ws/origins", "http://notallowed.com", 403},
		{"/ws/origins", "null", 403},
		{"/ws/origins", none, 101},
		// default policy: the request's own origin (item 66)
		{"/ws/admin", "http://localhost:9080", 101},
		{"/ws/admin", "https://localhost:9080", 403},
		{"/ws/admin", "ws://localhost:9080", 403},
		{"/ws/admin", "http://localhost", 403},
		{"/ws/admin", "http://localhost:9081", 403},
		{"/ws/admin", "http://www.localhost:9080", 403},
		{"/ws/admin", "http://example.com", 403},
		{"/ws/admin", "null", 403},
		{"/ws/admin", none, 101},
		// check_origin off (item 67)
		{"/ws/limited", "http://anything.example", 101},
		{"/ws/limited", "null", 101},
		{"/ws/limited", "file://", 101},
		{"/ws/limited", none, 101},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s %q", tt.mount, tt.origin)
		if tt.origin == none {
			name = tt.mount + " no origin"
		}
		t.Run(name, func(t *testing.T) {
			var hdr http.Header
			if tt.origin != none {
				hdr = http.Header{"Origin": {tt.origin}}
			}
			if c := hsWantStatus(t, tt.mount, v2q, hdr, tt.status); c != nil {
				confSync(c, false, "1")
			}
		})
	}
}

// TestHandshakeConnectRules covers items 21 and 24 and §2.2/§2.8: the
// connect rule sees the query params (reject=true → 403); assigns computed
// from params (a repeated key: the last value wins) reach channels, as the
// whoami:* join reply shows.
func TestHandshakeConnectRules(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	tests := []struct {
		name, query string
		status      int
		reply       string
	}{
		{"reject", q("vsn", "2.0.0", "reject", "true"), 403, ""},
		{"reject v1", q("reject", "true"), 403, ""},
		{"reject false", q("vsn", "2.0.0", "reject", "false"), 101, `{"user_id":null,"topic":"whoami:a","subtopic":"a"}`},
		{"anonymous", q("vsn", "2.0.0"), 101, `{"user_id":null,"topic":"whoami:a","subtopic":"a"}`},
		{"user", q("vsn", "2.0.0", "user_id", "1001"), 101, `{"user_id":"1001","topic":"whoami:a","subtopic":"a"}`},
		{"repeated key", "vsn=2.0.0&user_id=7&user_id=42", 101, `{"user_id":"42","topic":"whoami:a","subtopic":"a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hsWantStatus(t, "/socket", tt.query, nil, tt.status)
			if c == nil {
				return
			}
			c.send(`["11","1","whoami:a","phx_join",{}]`)
			c.expect(`["11","1","whoami:a","phx_reply",{"status":"ok","response":` + tt.reply + `}]`)
		})
	}
}

// TestHandshakeSubprotocols covers items 20 (adapted) and 26 and §2.5:
// phoenix.js's auth token travels as "base64url.bearer.phx.<base64>" next
// to "phoenix"; the server answers 101 with "Sec-WebSocket-Protocol:
// phoenix" and never echoes the token; connect rules see the decoded token
// (standard or URL-safe alphabet, padded or not); offered protocols without
// "phoenix" are refused with 403; no header → no echo.
func TestHandshakeSubprotocols(t *testing.T) {
	loadCaddyfile(t, confCaddyfile)
	const tok = "base64url.bearer.phx."
	tests := []struct {
		name, mount string
		protocols   []string // nil: no Sec-WebSocket-Protocol header
		status      int
		echo        string
	}{
		{"no header", "/socket", nil, 101, ""},
		{"phoenix", "/socket", []string{"phoenix"}, 101, "phoenix"},
		{"phoenix and token", "/socket", []string{"phoenix, " + tok + "MTIzNA"}, 101, "phoenix"},
		{"token first", "/socket", []string{tok + "MTIzNA, phoenix"}, 101, "phoenix"},
		{"phoenix among others", "/socket", []string{"mqtt, phoenix"}, 101, "phoenix"},
		{"other protocol", "/socket", []string{"mqtt"}, 403, ""},
		{"other protocol and token", "/socket", []string{"mqtt, " + tok + "MTIzNA"}, 403, ""},
		{"invalid token encoding", "/socket", []string{"phoenix, " + tok + "!!!"}, 403, ""},
		{"two tokens", "/socket", []string{"phoenix, " + tok + "MTIzNA, " + tok + "NTY3OA"}, 403, ""},
		{"auth 1234", "/ws/auth", []string{"phoenix, " + tok + "MTIzNA"}, 101, "phoenix"},
		{"auth 1234 padded", "/ws/auth", []string{"phoenix, " + tok + "MTIzNA=="}, 101, "phoenix"},
		{"auth std alphabet", "/ws/auth", []string{"phoenix, " + tok + "Pz4/"}, 101, "phoenix"},
		{"auth url alphabet", "/ws/auth", []string{"phoenix, " + tok + "Pz4_"}, 101, "phoenix"},
		{"auth wrong token", "/ws/auth", []string{"phoenix, " + tok + "NTY3OA"}, 403, ""},
		{"auth no token", "/ws/auth", []string{"phoenix"}, 403, ""},
		{"auth no header", "/ws/auth", nil, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr http.Header
			if tt.protocols != nil {
				hdr = http.Header{"Sec-Websocket-Protocol": tt.protocols}
			}
			c := hsWantStatus(t, tt.mount, v2q, hdr, tt.status)
			if c == nil {
				return
			}
			if got := c.resp.Header.Values("Sec-Websocket-Protocol"); len(got) > 1 || (len(got) == 1) != (tt.echo != "") || (len(got) == 1 && got[0] != tt.echo) {
				t.Fatalf("Sec-WebSocket-Protocol: got %q, want %q", got, tt.echo)
			}
			c.join("11", "1", "room:auth")
		})
	}
}
