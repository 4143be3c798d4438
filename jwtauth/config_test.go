package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewConfigErrors(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	rsaFile := writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))
	p384File := writeFile(t, dir, "p384.pem", pkixPEM(t, &k.p384.PublicKey))
	garbage := writeFile(t, dir, "garbage.pem", []byte("this is not PEM\n"))
	badDER := writeFile(t, dir, "bad-der.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}))
	privDER, err := x509.MarshalPKCS8PrivateKey(k.p256)
	if err != nil {
		t.Fatal(err)
	}
	private := writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224File := writeFile(t, dir, "p224.pem", pkixPEM(t, &p224.PublicKey))
	secret := [][]byte{k.secret}

	cases := []struct {
		name string
		cfg  Config
		want string
		is   error
	}{
		{"no key source", Config{}, "no key source", nil},
		{"missing file", Config{PublicKeyFiles: []string{filepath.Join(dir, "nope.pem")}}, "public_key " + filepath.Join(dir, "nope.pem"), fs.ErrNotExist},
		{"garbage PEM", Config{PublicKeyFiles: []string{garbage}}, "no PEM-encoded public key", nil},
		{"bad DER", Config{PublicKeyFiles: []string{badDER}}, "public_key " + badDER + ": PEM block 1 (PUBLIC KEY)", nil},
		{"private key", Config{PublicKeyFiles: []string{private}}, "is a private key", nil},
		{"unsupported curve", Config{PublicKeyFiles: []string{p224File}}, "P-224 is not supported", nil},
		{"empty secret", Config{Secrets: [][]byte{{}}}, "secret 0: empty", nil},
		{"none", Config{Secrets: secret, Algorithms: []string{"HS256", "none"}}, `"none" is never allowed`, nil},
		{"None", Config{Secrets: secret, Algorithms: []string{"None"}}, `"none" is never allowed`, nil},
		{"unknown algorithm", Config{Secrets: secret, Algorithms: []string{"HS999"}}, `algorithm "HS999": unknown`, nil},
		{"lower-case name", Config{Secrets: secret, Algorithms: []string{"hs256"}}, `algorithm "hs256": unknown`, nil},
		{"HS256 without secrets", Config{PublicKeyFiles: []string{rsaFile}, Algorithms: []string{"RS256", "HS256"}}, "HS256: needs at least one secret", nil},
		{"RS256 with only secrets", Config{Secrets: secret, Algorithms: []string{"RS256"}}, "RS256: no configured public key or JWKS", nil},
		{"ES256 with only a P-384 key", Config{PublicKeyFiles: []string{p384File}, Algorithms: []string{"ES256"}}, "ES256: no configured public key", nil},
		{"EdDSA with only RSA", Config{PublicKeyFiles: []string{rsaFile}, Algorithms: []string{"EdDSA"}}, "EdDSA: no configured public key", nil},
		{"HS256 with only JWKS", Config{JWKSURL: "http://127.0.0.1:1/jwks", Algorithms: []string{"HS256"}}, "HS256: needs at least one secret", nil},
		{"JWKS bad scheme", Config{JWKSURL: "ftp://idp.test/jwks"}, "scheme must be http or https", nil},
		{"JWKS no host", Config{JWKSURL: "https:///jwks"}, "missing host", nil},
		{"negative leeway", Config{Secrets: secret, Leeway: -time.Second}, "leeway must not be negative", nil},
		{"negative refresh", Config{Secrets: secret, JWKSRefresh: -time.Second}, "jwks_refresh must not be negative", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(context.Background(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			if !strings.HasPrefix(err.Error(), "jwtauth: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestNewDefaultAlgorithms(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"secrets", Config{Secrets: [][]byte{k.secret}}, []string{"HS256", "HS384", "HS512"}},
		{"RSA", Config{PublicKeyFiles: []string{writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))}},
			[]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{"P-384", Config{PublicKeyFiles: []string{writeFile(t, dir, "p384.pem", pkixPEM(t, &k.p384.PublicKey))}}, []string{"ES384"}},
		{"Ed25519 + secret", Config{Secrets: [][]byte{k.secret}, PublicKeyFiles: []string{writeFile(t, dir, "ed.pem", pkixPEM(t, k.ed.Public()))}},
			[]string{"HS256", "HS384", "HS512", "EdDSA"}},
		{"explicit, deduplicated", Config{Secrets: [][]byte{k.secret}, Algorithms: []string{"HS512", "HS512"}}, []string{"HS512"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if len(v.allowed) != len(tc.want) {
				t.Fatalf("allowed %v, want %v", v.allowed, tc.want)
			}
			for _, name := range tc.want {
				if !v.allowed[name] {
					t.Errorf("allowed %v lacks %s", v.allowed, name)
				}
			}
		})
	}
}

// The secrets are copied: changing the caller's slice later changes nothing.
func TestNewCopiesSecrets(t *testing.T) {
	secret := append([]byte(nil), sharedKeys().secret...)
	v, err := New(context.Background(), Config{Secrets: [][]byte{secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok := sign(t, jwt.SigningMethodHS256, secret, "", claimsIn(nil))
	secret[0] ^= 0xff
	if _, _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}
