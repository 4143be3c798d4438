package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// Reference values computed with an independent HMAC-SHA256
// implementation: HMAC(secret, "1700000000.{\"a\":1}").
const (
	sigTestSecret = "whsec_test"
	sigTestBody   = `{"a":1}`
	sigTestUnix   = 1700000000
	sigTestHex    = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
	sigOtherHex   = "2cb38bd50b3aa61b12df512da616c9577f2a99edb9467110d361a655e1ad3bd5" // key "other"
)

func TestSignWebhook(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		unix   int64
		body   string
		want   string
	}{
		{"reference vector", sigTestSecret, sigTestUnix, sigTestBody, "t=1700000000,v1=" + sigTestHex},
		{"other key", "other", sigTestUnix, sigTestBody, "t=1700000000,v1=" + sigOtherHex},
		{"empty body", "k", 0, "", "t=0,v1=" + hmacHex("k", "0.")},
		{"binary body", "k", 42, "\x00\xff\n", "t=42,v1=" + hmacHex("k", "42.\x00\xff\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sign(tt.secret, time.Unix(tt.unix, 999), []byte(tt.body))
			if got != tt.want {
				t.Fatalf("Sign = %q, want %q", got, tt.want)
			}
		})
	}
}

// hmacHex is an independent computation of the v1 value.
func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyWebhookSignature(t *testing.T) {
	now := time.Unix(sigTestUnix, 0)
	valid := "t=1700000000,v1=" + sigTestHex
	tests := []struct {
		name      string
		secret    string
		header    string
		body      string
		now       time.Time
		tolerance time.Duration
		want      error // nil, or the sentinel the error must wrap
	}{
		{"valid", sigTestSecret, valid, sigTestBody, now, time.Minute, nil},
		{"spaces around entries", sigTestSecret, " t=1700000000 , v1=" + sigTestHex + " ", sigTestBody, now, time.Minute, nil},
		{"v1 before t", sigTestSecret, "v1=" + sigTestHex + ",t=1700000000", sigTestBody, now, time.Minute, nil},
		{"uppercase hex", sigTestSecret, "t=1700000000,v1=" + strings.ToUpper(sigTestHex), sigTestBody, now, time.Minute, nil},
		{"rotation: second v1 matches", sigTestSecret, "t=1700000000,v1=" + sigOtherHex + ",v1=" + sigTestHex, sigTestBody, now, time.Minute, nil},
		{"rotation: first v1 matches", "other", "t=1700000000,v1=" + sigOtherHex + ",v1=" + sigTestHex, sigTestBody, now, time.Minute, nil},
		{"unknown keys ignored", sigTestSecret, "t=1700000000,v0=abc,v2=zz,v1=" + sigTestHex, sigTestBody, now, time.Minute, nil},
		{"bad v1 next to a good one", sigTestSecret, "t=1700000000,v1=nothex,v1=" + sigTestHex, sigTestBody, now, time.Minute, nil},
		{"edge of tolerance past", sigTestSecret, valid, sigTestBody, now.Add(60 * time.Second), time.Minute, nil},
		{"edge of tolerance future", sigTestSecret, valid, sigTestBody, now.Add(-60 * time.Second), time.Minute, nil},
		{"default tolerance accepts 5m", sigTestSecret, valid, sigTestBody, now.Add(5 * time.Minute), 0, nil},

		{"wrong secret", "nope", valid, sigTestBody, now, time.Minute, ErrSignatureMismatch},
		{"body changed", sigTestSecret, valid, `{"a":2}`, now, time.Minute, ErrSignatureMismatch},
		{"timestamp changed", sigTestSecret, "t=1700000001,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMismatch},
		{"leading zero timestamp is signed as written", sigTestSecret, "t=01700000000,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMismatch},
		{"too old", sigTestSecret, valid, sigTestBody, now.Add(61 * time.Second), time.Minute, ErrSignatureExpired},
		{"from the future", sigTestSecret, valid, sigTestBody, now.Add(-61 * time.Second), time.Minute, ErrSignatureExpired},
		{"default tolerance rejects 5m1s", sigTestSecret, valid, sigTestBody, now.Add(5*time.Minute + time.Second), -1, ErrSignatureExpired},

		{"empty secret", "", valid, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"empty header", sigTestSecret, "", sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"blank header", sigTestSecret, "  ", sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"no timestamp", sigTestSecret, "v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"no v1", sigTestSecret, "t=1700000000", sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"only bad v1", sigTestSecret, "t=1700000000,v1=" + sigTestHex[:62], sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"v1 not hex", sigTestSecret, "t=1700000000,v1=" + strings.Repeat("g", 64), sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"two timestamps", sigTestSecret, "t=1700000000,t=1700000000,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"negative timestamp", sigTestSecret, "t=-1,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"signed timestamp", sigTestSecret, "t=+1700000000,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"empty timestamp", sigTestSecret, "t=,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"timestamp overflow", sigTestSecret, "t=99999999999999999999,v1=" + sigTestHex, sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"entry without =", sigTestSecret, "t=1700000000,v1", sigTestBody, now, time.Minute, ErrSignatureMalformed},
		{"trailing comma", sigTestSecret, valid + ",", sigTestBody, now, time.Minute, ErrSignatureMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, []byte(tt.body), tt.now, tt.tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want an error wrapping %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "verify webhook signature: ") {
				t.Fatalf("error %q lacks context", err)
			}
		})
	}
}

func TestVerifyWebhookSignatureRoundTrip(t *testing.T) {
	at := time.Unix(1800000000, 0)
	bodies := []string{"", "{}", `{"socket":{"id":null}}`, strings.Repeat("x", 10000)}
	for _, body := range bodies {
		h := Sign("s3cr3t", at, []byte(body))
		if err := Verify("s3cr3t", h, []byte(body), at.Add(30*time.Second), time.Minute); err != nil {
			t.Fatalf("body of %d bytes: %v", len(body), err)
		}
	}
}

func TestVerifyWebhookSignatureTruncatesQuotedInput(t *testing.T) {
	long := strings.Repeat("z", 1000)
	err := Verify("k", "t="+long+",v1="+sigTestHex, nil, time.Now(), time.Minute)
	if !errors.Is(err, ErrSignatureMalformed) {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > 200 {
		t.Fatalf("error quotes %d bytes of input: %q", len(err.Error()), err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(sigTestSecret, "t=1700000000,v1="+sigTestHex, []byte(sigTestBody), int64(sigTestUnix), int64(60))
	f.Add(sigTestSecret, "t=1700000000,v1="+sigOtherHex+",v1="+sigTestHex, []byte(sigTestBody), int64(sigTestUnix+30), int64(0))
	f.Add("k", "v1=,t=", []byte(nil), int64(0), int64(-5))
	f.Add("k", "t=99999999999999999999,v1=00", []byte("{}"), int64(-1), int64(1))
	f.Add("", ",,,=,t==1", []byte("x"), int64(1<<62), int64(1<<62))
	f.Fuzz(func(t *testing.T, secret, header string, body []byte, nowUnix, tolSeconds int64) {
		now := time.Unix(nowUnix, 0)
		tol := time.Duration(tolSeconds) * time.Second
		err := Verify(secret, header, body, now, tol)
		if err != nil && !errors.Is(err, ErrSignatureMalformed) &&
			!errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrSignatureExpired) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if err == nil && secret == "" {
			t.Fatal("accepted with an empty secret")
		}
		// What Sign makes, Verify accepts.
		if secret != "" && nowUnix >= 0 {
			h := Sign(secret, now, body)
			if err := Verify(secret, h, body, now, tol); err != nil {
				t.Fatalf("own signature %q rejected: %v", h, err)
			}
		}
	})
}
