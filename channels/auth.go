package channels

// Authentication at the edge: the connect token is verified before the
// connect rules run, and its claims are the "claims" of every expression.

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// TokenVerifier checks a token a client presents (a *jwtauth.Verifier).
// Its errors say why a token is refused without quoting the token.
type TokenVerifier interface {
	// Verify checks token and returns its claims (JSON-ready values) and
	// its expiry, zero when the token has none.
	Verify(ctx context.Context, token string) (claims map[string]any, exp time.Time, err error)
}

// AuthConfig is the connect authentication (auth jwt in the Caddyfile).
// The zero value authenticates nothing: connects go straight to the
// connect rules and claims is empty.
type AuthConfig struct {
	// Verifier checks the connect token; nil turns authentication off.
	Verifier TokenVerifier
	// Token finds the token (an ExprToken expression); nil takes the
	// phoenix.js authToken (the WebSocket subprotocol or the LongPoll
	// X-Phoenix-AuthToken header), then the connect param "token".
	Token *Expr
	// KeepPastExpiry keeps sockets open after their token's exp (expire
	// off). By default a socket is closed with CloseTokenExpired when its
	// token expires, and phoenix.js reconnects with fresh params.
	KeepPastExpiry bool
	// Timeout bounds one verification (a key set fetch included).
	// Default 5s.
	Timeout time.Duration
	// Leeway is the verifier's clock skew on exp: a socket is closed at
	// exp + Leeway, when the verifier would refuse its token, so that a
	// token accepted within the leeway does not make a socket that closes
	// at once and reconnects with the same token.
	Leeway time.Duration
}

// DefaultAuthTimeout bounds one token verification.
const DefaultAuthTimeout = 5 * time.Second

// errNoToken is the refusal of a connect that carries no token.
var errNoToken = errors.New("no token")

// on reports whether connects are authenticated.
func (a *AuthConfig) on() bool { return a.Verifier != nil }

// verify checks token with the verifier within Timeout (a connect token,
// or a channel's join token).
func (a *AuthConfig) verify(ctx context.Context, token string) (map[string]any, time.Time, error) {
	if a.Verifier == nil {
		return nil, time.Time{}, errors.New("no auth jwt is configured to verify it")
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultAuthTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return a.Verifier.Verify(ctx, token)
}

// authenticate verifies the connect token of s, whose connect params,
// headers and auth token are set, and keeps its claims and expiry on s.
// A missing, invalid or expired token refuses the connect with 403,
// logged at info with the reason (never the token).
func (h *Hub) authenticate(cfg *Config, s *Socket, r *http.Request) error {
	a := &cfg.Auth
	token, err := a.tokenOf(s)
	if err == nil && token == "" {
		err = errNoToken
	}
	var claims map[string]any
	var exp time.Time
	if err == nil {
		claims, exp, err = a.verify(r.Context(), token)
	}
	if err != nil {
		h.stats.refusals[RefusedAuth].Add(1)
		cfg.Logger.Info("refusing socket: token not accepted",
			zap.String("transport", s.transport), zap.String("remote_ip", s.remoteIP), zap.Error(err))
		return httpErrorf(http.StatusForbidden, "token not accepted: %w", err)
	}
	s.claims = claims
	if !a.KeepPastExpiry && !exp.IsZero() {
		s.tokenExp = exp.Add(a.Leeway)
	}
	return nil
}

// tokenOf returns the connect token of s: the Token expression's value,
// or the auth token, or the "token" param. "" means none.
func (a *AuthConfig) tokenOf(s *Socket) (string, error) {
	if a.Token != nil {
		v, err := a.Token.EvalValue(&Vars{Params: s.params, Headers: s.headers, AuthToken: s.authToken})
		if err != nil {
			return "", err
		}
		if t, ok := v.(string); ok {
			return t, nil
		}
		return "", nil // null: no token
	}
	if s.authToken != nil {
		return *s.authToken, nil
	}
	if t, ok := s.params["token"].(string); ok {
		return t, nil
	}
	return "", nil
}

// watchExpiry closes s with CloseTokenExpired once its token expires.
// Called when s is open; the timer stops when s ends (see unregister).
func (s *Socket) watchExpiry() {
	if s.tokenExp.IsZero() {
		return
	}
	s.expiry = time.AfterFunc(time.Until(s.tokenExp), func() {
		s.hub.stats.refusals[RefusedTokenExpired].Add(1)
		if c := s.hub.logger().Check(zap.InfoLevel, "closing socket: token expired"); c != nil {
			c.Write(zap.String("socket_id", s.id), zap.String("transport", s.transport))
		}
		s.closeFor(LeaveReasonTokenExpired, CloseTokenExpired, "token expired")
	})
}
