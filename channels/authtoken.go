package channels

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// AuthTokenProtocolPrefix starts the Sec-WebSocket-Protocol entry in which
// phoenix.js (authToken option) carries the base64-encoded auth token, next
// to a plain "phoenix" entry. The entry must not be echoed back; the server
// answers with "phoenix" instead.
const AuthTokenProtocolPrefix = "base64url.bearer.phx."

// ExtractAuthToken finds the auth token among the requested WebSocket
// subprotocols (as returned by gorilla's websocket.Subprotocols: split and
// trimmed). found is false when no entry has AuthTokenProtocolPrefix.
//
// The encoded part may use the standard or the URL-safe base64 alphabet
// (phoenix.js uses standard base64 with the padding removed, despite the
// prefix), with or without padding; mixing both alphabets, bad padding or
// more than one token entry is an error. The token is returned as the raw
// decoded bytes.
func ExtractAuthToken(protocols []string) (token string, found bool, err error) {
	var encoded string
	for _, p := range protocols {
		rest, ok := strings.CutPrefix(p, AuthTokenProtocolPrefix)
		if !ok {
			continue
		}
		if found {
			return "", false, errors.New("auth token: more than one auth token subprotocol")
		}
		encoded, found = rest, true
	}
	if !found {
		return "", false, nil
	}
	token, err = decodeAuthToken(encoded)
	if err != nil {
		return "", false, fmt.Errorf("auth token: %w", err)
	}
	return token, true, nil
}

// decodeAuthToken decodes standard or URL-safe base64, padded or not.
func decodeAuthToken(s string) (string, error) {
	unpadded := strings.TrimRight(s, "=")
	if pad := len(s) - len(unpadded); pad > 0 {
		if pad > 2 || len(s)%4 != 0 {
			return "", errors.New("invalid base64 padding")
		}
	}
	for i := 0; i < len(unpadded); i++ {
		if !isBase64Char(unpadded[i]) {
			return "", fmt.Errorf("invalid base64 character at byte %d", i)
		}
	}
	std := strings.ContainsAny(unpadded, "+/")
	urlSafe := strings.ContainsAny(unpadded, "-_")
	enc := base64.RawStdEncoding
	switch {
	case std && urlSafe:
		return "", errors.New("mixed standard and URL-safe base64 alphabets")
	case urlSafe:
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(unpadded)
	if err != nil {
		return "", fmt.Errorf("decode base64: %w", err)
	}
	return string(b), nil
}

// isBase64Char reports whether c belongs to the standard or the URL-safe
// base64 alphabet (padding excluded).
func isBase64Char(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '+' || c == '/' || c == '-' || c == '_'
}
