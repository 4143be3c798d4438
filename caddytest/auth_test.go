package integration

// Authentication at the edge (auth jwt): tokens signed in the test with
// real keys (HMAC, RSA, ECDSA P-256, Ed25519, a JWKS served on loopback)
// are verified by a real Caddy; their claims drive the id, join and reply
// rules; refused tokens answer 403 (LongPoll: {"status":403}); a socket is
// closed with 3000 when its token expires unless "expire off".

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authSecret is the HMAC secret of the HS256 mounts; the Caddyfiles read
// it from the environment ({env.CADDYTEST_JWT_SECRET}).
const authSecret = "caddytest-hs256-secret-0123456789abcdef"

// authSecretEnv names the environment variable holding authSecret.
const authSecretEnv = "CADDYTEST_JWT_SECRET"

// authAPIKey is the api_key of the mounts that use the HTTP API.
const authAPIKey = "auth-test-api-key"

// pathSeq makes mount paths unique within the test process: a hub (and
// its counters, per-address tables and buckets) is pooled by path and
// outlives reloads that keep the path, so every test gets fresh ones.
var pathSeq atomic.Int64

// freshPath returns a mount path no earlier test of this process used.
func freshPath(prefix string) string {
	return fmt.Sprintf("/%s-%d", prefix, pathSeq.Add(1))
}

// testKeys are the asymmetric keys of the auth tests, made once (an RSA
// key takes a while under -race).
type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
}

var authKeys = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	must := func() {
		if err != nil {
			panic(err)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must()
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must()
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must()
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must()
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must()
	return k
})

// pemPublic returns the PKIX PEM encoding of pub.
func pemPublic(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writePEM writes pub as a PEM file in dir and returns its path.
func writePEM(t *testing.T, dir, name string, pub crypto.PublicKey) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemPublic(t, pub), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// signJWT signs claims with method and key; kid, when set, goes in the
// header.
func signJWT(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", method.Alg(), err)
	}
	return s
}

// hs256 signs claims with authSecret.
func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return signJWT(t, jwt.SigningMethodHS256, []byte(authSecret), claims, "")
}

// inAnHour is an exp an hour ahead.
func inAnHour() *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(time.Hour)) }

// tokenQuery is the V2 connect query carrying token as params.token.
func tokenQuery(token string) string { return q("vsn", "2.0.0", "token", token) }

// authTokenProtocol is the Sec-WebSocket-Protocol header phoenix.js sends
// for its authToken option.
func authTokenProtocol(token string) http.Header {
	enc := base64.RawURLEncoding.EncodeToString([]byte(token))
	return http.Header{"Sec-Websocket-Protocol": {"phoenix, base64url.bearer.phx." + enc}}
}

// heartbeat makes a heartbeat round trip on c: the socket is open and
// served.
func (c *client) heartbeat(ref string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`[null,%q,"phoenix","heartbeat",{}]`, ref))
	c.expect(fmt.Sprintf(`[null,%q,"phoenix","phx_reply",{"status":"ok","response":{}}]`, ref))
}

// refusalCounts reads caddy_channels_refusals_total of path, by reason.
func refusalCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	prefix := fmt.Sprintf("caddy_channels_refusals_total{path=%q,reason=\"", path)
	got := map[string]int{}
	for _, line := range strings.Split(metricsText(t), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("unexpected metric line %q", line)
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		got[reason] = int(n)
	}
	return got
}

// refusalReasons are the labels of caddy_channels_refusals_total.
var refusalReasons = []string{"auth", "token_expired", "connect_rate", "sockets_per_ip", "sockets_per_id", "message_rate", "join_rate", "event_rate", "flood", "join_token"}

// wantRefusals waits until every refusal counter of path has its value in
// want (a reason missing from want must be 0).
func wantRefusals(t *testing.T, path string, want map[string]int) {
	t.Helper()
	var got map[string]int
	match := func() bool {
		got = refusalCounts(t, path)
		for _, r := range refusalReasons {
			v, present := got[r]
			if !present || v != want[r] {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(recvTimeout)
	for !match() {
		if time.Now().After(deadline) {
			t.Fatalf("refusals of %s: got %v, want %v (others 0)", path, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSockets waits until path holds n open WebSocket sockets.
func waitSockets(t *testing.T, path string, n int) {
	t.Helper()
	want := fmt.Sprintf("caddy_channels_sockets{path=%q,transport=\"websocket\"} %d\n", path, n)
	eventually(t, recvTimeout, fmt.Sprintf("%d sockets on %s", n, path), func() bool {
		return strings.Contains(metricsText(t), want)
	})
}

// An HS256 token in params.token (or in phoenix.js's authToken
// subprotocol) is accepted; its claims make the socket id (a disconnect
// by id reaches exactly that socket), gate joins (topic in
// claims.channels) and fill the join reply. Both configured secrets verify
// (rotation), and the {env.…} placeholder of the key is replaced.
func TestAuthJWTHS256Claims(t *testing.T) {
	t.Setenv(authSecretEnv, authSecret)
	path := freshPath("jwt-hs")
	hdrPath := freshPath("jwt-hdr")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		api_key %s
		auth jwt {
			key {env.%s}
			key rotated-secret-0123456789abcdef0123
			issuer https://id.test/
			audience chat
		}
		id "'user_socket:' + claims.sub"
		channel room:* {
			join if "topic in claims.channels" reply "{'sub': claims.sub, 'role': claims.role}"
			handle_in ping reply
		}
	}
	channels {
		path %s
		auth jwt {
			key {env.%s}
			token "headers['x-token']"
		}
		channel room:* {
			join allow reply "{'sub': claims.sub}"
		}
	}`, path, authAPIKey, authSecretEnv, hdrPath, authSecretEnv)))

	claims := func(sub string) jwt.MapClaims {
		return jwt.MapClaims{
			"sub": sub, "iss": "https://id.test/", "aud": "chat", "exp": inAnHour(),
			"role": "member", "channels": []string{"room:a", "room:shared"},
		}
	}
	alice := hsWantStatus(t, path, tokenQuery(hs256(t, claims("alice"))), nil, 101)
	alice.send(`["1","1","room:a","phx_join",{}]`)
	alice.expect(`["1","1","room:a","phx_reply",{"status":"ok","response":{"sub":"alice","role":"member"}}]`)
	alice.send(`["2","2","room:b","phx_join",{}]`)
	alice.expect(`["2","2","room:b","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]`)
	alice.send(`["1","3","room:a","ping",{"x":1}]`)
	alice.expect(`["1","3","room:a","phx_reply",{"status":"ok","response":{"x":1}}]`)

	// The same claims through the authToken subprotocol, signed with the
	// second secret.
	bobTok := signJWT(t, jwt.SigningMethodHS256, []byte("rotated-secret-0123456789abcdef0123"), claims("bob"), "")
	bob := hsWantStatus(t, path, v2q, authTokenProtocol(bobTok), 101)
	if got := bob.resp.Header.Get("Sec-Websocket-Protocol"); got != "phoenix" {
		t.Fatalf("Sec-WebSocket-Protocol: got %q, want phoenix", got)
	}
	bob.send(`["1","1","room:shared","phx_join",{}]`)
	bob.expect(`["1","1","room:shared","phx_reply",{"status":"ok","response":{"sub":"bob","role":"member"}}]`)

	// Disconnect by the id made of the claims: alice's socket closes with
	// 1001, bob's stays.
	status, body := httpDo(t, http.MethodPost, path+"/api/disconnect",
		http.Header{"Authorization": {"Bearer " + authAPIKey}}, `{"id":"user_socket:alice"}`)
	if status != http.StatusAccepted {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	alice.expectClose(1001)
	bob.heartbeat("9")

	// A token expression replaces the default places: the header is read,
	// params.token is not.
	tok := hs256(t, jwt.MapClaims{"sub": "carol", "exp": inAnHour()})
	carol := hsWantStatus(t, hdrPath, v2q, http.Header{"X-Token": {tok}}, 101)
	carol.send(`["1","1","room:x","phx_join",{}]`)
	carol.expect(`["1","1","room:x","phx_reply",{"status":"ok","response":{"sub":"carol"}}]`)
	hsWantStatus(t, hdrPath, tokenQuery(tok), nil, 403)

	wantRefusals(t, path, map[string]int{})
	wantRefusals(t, hdrPath, map[string]int{"auth": 1})
}

// ES256, RS256, PS256 and EdDSA tokens verify against public_key PEM files;
// "algorithms" narrows what is accepted.
func TestAuthJWTPublicKeys(t *testing.T) {
	k := authKeys()
	dir := t.TempDir()
	rsaPEM := writePEM(t, dir, "rsa.pem", &k.rsa.PublicKey)
	ecPEM := writePEM(t, dir, "ec.pem", &k.ec.PublicKey)
	edPEM := writePEM(t, dir, "ed.pem", k.ed.Public())
	path := freshPath("jwt-pk")
	esOnly := freshPath("jwt-es-only")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			public_key %s
			public_key %s
			public_key %s
		}
		channel room:* {
			join allow reply "{'sub': claims.sub}"
		}
	}
	channels {
		path %s
		auth jwt {
			public_key %s
			public_key %s
			algorithms ES256
		}
		channel room:* {
			join allow reply "{'sub': claims.sub}"
		}
	}`, path, rsaPEM, ecPEM, edPEM, esOnly, rsaPEM, ecPEM)))

	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{
		{"ES256", jwt.SigningMethodES256, k.ec},
		{"RS256", jwt.SigningMethodRS256, k.rsa},
		{"PS256", jwt.SigningMethodPS256, k.rsa},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := "user-" + tt.name
			tok := signJWT(t, tt.method, tt.key, jwt.MapClaims{"sub": sub, "exp": inAnHour()}, "")
			c := hsWantStatus(t, path, tokenQuery(tok), nil, 101)
			c.send(`["1","1","room:pk","phx_join",{}]`)
			c.expect(`["1","1","room:pk","phx_reply",{"status":"ok","response":{"sub":"` + sub + `"}}]`)
		})
	}
	// The same keys, other signers: refused.
	hsWantStatus(t, path, tokenQuery(signJWT(t, jwt.SigningMethodES256, k.ecOther, jwt.MapClaims{"sub": "x", "exp": inAnHour()}, "")), nil, 403)
	hsWantStatus(t, path, tokenQuery(signJWT(t, jwt.SigningMethodRS256, k.rsaOther, jwt.MapClaims{"sub": "x", "exp": inAnHour()}, "")), nil, 403)

	// algorithms ES256: the RSA key is loaded, but RS256 is not allowed.
	es := signJWT(t, jwt.SigningMethodES256, k.ec, jwt.MapClaims{"sub": "es", "exp": inAnHour()}, "")
	c := hsWantStatus(t, esOnly, tokenQuery(es), nil, 101)
	c.send(`["1","1","room:es","phx_join",{}]`)
	c.expect(`["1","1","room:es","phx_reply",{"status":"ok","response":{"sub":"es"}}]`)
	hsWantStatus(t, esOnly, tokenQuery(signJWT(t, jwt.SigningMethodRS256, k.rsa, jwt.MapClaims{"sub": "rs", "exp": inAnHour()}, "")), nil, 403)

	wantRefusals(t, path, map[string]int{"auth": 2})
	wantRefusals(t, esOnly, map[string]int{"auth": 1})
}

// Every kind of bad token is refused with 403 before the upgrade, and each
// refusal counts once under reason "auth"; a good token on the same mount
// is accepted (the refusals are the tokens', not the config's).
func TestAuthJWTRefusals(t *testing.T) {
	t.Setenv(authSecretEnv, authSecret)
	k := authKeys()
	dir := t.TempDir()
	rsaPEM := writePEM(t, dir, "rsa.pem", &k.rsa.PublicKey)
	hsPath := freshPath("jwt-refuse-hs")
	rsaPath := freshPath("jwt-refuse-rsa")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			key {env.%s}
			issuer https://id.test/
			audience chat
		}
		channel room:* {
			join allow
		}
	}
	channels {
		path %s
		auth jwt {
			public_key %s
		}
		channel room:* {
			join allow
		}
	}`, hsPath, authSecretEnv, rsaPath, rsaPEM)))

	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u", "iss": "https://id.test/", "aud": "chat", "exp": inAnHour()}
	}
	with := func(key string, value any) jwt.MapClaims {
		c := good()
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	valid := hs256(t, good())
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	rsaValid := signJWT(t, jwt.SigningMethodRS256, k.rsa, jwt.MapClaims{"sub": "u", "exp": inAnHour()}, "")
	// The classic confusion: HS256 keyed with the RSA public key's PEM.
	confused := signJWT(t, jwt.SigningMethodHS256, pemPublic(t, &k.rsa.PublicKey), jwt.MapClaims{"sub": "u", "exp": inAnHour()}, "")

	tests := []struct {
		name, path, query string
		hdr               http.Header
	}{
		{"expired", hsPath, tokenQuery(hs256(t, with("exp", jwt.NewNumericDate(time.Now().Add(-time.Minute))))), nil},
		{"nbf in the future", hsPath, tokenQuery(hs256(t, with("nbf", inAnHour()))), nil},
		{"iat in the future", hsPath, tokenQuery(hs256(t, with("iat", inAnHour()))), nil},
		{"wrong issuer", hsPath, tokenQuery(hs256(t, with("iss", "https://evil.test/"))), nil},
		{"no issuer", hsPath, tokenQuery(hs256(t, with("iss", nil))), nil},
		{"wrong audience", hsPath, tokenQuery(hs256(t, with("aud", "other"))), nil},
		{"no audience", hsPath, tokenQuery(hs256(t, with("aud", nil))), nil},
		{"wrong secret", hsPath, tokenQuery(signJWT(t, jwt.SigningMethodHS256, []byte("not-the-secret-0123456789abcdef"), good(), "")), nil},
		{"alg none", hsPath, tokenQuery(noneTok), nil},
		{"garbage", hsPath, tokenQuery("not.a.jwt"), nil},
		{"truncated", hsPath, tokenQuery(valid[:len(valid)-4]), nil},
		{"signature stripped", hsPath, tokenQuery(valid[:strings.LastIndex(valid, ".")+1]), nil},
		{"empty", hsPath, tokenQuery(""), nil},
		{"missing", hsPath, v2q, nil},
		{"bad auth token subprotocol", hsPath, v2q, authTokenProtocol("garbage")},
		{"HS256 with the RSA public key as secret", rsaPath, tokenQuery(confused), nil},
		{"HS256 on a public-key mount", rsaPath, tokenQuery(valid), nil},
		{"RS256 with a mangled signature", rsaPath, tokenQuery(rsaValid[:len(rsaValid)-6] + "AAAAAA"), nil},
	}
	refused := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hsWantStatus(t, tt.path, tt.query, tt.hdr, 403)
		})
		refused[tt.path]++
	}
	// The good tokens of both mounts are accepted.
	hsWantStatus(t, hsPath, tokenQuery(valid), nil, 101).join("1", "1", "room:ok")
	hsWantStatus(t, rsaPath, tokenQuery(rsaValid), nil, 101).join("1", "1", "room:ok")

	wantRefusals(t, hsPath, map[string]int{"auth": refused[hsPath]})
	wantRefusals(t, rsaPath, map[string]int{"auth": refused[rsaPath]})
}

// jwksServer serves a JWKS that the test replaces, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches int
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body := s.body
		s.fetches++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the key set with the EC P-256 keys, by kid.
func (s *jwksServer) serve(t *testing.T, keys map[string]*ecdsa.PublicKey) {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, pub := range keys {
		ep, err := pub.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		b := ep.Bytes() // 0x04 || X || Y
		set.Keys = append(set.Keys, map[string]string{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
			"x": base64.RawURLEncoding.EncodeToString(b[1:33]),
			"y": base64.RawURLEncoding.EncodeToString(b[33:]),
		})
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// The JWKS is fetched at start; after the identity provider rotates from
// kid a to kid b, the first token naming b makes one fetch and is accepted
// at once (the refresh interval is an hour); a's key is gone with the
// rotation, and a kid whose key does not match the signature is refused
// without a fetch.
func TestAuthJWKSRotation(t *testing.T) {
	k := authKeys()
	srv := newJWKSServer(t)
	srv.serve(t, map[string]*ecdsa.PublicKey{"a": &k.ec.PublicKey})
	path := freshPath("jwt-jwks")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			jwks_url %s/jwks.json
			jwks_refresh 1h
		}
		channel room:* {
			join allow reply "{'sub': claims.sub}"
		}
	}`, path, srv.URL)))
	claims := func(sub string) jwt.MapClaims { return jwt.MapClaims{"sub": sub, "exp": inAnHour()} }

	a := hsWantStatus(t, path, tokenQuery(signJWT(t, jwt.SigningMethodES256, k.ec, claims("via-a"), "a")), nil, 101)
	a.send(`["1","1","room:j","phx_join",{}]`)
	a.expect(`["1","1","room:j","phx_reply",{"status":"ok","response":{"sub":"via-a"}}]`)
	startFetches := srv.fetchCount()
	if startFetches < 1 {
		t.Fatalf("JWKS fetched %d times at start", startFetches)
	}
	// kid a, signed by the key that will be b's: a bad signature, no fetch.
	hsWantStatus(t, path, tokenQuery(signJWT(t, jwt.SigningMethodES256, k.ecOther, claims("x"), "a")), nil, 403)
	if n := srv.fetchCount(); n != startFetches {
		t.Fatalf("a known kid fetched the JWKS: %d fetches, want %d", n, startFetches)
	}

	srv.serve(t, map[string]*ecdsa.PublicKey{"b": &k.ecOther.PublicKey})
	bTok := signJWT(t, jwt.SigningMethodES256, k.ecOther, claims("via-b"), "b")
	b := hsWantStatus(t, path, tokenQuery(bTok), nil, 101)
	b.send(`["1","1","room:j","phx_join",{}]`)
	b.expect(`["1","1","room:j","phx_reply",{"status":"ok","response":{"sub":"via-b"}}]`)
	if n := srv.fetchCount(); n != startFetches+1 {
		t.Fatalf("unknown kid b: %d fetches, want %d", n, startFetches+1)
	}
	// b is cached now; a went with the rotation (and the unknown-kid
	// refresh is rate limited: no fetch for it).
	hsWantStatus(t, path, tokenQuery(bTok), nil, 101)
	hsWantStatus(t, path, tokenQuery(signJWT(t, jwt.SigningMethodES256, k.ec, claims("via-a"), "a")), nil, 403)
	if n := srv.fetchCount(); n != startFetches+1 {
		t.Fatalf("after rotation: %d fetches, want %d", n, startFetches+1)
	}
	// A socket opened before the rotation is not affected by it.
	a.heartbeat("7")
	wantRefusals(t, path, map[string]int{"auth": 2})
}

// expiringToken signs an HS256 token whose exp is 1–2 s ahead.
func expiringToken(t *testing.T, sub string) (string, time.Time) {
	t.Helper()
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	if time.Until(exp) < time.Second {
		exp = exp.Add(time.Second)
	}
	return hs256(t, jwt.MapClaims{"sub": sub, "exp": jwt.NewNumericDate(exp)}), exp
}

// A socket is closed with 3000 once its token's exp passes (not before),
// counted as token_expired, and the token no longer connects; with
// "expire off" a socket with the same token stays open and served past
// exp. A token without exp never expires the socket.
func TestAuthJWTExpiry(t *testing.T) {
	t.Setenv(authSecretEnv, authSecret)
	expPath := freshPath("jwt-exp")
	keepPath := freshPath("jwt-keep")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			key {env.%s}
		}
		channel room:* {
			join allow
			handle_in ping reply
		}
	}
	channels {
		path %s
		auth jwt {
			key {env.%s}
			expire off
		}
		channel room:* {
			join allow
			handle_in ping reply
		}
	}`, expPath, authSecretEnv, keepPath, authSecretEnv)))

	tok, exp := expiringToken(t, "short")
	expiring := hsWantStatus(t, expPath, tokenQuery(tok), nil, 101)
	kept := hsWantStatus(t, keepPath, tokenQuery(tok), nil, 101)
	noExp := hsWantStatus(t, expPath, tokenQuery(hs256(t, jwt.MapClaims{"sub": "forever"})), nil, 101)
	for _, c := range []*client{expiring, kept, noExp} {
		c.join("1", "1", "room:exp")
	}
	expiring.heartbeat("2")

	expiring.expectClose(3000)
	if now := time.Now(); now.Before(exp) {
		t.Fatalf("closed %v before the token's exp", exp.Sub(now))
	}
	// Let exp pass by a margin on the server's clock too, then prove the
	// other sockets are open and served.
	time.Sleep(time.Until(exp.Add(300 * time.Millisecond)))
	kept.heartbeat("3")
	kept.send(`["1","4","room:exp","ping",{"after":"exp"}]`)
	kept.expect(`["1","4","room:exp","phx_reply",{"status":"ok","response":{"after":"exp"}}]`)
	noExp.heartbeat("3")

	// The expired token connects nowhere any more.
	hsWantStatus(t, expPath, tokenQuery(tok), nil, 403)
	hsWantStatus(t, keepPath, tokenQuery(tok), nil, 403)

	wantRefusals(t, expPath, map[string]int{"token_expired": 1, "auth": 1})
	wantRefusals(t, keepPath, map[string]int{"auth": 1})
}

// LongPoll: a GET without a valid token answers HTTP 200 {"status":403}
// (how phoenix.js learns of a refused connect); a token in the
// X-Phoenix-AuthToken header or in params.token opens a session whose
// claims reach the join rules.
func TestAuthLongPoll(t *testing.T) {
	t.Setenv(authSecretEnv, authSecret)
	path := freshPath("jwt-lp")
	loadCaddyfile(t, site(fmt.Sprintf(`	channels {
		path %s
		auth jwt {
			key {env.%s}
		}
		longpoll {
			window 1s
		}
		channel room:* {
			join allow reply "{'sub': claims.sub}"
		}
	}`, path, authSecretEnv)))

	expired := hs256(t, jwt.MapClaims{"sub": "late", "exp": jwt.NewNumericDate(time.Now().Add(-time.Minute))})
	for _, tt := range []struct {
		name, query string
		hdr         http.Header
	}{
		{"garbage param", tokenQuery("garbage"), nil},
		{"expired param", tokenQuery(expired), nil},
		{"garbage header", v2q, http.Header{"X-Phoenix-Authtoken": {"garbage"}}},
		{"missing", v2q, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := httpDo(t, http.MethodGet, path+"/longpoll?"+tt.query, tt.hdr, "")
			if status != http.StatusOK || !jsonEqual([]byte(body), []byte(`{"status":403}`)) {
				t.Fatalf("GET open: HTTP %d %s, want 200 {\"status\":403}", status, body)
			}
		})
	}

	// A good token in the header opens a session.
	status, body := httpDo(t, http.MethodGet, path+"/longpoll?"+v2q,
		http.Header{"X-Phoenix-Authtoken": {hs256(t, jwt.MapClaims{"sub": "hdr", "exp": inAnHour()})}}, "")
	var a lpAnswer
	if err := json.Unmarshal([]byte(body), &a); status != http.StatusOK || err != nil || a.Status != 410 || a.Token == "" {
		t.Fatalf("open with the header token: HTTP %d %s", status, body)
	}
	// A good token in params.token opens one too; the session token
	// appended later (as phoenix.js does) names the session.
	session := lpOpen(t, path, tokenQuery(hs256(t, jwt.MapClaims{"sub": "param", "exp": inAnHour()})))
	if code, r := lpReq(t, "POST", session, `["1","1","room:lp","phx_join",{}]`); code != 200 || r.Status != 200 {
		t.Fatalf("join: %d %+v", code, r)
	}
	frames := lpCollect(t, session, `"phx_reply"`)
	if len(frames) != 1 || !jsonEqual([]byte(frames[0]), []byte(`["1","1","room:lp","phx_reply",{"status":"ok","response":{"sub":"param"}}]`)) {
		t.Fatalf("join reply: %q", frames)
	}

	wantRefusals(t, path, map[string]int{"auth": 4})
}
