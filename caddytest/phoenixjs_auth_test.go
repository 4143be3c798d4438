package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// phoenixJSAuthChannels is what js/auth.test.mjs expects at path: auth jwt
// with authSecret, a message limit of 3 per hour, and room joins that
// reply with the token's sub and n.
func phoenixJSAuthChannels(path string) string {
	return fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			key {env.%s}
		}
		limit messages 3/1h
		channel room:* {
			join allow reply "{'sub': claims.sub, 'n': claims.n}"
			handle_in new_msg broadcast
		}
	}`, path, authSecretEnv)
}

// tokenServer signs a fresh HS256 token on every GET /token?sub=…&ttl=<s>:
// claims sub, n (1, 2, …) and exp = now + ttl.
func tokenServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var issued atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ttl, err := strconv.Atoi(r.URL.Query().Get("ttl"))
		sub := r.URL.Query().Get("sub")
		if r.URL.Path != "/token" || err != nil || ttl <= 0 || sub == "" {
			http.Error(w, "want GET /token?sub=…&ttl=<seconds>", http.StatusBadRequest)
			return
		}
		claims := jwt.MapClaims{
			"sub": sub,
			"n":   issued.Add(1),
			"exp": jwt.NewNumericDate(time.Now().Add(time.Duration(ttl) * time.Second)),
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(authSecret))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, s)
	}))
	t.Cleanup(srv.Close)
	return srv, &issued
}

// TestPhoenixJSAuth runs js/auth.test.mjs: phoenix.js over its message
// limit (error replies, a neighbour sees every accepted broadcast), token
// expiry (close 3000, reconnect with fresh params, rejoin) and the
// authToken option, then checks the refusals the run caused. Like
// TestPhoenixJS, it is skipped when node is missing, unless CI is set.
func TestPhoenixJSAuth(t *testing.T) {
	node := requireNode(t)
	t.Setenv(authSecretEnv, authSecret)
	path := freshPath("jsauth")
	loadCaddyfile(t, site(phoenixJSAuthChannels(path)))
	tokens, issued := tokenServer(t)

	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "auth.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+path,
		"CHANNELS_TOKEN_URL="+tokens.URL+"/token",
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)

	// alice and bob, 3 for the expiry scenario, 1 for authToken.
	if n := issued.Load(); n != 6 {
		t.Errorf("%d tokens issued, want 6", n)
	}
	// Two pushes over the limit, one expired token, two refused connects
	// (garbage and missing); nothing flooded.
	wantRefusals(t, path, map[string]int{"message_rate": 2, "token_expired": 1, "auth": 2})
}
