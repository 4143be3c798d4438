package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/golang-jwt/jwt/v5"
)

// join jwt through Caddy: a join token signed with the auth jwt key opens
// its topic only, for its own user; its claims reach the reply; refusals
// are counted as join_token.
func TestAuthJoinToken(t *testing.T) {
	t.Setenv(authSecretEnv, authSecret)
	path := freshPath("jwt-join")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			key {env.%s}
		}
		channel private:* {
			join jwt if "join_claims.role != 'banned'" reply "{'role': join_claims.role}"
		}
	}`, path, authSecretEnv)))
	conn := hs256(t, jwt.MapClaims{"sub": "alice", "exp": inAnHour()})
	join := func(claims jwt.MapClaims) string {
		claims["exp"] = inAnHour()
		return hs256(t, claims)
	}
	c := hsWantStatus(t, path, tokenQuery(conn), nil, 101)
	for i, tc := range []struct {
		topic, payload, want string
	}{
		{"private:1", `{}`, `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"private:1", fmt.Sprintf(`{"token":%q}`, join(jwt.MapClaims{"sub": "alice", "channel": "private:2"})), `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"private:1", fmt.Sprintf(`{"token":%q}`, join(jwt.MapClaims{"sub": "bob", "channel": "private:1"})), `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"private:1", fmt.Sprintf(`{"token":%q}`, join(jwt.MapClaims{"sub": "alice", "channel": "private:1", "role": "banned"})), `{"status":"error","response":{"reason":"unauthorized"}}`},
		{"private:1", fmt.Sprintf(`{"token":%q}`, join(jwt.MapClaims{"sub": "alice", "channel": "private:1", "role": "mod"})), `{"status":"ok","response":{"role":"mod"}}`},
	} {
		ref := fmt.Sprint(i + 1)
		c.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",%s]`, ref, ref, tc.topic, tc.payload))
		c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",%s]`, ref, ref, tc.topic, tc.want))
	}
	wantRefusals(t, path, map[string]int{"join_token": 3})
}

// join jwt without auth jwt does not provision: its keys would be missing.
func TestJoinJWTNeedsAuthJWT(t *testing.T) {
	input := []byte(globalOptions + "http://localhost:9080 {\n\tchannels {\n\t\tpath /needs-auth\n\t\tchannel private:* {\n\t\t\tjoin jwt\n\t\t}\n\t}\n}\n")
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(input, nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), "join jwt verifies with the keys of auth jwt") {
		t.Fatalf("validate: %v, want the missing auth jwt named", err)
	}
}
