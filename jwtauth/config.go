package jwtauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by [New] to zero [Config] fields.
const (
	defaultJWKSRefresh        = 5 * time.Minute
	defaultJWKSUnknownKIDRate = 30 * time.Second
	defaultHTTPTimeout        = 10 * time.Second
)

// Config says which keys verify tokens and which claims are required. At
// least one of Secrets, PublicKeyFiles and JWKSURL must be set.
type Config struct {
	// Secrets are HMAC keys for HS256, HS384 and HS512; a token verifies if
	// any of them verifies it. They are only ever used for HS* tokens.
	Secrets [][]byte

	// PublicKeyFiles are PEM files holding RSA, ECDSA (P-256, P-384, P-521)
	// or Ed25519 public keys, as PKIX "PUBLIC KEY", PKCS #1 "RSA PUBLIC KEY"
	// or "CERTIFICATE" blocks; a file may hold several. A static key has no
	// kid, so a token is tried against every key of its algorithm's family.
	PublicKeyFiles []string

	// JWKSURL is an http or https JWKS endpoint. Its keys verify RS*, PS*,
	// ES* and EdDSA tokens, looked up by the token's kid.
	JWKSURL string

	// JWKSRefresh is how often the JWKS is fetched in the background.
	// Zero means 5 minutes.
	JWKSRefresh time.Duration

	// JWKSUnknownKIDRate is the least time between two fetches caused by
	// tokens naming a kid that is not in the cached JWKS. Zero means 30
	// seconds.
	JWKSUnknownKIDRate time.Duration

	// Issuer, when set, must equal the token's iss claim.
	Issuer string

	// Audience, when set, must be one of the token's aud values.
	Audience string

	// Algorithms is the allow-list of JWS algorithm names (for example
	// "RS256", "ES256", "EdDSA", "HS256"). Empty means every algorithm the
	// configured keys can verify. "none" is never allowed.
	Algorithms []string

	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	Leeway time.Duration

	// HTTPClient fetches the JWKS. Nil means a client with a 10 second
	// timeout.
	HTTPClient *http.Client

	// Logger receives warnings about the configuration and JWKS fetches.
	// Nil means zap.NewNop().
	Logger *zap.Logger
}

// withDefaults returns a copy of c with zero fields defaulted and durations
// checked.
func (c Config) withDefaults() (Config, error) {
	if c.JWKSRefresh < 0 {
		return c, errors.New("jwtauth: jwks_refresh must not be negative")
	}
	if c.JWKSUnknownKIDRate < 0 {
		return c, errors.New("jwtauth: jwks_unknown_kid_rate must not be negative")
	}
	if c.Leeway < 0 {
		return c, errors.New("jwtauth: leeway must not be negative")
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = defaultJWKSRefresh
	}
	if c.JWKSUnknownKIDRate == 0 {
		c.JWKSUnknownKIDRate = defaultJWKSUnknownKIDRate
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if len(c.Secrets) == 0 && len(c.PublicKeyFiles) == 0 && c.JWKSURL == "" {
		return c, errors.New("jwtauth: no key source: set secrets, public key files or a JWKS URL")
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return c, fmt.Errorf("jwtauth: jwks_url %q: %w", c.JWKSURL, err)
		}
	}
	return c, nil
}

// checkJWKSURL accepts absolute http and https URLs with a host.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

// allowedAlgorithms resolves the allow-list. canVerify reports whether some
// configured key source can verify an algorithm. An explicit list is checked
// name by name; an empty one becomes every algorithm canVerify accepts.
func allowedAlgorithms(names []string, canVerify func(string, algorithm) bool) ([]string, error) {
	if len(names) == 0 {
		var out []string
		for _, name := range algorithmOrder {
			if canVerify(name, algorithms[name]) {
				out = append(out, name)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("jwtauth: the configured keys can verify no supported algorithm")
		}
		return out, nil
	}
	var out []string
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if strings.EqualFold(name, "none") {
			return nil, errors.New(`jwtauth: algorithm "none" is never allowed`)
		}
		alg, ok := algorithms[name]
		if !ok {
			return nil, fmt.Errorf("jwtauth: algorithm %q: unknown; want one of %s",
				name, strings.Join(knownAlgorithms(), ", "))
		}
		if !canVerify(name, alg) {
			if alg.asymmetric() {
				return nil, fmt.Errorf("jwtauth: algorithm %s: no configured public key or JWKS can verify it", name)
			}
			return nil, fmt.Errorf("jwtauth: algorithm %s: needs at least one secret", name)
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out, nil
}
