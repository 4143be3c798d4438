package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"testing"
	"time"
)

// b64 is the token encoding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FuzzVerifySignature feeds arbitrary headers and bodies to
// VerifySignature: it must never panic, must accept the signature computed
// here for the body, and must refuse that signature for any other body.
func FuzzVerifySignature(f *testing.F) {
	f.Add("t=1767225600,v1=00", []byte(`{"socket":{}}`))
	f.Add("t=1767225600,v1=zz,v1=", []byte(""))
	f.Add(" t = 1 , v1 = 0 ", []byte("x"))
	f.Add("t=-9223372036854775808,v1=00", []byte("{}"))
	f.Add("t=1,t=2,v1=00", []byte("{}"))
	f.Add(",,=,v2=abc", []byte(nil))
	secret := []byte("fuzz-secret")
	now := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		_ = VerifySignature(secret, header, body, now)

		mac := hmac.New(sha256.New, secret)
		ts := strconv.FormatInt(now.Unix(), 10)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		valid := "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
		if err := VerifySignature(secret, valid, body, now); err != nil {
			t.Fatalf("a valid signature was refused: %v", err)
		}
		if err := VerifySignature(secret, valid, append(body, header...), now); len(header) > 0 && err == nil {
			t.Fatalf("the signature of %q passed for another body", body)
		}
	})
}

// FuzzVerifyToken feeds arbitrary tokens to verifyToken: it must never
// panic, and a token it accepts must name a valid user.
func FuzzVerifyToken(f *testing.F) {
	a := New("fuzz-secret", nil)
	a.now = func() time.Time { return time.Unix(1767225600, 0) }
	good, err := a.IssueToken("alice")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("...")
	f.Add("YWxpY2U.1767312000.")
	f.Add("YWxpY2U..AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		name, err := a.verifyToken(token)
		if err == nil && validName(name) != nil {
			t.Fatalf("accepted %q for invalid name %q", token, name)
		}
		if err == nil && token != good {
			// Only one token exists for this key and clock; another one
			// passing would be a forgery.
			if again, _ := a.IssueToken(name); again != token {
				t.Fatalf("accepted a token that was never issued: %q", token)
			}
		}
	})
}
