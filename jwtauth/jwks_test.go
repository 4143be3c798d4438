package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// jwksServer serves a JWKS that a test can swap, counting requests.
type jwksServer struct {
	*httptest.Server
	body     atomic.Pointer[[]byte]
	requests atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...jwkset.JWK) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) handle(w http.ResponseWriter, _ *http.Request) {
	s.requests.Add(1)
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(*s.body.Load())
}

// serve replaces the key set.
func (s *jwksServer) serve(t *testing.T, keys ...jwkset.JWK) {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&body)
}

// jwk wraps a public key (or, with private, a symmetric key) as a JWK.
func jwk(t *testing.T, key any, kid string, alg jwkset.ALG) jwkset.JWK {
	t.Helper()
	_, symmetric := key.([]byte)
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: symmetric},
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig},
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newJWKSVerifier(t *testing.T, url string, mutate func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{JWKSURL: url, Logger: zap.NewNop()}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func TestJWKSRotation(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.rsaJWKS.PublicKey, "a", jwkset.AlgRS256))
	v := newJWKSVerifier(t, srv.URL, nil) // default refresh 5m: only unknown-kid fetches happen here
	ctx := context.Background()

	tokA := sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "a", claimsIn(nil))
	if _, _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("kid a: %v", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d JWKS requests after first verify, want 1", n)
	}

	srv.serve(t, jwk(t, &k.rsaJWKSb.PublicKey, "b", jwkset.AlgRS256))
	tokB := sign(t, jwt.SigningMethodRS256, k.rsaJWKSb, "b", claimsIn(nil))
	if _, _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("kid b after rotation: %v (reason %s)", err, Reason(err))
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d JWKS requests after rotation, want 2", n)
	}
	_, _, err := v.Verify(ctx, tokA)
	if Reason(err) != "unknown_key" {
		t.Fatalf("kid a after rotation: reason %q, err %v", Reason(err), err)
	}
	// A token that names kid b but is signed by a's key fails its signature.
	forged := sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "b", claimsIn(nil))
	if _, _, err := v.Verify(ctx, forged); Reason(err) != "bad_signature" {
		t.Fatalf("kid b signed by a: reason %q, err %v", Reason(err), err)
	}
}

func TestJWKSKeyFamilies(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t,
		jwk(t, &k.rsaJWKS.PublicKey, "rsa", ""),
		jwk(t, &k.ecJWKS.PublicKey, "ec", jwkset.AlgES256),
		jwk(t, k.edJWKS.Public(), "ed", jwkset.AlgEdDSA),
		jwk(t, k.secretOct, "oct", jwkset.AlgHS256),
	)
	v := newJWKSVerifier(t, srv.URL, nil)
	ctx := context.Background()
	for name, tok := range map[string]string{
		"RS256":        sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "rsa", claimsIn(nil)),
		"PS256":        sign(t, jwt.SigningMethodPS256, k.rsaJWKS, "rsa", claimsIn(nil)),
		"ES256":        sign(t, jwt.SigningMethodES256, k.ecJWKS, "ec", claimsIn(nil)),
		"EdDSA":        sign(t, jwt.SigningMethodEdDSA, k.edJWKS, "ed", claimsIn(nil)),
		"EdDSA no kid": sign(t, jwt.SigningMethodEdDSA, k.edJWKS, "", claimsIn(nil)),
		"RS256 no kid": sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "", claimsIn(nil)),
	} {
		if _, _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v (reason %s)", name, err, Reason(err))
		}
	}
	refused := map[string]struct {
		token, reason string
	}{
		// The JWKS holds an HS256 "oct" key, but HMAC tokens are only ever
		// checked against Config.Secrets, and there are none.
		"HS256 with the JWKS oct key": {sign(t, jwt.SigningMethodHS256, k.secretOct, "oct", claimsIn(nil)), "algorithm"},
		// The kid names an RSA key, the header claims EdDSA.
		"EdDSA naming an RSA kid": {sign(t, jwt.SigningMethodEdDSA, k.edJWKS, "rsa", claimsIn(nil)), "algorithm"},
		// The kid names the ES256 key, the header claims ES384.
		"ES384 naming a P-256 kid": {sign(t, jwt.SigningMethodES384, k.p384, "ec", claimsIn(nil)), "unknown_key"},
		"ES384 no kid":             {sign(t, jwt.SigningMethodES384, k.p384, "", claimsIn(nil)), "unknown_key"},
	}
	for name, tc := range refused {
		if _, _, err := v.Verify(ctx, tc.token); Reason(err) != tc.reason {
			t.Errorf("%s: reason %q, want %q (err %v)", name, Reason(err), tc.reason, err)
		}
	}

	// With secrets configured too, the oct key is still never used.
	withSecret := newJWKSVerifier(t, srv.URL, func(c *Config) { c.Secrets = [][]byte{k.secret} })
	tok := sign(t, jwt.SigningMethodHS256, k.secretOct, "oct", claimsIn(nil))
	if _, _, err := withSecret.Verify(ctx, tok); Reason(err) != "bad_signature" {
		t.Errorf("HS256 with JWKS oct key and secrets: reason %q, err %v", Reason(err), err)
	}
}

func TestJWKSEncryptionKeyNotUsed(t *testing.T) {
	k := sharedKeys()
	enc, err := jwkset.NewJWKFromKey(&k.rsaJWKS.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: "enc", USE: jwkset.UseEnc},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, enc)
	v := newJWKSVerifier(t, srv.URL, nil)
	tok := sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "enc", claimsIn(nil))
	if _, _, err := v.Verify(context.Background(), tok); Reason(err) != "unknown_key" {
		t.Fatalf("token by a use=enc key: reason %q, err %v", Reason(err), err)
	}
}

func TestJWKSCombinedWithStaticKeys(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.rsaJWKS.PublicKey, "a", jwkset.AlgRS256))
	dir := t.TempDir()
	v := newJWKSVerifier(t, srv.URL, func(c *Config) {
		c.PublicKeyFiles = []string{writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))}
	})
	ctx := context.Background()
	for name, tok := range map[string]string{
		"JWKS key":               sign(t, jwt.SigningMethodRS256, k.rsaJWKS, "a", claimsIn(nil)),
		"static key, no kid":     sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(nil)),
		"static key, other kid":  sign(t, jwt.SigningMethodRS256, k.rsa, "static-1", claimsIn(nil)),
		"static key, JWKS's kid": sign(t, jwt.SigningMethodRS256, k.rsa, "a", claimsIn(nil)),
	} {
		if _, _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v (reason %s)", name, err, Reason(err))
		}
	}
}

// reserveAddr returns a loopback address with nothing listening on it.
func reserveAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestJWKSDownAtStart(t *testing.T) {
	k := sharedKeys()
	addr := reserveAddr(t)
	core, logs := observer.New(zapcore.WarnLevel)
	v := newJWKSVerifier(t, "http://"+addr+"/jwks", func(c *Config) {
		c.JWKSRefresh = 100 * time.Millisecond
		c.Logger = zap.New(core)
	})
	if logs.FilterMessageSnippet("no keys yet").Len() != 1 {
		t.Errorf("no warning about the missing keys; logs: %v", logs.All())
	}
	tok := sign(t, jwt.SigningMethodES256, k.ecJWKS, "a", claimsIn(nil))
	if _, _, err := v.Verify(context.Background(), tok); Reason(err) != "unknown_key" {
		t.Fatalf("IdP down: reason %q, err %v", Reason(err), err)
	}

	// The IdP comes up on the same address.
	var l net.Listener
	waitFor(t, 5*time.Second, "the reserved port to be free", func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := &jwksServer{}
	srv.serve(t, jwk(t, &k.ecJWKS.PublicKey, "a", jwkset.AlgES256))
	srv.Server = httptest.NewUnstartedServer(http.HandlerFunc(srv.handle))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	waitFor(t, 5*time.Second, "the background refresh to load the keys", func() bool {
		_, _, err := v.Verify(context.Background(), tok)
		return err == nil
	})
}

func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.ecJWKS.PublicKey, "a", jwkset.AlgES256))
	v := newJWKSVerifier(t, srv.URL, func(c *Config) { c.JWKSUnknownKIDRate = 10 * time.Second })
	ctx := context.Background()

	toks := make([]string, 50)
	for i := range toks {
		toks[i] = sign(t, jwt.SigningMethodES256, k.ecJWKS, fmt.Sprintf("unknown-%x", randBytes(8)), claimsIn(nil))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := v.Verify(ctx, tok); Reason(err) != "unknown_key" {
				t.Errorf("token %d: reason %q, err %v", i, Reason(err), err)
			}
		}()
	}
	wg.Wait()
	if n := srv.requests.Load(); n > 3 {
		t.Errorf("%d JWKS requests for 50 unknown kids, want at most 3", n)
	}
	// Refusals past the limit are immediate rather than waiting out the
	// rate window.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("50 unknown-kid verifications took %v", d)
	}
	// The known key still verifies without a fetch.
	before := srv.requests.Load()
	if _, _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, k.ecJWKS, "a", claimsIn(nil))); err != nil {
		t.Fatal(err)
	}
	if srv.requests.Load() != before {
		t.Error("a known kid caused a JWKS fetch")
	}
}

func TestJWKSConcurrent(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.ecJWKS.PublicKey, "a", jwkset.AlgES256), jwk(t, k.edJWKS.Public(), "e", jwkset.AlgEdDSA))
	v := newJWKSVerifier(t, srv.URL, func(c *Config) { c.JWKSRefresh = 20 * time.Millisecond })
	toks := []string{
		sign(t, jwt.SigningMethodES256, k.ecJWKS, "a", claimsIn(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.edJWKS, "e", claimsIn(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.edJWKS, "", claimsIn(nil)),
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(200 * time.Millisecond)
			for i := 0; time.Now().Before(deadline); i++ {
				if _, _, err := v.Verify(context.Background(), toks[(g+i)%len(toks)]); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestJWKSCloseStopsRefresh(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.ecJWKS.PublicKey, "a", jwkset.AlgES256))
	v := newJWKSVerifier(t, srv.URL, func(c *Config) { c.JWKSRefresh = 20 * time.Millisecond })
	waitFor(t, 5*time.Second, "background refreshes", func() bool { return srv.requests.Load() >= 3 })
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	// One refresh may already be in flight when Close returns.
	time.Sleep(50 * time.Millisecond)
	settled := srv.requests.Load()
	time.Sleep(200 * time.Millisecond)
	if n := srv.requests.Load(); n != settled {
		t.Errorf("JWKS fetched %d times after Close", n-settled)
	}
	// Cached keys keep working.
	if _, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ecJWKS, "a", claimsIn(nil))); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSContextEndsRefresh(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwk(t, &k.ecJWKS.PublicKey, "a", jwkset.AlgES256))
	ctx, cancel := context.WithCancel(context.Background())
	v, err := New(ctx, Config{JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitFor(t, 5*time.Second, "background refreshes", func() bool { return srv.requests.Load() >= 2 })
	cancel()
	time.Sleep(50 * time.Millisecond)
	settled := srv.requests.Load()
	time.Sleep(200 * time.Millisecond)
	if n := srv.requests.Load(); n != settled {
		t.Errorf("JWKS fetched %d times after the context ended", n-settled)
	}
}
