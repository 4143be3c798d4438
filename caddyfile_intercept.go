package caddychannels

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// parseIntercept parses the intercept subdirective of a channel block
// (see docs/intercept.md):
//
//	intercept <event> {
//		drop if "<cel>"               # the subscriber does not get the event
//		set <key> "<cel>"             # add or replace a top-level payload key
//		remove <key...> [if "<cel>"]  # delete top-level payload keys
//	}
//
// The block is optional; steps run in the order written. Expressions are
// compiled here so that errors name the line; duplicate events and the
// like are reported by the rule compiler.
func parseIntercept(d *caddyfile.Dispenser, pattern string) (channels.InterceptSpec, error) {
	var ic channels.InterceptSpec
	if !d.Args(&ic.Event) || d.NextArg() {
		return ic, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch step := d.Val(); step {
		case "drop":
			var kw, expr string
			if !d.Args(&kw, &expr) || kw != "if" || d.NextArg() {
				return ic, d.Errf("channel %s: intercept %s: want drop if \"<expression>\"", pattern, ic.Event)
			}
			if _, err := channels.CompileExpr(channels.ExprDrop, expr); err != nil {
				return ic, d.Errf("channel %s: intercept %s: drop if: %v", pattern, ic.Event, err)
			}
			ic.Steps = append(ic.Steps, channels.InterceptStepSpec{DropIf: expr})
		case "set":
			var key, expr string
			if !d.Args(&key, &expr) || d.NextArg() {
				return ic, d.Errf("channel %s: intercept %s: want set <key> \"<expression>\"", pattern, ic.Event)
			}
			if key == "" {
				return ic, d.Errf("channel %s: intercept %s: set: empty key", pattern, ic.Event)
			}
			if _, err := channels.CompileExpr(channels.ExprSet, expr); err != nil {
				return ic, d.Errf("channel %s: intercept %s: set %s: %v", pattern, ic.Event, key, err)
			}
			ic.Steps = append(ic.Steps, channels.InterceptStepSpec{Set: key, Expr: expr})
		case "remove":
			keys := d.RemainingArgs()
			var cond string
			if n := len(keys); n >= 2 && keys[n-2] == "if" {
				keys, cond = keys[:n-2], keys[n-1]
				if _, err := channels.CompileExpr(channels.ExprDrop, cond); err != nil {
					return ic, d.Errf("channel %s: intercept %s: remove if: %v", pattern, ic.Event, err)
				}
			}
			if len(keys) == 0 {
				return ic, d.Errf("channel %s: intercept %s: want remove <key...> [if \"<expression>\"]", pattern, ic.Event)
			}
			for _, k := range keys {
				if k == "" {
					return ic, d.Errf("channel %s: intercept %s: remove: empty key", pattern, ic.Event)
				}
				ic.Steps = append(ic.Steps, channels.InterceptStepSpec{Remove: k, If: cond})
			}
		default:
			return ic, d.Errf("channel %s: intercept %s: unrecognized step %q (want drop if, set or remove)", pattern, ic.Event, step)
		}
	}
	return ic, nil
}
