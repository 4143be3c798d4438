package channels

// The handshake every transport shares: connect params, vsn, check_origin,
// the auth token, and the connect rules (a CEL gate or the connect
// webhook, assigns, the socket id).

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// accept makes the checks every transport makes before a socket exists
// (connect params, vsn, check_origin), reads the auth token the
// transport's own way (authToken), and runs the connect rules. The socket
// it returns is connected but not admitted; errors are *HTTPError.
func (h *Hub) accept(cfg *Config, r *http.Request, transport string, authToken func() (*string, error)) (*Socket, error) {
	remoteIP := cfg.clientIP(r)
	if rate := cfg.Limits.ConnectsPerIP; rate.On() && !h.connRates.allow(remoteIP, rate, cfg.Limits.MaxAddresses, time.Now()) {
		h.stats.refusals[RefusedConnectRate].Add(1)
		if c := cfg.Logger.Check(zap.InfoLevel, "refusing socket: connect rate of its address exceeded"); c != nil {
			c.Write(zap.String("remote_ip", remoteIP), zap.Stringer("limit", rate), zap.String("transport", transport))
		}
		return nil, &HTTPError{Status: http.StatusTooManyRequests, Err: fmt.Errorf("connects from this address over %s: %w", rate, errLimited)}
	}
	params, err := ParseParams(r.URL.RawQuery)
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "decoding connect params: %w", err)
	}
	vsnValue, hasVsn := params["vsn"]
	vsn, isString := vsnValue.(string)
	if hasVsn && !isString {
		return nil, httpErrorf(http.StatusForbidden, "vsn must be a single string")
	}
	ser, err := NegotiateSerializer(vsn, hasVsn)
	if err != nil {
		cfg.Logger.Warn("refusing socket: client protocol version does not match", zap.String("vsn", vsn), zap.String("transport", transport))
		return nil, &HTTPError{Status: http.StatusForbidden, Err: err}
	}
	if origin := requestOrigin(r); !cfg.Origins.Check(origin, requestScheme(r), r.Host) {
		cfg.Logger.Warn("refusing socket: origin not allowed", zap.String("origin", origin), zap.Stringer("check_origin", cfg.Origins), zap.String("transport", transport))
		return nil, httpErrorf(http.StatusForbidden, "origin %q not allowed", origin)
	}
	token, err := authToken()
	if err != nil {
		return nil, err
	}
	s := &Socket{
		hub:        h,
		ser:        ser,
		vsn:        strings.Clone(vsn), // not a slice of the request line, which it would pin
		transport:  transport,
		remoteAddr: r.RemoteAddr,
		remoteIP:   remoteIP,
		params:     params,
		headers:    lowerHeaders(r.Header),
		authToken:  token,
	}
	if !hasVsn {
		s.vsn = "1.0.0"
	}
	if err := h.connect(cfg, s, r); err != nil {
		return nil, err
	}
	// Connect params and headers only serve the connect rules; an idle
	// socket should not carry them.
	s.params, s.headers = nil, nil
	return s, nil
}

// connect runs the connect rules: the connect gate (a CEL condition or the
// connect webhook, which may set assigns and the id), then assigns in
// order, then the socket id rule, which overrides a webhook's id.
func (h *Hub) connect(cfg *Config, s *Socket, r *http.Request) error {
	if cfg.Auth.on() {
		if err := h.authenticate(cfg, s, r); err != nil {
			return err
		}
	}
	vars := &Vars{Params: s.params, Headers: s.headers, AuthToken: s.authToken, Claims: s.claims, Assigns: map[string]any{}, Now: time.Now()}
	if g := &cfg.Rules.Connect; g.Action == GateUpstream {
		if err := h.connectUpstream(cfg, s, g, r); err != nil {
			return err
		}
		if s.assigns != nil {
			vars.Assigns = s.assigns
		}
	} else {
		ok, _, err := g.Decide(vars)
		if err != nil {
			cfg.Logger.Warn("connect condition failed to evaluate; refusing",
				zap.String("rule", g.String()), zap.Error(err))
		}
		if !ok {
			return httpErrorf(http.StatusForbidden, "connect refused by rule %s", g.String())
		}
	}
	for _, a := range cfg.Rules.Assigns {
		v, err := a.Expr.EvalValue(vars)
		if err != nil {
			cfg.Logger.Warn("assign failed to evaluate; refusing connect",
				zap.String("key", a.Key), zap.String("expr", a.Expr.String()), zap.Error(err))
			return httpErrorf(http.StatusForbidden, "assign %q failed: %w", a.Key, err)
		}
		vars.Assigns[a.Key] = v
	}
	s.assigns = vars.Assigns
	if len(s.assigns) == 0 {
		s.assigns = nil // no empty map per socket (and per channel: maps.Clone keeps nil)
	}
	if cfg.Rules.ID != nil {
		v, err := cfg.Rules.ID.EvalValue(vars)
		if err != nil {
			cfg.Logger.Warn("id failed to evaluate; refusing connect", zap.String("expr", cfg.Rules.ID.String()), zap.Error(err))
			return httpErrorf(http.StatusForbidden, "id failed: %w", err)
		}
		switch id := v.(type) {
		case nil: // anonymous
		case string:
			s.id = id // "" is anonymous too
		default:
			cfg.Logger.Warn("id must be a string or null; refusing connect", zap.String("expr", cfg.Rules.ID.String()), zap.Any("value", v))
			return httpErrorf(http.StatusForbidden, "id must be a string or null, got %T", v)
		}
	}
	return nil
}
