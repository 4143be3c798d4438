package caddychannels

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// parseCompression parses `compression [on|off] [{ threshold <size>; level <n> }]`:
// permessage-deflate on the WebSocket transport. The directive alone, or
// with on, turns it on; off takes no settings.
func parseCompression(d *caddyfile.Dispenser) (*Compression, error) {
	c := &Compression{}
	if d.NextArg() {
		switch d.Val() {
		case "on":
		case "off":
			c.Off = true
		default:
			return nil, d.Errf("compression: unknown argument %q (want on or off, or a block)", d.Val())
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if c.Off {
			return nil, d.Errf("compression off takes no settings")
		}
		if seen[name] {
			return nil, d.Errf("compression: duplicate %q", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "threshold":
			err = sizeArg(d, &c.Threshold)
		case "level":
			var s string
			if err = oneArg(d, &s); err == nil {
				n, cerr := strconv.Atoi(s)
				if cerr != nil || channels.ValidateCompressionLevel(n) != nil {
					return nil, d.Errf("compression: level %q must be an integer from %d (fastest) to %d (smallest)", s, channels.MinCompressionLevel, channels.MaxCompressionLevel)
				}
				c.Level = n
			}
		default:
			return nil, d.Errf("compression: unknown setting %q (want threshold or level)", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}
