package caddychannels

import (
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-channels/caddy-channels/channels"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("channels", parseCaddyfile)
	// After encode, as Mercure does: auth directives (basic_auth,
	// forward_auth) and header manipulation run first, and the socket is
	// served before handle, respond, reverse_proxy and file_server.
	httpcaddyfile.RegisterDirectiveOrder("channels", httpcaddyfile.After, "encode")
}

func parseCaddyfile(helper httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(helper.Dispenser)
	return h, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	channels [<matcher>] {
//		path            <path>                       # default /socket
//		check_origin    off | conn | <origin...>     # default conn
//		api_key         <key>
//		connect         allow | deny | if "<cel>"    # default allow
//		connect         upstream <url> {             # or: the app decides (docs/webhooks.md)
//			forward_headers <name...>
//		}
//		webhook_secret  <secret>                     # signs webhook calls
//		webhook_timeout <duration>                   # default 3s
//		assign          <key> "<cel>"                # repeatable, in order
//		id              "<cel>"
//		idle_timeout    <duration>                   # default 60s
//		write_timeout   <duration>                   # default 10s
//		max_frame_size  <size>                       # default 1MiB
//		max_channels    <n>                          # default 100
//		max_queue_size  <size>                       # default 1MiB
//		compression [on|off] {                       # permessage-deflate; off by default, on alone
//			threshold <size>                         # default 512B: smaller messages go plain
//			level     <n>                            # 1 (default, fastest) to 9 (smallest)
//		}
//		pubsub          memory | redis <url> | nats <url> [{ … }]  # default memory
//		drain {                                      # closing sockets at shutdown or removal
//			batch    <n>                             # default 10000 sockets per batch
//			interval <duration>                      # default 2s between batches
//			timeout  <duration>                      # default 30s for the whole drain
//		}
//		longpoll [off] {                             # {path}/longpoll, on by default
//			window        <duration>                 # default 10s a poll waits
//			secret        <key>                      # signs session tokens; default random per node
//			max_sessions  <n>                        # default 100000
//			max_body_size <size>                     # default max_frame_size × 100
//		}
//		channel <pattern> {                          # repeatable; first match wins
//			join      allow | deny [<reason>] | if "<cel>"  [reply "<cel>"]
//			join      upstream <url>
//			handle_in <event>|* broadcast | broadcast_from | reply | noreply
//			handle_in <event>|* upstream <url>
//			leave     upstream <url>
//			presence [{                              # track joins; presence_state/diff
//				key   "<cel>"                        # default: the socket id
//				meta  "<cel>"                        # default: {}
//				batch <duration>                     # default 50ms, at most 1s
//			}]
//			history <n> [ttl <duration>] [{          # keep the last n broadcasts
//				on_join <k>                          # push the last k on a plain join
//			}]
//		}
//	}
//
// Unknown subdirectives, bad patterns and CEL that does not compile are
// errors that name the file and line.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	seenLimits := map[string]bool{}
	limits := func() *Limits {
		if h.Limits == nil {
			h.Limits = &Limits{}
		}
		return h.Limits
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "assign" && name != "channel" && name != "limit" {
			if seen[name] {
				return d.Errf("duplicate %q", name)
			}
			seen[name] = true
		}
		var err error
		switch name {
		case "path":
			if err = oneArg(d, &h.Path); err == nil {
				if _, perr := normalizePath(h.Path); perr != nil {
					return d.Err(perr.Error())
				}
			}
		case "check_origin":
			h.CheckOrigin = d.RemainingArgs()
			if len(h.CheckOrigin) == 0 {
				return d.ArgErr()
			}
			if _, perr := channels.ParseOriginPolicy(h.CheckOrigin); perr != nil {
				return d.Errf("check_origin: %v", perr)
			}
		case "api_key":
			err = oneArg(d, &h.APIKey)
		case "webhook_secret":
			err = oneArg(d, &h.WebhookSecret)
		case "webhook_timeout":
			err = durationArg(d, &h.WebhookTimeout)
		case "connect":
			h.Connect, err = parseGate(d, channels.ExprConnect, false)
		case "assign":
			var a channels.AssignSpec
			if !d.Args(&a.Key, &a.Expr) || d.NextArg() {
				return d.ArgErr()
			}
			if _, cerr := channels.CompileExpr(channels.ExprAssign, a.Expr); cerr != nil {
				return d.Errf("assign %s: %v", a.Key, cerr)
			}
			h.Assign = append(h.Assign, a)
		case "id":
			if err = oneArg(d, &h.ID); err == nil {
				if _, cerr := channels.CompileExpr(channels.ExprID, h.ID); cerr != nil {
					return d.Errf("id: %v", cerr)
				}
			}
		case "idle_timeout":
			err = durationArg(d, &h.IdleTimeout)
		case "write_timeout":
			err = durationArg(d, &h.WriteTimeout)
		case "write_delay":
			if err = durationArg(d, &h.WriteDelay); err == nil {
				if verr := channels.ValidateWriteDelay(time.Duration(h.WriteDelay)); verr != nil {
					return d.Errf("write_delay: %v", verr)
				}
			}
		case "max_frame_size":
			var n int
			err = sizeArg(d, &n)
			h.MaxFrameSize = int64(n)
		case "max_queue_size":
			err = sizeArg(d, &h.MaxQueueSize)
		case "max_channels":
			err = intArg(d, &h.MaxChannels)
		case "auth":
			h.Auth, err = parseAuth(d)
		case "limit":
			err = parseLimit(d, limits(), seenLimits)
		case "max_sockets_per_ip":
			err = intArg(d, &limits().MaxSocketsPerIP)
		case "max_sockets_per_id":
			err = intArg(d, &limits().MaxSocketsPerID)
		case "drain":
			h.Drain, err = parseDrain(d)
		case "longpoll":
			h.LongPoll, err = parseLongPoll(d)
		case "compression":
			h.Compression, err = parseCompression(d)
		case "pubsub":
			if !d.NextArg() {
				return d.ArgErr()
			}
			engine := d.Val()
			if _, merr := caddy.GetModule("channels.pubsub." + engine); merr != nil {
				return d.Errf("pubsub: unknown engine %q (want memory, redis or nats)", engine)
			}
			unm, uerr := caddyfile.UnmarshalModule(d, "channels.pubsub."+engine)
			if uerr != nil {
				return uerr
			}
			h.PubSubRaw = caddyconfig.JSONModuleObject(unm, "engine", engine, nil)
		case "channel":
			var c channels.ChannelSpec
			if c, err = parseChannel(d); err != nil {
				return err
			}
			for _, prev := range h.Channels {
				if prev.Pattern == c.Pattern {
					return d.Errf("duplicate channel %s", c.Pattern)
				}
			}
			h.Channels = append(h.Channels, c)
		default:
			return d.Errf("unrecognized channels subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseChannel parses `channel <pattern> { … }`.
func parseChannel(d *caddyfile.Dispenser) (channels.ChannelSpec, error) {
	var c channels.ChannelSpec
	if !d.Args(&c.Pattern) || d.NextArg() {
		return c, d.ArgErr()
	}
	if _, err := channels.ParsePattern(c.Pattern); err != nil {
		return c, d.Errf("channel: %v", err)
	}
	events := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "join":
			if c.Join != nil {
				return c, d.Errf("channel %s: duplicate join", c.Pattern)
			}
			g, err := parseGate(d, channels.ExprJoin, true)
			if err != nil {
				return c, err
			}
			c.Join = g
		case "leave":
			if c.Leave != nil {
				return c, d.Errf("channel %s: duplicate leave", c.Pattern)
			}
			var kw, url string
			if !d.Args(&kw, &url) || d.NextArg() {
				return c, d.ArgErr()
			}
			if kw != "upstream" {
				return c, d.Errf("channel %s: leave: want upstream <url>, got %q", c.Pattern, kw)
			}
			if err := checkUpstreamURL(url); err != nil {
				return c, d.Errf("channel %s: leave upstream: %v", c.Pattern, err)
			}
			c.Leave = &channels.LeaveSpec{Upstream: url}
		case "handle_in":
			var hi channels.HandleInSpec
			if !d.Args(&hi.Event, &hi.Action) {
				return c, d.ArgErr()
			}
			if hi.Action == "upstream" {
				if !d.Args(&hi.Upstream) {
					return c, d.Errf("channel %s: handle_in %s upstream: missing URL", c.Pattern, hi.Event)
				}
				if err := checkUpstreamURL(hi.Upstream); err != nil {
					return c, d.Errf("channel %s: handle_in %s upstream: %v", c.Pattern, hi.Event, err)
				}
			}
			if d.NextArg() {
				if d.Val() != "limit" {
					return c, d.ArgErr()
				}
				if !d.NextArg() {
					return c, d.Errf("channel %s: handle_in %s: limit: missing <n>/<duration>", c.Pattern, hi.Event)
				}
				hi.Limit = d.Val()
				if _, err := channels.ParseRate(hi.Limit); err != nil {
					return c, d.Errf("channel %s: handle_in %s: limit: %v", c.Pattern, hi.Event, err)
				}
			}
			if d.NextArg() {
				return c, d.ArgErr()
			}
			if _, err := channels.ParseHandleInAction(hi.Action); err != nil {
				return c, d.Errf("channel %s: handle_in %s: %v", c.Pattern, hi.Event, err)
			}
			if events[hi.Event] {
				return c, d.Errf("channel %s: duplicate handle_in %s", c.Pattern, hi.Event)
			}
			events[hi.Event] = true
			c.HandleIn = append(c.HandleIn, hi)
		case "presence":
			if c.Presence != nil {
				return c, d.Errf("channel %s: duplicate presence", c.Pattern)
			}
			p, err := parsePresence(d, c.Pattern)
			if err != nil {
				return c, err
			}
			c.Presence = p
		case "history":
			if c.History != nil {
				return c, d.Errf("channel %s: duplicate history", c.Pattern)
			}
			hs, err := parseHistory(d, c.Pattern)
			if err != nil {
				return c, err
			}
			c.History = hs
		case "intercept":
			ics, err := parseIntercept(d, c.Pattern)
			if err != nil {
				return c, err
			}
			c.Intercept = append(c.Intercept, ics...)
		default:
			return c, d.Errf("unrecognized channel subdirective %q", d.Val())
		}
	}
	// Checks that need the whole block (reserved event names, URLs and the
	// like) come from the rule compiler itself.
	spec := channels.RulesSpec{Channels: []channels.ChannelSpec{c}}.MapUpstreams(standInForPlaceholders)
	if _, err := channels.CompileRules(spec); err != nil {
		return c, d.Err(err.Error())
	}
	return c, nil
}

// checkUpstreamURL validates a webhook URL at parse time unless it holds
// placeholders (then it is checked once they are replaced, at provision).
func checkUpstreamURL(u string) error {
	return channels.ValidateUpstreamURL(standInForPlaceholders(u))
}

// standInForPlaceholders replaces an upstream URL that contains
// placeholders with a valid stand-in, so the rest of a channel can be
// checked at parse time; the real URLs are checked when the config is
// provisioned and placeholders are known.
func standInForPlaceholders(u string) string {
	if strings.Contains(u, "{") {
		return "http://placeholder.invalid/"
	}
	return u
}

// parseGate parses `allow`, `deny [reason]` or `if "<cel>"`, followed,
// when withReply, by an optional `reply "<cel>"`.
func parseGate(d *caddyfile.Dispenser, kind channels.ExprKind, withReply bool) (*channels.GateSpec, error) {
	what := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("%s: want allow, deny [reason] or if \"<expression>\"", what)
	}
	g := &channels.GateSpec{Action: args[0]}
	rest := args[1:]
	switch g.Action {
	case "upstream":
		if len(rest) == 0 {
			return nil, d.Errf("%s upstream: missing URL", what)
		}
		if len(rest) > 1 {
			if rest[1] == "reply" {
				return nil, d.Errf("%s upstream: reply is not allowed (the webhook answers with its own response)", what)
			}
			return nil, d.Errf("%s upstream: want exactly one URL, got %q after it", what, rest[1])
		}
		g.Upstream = rest[0]
		if err := checkUpstreamURL(g.Upstream); err != nil {
			return nil, d.Errf("%s upstream: %v", what, err)
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if d.Val() != "forward_headers" || kind != channels.ExprConnect {
				return nil, d.Errf("%s upstream: unrecognized subdirective %q", what, d.Val())
			}
			names := d.RemainingArgs()
			if len(names) == 0 {
				return nil, d.ArgErr()
			}
			for _, n := range names {
				if err := channels.ValidateHeaderName(n); err != nil {
					return nil, d.Errf("forward_headers: %v", err)
				}
			}
			g.ForwardHeaders = append(g.ForwardHeaders, names...)
		}
		return g, nil
	case "jwt":
		if !withReply {
			return nil, d.Errf("%s jwt: only a channel's join takes a token (use auth jwt for the connect)", what)
		}
		if err := parseJoinJWT(d, g, rest); err != nil {
			return nil, err
		}
		return g, nil
	case "allow":
	case "deny":
		if len(rest) > 0 && rest[0] != "reply" {
			g.Reason, rest = rest[0], rest[1:]
		}
	case "if":
		if len(rest) == 0 {
			return nil, d.Errf("%s if: missing expression", what)
		}
		g.Expr, rest = rest[0], rest[1:]
		if _, err := channels.CompileExpr(kind, g.Expr); err != nil {
			return nil, d.Errf("%s if: %v", what, err)
		}
	default:
		return nil, d.Errf("%s: unknown action %q (want allow, deny, if, upstream or jwt)", what, g.Action)
	}
	if len(rest) > 0 {
		if !withReply || rest[0] != "reply" {
			return nil, d.Errf("%s %s: unexpected argument %q", what, g.Action, rest[0])
		}
		if g.Action == "deny" {
			return nil, d.Errf("%s deny: reply is only allowed with allow or if", what)
		}
		if len(rest) != 2 {
			return nil, d.Errf("%s %s reply: want exactly one expression", what, g.Action)
		}
		g.Reply = rest[1]
		if _, err := channels.CompileExpr(channels.ExprReply, g.Reply); err != nil {
			return nil, d.Errf("%s reply: %v", what, err)
		}
	}
	return g, nil
}

// parseLongPoll reads "longpoll off" or a longpoll block; every setting
// is optional.
func parseLongPoll(d *caddyfile.Dispenser) (*LongPoll, error) {
	lp := &LongPoll{}
	if d.NextArg() {
		if d.Val() != "off" {
			return nil, d.Errf("longpoll: unknown argument %q (want off, or a block)", d.Val())
		}
		lp.Off = true
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if lp.Off {
			return nil, d.Errf("longpoll off takes no settings")
		}
		if seen[name] {
			return nil, d.Errf("longpoll: duplicate %q", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "window":
			err = durationArg(d, &lp.Window)
		case "secret":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			lp.Secret = d.Val()
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "max_sessions":
			err = intArg(d, &lp.MaxSessions)
		case "max_body_size":
			var n int
			err = sizeArg(d, &n)
			lp.MaxBodySize = int64(n)
		default:
			return nil, d.Errf("longpoll: unknown setting %q (want window, secret, max_sessions or max_body_size)", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return lp, nil
}

// parseDrain reads a drain block; every setting is optional.
func parseDrain(d *caddyfile.Dispenser) (*Drain, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	dr := &Drain{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("drain: duplicate %q", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "batch":
			err = intArg(d, &dr.Batch)
		case "interval":
			err = durationArg(d, &dr.Interval)
		case "timeout":
			err = durationArg(d, &dr.Timeout)
		default:
			return nil, d.Errf("drain: unknown setting %q (want batch, interval or timeout)", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return dr, nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.Args(dst) || d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v <= 0 {
		return d.Errf("%s: invalid duration %q", name, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

func sizeArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v == 0 || v > 1<<40 {
		return d.Errf("%s: invalid size %q", name, s)
	}
	*dst = int(v)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := positiveInt(s)
	if err != nil {
		return d.Errf("%s: invalid positive number %q", name, s)
	}
	*dst = v
	return nil
}

func timeDuration(d caddy.Duration) time.Duration { return time.Duration(d) }
