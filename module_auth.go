package caddychannels

// The JSON shape of authentication at the edge (auth jwt) and of the abuse
// limits, and how they become the engine's AuthConfig and LimitsConfig.

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/channels"
	"github.com/caddy-channels/caddy-channels/jwtauth"
)

// Auth authenticates every socket at connect, before the connect rules.
type Auth struct {
	// JWT verifies a JSON Web Token the client presents. See JWT.
	JWT *JWT `json:"jwt,omitempty"`
}

// JWT is token authentication at the edge: the app signs tokens, the
// gateway verifies them, and the app never sees a connect call. A missing,
// invalid or expired token refuses the connect with 403. The claims of a
// verified token are `claims` in every CEL expression.
type JWT struct {
	// Keys are HMAC secrets (HS256, HS384, HS512); placeholders such as
	// {env.CHANNELS_JWT_SECRET} are replaced at provision time. Any of
	// them may verify a token, so a secret can be rotated.
	Keys []string `json:"keys,omitempty"`
	// PublicKeys are PEM files of RSA, ECDSA or Ed25519 public keys (or
	// certificates) for RS*, PS*, ES* and EdDSA tokens; placeholders in
	// the paths are replaced.
	PublicKeys []string `json:"public_keys,omitempty"`
	// JWKSURL is a JSON Web Key Set endpoint, fetched at start, refreshed
	// every JWKSRefresh and, at most every 30s, when a token names an
	// unknown kid.
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSRefresh is how often the key set is refreshed. Default 5m.
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`
	// Issuer, when set, must be the token's iss.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be in the token's aud.
	Audience string `json:"audience,omitempty"`
	// Algorithms is the allow-list of signing algorithms. Default: every
	// algorithm the configured keys can verify. "none" is always refused,
	// and an HMAC token is never checked against a public key.
	Algorithms []string `json:"algorithms,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// Token is a CEL expression (over params, headers and auth_token)
	// whose string value is the token; null means none. Default: the
	// phoenix.js authToken (WebSocket subprotocol, LongPoll
	// X-Phoenix-AuthToken header), then the connect param "token".
	Token string `json:"token,omitempty"`
	// KeepPastExpiry keeps sockets open after their token's exp
	// ("expire off"). By default such a socket is closed with code 3000
	// and phoenix.js reconnects with fresh params.
	KeepPastExpiry bool `json:"keep_past_expiry,omitempty"`
}

// Limits are the abuse limits. Every limit is per node.
type Limits struct {
	// Messages limits every push of one socket, as "<n>/<duration>"
	// (such as "20/1s"); over it the push gets an error reply
	// {"reason":"rate limited"}.
	Messages string `json:"messages,omitempty"`
	// MessagesBurst is the bucket size of Messages. Default: its n.
	MessagesBurst int `json:"messages_burst,omitempty"`
	// Joins limits the joins of one socket, as "<n>/<duration>".
	Joins string `json:"joins,omitempty"`
	// JoinsBurst is the bucket size of Joins. Default: its n.
	JoinsBurst int `json:"joins_burst,omitempty"`
	// FloodFactor closes a socket (1008) that keeps going at this many
	// times a limit. Default 3.
	FloodFactor int `json:"flood_factor,omitempty"`
	// ConnectsPerIP limits new sockets per client address, as
	// "<n>/<duration>"; over it the handshake gets 429.
	ConnectsPerIP string `json:"connects_per_ip,omitempty"`
	// MaxSocketsPerIP caps the open sockets of one client address (429
	// beyond it).
	MaxSocketsPerIP int `json:"max_sockets_per_ip,omitempty"`
	// MaxSocketsPerID caps the open sockets of one socket id (429 beyond
	// it).
	MaxSocketsPerID int `json:"max_sockets_per_id,omitempty"`
	// MaxAddresses bounds the addresses the connect rate remembers.
	// Default 100000.
	MaxAddresses int `json:"max_addresses,omitempty"`
}

// config returns the engine's limits.
func (l *Limits) config() (channels.LimitsConfig, error) {
	if l == nil {
		return channels.LimitsConfig{}, nil
	}
	if l.MessagesBurst < 0 || l.JoinsBurst < 0 || l.FloodFactor < 0 || l.MaxSocketsPerIP < 0 || l.MaxSocketsPerID < 0 || l.MaxAddresses < 0 {
		return channels.LimitsConfig{}, errors.New("limits must not be negative")
	}
	if l.FloodFactor == 1 {
		return channels.LimitsConfig{}, errors.New("flood_factor must be at least 2")
	}
	c := channels.LimitsConfig{
		FloodFactor:     l.FloodFactor,
		MaxSocketsPerIP: l.MaxSocketsPerIP,
		MaxSocketsPerID: l.MaxSocketsPerID,
		MaxAddresses:    l.MaxAddresses,
	}
	var err error
	if c.Messages, err = optionalRate(l.Messages, l.MessagesBurst); err != nil {
		return c, fmt.Errorf("messages: %w", err)
	}
	if c.Joins, err = optionalRate(l.Joins, l.JoinsBurst); err != nil {
		return c, fmt.Errorf("joins: %w", err)
	}
	if c.ConnectsPerIP, err = optionalRate(l.ConnectsPerIP, 0); err != nil {
		return c, fmt.Errorf("connects_per_ip: %w", err)
	}
	return c, nil
}

// optionalRate parses s ("" is no limit) with burst.
func optionalRate(s string, burst int) (channels.Rate, error) {
	if s == "" {
		if burst != 0 {
			return channels.Rate{}, errors.New("burst without a rate")
		}
		return channels.Rate{}, nil
	}
	r, err := channels.ParseRate(s)
	if err != nil {
		return r, err
	}
	if burst != 0 && burst < r.N {
		return r, fmt.Errorf("burst %d is below the rate's %d", burst, r.N)
	}
	r.Burst = burst
	return r, nil
}

// config builds the engine's authentication and the verifier it holds;
// the verifier lives until close is called (the handler's Cleanup).
func (a *Auth) config(ctx context.Context, repl *caddy.Replacer, logger *zap.Logger) (cfg channels.AuthConfig, close func(), err error) {
	none := func() {}
	if a == nil || a.JWT == nil {
		return channels.AuthConfig{}, none, nil
	}
	j := a.JWT
	jc := jwtauth.Config{
		JWKSURL:     repl.ReplaceKnown(j.JWKSURL, ""),
		JWKSRefresh: timeDuration(j.JWKSRefresh),
		Issuer:      repl.ReplaceKnown(j.Issuer, ""),
		Audience:    repl.ReplaceKnown(j.Audience, ""),
		Algorithms:  j.Algorithms,
		Leeway:      timeDuration(j.Leeway),
		Logger:      logger,
	}
	for _, f := range j.PublicKeys {
		jc.PublicKeyFiles = append(jc.PublicKeyFiles, repl.ReplaceKnown(f, ""))
	}
	for i, k := range j.Keys {
		secret := repl.ReplaceKnown(k, "")
		if secret == "" {
			return cfg, none, fmt.Errorf("jwt: key #%d is empty (an unset environment variable?)", i+1)
		}
		jc.Secrets = append(jc.Secrets, []byte(secret))
	}
	if j.JWKSRefresh < 0 || j.Leeway < 0 {
		return cfg, none, errors.New("jwt: jwks_refresh and leeway must not be negative")
	}
	cfg.KeepPastExpiry = j.KeepPastExpiry
	cfg.Leeway = timeDuration(j.Leeway)
	if j.Token != "" {
		if cfg.Token, err = channels.CompileExpr(channels.ExprToken, j.Token); err != nil {
			return cfg, none, fmt.Errorf("jwt: token: %w", err)
		}
	}
	v, err := jwtauth.New(ctx, jc)
	if err != nil {
		return cfg, none, fmt.Errorf("jwt: %w", err)
	}
	cfg.Verifier = v
	return cfg, func() { _ = v.Close() }, nil
}
