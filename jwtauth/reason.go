package jwtauth

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every refusal returned by [Verifier.Verify];
// test for it with errors.Is.
var ErrInvalidToken = errors.New("invalid token")

// Refusal reasons returned by [Reason].
const (
	reasonMalformed    = "malformed"
	reasonExpired      = "expired"
	reasonNotYetValid  = "not_yet_valid"
	reasonBadSignature = "bad_signature"
	reasonIssuer       = "issuer"
	reasonAudience     = "audience"
	reasonAlgorithm    = "algorithm"
	reasonUnknownKey   = "unknown_key"
	reasonMissing      = "missing"
	reasonInvalid      = "invalid"
)

// Errors returned by the key lookup, classified by [Verifier.refuse].
var (
	errUnknownKey  = errors.New("no key for this token")
	errKeyMismatch = errors.New("the key does not fit the token's algorithm")
	errNoKeys      = errors.New("no key configured for this algorithm")
	errCritical    = errors.New("critical header extensions are not supported")
)

// refusal is the error returned for a refused token. Its text is built from
// fixed strings only, never from the token.
type refusal struct {
	reason string
	detail string
	cause  error // a sentinel from jwt/v5 or nil; never an error carrying token text
}

func (r *refusal) Error() string { return "jwtauth: invalid token: " + r.detail }

func (r *refusal) Unwrap() []error {
	if r.cause == nil {
		return []error{ErrInvalidToken}
	}
	return []error{ErrInvalidToken, r.cause}
}

func refuse(reason, detail string, cause error) error {
	return &refusal{reason: reason, detail: detail, cause: cause}
}

// Reason returns a short label for why err refused a token, for logs and
// metrics: "malformed", "expired", "not_yet_valid", "bad_signature",
// "issuer", "audience", "algorithm", "unknown_key", "missing" or "invalid".
// It returns "" for a nil error and "invalid" for any error that is not one
// of this package's refusals.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return reasonInvalid
}

// refuse turns an error from jwt/v5 into a refusal. tok and claims are what
// the parser got so far (tok may be nil).
func (v *Verifier) refuse(tok *jwt.Token, claims jwt.MapClaims, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(reasonMalformed, "malformed", jwt.ErrTokenMalformed)
	case errors.Is(err, errUnknownKey):
		return refuse(reasonUnknownKey, "no key matches the token", jwt.ErrTokenUnverifiable)
	case errors.Is(err, errKeyMismatch), errors.Is(err, errNoKeys):
		return refuse(reasonAlgorithm, "the key does not fit the token's algorithm", jwt.ErrTokenUnverifiable)
	case errors.Is(err, errCritical):
		return refuse(reasonInvalid, "unsupported critical header", jwt.ErrTokenUnverifiable)
	case errors.Is(err, jwt.ErrTokenUnverifiable) && (tok == nil || tok.Method == nil):
		if _, ok := headerAlg(tok); !ok {
			return refuse(reasonMalformed, "missing alg header", jwt.ErrTokenMalformed)
		}
		return refuse(reasonAlgorithm, "unsupported algorithm", jwt.ErrTokenUnverifiable)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !v.allowed[tok.Method.Alg()] {
			return refuse(reasonAlgorithm, "algorithm not allowed", jwt.ErrTokenSignatureInvalid)
		}
		return refuse(reasonBadSignature, "bad signature", jwt.ErrTokenSignatureInvalid)
	case errors.Is(err, jwt.ErrInvalidType):
		return refuse(reasonMalformed, "a registered claim has the wrong type", jwt.ErrTokenMalformed)
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(reasonExpired, "expired", jwt.ErrTokenExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(reasonNotYetValid, "not valid yet", jwt.ErrTokenNotValidYet)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(reasonNotYetValid, "issued in the future", jwt.ErrTokenUsedBeforeIssued)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refuse(reasonIssuer, "wrong issuer", jwt.ErrTokenInvalidIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refuse(reasonAudience, "wrong audience", jwt.ErrTokenInvalidAudience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Only iss and aud are ever required here.
		if iss, _ := claims["iss"].(string); v.issuer != "" && iss != v.issuer {
			return refuse(reasonIssuer, "missing issuer", jwt.ErrTokenInvalidIssuer)
		}
		return refuse(reasonAudience, "missing audience", jwt.ErrTokenInvalidAudience)
	default:
		return refuse(reasonInvalid, "refused", nil)
	}
}

// headerAlg returns the token header's alg when it is a string.
func headerAlg(tok *jwt.Token) (string, bool) {
	if tok == nil {
		return "", false
	}
	alg, ok := tok.Header["alg"].(string)
	return alg, ok
}
