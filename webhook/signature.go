package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// DefaultSignatureTolerance is how far a signature's timestamp may
// be from the verifier's clock when Verify is given no
// tolerance.
const DefaultSignatureTolerance = 5 * time.Minute

// Errors returned (wrapped) by Verify.
var (
	// ErrSignatureMalformed means the header is not
	// "t=<unix seconds>,v1=<hex>[,v1=<hex>…]" or the secret is empty.
	ErrSignatureMalformed = errors.New("malformed webhook signature")
	// ErrSignatureMismatch means no v1 entry matches the body.
	ErrSignatureMismatch = errors.New("webhook signature mismatch")
	// ErrSignatureExpired means the signature is genuine but its
	// timestamp is outside the tolerance (a replay or a skewed clock).
	ErrSignatureExpired = errors.New("webhook signature timestamp outside tolerance")
)

// Sign returns the X-Channels-Signature header value for body sent
// at t: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	return string(appendWebhookSignature(make([]byte, 0, signatureLen), mac, t.Unix(), body))
}

// signatureLen is the longest signature header value.
const signatureLen = len("t=,v1=") + 20 + 2*sha256.Size

// appendWebhookSignature appends the signature header value of body at
// unix to dst, using mac (an HMAC-SHA256 keyed with the secret). dst is
// handed to mac, so a stack buffer would escape: callers reuse a buffer.
func appendWebhookSignature(dst []byte, mac hash.Hash, unix int64, body []byte) []byte {
	start := len(dst)
	dst = append(dst, "t="...)
	dst = strconv.AppendInt(dst, unix, 10)
	tsEnd := len(dst)
	dst = append(dst, '.')
	mac.Reset()
	mac.Write(dst[start+len("t="):]) // "<t>."
	mac.Write(body)
	dst = append(dst[:tsEnd], ",v1="...)
	sumAt := len(dst)
	dst = mac.Sum(dst)
	var sum [sha256.Size]byte
	copy(sum[:], dst[sumAt:])
	return hex.AppendEncode(dst[:sumAt], sum[:])
}

// Verify checks an X-Channels-Signature header against
// body. The header is "t=<unix seconds>,v1=<hex>" where the HMAC-SHA256 of
// "<t>.<raw body>" keyed with secret is one of the v1 entries: several v1
// entries are allowed so that a secret can be rotated, and unknown keys are
// ignored. The signature is checked first, then the timestamp, which must
// be within tolerance of now (DefaultSignatureTolerance when
// tolerance <= 0). The error wraps ErrSignatureMalformed,
// ErrSignatureMismatch or ErrSignatureExpired.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("verify webhook signature: empty secret: %w", ErrSignatureMalformed)
	}
	ts, unix, sigs, err := parseWebhookSignature(header)
	if err != nil {
		return fmt.Errorf("verify webhook signature: %w", err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	var sum [sha256.Size]byte
	want := mac.Sum(sum[:0])
	match := false
	for _, sig := range sigs {
		// Compare every entry so the time taken does not depend on
		// which one matched.
		if hmac.Equal(want, sig[:]) {
			match = true
		}
	}
	if !match {
		return fmt.Errorf("verify webhook signature: %w", ErrSignatureMismatch)
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	// unix is in [0, MaxInt64], so the difference cannot overflow.
	skew := now.Unix() - unix
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(tolerance/time.Second) {
		return fmt.Errorf("verify webhook signature: timestamp %d is %ds from now, tolerance %s: %w",
			unix, skew, tolerance, ErrSignatureExpired)
	}
	return nil
}

// parseWebhookSignature splits a signature header into its timestamp (as
// written, and as a number) and its well-formed v1 entries.
func parseWebhookSignature(header string) (ts string, unix int64, sigs [][sha256.Size]byte, err error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", 0, nil, fmt.Errorf("empty header: %w", ErrSignatureMalformed)
	}
	seenT := false
	badV1 := 0
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", 0, nil, fmt.Errorf("entry %q is not key=value: %w", truncateForError(part), ErrSignatureMalformed)
		}
		switch key {
		case "t":
			if seenT {
				return "", 0, nil, fmt.Errorf("more than one timestamp: %w", ErrSignatureMalformed)
			}
			seenT = true
			if unix, err = parseUnixSeconds(value); err != nil {
				return "", 0, nil, err
			}
			ts = value
		case "v1":
			var sig [sha256.Size]byte
			if len(value) != hex.EncodedLen(len(sig)) {
				badV1++
				continue
			}
			if _, err := hex.Decode(sig[:], []byte(value)); err != nil {
				badV1++
				continue
			}
			sigs = append(sigs, sig)
		}
	}
	if !seenT {
		return "", 0, nil, fmt.Errorf("no timestamp: %w", ErrSignatureMalformed)
	}
	if len(sigs) == 0 {
		if badV1 > 0 {
			return "", 0, nil, fmt.Errorf("no v1 entry is %d hex digits: %w", hex.EncodedLen(sha256.Size), ErrSignatureMalformed)
		}
		return "", 0, nil, fmt.Errorf("no v1 signature: %w", ErrSignatureMalformed)
	}
	return ts, unix, sigs, nil
}

// parseUnixSeconds parses a non-negative decimal timestamp.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty timestamp: %w", ErrSignatureMalformed)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("timestamp %q is not decimal seconds: %w", truncateForError(s), ErrSignatureMalformed)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q out of range: %w", truncateForError(s), ErrSignatureMalformed)
	}
	return n, nil
}

// truncateForError shortens attacker-controlled text quoted in errors.
func truncateForError(s string) string {
	const limit = 32
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
