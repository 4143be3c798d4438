package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are generated once per test binary; RSA generation is slow under
// -race.
type testKeys struct {
	secret    []byte
	secret2   []byte
	rsa       *rsa.PrivateKey
	rsaOther  *rsa.PrivateKey
	p256      *ecdsa.PrivateKey
	p384      *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	edOther   ed25519.PrivateKey
	rsaJWKS   *rsa.PrivateKey // for JWKS kid "a"
	ecJWKS    *ecdsa.PrivateKey
	edJWKS    ed25519.PrivateKey
	rsaJWKSb  *rsa.PrivateKey // for JWKS kid "b"
	secretOct []byte
}

var sharedKeys = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{}
	k.secret = randBytes(32)
	k.secret2 = randBytes(48)
	k.secretOct = randBytes(32)
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.rsaOther, &k.rsaJWKS, &k.rsaJWKSb} {
		*p, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
	}
	k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.ecJWKS, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	for _, p := range []*ed25519.PrivateKey{&k.ed, &k.edOther, &k.edJWKS} {
		_, *p, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	}
	return k
})

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// pkixPEM returns the PKIX "PUBLIC KEY" PEM encoding of pub.
func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// certPEM returns a self-signed certificate for priv as PEM.
func certPEM(t testing.TB, priv *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jwtauth test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeFile writes data to name in dir and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign signs claims with method and key, setting kid when non-empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsIn returns claims valid for the next hour, plus extra.
func claimsIn(extra jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "user-1",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// noneToken builds an unsigned "alg: none" token by hand.
func noneToken(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + "."
}

// staticVerifier returns a verifier with every static test key configured.
func staticVerifier(t testing.TB, mutate func(*Config)) *Verifier {
	t.Helper()
	k := sharedKeys()
	dir := t.TempDir()
	cfg := Config{
		Secrets: [][]byte{k.secret2, k.secret},
		PublicKeyFiles: []string{
			writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey)),
			writeFile(t, dir, "p256.pem", pkixPEM(t, &k.p256.PublicKey)),
			writeFile(t, dir, "p384.pem", pkixPEM(t, &k.p384.PublicKey)),
			writeFile(t, dir, "ed.pem", pkixPEM(t, k.ed.Public())),
		},
	}
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

// waitFor polls cond every 10ms until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
