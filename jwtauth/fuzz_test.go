package jwtauth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify checks that no input panics, that every refusal is a proper
// refusal, and that nothing verifies except the tokens the test signed.
func FuzzVerify(f *testing.F) {
	k := sharedKeys()
	v := staticVerifier(f, func(c *Config) { c.Secrets = [][]byte{k.secret} })
	exp := time.Now().Add(24 * time.Hour).Unix()
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "fuzz", "exp": exp, "n": 1.5, "tags": []string{"a"}}
		for key, val := range extra {
			c[key] = val
		}
		return c
	}
	signed := map[string]bool{}
	add := func(tok string) {
		signed[tok] = true
		f.Add(tok)
	}
	add(sign(f, jwt.SigningMethodHS256, k.secret, "", claims(nil)))
	add(sign(f, jwt.SigningMethodHS512, k.secret, "k1", claims(nil)))
	add(sign(f, jwt.SigningMethodRS256, k.rsa, "", claims(nil)))
	add(sign(f, jwt.SigningMethodPS256, k.rsa, "", claims(nil)))
	add(sign(f, jwt.SigningMethodES256, k.p256, "", claims(jwt.MapClaims{"aud": []string{"x", "y"}})))
	add(sign(f, jwt.SigningMethodES384, k.p384, "", claims(nil)))
	add(sign(f, jwt.SigningMethodEdDSA, k.ed, "e", claims(jwt.MapClaims{"nbf": time.Now().Add(-time.Hour).Unix()})))

	for tok := range signed {
		f.Add(tok[:len(tok)/2])
		f.Add(tok[:strings.LastIndexByte(tok, '.')+1])
		f.Add(tok + ".")
		f.Add(strings.ToUpper(tok))
	}
	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "not a token", "\x00\xff", "e30.e30.", "e30.e30.e30",
		noneToken(`{"sub":"fuzz"}`),
		noneToken(`{"sub":"fuzz","exp":1e400}`),
		sign(f, jwt.SigningMethodHS256, pkixPEM(f, &k.rsa.PublicKey), "", claims(nil)), // algorithm confusion
		sign(f, jwt.SigningMethodHS256, k.secret, "", jwt.MapClaims{"exp": "soon"}),
		sign(f, jwt.SigningMethodHS256, k.secret, "", jwt.MapClaims{"exp": 1}),
		sign(f, jwt.SigningMethodRS256, k.rsaOther, "", claims(nil)),
		sign(f, jwt.SigningMethodEdDSA, k.edOther, "", claims(nil)),
		strings.Repeat("A", maxTokenBytes+1),
	} {
		f.Add(s)
	}

	reasons := map[string]bool{
		"malformed": true, "expired": true, "not_yet_valid": true, "bad_signature": true, "issuer": true,
		"audience": true, "algorithm": true, "unknown_key": true, "missing": true, "invalid": true,
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, exp, err := v.Verify(context.Background(), tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal does not wrap ErrInvalidToken: %v", err)
			}
			if !reasons[Reason(err)] {
				t.Fatalf("unexpected reason %q", Reason(err))
			}
			if claims != nil || !exp.IsZero() {
				t.Fatalf("refusal returned claims %v, exp %v", claims, exp)
			}
			return
		}
		if !signed[tok] {
			t.Fatalf("verified a token the test never signed: %q", tok)
		}
		if want, _ := claims["exp"].(float64); claims["sub"] != "fuzz" || exp.Unix() != int64(want) {
			t.Fatalf("claims %v, exp %v", claims, exp)
		}
	})
}
