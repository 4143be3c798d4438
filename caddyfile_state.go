package caddychannels

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// parsePresence parses `presence [{ key "<cel>" meta "<cel>" batch <d> }]`.
func parsePresence(d *caddyfile.Dispenser, pattern string) (*channels.PresenceSpec, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	p := &channels.PresenceSpec{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("channel %s: presence: duplicate %s", pattern, name)
		}
		seen[name] = true
		var arg string
		if !d.Args(&arg) || d.NextArg() {
			return nil, d.ArgErr()
		}
		switch name {
		case "key":
			if _, err := channels.CompileExpr(channels.ExprPresenceKey, arg); err != nil {
				return nil, d.Errf("channel %s: presence key: %v", pattern, err)
			}
			p.Key = arg
		case "meta":
			if _, err := channels.CompileExpr(channels.ExprPresenceMeta, arg); err != nil {
				return nil, d.Errf("channel %s: presence meta: %v", pattern, err)
			}
			p.Meta = arg
		case "batch":
			dur, err := caddy.ParseDuration(arg)
			if err != nil {
				return nil, d.Errf("channel %s: presence batch: %v", pattern, err)
			}
			if dur < 0 || dur > channels.MaxPresenceBatch {
				return nil, d.Errf("channel %s: presence batch %s out of range (0 to %s)", pattern, dur, channels.MaxPresenceBatch)
			}
			if dur == 0 {
				dur = -1 // "batch 0": every change at once
			}
			p.Batch = channels.Duration(dur)
		default:
			return nil, d.Errf("channel %s: presence: unrecognized subdirective %q (want key, meta or batch)", pattern, name)
		}
	}
	return p, nil
}

// parseHistory parses `history <n> [ttl <duration>] [{ on_join <k> }]`.
func parseHistory(d *caddyfile.Dispenser, pattern string) (*channels.HistorySpec, error) {
	var size string
	if !d.Args(&size) {
		return nil, d.ArgErr()
	}
	n, err := strconv.Atoi(size)
	if err != nil || n < 1 || n > channels.MaxHistorySize {
		return nil, d.Errf("channel %s: history: size %q must be an integer from 1 to %d", pattern, size, channels.MaxHistorySize)
	}
	h := &channels.HistorySpec{Size: n}
	if d.NextArg() {
		if d.Val() != "ttl" {
			return nil, d.Errf("channel %s: history: want ttl <duration>, got %q", pattern, d.Val())
		}
		var ttl string
		if !d.Args(&ttl) || d.NextArg() {
			return nil, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(ttl)
		if err != nil || dur <= 0 {
			return nil, d.Errf("channel %s: history ttl %q: want a positive duration", pattern, ttl)
		}
		h.TTL = channels.Duration(dur)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "on_join":
			var k string
			if !d.Args(&k) || d.NextArg() {
				return nil, d.ArgErr()
			}
			v, err := strconv.Atoi(k)
			if err != nil || v < 0 || v > n {
				return nil, d.Errf("channel %s: history on_join %q must be an integer from 0 to the size %d", pattern, k, n)
			}
			h.OnJoin = v
		default:
			return nil, d.Errf("channel %s: history: unrecognized subdirective %q (want on_join)", pattern, d.Val())
		}
	}
	return h, nil
}
