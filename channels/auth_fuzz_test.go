package channels

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// FuzzConnectToken reads the connect token the way a handshake does, from
// a Sec-WebSocket-Protocol header, a query string and a token expression
// over headers: it never panics, the auth token wins over params.token,
// and any token phoenix.js encodes in its subprotocol reads back
// unchanged.
func FuzzConnectToken(f *testing.F) {
	f.Add("phoenix, base64url.bearer.phx.dG9rZW4", "vsn=2.0.0&token=param", "tok")
	f.Add("phoenix", "token=eyJhbGciOiJIUzI1NiJ9.e30.sig", "")
	f.Add("base64url.bearer.phx.!!!", "token[a]=1", "x")
	f.Add("phoenix, base64url.bearer.phx.YQ, base64url.bearer.phx.Yg", "token=a&token=b", "\x00")
	f.Add("", "token", "ü")
	f.Add("phoenix,,", "%zz", "a.b.c")
	headerToken, err := CompileExpr(ExprToken, "headers['x-token']")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, protocols, query, token string) {
		r := &http.Request{Header: http.Header{"Sec-Websocket-Protocol": {protocols}, "X-Token": {token}}}
		params, perr := ParseParams(query)
		auth, hasAuth, aerr := ExtractAuthToken(websocket.Subprotocols(r))
		if perr == nil && aerr == nil {
			s := &Socket{params: params}
			if hasAuth {
				s.authToken = &auth
			}
			got, err := (&AuthConfig{}).tokenOf(s)
			if err != nil {
				t.Fatalf("default token source failed: %v", err)
			}
			want := ""
			if hasAuth {
				want = auth
			} else if p, ok := params["token"].(string); ok {
				want = p
			}
			if got != want {
				t.Fatalf("token %q, want %q (auth token %v %q, params %v)", got, want, hasAuth, auth, params)
			}
			s.headers = lowerHeaders(r.Header)
			if got, err := (&AuthConfig{Token: headerToken}).tokenOf(s); err != nil || got != token {
				t.Fatalf("token expression gave %q, %v; want %q", got, err, token)
			}
		}
		// What phoenix.js sends (standard base64, no padding) reads back.
		entry := AuthTokenProtocolPrefix + base64.RawStdEncoding.EncodeToString([]byte(token))
		r.Header.Set("Sec-Websocket-Protocol", "phoenix, "+entry)
		auth, hasAuth, aerr = ExtractAuthToken(websocket.Subprotocols(r))
		if aerr != nil || !hasAuth || auth != token {
			t.Fatalf("phoenix.js entry for %q read back as %q, %v, %v", token, auth, hasAuth, aerr)
		}
	})
}
