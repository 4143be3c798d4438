package caddychannels

// Caddyfile syntax of authentication and limits:
//
//	auth jwt {
//		key {env.CHANNELS_JWT_SECRET}   # HS256/384/512; repeatable
//		public_key /etc/channels/app.pem # RS*/PS*/ES*/EdDSA; repeatable
//		jwks_url https://id.example.com/.well-known/jwks.json
//		jwks_refresh 5m
//		issuer https://id.example.com/
//		audience chat
//		algorithms ES256 HS256
//		leeway 30s
//		token "headers['x-token']"       # CEL: where the token comes from
//		expire off                       # keep sockets open past exp
//	}
//	limit messages 20/1s [burst 40]
//	limit joins 5/1s [burst 10]
//	limit connects 10/1m per ip
//	limit flood_factor 3
//	max_sockets_per_ip 50
//	max_sockets_per_id 10

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// parseAuth reads `auth jwt { … }`.
func parseAuth(d *caddyfile.Dispenser) (*Auth, error) {
	if !d.NextArg() {
		return nil, d.Errf("auth: missing method (want jwt)")
	}
	if d.Val() != "jwt" {
		return nil, d.Errf("auth: unknown method %q (want jwt)", d.Val())
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	j := &JWT{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "key" && name != "public_key" {
			if seen[name] {
				return nil, d.Errf("auth jwt: duplicate %q", name)
			}
			seen[name] = true
		}
		var err error
		switch name {
		case "key":
			var k string
			err = oneArg(d, &k)
			j.Keys = append(j.Keys, k)
		case "public_key":
			var f string
			err = oneArg(d, &f)
			j.PublicKeys = append(j.PublicKeys, f)
		case "jwks_url":
			if err = oneArg(d, &j.JWKSURL); err == nil {
				if cerr := checkUpstreamURL(j.JWKSURL); cerr != nil {
					return nil, d.Errf("auth jwt: jwks_url: %v", cerr)
				}
			}
		case "jwks_refresh":
			err = durationArg(d, &j.JWKSRefresh)
		case "issuer":
			err = oneArg(d, &j.Issuer)
		case "audience":
			err = oneArg(d, &j.Audience)
		case "algorithms":
			j.Algorithms = d.RemainingArgs()
			if len(j.Algorithms) == 0 {
				return nil, d.ArgErr()
			}
		case "leeway":
			err = durationArg(d, &j.Leeway)
		case "token":
			if err = oneArg(d, &j.Token); err == nil {
				if _, cerr := channels.CompileExpr(channels.ExprToken, j.Token); cerr != nil {
					return nil, d.Errf("auth jwt: token: %v", cerr)
				}
			}
		case "expire":
			var v string
			if err = oneArg(d, &v); err == nil {
				if v != "off" {
					return nil, d.Errf("auth jwt: expire: want off, got %q", v)
				}
				j.KeepPastExpiry = true
			}
		default:
			return nil, d.Errf("auth jwt: unknown setting %q (want key, public_key, jwks_url, jwks_refresh, issuer, audience, algorithms, leeway, token or expire)", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(j.Keys) == 0 && len(j.PublicKeys) == 0 && j.JWKSURL == "" {
		return nil, d.Errf("auth jwt: no key (want key, public_key or jwks_url)")
	}
	return &Auth{JWT: j}, nil
}

// parseLimit reads one `limit <kind> …` line into l.
func parseLimit(d *caddyfile.Dispenser, l *Limits, seen map[string]bool) error {
	if !d.NextArg() {
		return d.Errf("limit: missing kind (want messages, joins, connects or flood_factor)")
	}
	kind := d.Val()
	if seen[kind] {
		return d.Errf("duplicate limit %s", kind)
	}
	seen[kind] = true
	args := d.RemainingArgs()
	rateArgs := func(allowBurst bool) (rate string, burst int, err error) {
		if len(args) == 0 {
			return "", 0, d.Errf("limit %s: missing <n>/<duration>", kind)
		}
		r, err := channels.ParseRate(args[0])
		if err != nil {
			return "", 0, d.Errf("limit %s: %v", kind, err)
		}
		rest := args[1:]
		if allowBurst && len(rest) >= 1 && rest[0] == "burst" {
			if len(rest) != 2 {
				return "", 0, d.Errf("limit %s: burst takes one number", kind)
			}
			if burst, err = positiveInt(rest[1]); err != nil || burst < r.N {
				return "", 0, d.Errf("limit %s: burst %q must be a number of at least %d", kind, rest[1], r.N)
			}
			rest = rest[2:]
		}
		if len(rest) > 0 {
			return "", 0, d.Errf("limit %s: unexpected %q", kind, rest[0])
		}
		return args[0], burst, nil
	}
	var err error
	switch kind {
	case "messages":
		l.Messages, l.MessagesBurst, err = rateArgs(true)
	case "joins":
		l.Joins, l.JoinsBurst, err = rateArgs(true)
	case "connects":
		if n := len(args); n < 3 || args[n-2] != "per" || args[n-1] != "ip" {
			return d.Errf("limit connects: want limit connects <n>/<duration> per ip")
		}
		args = args[:len(args)-2]
		l.ConnectsPerIP, _, err = rateArgs(false)
	case "flood_factor":
		if len(args) != 1 {
			return d.ArgErr()
		}
		if l.FloodFactor, err = positiveInt(args[0]); err != nil || l.FloodFactor < 2 {
			return d.Errf("limit flood_factor: want a number of at least 2, got %q", args[0])
		}
	default:
		return d.Errf("limit: unknown kind %q (want messages, joins, connects or flood_factor)", kind)
	}
	return err
}

// positiveInt reads a positive decimal number.
func positiveInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number", s)
	}
	return n, nil
}

// parseJoinJWT reads the settings of `join jwt`, inline
// (`join jwt token "<cel>" if "<cel>" reply "<cel>"`) or in a block with
// one setting per line; every setting is optional.
func parseJoinJWT(d *caddyfile.Dispenser, g *channels.GateSpec, inline []string) error {
	set := func(key, val string) error {
		var dst *string
		kind := channels.ExprJoin
		switch key {
		case "token":
			dst, kind = &g.Token, channels.ExprJoinToken
		case "if":
			dst = &g.Expr
		case "reply":
			dst, kind = &g.Reply, channels.ExprReply
		default:
			return d.Errf("join jwt: unknown setting %q (want token, if or reply)", key)
		}
		if *dst != "" {
			return d.Errf("join jwt: duplicate %q", key)
		}
		if _, err := channels.CompileExpr(kind, val); err != nil {
			return d.Errf("join jwt %s: %v", key, err)
		}
		*dst = val
		return nil
	}
	if len(inline)%2 != 0 {
		return d.Errf("join jwt: %q needs a value", inline[len(inline)-1])
	}
	for i := 0; i < len(inline); i += 2 {
		if err := set(inline[i], inline[i+1]); err != nil {
			return err
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		var val string
		if err := oneArg(d, &val); err != nil {
			return err
		}
		if err := set(key, val); err != nil {
			return err
		}
	}
	return nil
}
