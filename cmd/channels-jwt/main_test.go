package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/jwtauth"
)

// What keygen and sign make, jwtauth verifies: the tool's tokens work with
// auth jwt as documented.
func TestKeygenAndSignVerify(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "ES384", "RS256", "EdDSA"} {
		prefix := filepath.Join(t.TempDir(), "k")
		if err := run([]string{"keygen", "-alg", alg, "-out", prefix}, &bytes.Buffer{}); err != nil {
			t.Fatalf("%s keygen: %v", alg, err)
		}
		var out bytes.Buffer
		if err := run([]string{"sign", "-alg", alg, "-key", prefix + ".pem", "-sub", "alice", "-claims", `{"rooms":["1"]}`}, &out); err != nil {
			t.Fatalf("%s sign: %v", alg, err)
		}
		v, err := jwtauth.New(ctx, jwtauth.Config{PublicKeyFiles: []string{prefix + ".pub.pem"}})
		if err != nil {
			t.Fatal(err)
		}
		claims, exp, err := v.Verify(ctx, strings.TrimSpace(out.String()))
		if err != nil || claims["sub"] != "alice" || exp.IsZero() {
			t.Fatalf("%s: %v %v %v", alg, claims, exp, err)
		}
		v.Close()
	}
	var out bytes.Buffer
	secret := "a-secret-of-at-least-thirty-two-bytes!"
	if err := run([]string{"sign", "-secret", secret, "-sub", "bob", "-channel", "private:1", "-ttl", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	v, err := jwtauth.New(ctx, jwtauth.Config{Secrets: [][]byte{[]byte(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	claims, exp, err := v.Verify(ctx, strings.TrimSpace(out.String()))
	if err != nil || claims["channel"] != "private:1" || !exp.IsZero() {
		t.Fatalf("HS256 join token: %v %v %v", claims, exp, err)
	}
	for _, args := range [][]string{{}, {"verify"}, {"sign"}, {"sign", "-alg", "none", "-secret", "x"}, {"sign", "-alg", "ES256"}, {"keygen", "-alg", "HS256"}, {"sign", "-secret", "x", "-claims", "[1]"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
