package jwtauth

import (
	"context"
	"fmt"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// jwksSource is a JWKS endpoint cached and refreshed by jwkset and read
// through keyfunc.
type jwksSource struct {
	kf keyfunc.Keyfunc
}

// newJWKSSource fetches the JWKS once and starts the background refresh,
// which ends when ctx does. A failed first fetch is logged, not returned:
// tokens are refused until a later fetch succeeds.
//
// The storage is built from jwkset's parts rather than with
// keyfunc.NewDefaultOverrideCtx so that the unknown-kid limit never blocks:
// jwkset's own limiter waits for its next token (up to RateLimitWaitMax,
// which also bounds the fetch), whereas a gateway should refuse at once when
// the refresh budget is spent.
func newJWKSSource(ctx context.Context, cfg Config) (*jwksSource, error) {
	log := cfg.Logger.With(zap.String("jwks_url", cfg.JWKSURL))
	timeout := cfg.HTTPClient.Timeout
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	cache, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    cfg.HTTPClient,
		Ctx:                       ctx,
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           cfg.JWKSRefresh,
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.Warn("jwtauth: JWKS fetch failed; keeping the keys already cached", zap.Error(err))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("jwtauth: jwks_url %q: %w", cfg.JWKSURL, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: cache},
		// Refresh on every unknown kid that gets past the gate below; the
		// gate holds the real limit.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  timeout, // bounds the refresh fetch
	})
	if err != nil {
		return nil, fmt.Errorf("jwtauth: jwks_url %q: %w", cfg.JWKSURL, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx: ctx,
		Storage: gatedStorage{
			Storage: client,
			cache:   cache,
			limiter: rate.NewLimiter(rate.Every(cfg.JWKSUnknownKIDRate), 1),
		},
		// Only keys meant for signatures, or with no stated use, verify.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, fmt.Errorf("jwtauth: jwks_url %q: %w", cfg.JWKSURL, err)
	}
	if keys, err := cache.KeyReadAll(ctx); err != nil || len(keys) == 0 {
		log.Warn("jwtauth: JWKS has no keys yet; tokens it signs are refused until a fetch succeeds",
			zap.Duration("refresh", cfg.JWKSRefresh))
	}
	return &jwksSource{kf: kf}, nil
}

// gatedStorage reads keys from the cache and lets a read of an unknown kid
// through to the refreshing client only when the limiter has a token left;
// otherwise the kid is reported unknown at once.
type gatedStorage struct {
	jwkset.Storage                // the client: KeyRead of an unknown kid refreshes
	cache          jwkset.Storage // the cached JWKS, read without refreshing
	limiter        *rate.Limiter
}

func (g gatedStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	if jwk, err := g.cache.KeyRead(ctx, kid); err == nil {
		return jwk, nil
	}
	if !g.limiter.Allow() {
		return jwkset.JWK{}, jwkset.ErrKeyNotFound
	}
	return g.Storage.KeyRead(ctx, kid)
}

// keys returns the JWKS keys that token may be checked against for alg: the
// key named by the token's kid (fetching the JWKS again, rate limited, when
// the kid is unknown), or every fitting key when the token has no kid.
func (s *jwksSource) keys(ctx context.Context, token *jwt.Token, alg algorithm) ([]jwt.VerificationKey, error) {
	got, err := s.kf.KeyfuncCtx(ctx)(token)
	if err != nil {
		return nil, errUnknownKey
	}
	switch k := got.(type) {
	case jwt.VerificationKeySet:
		var keys []jwt.VerificationKey
		for _, key := range k.Keys {
			if alg.fits(key) {
				keys = append(keys, key)
			}
		}
		if len(keys) == 0 {
			return nil, errUnknownKey
		}
		return keys, nil
	default:
		if !alg.fits(k) {
			return nil, errKeyMismatch
		}
		return []jwt.VerificationKey{k}, nil
	}
}
