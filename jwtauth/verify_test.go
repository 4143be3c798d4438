package jwtauth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Compile-time check against the gateway's interface (declared here, not
// imported).
var _ interface {
	Verify(ctx context.Context, token string) (map[string]any, time.Time, error)
} = (*Verifier)(nil)

func TestVerifyAcceptsEachAlgorithm(t *testing.T) {
	k := sharedKeys()
	v := staticVerifier(t, nil)
	cases := []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", jwt.SigningMethodHS256, k.secret},
		{"HS384", jwt.SigningMethodHS384, k.secret},
		{"HS512", jwt.SigningMethodHS512, k.secret2},
		{"RS256", jwt.SigningMethodRS256, k.rsa},
		{"PS256", jwt.SigningMethodPS256, k.rsa},
		{"ES256", jwt.SigningMethodES256, k.p256},
		{"ES384", jwt.SigningMethodES384, k.p384},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			tok := sign(t, tc.method, tc.key, "", claimsIn(jwt.MapClaims{
				"exp":   exp.Unix(),
				"topic": "room:lobby",
				"roles": []string{"a", "b"},
			}))
			claims, gotExp, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v (reason %s)", err, Reason(err))
			}
			if !gotExp.Equal(exp) {
				t.Errorf("exp = %v, want %v", gotExp, exp)
			}
			if claims["sub"] != "user-1" || claims["topic"] != "room:lobby" {
				t.Errorf("claims = %v", claims)
			}
			if roles, ok := claims["roles"].([]any); !ok || len(roles) != 2 || roles[0] != "a" {
				t.Errorf("roles = %#v", claims["roles"])
			}
			if _, ok := claims["exp"].(float64); !ok {
				t.Errorf("exp claim is %T, want float64", claims["exp"])
			}
		})
	}
}

func TestVerifyPublicKeyFormats(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	for name, data := range map[string][]byte{
		"pkcs1.pem": pkcs1,
		"cert.pem":  certPEM(t, k.rsa),
		// Several blocks in one file: the second one holds the key.
		"bundle.pem": append(pkixPEM(t, &k.rsaOther.PublicKey), pkcs1...),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := New(context.Background(), Config{PublicKeyFiles: []string{writeFile(t, dir, name, data)}})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			tok := sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(nil))
			if _, _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyWithoutExp(t *testing.T) {
	v := staticVerifier(t, nil)
	tok := sign(t, jwt.SigningMethodHS256, sharedKeys().secret, "", claimsIn(jwt.MapClaims{"exp": nil}))
	claims, exp, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !exp.IsZero() {
		t.Errorf("exp = %v, want zero", exp)
	}
	if claims["sub"] != "user-1" {
		t.Errorf("claims = %v", claims)
	}
}

func TestVerifyIssuerAndAudience(t *testing.T) {
	k := sharedKeys()
	v := staticVerifier(t, func(c *Config) { c.Issuer = "https://idp.test"; c.Audience = "gateway" })
	good := sign(t, jwt.SigningMethodES256, k.p256, "", claimsIn(jwt.MapClaims{
		"iss": "https://idp.test", "aud": []string{"other", "gateway"},
	}))
	if _, _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	single := sign(t, jwt.SigningMethodES256, k.p256, "", claimsIn(jwt.MapClaims{
		"iss": "https://idp.test", "aud": "gateway",
	}))
	if _, _, err := v.Verify(context.Background(), single); err != nil {
		t.Fatalf("Verify (string aud): %v", err)
	}
}

// refusalCase is a token that must be refused with reason.
type refusalCase struct {
	name   string
	token  string
	reason string
}

func refusalCases(t testing.TB) []refusalCase {
	k := sharedKeys()
	now := time.Now()
	good := sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(jwt.MapClaims{"iss": "https://idp.test", "aud": "gateway"}))
	rsaPEM := pkixPEM(t, &k.rsa.PublicKey)
	ok := jwt.MapClaims{"iss": "https://idp.test", "aud": "gateway"}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := claimsIn(ok)
		for key, val := range extra {
			c[key] = val
		}
		return c
	}
	segs := strings.Split(good, ".")
	return []refusalCase{
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		{"nbf in future", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), "not_yet_valid"},
		{"iat in future", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})), "not_yet_valid"},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"iss": "https://evil-issuer.test"})), "issuer"},
		{"missing issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(jwt.MapClaims{"aud": "gateway"})), "issuer"},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"aud": []string{"evil-audience"}})), "audience"},
		{"missing audience", sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(jwt.MapClaims{"iss": "https://idp.test"})), "audience"},
		{"alg none", noneToken(`{"sub":"user-1","iss":"https://idp.test","aud":"gateway"}`), "algorithm"},
		{"alg none upper", strings.Replace(noneToken(`{"sub":"x"}`), base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)),
			base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NONE"}`)), 1), "algorithm"},
		{"HS256 with RSA PEM as secret", sign(t, jwt.SigningMethodHS256, rsaPEM, "", with(nil)), "algorithm"},
		{"alg not in allow-list", sign(t, jwt.SigningMethodRS512, k.rsa, "", with(nil)), "algorithm"},
		{"ES256 with no EC key", sign(t, jwt.SigningMethodES256, k.p256, "", with(nil)), "algorithm"},
		{"unknown alg", segsWithHeader(segs, `{"alg":"XX999"}`), "algorithm"},
		{"missing alg", segsWithHeader(segs, `{"typ":"JWT"}`), "malformed"},
		{"crit header", critToken(t, with(nil)), "invalid"},
		{"truncated", good[:len(good)-10], "bad_signature"},
		{"truncated to two segments", segs[0] + "." + segs[1], "malformed"},
		{"truncated header", good[:10], "malformed"},
		{"garbage", "not a token at all", "malformed"},
		{"garbage segments", "a.b.c", "malformed"},
		{"binary garbage", "\x00\xff.\x01.\x02", "malformed"},
		{"empty", "", "missing"},
		{"9 KiB", good + strings.Repeat("A", 9<<10-len(good)), "malformed"},
		{"9 KiB of dots", strings.Repeat(".", 9<<10), "malformed"},
		{"wrong signature bytes", segs[0] + "." + segs[1] + "." + base64.RawURLEncoding.EncodeToString(randBytes(256)), "bad_signature"},
		{"payload swapped", segs[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"https://idp.test","aud":"gateway"}`)) + "." + segs[2], "bad_signature"},
		{"non-canonical base64 signature", segs[0] + "." + segs[1] + "." + flipLowBits(segs[2]), "malformed"},
		{"padded base64", good + "==", "malformed"},
		{"exp wrong type", sign(t, jwt.SigningMethodRS256, k.rsa, "", with(jwt.MapClaims{"exp": "tomorrow"})), "malformed"},
		{"other RSA key", sign(t, jwt.SigningMethodRS256, k.rsaOther, "", with(nil)), "bad_signature"},
		{"other RSA key with kid", sign(t, jwt.SigningMethodRS256, k.rsaOther, "some-kid", with(nil)), "bad_signature"},
	}
}

// critToken signs claims with RS256 and a "crit" header naming an extension
// nobody understands.
func critToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["crit"] = []string{"x-unknown"}
	tok.Header["x-unknown"] = true
	s, err := tok.SignedString(sharedKeys().rsa)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// segsWithHeader replaces a token's header segment.
func segsWithHeader(segs []string, header string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + segs[1] + "." + segs[2]
}

// flipLowBits changes the unused low bits of the last base64url character,
// which a lenient decoder would ignore.
func flipLowBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

func TestVerifyRefusals(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	// Only the RSA public key, so that HMAC tokens signed with its PEM bytes
	// are the classic algorithm-confusion attack.
	v, err := New(context.Background(), Config{
		PublicKeyFiles: []string{writeFile(t, dir, "rsa.pem", pkixPEM(t, &k.rsa.PublicKey))},
		Algorithms:     []string{"RS256", "PS256"},
		Issuer:         "https://idp.test",
		Audience:       "gateway",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, tc := range refusalCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			claims, exp, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %v", claims)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if got := Reason(err); got != tc.reason {
				t.Errorf("Reason = %q, want %q (err: %v)", got, tc.reason, err)
			}
			if claims != nil || !exp.IsZero() {
				t.Errorf("refusal returned claims %v, exp %v", claims, exp)
			}
			assertNoTokenText(t, err, tc.token)
		})
	}
}

// assertNoTokenText fails if the error text holds the token or a piece of it.
func assertNoTokenText(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Fatalf("error text contains the token: %q", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Fatalf("error text contains a token segment: %q", msg)
		}
	}
	for _, bad := range []string{"evil", "some-kid", "XX999", "tomorrow"} {
		if strings.Contains(msg, bad) {
			t.Fatalf("error text contains a token value %q: %q", bad, msg)
		}
	}
}

func TestVerifyExactSizeLimit(t *testing.T) {
	v := staticVerifier(t, nil)
	// A valid token of exactly 8 KiB is accepted; one byte more is refused
	// before parsing.
	base := sign(t, jwt.SigningMethodHS256, sharedKeys().secret, "", claimsIn(jwt.MapClaims{"pad": ""}))
	pad := strings.Repeat("x", (maxTokenBytes-len(base))*3/4)
	var tok string
	for n := len(pad); n > 0; n-- {
		tok = sign(t, jwt.SigningMethodHS256, sharedKeys().secret, "", claimsIn(jwt.MapClaims{"pad": pad[:n]}))
		if len(tok) <= maxTokenBytes {
			break
		}
	}
	if _, _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("%d-byte token refused: %v", len(tok), err)
	}
	_, _, err := v.Verify(context.Background(), tok+strings.Repeat("A", maxTokenBytes+1-len(tok)))
	if Reason(err) != "malformed" {
		t.Fatalf("8 KiB + 1 token: reason %q, err %v", Reason(err), err)
	}
}

func TestVerifyWrongSecret(t *testing.T) {
	v := staticVerifier(t, nil)
	tok := sign(t, jwt.SigningMethodHS256, randBytes(32), "", claimsIn(nil))
	_, _, err := v.Verify(context.Background(), tok)
	if Reason(err) != "bad_signature" {
		t.Fatalf("reason %q, err %v", Reason(err), err)
	}
}

// With secrets and an RSA key both configured, an HS256 token signed with the
// RSA key's PEM bytes is checked against the secrets only, and fails.
func TestVerifyHMACNeverUsesPublicKeyBytes(t *testing.T) {
	k := sharedKeys()
	v := staticVerifier(t, nil)
	for _, secret := range [][]byte{pkixPEM(t, &k.rsa.PublicKey), x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)} {
		tok := sign(t, jwt.SigningMethodHS256, secret, "", claimsIn(nil))
		_, _, err := v.Verify(context.Background(), tok)
		if Reason(err) != "bad_signature" {
			t.Fatalf("reason %q, err %v", Reason(err), err)
		}
	}
}

// An ES384 token is not checked against a P-256 key, nor ES256 against P-384.
func TestVerifyECDSACurveMustMatch(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	v, err := New(context.Background(), Config{
		PublicKeyFiles: []string{writeFile(t, dir, "p384.pem", pkixPEM(t, &k.p384.PublicKey))},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES384, k.p384, "", claimsIn(nil))); err != nil {
		t.Fatalf("ES384: %v", err)
	}
	_, _, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.p256, "", claimsIn(nil)))
	if Reason(err) != "algorithm" {
		t.Fatalf("ES256 against a P-384 key: reason %q, err %v", Reason(err), err)
	}
}

func TestVerifyTriesEveryStaticKeyOfTheFamily(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	v, err := New(context.Background(), Config{
		PublicKeyFiles: []string{
			writeFile(t, dir, "ed.pem", pkixPEM(t, k.ed.Public())),
			writeFile(t, dir, "rsa1.pem", pkixPEM(t, &k.rsaOther.PublicKey)),
			writeFile(t, dir, "rsa2.pem", pkixPEM(t, &k.rsa.PublicKey)),
			writeFile(t, dir, "ed2.pem", pkixPEM(t, k.edOther.Public())),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for name, tok := range map[string]string{
		"RS256 second key with kid": sign(t, jwt.SigningMethodRS256, k.rsa, "key-2024", claimsIn(nil)),
		"PS256 first key":           sign(t, jwt.SigningMethodPS256, k.rsaOther, "", claimsIn(nil)),
		"EdDSA second key with kid": sign(t, jwt.SigningMethodEdDSA, k.edOther, "ed-2", claimsIn(nil)),
	} {
		if _, _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestVerifyLeeway(t *testing.T) {
	k := sharedKeys()
	tok := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claimsIn(jwt.MapClaims{
		"iat": time.Now().Add(-time.Minute).Unix(),
		"exp": time.Now().Add(-2 * time.Second).Unix(),
	}))
	nbfTok := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claimsIn(jwt.MapClaims{"nbf": time.Now().Add(2 * time.Second).Unix()}))

	lenient := staticVerifier(t, func(c *Config) { c.Leeway = 5 * time.Second })
	if _, _, err := lenient.Verify(context.Background(), tok); err != nil {
		t.Errorf("leeway 5s, expired 2s ago: %v", err)
	}
	if _, _, err := lenient.Verify(context.Background(), nbfTok); err != nil {
		t.Errorf("leeway 5s, nbf in 2s: %v", err)
	}
	strict := staticVerifier(t, nil)
	if _, _, err := strict.Verify(context.Background(), tok); Reason(err) != "expired" {
		t.Errorf("leeway 0, expired 2s ago: reason %q, err %v", Reason(err), err)
	}
	if _, _, err := strict.Verify(context.Background(), nbfTok); Reason(err) != "not_yet_valid" {
		t.Errorf("leeway 0, nbf in 2s: reason %q, err %v", Reason(err), err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	k := sharedKeys()
	v := staticVerifier(t, nil)
	good := []string{
		sign(t, jwt.SigningMethodHS256, k.secret, "", claimsIn(nil)),
		sign(t, jwt.SigningMethodRS256, k.rsa, "", claimsIn(nil)),
		sign(t, jwt.SigningMethodES256, k.p256, "", claimsIn(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.ed, "", claimsIn(nil)),
	}
	bad := sign(t, jwt.SigningMethodRS256, k.rsaOther, "", claimsIn(nil))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tok := good[(g+i)%len(good)]
				if _, _, err := v.Verify(context.Background(), tok); err != nil {
					errs <- err
					return
				}
				if _, _, err := v.Verify(context.Background(), bad); Reason(err) != "bad_signature" {
					errs <- errors.New("bad token not refused as bad_signature: " + Reason(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReason(t *testing.T) {
	if got := Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
	if got := Reason(errors.New("boom")); got != "invalid" {
		t.Errorf("Reason(other) = %q", got)
	}
	_, _, err := staticVerifier(t, nil).Verify(context.Background(), "")
	wrapped := errors.Join(errors.New("ctx"), err)
	if got := Reason(wrapped); got != "missing" {
		t.Errorf("Reason(wrapped) = %q", got)
	}
	if !errors.Is(wrapped, ErrInvalidToken) {
		t.Error("wrapped refusal lost ErrInvalidToken")
	}
}

func TestRefusalWrapsJWTSentinel(t *testing.T) {
	k := sharedKeys()
	v := staticVerifier(t, nil)
	tok := sign(t, jwt.SigningMethodHS256, k.secret, "", claimsIn(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}))
	_, _, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, jwt.ErrTokenExpired) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err %v should wrap jwt.ErrTokenExpired and ErrInvalidToken", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	v := staticVerifier(t, nil)
	for range 3 {
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Static keys keep working after Close.
	tok := sign(t, jwt.SigningMethodHS256, sharedKeys().secret, "", claimsIn(nil))
	if _, _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}
