package jwtauth

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// maxTokenBytes is the longest token accepted; longer ones are refused as
// malformed before any decoding.
const maxTokenBytes = 8 << 10

// Verifier checks connection tokens. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	allowed map[string]bool
	static  map[string][]jwt.VerificationKey // allowed alg name -> static keys that may verify it
	jwks    *jwksSource                      // nil without a JWKS URL
	issuer  string
	cancel  context.CancelFunc
}

// New checks cfg, loads its keys and, with a JWKS URL, fetches the JWKS once
// and starts refreshing it in the background. A failed first fetch is
// logged as a warning rather than returned, so the gateway can start while
// the identity provider is down; tokens that need the JWKS are refused until
// a fetch succeeds. The background refresh ends when ctx is done or Close is
// called.
//
// New fails on a configuration without any key source, an unreadable or
// unsupported public key file, an invalid JWKS URL, an unknown algorithm
// name, "none" in Algorithms, or an allowed algorithm that no configured
// key can verify.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	static, err := loadStaticKeys(cfg.Secrets, cfg.PublicKeyFiles, cfg.Logger)
	if err != nil {
		return nil, err
	}
	hasJWKS := cfg.JWKSURL != ""
	names, err := allowedAlgorithms(cfg.Algorithms, func(_ string, alg algorithm) bool {
		return len(static.forAlgorithm(alg)) > 0 || (hasJWKS && alg.asymmetric())
	})
	if err != nil {
		return nil, err
	}

	v := &Verifier{
		allowed: make(map[string]bool, len(names)),
		static:  make(map[string][]jwt.VerificationKey, len(names)),
		issuer:  cfg.Issuer,
	}
	for _, name := range names {
		v.allowed[name] = true
		v.static[name] = static.forAlgorithm(algorithms[name])
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(names),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
		// Refuse non-canonical base64 so a signature has one spelling only.
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)

	ctx, v.cancel = context.WithCancel(ctx)
	if hasJWKS {
		v.jwks, err = newJWKSSource(ctx, cfg)
		if err != nil {
			v.cancel()
			return nil, err
		}
	}
	cfg.Logger.Debug("jwtauth: verifier ready",
		zap.Strings("algorithms", names),
		zap.Int("secrets", len(static.secrets)),
		zap.Int("public_keys", len(static.public)),
		zap.Bool("jwks", hasJWKS))
	return v, nil
}

// Verify checks token's signature and claims and returns the claims and the
// exp claim (the zero time when the token has none). ctx bounds a JWKS fetch
// triggered by an unknown kid. Every refusal wraps [ErrInvalidToken]; use
// [Reason] to label it.
func (v *Verifier) Verify(ctx context.Context, token string) (map[string]any, time.Time, error) {
	if token == "" {
		return nil, time.Time{}, refuse(reasonMissing, "no token", nil)
	}
	if len(token) > maxTokenBytes {
		return nil, time.Time{}, refuse(reasonMalformed, "token too long", jwt.ErrTokenMalformed)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.keyfunc(ctx))
	if err != nil {
		return nil, time.Time{}, v.refuse(tok, claims, err)
	}
	var exp time.Time
	if d, err := claims.GetExpirationTime(); err == nil && d != nil {
		exp = d.Time
	}
	return claims, exp, nil
}

// Close stops the JWKS background refresh. Keys already loaded keep
// working. Close is idempotent and always returns nil.
func (v *Verifier) Close() error {
	v.cancel()
	return nil
}

// keyfunc picks the keys a token may be checked against by its algorithm's
// family: HMAC tokens only against the secrets, asymmetric tokens only
// against public keys (static and JWKS) of the same family and curve.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Header["crit"]; ok {
			return nil, errCritical
		}
		name := tok.Method.Alg()
		alg, ok := algorithms[name]
		if !ok || !v.allowed[name] {
			return nil, errNoKeys
		}
		static := v.static[name]
		if !alg.asymmetric() || v.jwks == nil {
			if len(static) == 0 {
				return nil, errNoKeys
			}
			return jwt.VerificationKeySet{Keys: static}, nil
		}
		dynamic, err := v.jwks.keys(ctx, tok, alg)
		switch {
		case len(dynamic) == 0 && len(static) == 0:
			return nil, err
		case len(dynamic) == 0:
			return jwt.VerificationKeySet{Keys: static}, nil
		case len(static) == 0:
			return jwt.VerificationKeySet{Keys: dynamic}, nil
		default:
			keys := make([]jwt.VerificationKey, 0, len(static)+len(dynamic))
			keys = append(append(keys, static...), dynamic...)
			return jwt.VerificationKeySet{Keys: keys}, nil
		}
	}
}
