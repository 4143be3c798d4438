package channels

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// LongPoll session tokens name the node that holds a session and the
// session, and are signed so that a client can neither forge one nor reach
// another client's session by changing it:
//
//	<node>.<session>.<base64url(HMAC-SHA256(key, "lp1." + node + "." + session))>
//
// node and session are lowercase hex. The signing key is the longpoll
// secret when one is configured, otherwise the hub's random key.

// errBadToken is the answer of verifyToken to anything it did not sign.
var errBadToken = errors.New("longpoll: token not signed by this gateway")

// maxTokenPart bounds the node and session parts of a token.
const maxTokenPart = 64

// signToken returns the token of session on node, signed with key.
func signToken(key []byte, node, session string) string {
	b := make([]byte, 0, len(node)+len(session)+2+base64.RawURLEncoding.EncodedLen(sha256.Size))
	b = append(b, node...)
	b = append(b, '.')
	b = append(b, session...)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, tokenMAC(key, node, session))
	return string(b)
}

// verifyToken checks tok's signature with key and returns the node and
// session it names.
func verifyToken(key []byte, tok string) (node, session string, err error) {
	node, session, ok := splitToken(tok)
	if !ok {
		return "", "", errBadToken
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(tok[len(node)+1+len(session)+1:])
	if err != nil || !hmac.Equal(mac, tokenMAC(key, node, session)) {
		return "", "", errBadToken
	}
	return node, session, nil
}

// splitToken returns the node and session a token names, without
// checking its signature; ok is false when it does not have a token's
// shape.
func splitToken(tok string) (node, session string, ok bool) {
	node, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return "", "", false
	}
	session, sig, ok := strings.Cut(rest, ".")
	if !ok || !isLowerHex(node) || !isLowerHex(session) || base64.RawURLEncoding.DecodedLen(len(sig)) != sha256.Size {
		return "", "", false
	}
	return node, session, true
}

// tokenMAC is the signature of a token's node and session.
func tokenMAC(key []byte, node, session string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lp1."))
	m.Write([]byte(node))
	m.Write([]byte("."))
	m.Write([]byte(session))
	return m.Sum(nil)
}

// isLowerHex reports whether s is 1 to maxTokenPart lowercase hex digits.
func isLowerHex(s string) bool {
	if s == "" || len(s) > maxTokenPart {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newSessionID returns a random session id: 128 bits, hex.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newTokenKey returns a random signing key.
func newTokenKey() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}
