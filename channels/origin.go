package channels

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// originMode selects how an OriginPolicy decides.
type originMode uint8

const (
	originConn originMode = iota // origin must be the request's own scheme, host and port
	originOff                    // every origin is allowed
	originList                   // origin must match one of the allowed entries
)

// allowedOrigin is one parsed allow-list entry. An empty scheme, a zero port
// or an empty host match anything; wildcard means host is a "*." suffix.
type allowedOrigin struct {
	scheme   string
	host     string
	port     int
	wildcard bool
}

// OriginPolicy is a parsed check_origin setting with Phoenix semantics. The
// zero value and a nil *OriginPolicy behave like conn mode. It is immutable
// and safe for concurrent use.
type OriginPolicy struct {
	mode    originMode
	allowed []allowedOrigin
}

// ParseOriginPolicy builds an OriginPolicy from configuration entries:
//
//   - nil or empty, or ["conn"]: the Origin must have the request's own
//     scheme, host and port (Phoenix check_origin: :conn);
//   - ["off"]: every origin is allowed (check_origin: false);
//   - otherwise a list of origins such as "https://example.com",
//     "//example.com" (any scheme), "//port.com:81" (any scheme, port 81),
//     "https://*.example.com" (example.com and all its subdomains) or a
//     bare "example.com" (any scheme and port). A scheme without a port
//     implies the scheme's default port; paths are ignored.
//
// Entries without a host, with an invalid port, with a misplaced "*", and
// "off"/"conn" combined with other entries are errors.
func ParseOriginPolicy(entries []string) (*OriginPolicy, error) {
	if len(entries) == 0 {
		return &OriginPolicy{mode: originConn}, nil
	}
	if len(entries) == 1 {
		switch e := strings.TrimSpace(entries[0]); {
		case strings.EqualFold(e, "off"):
			return &OriginPolicy{mode: originOff}, nil
		case strings.EqualFold(e, "conn"):
			return &OriginPolicy{mode: originConn}, nil
		}
	}
	p := &OriginPolicy{mode: originList, allowed: make([]allowedOrigin, 0, len(entries))}
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if strings.EqualFold(e, "off") || strings.EqualFold(e, "conn") {
			return nil, fmt.Errorf("origin policy: %q cannot be combined with other entries", e)
		}
		a, err := parseAllowedOrigin(e)
		if err != nil {
			return nil, fmt.Errorf("origin policy: entry %q: %w", raw, err)
		}
		p.allowed = append(p.allowed, a)
	}
	return p, nil
}

// parseAllowedOrigin parses one allow-list entry.
func parseAllowedOrigin(e string) (allowedOrigin, error) {
	if e == "" {
		return allowedOrigin{}, errors.New("empty origin")
	}
	if !strings.Contains(e, "://") && !strings.HasPrefix(e, "//") {
		e = "//" + e // bare host[:port]
	}
	u, err := url.Parse(e)
	if err != nil {
		return allowedOrigin{}, fmt.Errorf("parse origin: %w", err)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return allowedOrigin{}, errors.New("origin has no host")
	}
	a := allowedOrigin{scheme: u.Scheme, host: host}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		a.host, a.wildcard = rest, true
	}
	if a.host == "" || strings.Contains(a.host, "*") {
		return allowedOrigin{}, errors.New(`"*" is only allowed as a leading "*." label followed by a domain`)
	}
	port, ok := originPort(u.Port(), u.Scheme)
	if !ok {
		return allowedOrigin{}, fmt.Errorf("invalid port %q", u.Port())
	}
	a.port = port
	return a, nil
}

// Check reports whether a request with the given Origin header value is
// allowed. reqScheme ("http" or "https"; empty means "http") and reqHost
// (the Host header, with or without a port) describe the request itself and
// are only used in conn mode.
//
// An absent Origin (empty string) is always allowed; an origin without a
// host ("null", "file://", unparsable values) is rejected unless the policy
// is off. Hosts are compared case-insensitively; ports are compared
// explicitly or by scheme default (http/ws 80, https/wss 443).
func (p *OriginPolicy) Check(origin string, reqScheme string, reqHost string) bool {
	if origin == "" {
		return true
	}
	mode := originConn
	if p != nil {
		mode = p.mode
	}
	if mode == originOff {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return false
	}
	port, ok := originPort(u.Port(), u.Scheme)
	if !ok {
		return false
	}
	if mode == originConn {
		return checkConnOrigin(u.Scheme, host, port, reqScheme, reqHost)
	}
	for _, a := range p.allowed {
		if a.matches(u.Scheme, host, port) {
			return true
		}
	}
	return false
}

// checkConnOrigin compares an origin with the request's own scheme, host
// and port.
func checkConnOrigin(scheme, host string, port int, reqScheme, reqHost string) bool {
	reqScheme = strings.ToLower(reqScheme)
	if reqScheme == "" {
		reqScheme = "http"
	}
	hp := url.URL{Host: reqHost}
	rHost := hp.Hostname()
	rPort, ok := originPort(hp.Port(), reqScheme)
	if rHost == "" || !ok {
		return false
	}
	return scheme == reqScheme && strings.EqualFold(host, rHost) && port == rPort
}

// matches applies Phoenix's list comparison: unset scheme, port or host
// match anything; "*.d" matches d and any name ending in ".d".
func (a allowedOrigin) matches(scheme, host string, port int) bool {
	if a.scheme != "" && a.scheme != scheme {
		return false
	}
	if a.port != 0 && a.port != port {
		return false
	}
	if a.wildcard {
		return host == a.host || strings.HasSuffix(host, "."+a.host)
	}
	return host == a.host
}

// originPort returns the explicit port, else the default port of scheme
// (0 when the scheme has none); ok is false for an invalid explicit port.
func originPort(port, scheme string) (int, bool) {
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return 0, false
		}
		return int(n), true
	}
	switch scheme {
	case "http", "ws":
		return 80, true
	case "https", "wss":
		return 443, true
	}
	return 0, true
}

// String describes the policy for logs: "off", "conn", or the allow-list
// such as "origins [//example.com http://scheme.com:80 https://*.ex.com:443]".
func (p *OriginPolicy) String() string {
	if p == nil || p.mode == originConn {
		return "conn"
	}
	if p.mode == originOff {
		return "off"
	}
	var b strings.Builder
	b.WriteString("origins [")
	for i, a := range p.allowed {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a.scheme != "" {
			b.WriteString(a.scheme)
			b.WriteByte(':')
		}
		b.WriteString("//")
		if a.wildcard {
			b.WriteString("*.")
		}
		if strings.Contains(a.host, ":") {
			b.WriteString("[" + a.host + "]")
		} else {
			b.WriteString(a.host)
		}
		if a.port != 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(a.port))
		}
	}
	b.WriteByte(']')
	return b.String()
}
