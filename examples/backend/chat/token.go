package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TokenTTL is how long a login token stays valid.
const TokenTTL = 24 * time.Hour

// maxNameLen bounds user names and nicknames.
const maxNameLen = 32

// IssueToken returns a login token for name, valid for TokenTTL:
// "<base64url(name)>.<expiry unix>.<base64url(HMAC-SHA256)>". It is what
// POST /login answers; tests may call it directly.
func (a *App) IssueToken(name string) (string, error) {
	if err := validName(name); err != nil {
		return "", fmt.Errorf("issuing token: %w", err)
	}
	claims := base64.RawURLEncoding.EncodeToString([]byte(name)) + "." +
		strconv.FormatInt(a.now().Add(TokenTTL).Unix(), 10)
	return claims + "." + base64.RawURLEncoding.EncodeToString(a.tokenMAC(claims)), nil
}

// verifyToken returns the user name a token was issued for, or an error if
// the token is malformed, forged or expired.
func (a *App) verifyToken(token string) (string, error) {
	if token == "" {
		return "", errors.New("no token")
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", errors.New("malformed token")
	}
	claims, sigText := token[:i], token[i+1:]
	// Compare the encoded form: base64 decoders skip newlines and ignore
	// unused bits, which would let several strings pass for one token.
	want := base64.RawURLEncoding.EncodeToString(a.tokenMAC(claims))
	if !hmac.Equal([]byte(sigText), []byte(want)) {
		return "", errors.New("token signature does not match")
	}
	nameText, expText, ok := strings.Cut(claims, ".")
	if !ok {
		return "", errors.New("malformed token claims")
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil {
		return "", fmt.Errorf("parsing token expiry: %w", err)
	}
	if a.now().Unix() >= exp {
		return "", errors.New("token expired")
	}
	name, err := base64.RawURLEncoding.DecodeString(nameText)
	if err != nil {
		return "", fmt.Errorf("decoding token name: %w", err)
	}
	if err := validName(string(name)); err != nil {
		return "", fmt.Errorf("token name: %w", err)
	}
	return string(name), nil
}

// tokenMAC signs token claims with the token key.
func (a *App) tokenMAC(claims string) []byte {
	mac := hmac.New(sha256.New, a.tokenKey)
	mac.Write([]byte(claims))
	return mac.Sum(nil)
}

// validName accepts 1 to maxNameLen letters, digits, '_', '-' and '.'.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must have 1 to %d characters", maxNameLen)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok {
			return fmt.Errorf("name may only contain letters, digits, '_', '-' and '.', got %q", name)
		}
	}
	return nil
}
