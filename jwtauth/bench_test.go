package jwtauth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// benchVerify measures Verify of one valid token with a verifier that holds
// only the key that signed it.
func benchVerify(b *testing.B, method jwt.SigningMethod, signKey any, cfg func(b *testing.B) Config) {
	v, err := New(context.Background(), cfg(b))
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	tok := sign(b, method, signKey, "", claimsIn(jwt.MapClaims{"topic": "room:lobby"}))
	ctx := context.Background()
	if _, _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func publicKeyConfig(pub any) func(b *testing.B) Config {
	return func(b *testing.B) Config {
		return Config{PublicKeyFiles: []string{writeFile(b, b.TempDir(), "key.pem", pkixPEM(b, pub))}}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	k := sharedKeys()
	benchVerify(b, jwt.SigningMethodHS256, k.secret, func(*testing.B) Config { return Config{Secrets: [][]byte{k.secret}} })
}

func BenchmarkVerifyES256(b *testing.B) {
	k := sharedKeys()
	benchVerify(b, jwt.SigningMethodES256, k.p256, publicKeyConfig(&k.p256.PublicKey))
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := sharedKeys()
	benchVerify(b, jwt.SigningMethodRS256, k.rsa, publicKeyConfig(&k.rsa.PublicKey))
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := sharedKeys()
	benchVerify(b, jwt.SigningMethodEdDSA, k.ed, publicKeyConfig(k.ed.Public()))
}
