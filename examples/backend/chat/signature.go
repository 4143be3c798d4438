package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the webhook contract (docs/webhooks.md).
const (
	// EventHeader names the call: connect, join, handle_in or leave.
	EventHeader = "X-Channels-Event"
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "X-Channels-Signature"
)

// SignatureTolerance is how far a signature's timestamp may be from the
// local clock, in either direction, before the request is refused.
const SignatureTolerance = 5 * time.Minute

// VerifySignature checks an X-Channels-Signature header value against the
// raw request body: some v1 value must equal the hex HMAC-SHA256, keyed with
// secret, of "<t>.<body>", and t must be within SignatureTolerance of now.
// Unknown keys in the header are ignored, so later signature versions can
// be added next to v1.
func VerifySignature(secret []byte, header string, body []byte, now time.Time) error {
	if header == "" {
		return errors.New("missing signature header")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch key {
		case "t":
			if ts != "" {
				return errors.New("signature header has more than one timestamp")
			}
			ts = value
		case "v1":
			sig, err := hex.DecodeString(value)
			if err != nil {
				return fmt.Errorf("decoding v1 signature: %w", err)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return errors.New("signature header needs t= and v1=")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("parsing signature timestamp: %w", err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	want := mac.Sum(nil)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return errors.New("signature does not match")
	}
	tolerance := int64(SignatureTolerance / time.Second)
	if unix < now.Unix()-tolerance || unix > now.Unix()+tolerance {
		return fmt.Errorf("signature timestamp %d is more than %v away from the local clock", unix, SignatureTolerance)
	}
	return nil
}
