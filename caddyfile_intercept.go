package caddychannels

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// parseIntercept parses the intercept subdirective of a channel block
// (see docs/intercept.md):
//
//	intercept <event...> {
//		drop if "<cel>"               # the subscriber does not get the event
//		set <key> "<cel>"             # add or replace a top-level payload key
//		remove <key...> [if "<cel>"]  # delete top-level payload keys
//	}
//
// Several events on one line share the block, as in Phoenix's
// intercept ["new_msg", "edit_msg"]: one spec per event is returned, each
// with the same steps. The block is optional; steps run in the order
// written. Expressions are compiled here so that errors name the line;
// duplicate events and the like are reported by the rule compiler.
func parseIntercept(d *caddyfile.Dispenser, pattern string) ([]channels.InterceptSpec, error) {
	events := d.RemainingArgs()
	if len(events) == 0 {
		return nil, d.ArgErr()
	}
	steps, err := parseInterceptSteps(d, pattern, strings.Join(events, " "))
	if err != nil {
		return nil, err
	}
	specs := make([]channels.InterceptSpec, len(events))
	for i, ev := range events {
		specs[i] = channels.InterceptSpec{Event: ev, Steps: steps}
	}
	return specs, nil
}

// parseInterceptSteps parses the optional block of an intercept line whose
// events are named by events in error messages.
func parseInterceptSteps(d *caddyfile.Dispenser, pattern, events string) ([]channels.InterceptStepSpec, error) {
	var ic struct {
		Event string
		Steps []channels.InterceptStepSpec
	}
	ic.Event = events
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch step := d.Val(); step {
		case "drop":
			var kw, expr string
			if !d.Args(&kw, &expr) || kw != "if" || d.NextArg() {
				return nil, d.Errf("channel %s: intercept %s: want drop if \"<expression>\"", pattern, ic.Event)
			}
			if _, err := channels.CompileExpr(channels.ExprDrop, expr); err != nil {
				return nil, d.Errf("channel %s: intercept %s: drop if: %v", pattern, ic.Event, err)
			}
			ic.Steps = append(ic.Steps, channels.InterceptStepSpec{DropIf: expr})
		case "set":
			var key, expr string
			if !d.Args(&key, &expr) || d.NextArg() {
				return nil, d.Errf("channel %s: intercept %s: want set <key> \"<expression>\"", pattern, ic.Event)
			}
			if key == "" {
				return nil, d.Errf("channel %s: intercept %s: set: empty key", pattern, ic.Event)
			}
			if _, err := channels.CompileExpr(channels.ExprSet, expr); err != nil {
				return nil, d.Errf("channel %s: intercept %s: set %s: %v", pattern, ic.Event, key, err)
			}
			ic.Steps = append(ic.Steps, channels.InterceptStepSpec{Set: key, Expr: expr})
		case "remove":
			keys := d.RemainingArgs()
			var cond string
			if n := len(keys); n >= 2 && keys[n-2] == "if" {
				keys, cond = keys[:n-2], keys[n-1]
				if _, err := channels.CompileExpr(channels.ExprDrop, cond); err != nil {
					return nil, d.Errf("channel %s: intercept %s: remove if: %v", pattern, ic.Event, err)
				}
			}
			if len(keys) == 0 {
				return nil, d.Errf("channel %s: intercept %s: want remove <key...> [if \"<expression>\"]", pattern, ic.Event)
			}
			for _, k := range keys {
				if k == "" {
					return nil, d.Errf("channel %s: intercept %s: remove: empty key", pattern, ic.Event)
				}
				ic.Steps = append(ic.Steps, channels.InterceptStepSpec{Remove: k, If: cond})
			}
		default:
			return nil, d.Errf("channel %s: intercept %s: unrecognized step %q (want drop if, set or remove)", pattern, ic.Event, step)
		}
	}
	return ic.Steps, nil
}
