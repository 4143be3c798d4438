package caddychannels

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/channels"
)

// interceptChannel wraps intercept lines in a channels directive with one
// room:* channel.
func interceptChannel(lines string) string {
	return "channels {\n\tchannel room:* {\n\t\tjoin allow\n" + lines + "\n\t}\n}"
}

func TestUnmarshalCaddyfileIntercept(t *testing.T) {
	t.Parallel()
	h, err := unmarshalTestfile(interceptChannel(`
		intercept new_msg {
			drop if "payload.muted_by.exists(u, u == assigns.user_id)"
			set mine "payload.user_id == assigns.user_id"
			remove secret_field other
			remove email phone if "assigns.role != 'admin'"
		}
		intercept typing
		intercept edited deleted {
			drop if "assigns.muted"
		}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.Channels[0].Intercept)
	want := `[{"event":"new_msg","steps":[` +
		`{"drop_if":"payload.muted_by.exists(u, u == assigns.user_id)"},` +
		`{"set":"mine","expr":"payload.user_id == assigns.user_id"},` +
		`{"remove":"secret_field"},{"remove":"other"},` +
		`{"remove":"email","if":"assigns.role != 'admin'"},{"remove":"phone","if":"assigns.role != 'admin'"}]},` +
		`{"event":"typing"},` +
		`{"event":"edited","steps":[{"drop_if":"assigns.muted"}]},` +
		`{"event":"deleted","steps":[{"drop_if":"assigns.muted"}]}]`
	if string(got) != want {
		t.Fatalf("\n got: %s\nwant: %s", got, want)
	}
}

func TestUnmarshalCaddyfileInterceptErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, lines, want string }{
		{"no event", "intercept", "wrong argument count"},
		{"two events, duplicate", "intercept a b a", `intercept "a": duplicate event`},
		{"two events, bad step", "intercept a b {\nhide x\n}", `intercept a b: unrecognized step "hide"`},
		{"wildcard", "intercept *", `intercept #1: needs an event name`},
		{"control event", "intercept phx_join", `control event`},
		{"duplicate", "intercept a\nintercept a", `intercept "a": duplicate event`},
		{"unknown step", "intercept a {\nhide x\n}", `unrecognized step "hide"`},
		{"drop without if", "intercept a {\ndrop \"true\"\n}", `want drop if "<expression>"`},
		{"drop extra", "intercept a {\ndrop if \"true\" x\n}", `want drop if "<expression>"`},
		{"drop not bool", "intercept a {\ndrop if \"1\"\n}", `drop if: drop expression "1": result type is int, want bool`},
		{"drop bad variable", "intercept a {\ndrop if \"params.x\"\n}", `undeclared reference to 'params'`},
		{"set missing expr", "intercept a {\nset k\n}", `want set <key> "<expression>"`},
		{"set empty key", "intercept a {\nset \"\" \"1\"\n}", `set: empty key`},
		{"set bad expr", "intercept a {\nset k \"1 +\"\n}", `set k: set expression "1 +"`},
		{"remove nothing", "intercept a {\nremove\n}", `want remove <key...>`},
		{"remove empty key", "intercept a {\nremove \"\"\n}", `remove: empty key`},
		{"remove if without key", "intercept a {\nremove if \"true\"\n}", `want remove <key...> [if "<expression>"]`},
		{"remove if not bool", "intercept a {\nremove k if \"'x'\"\n}", `remove if: drop expression "'x'": result type is string, want bool`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := unmarshalTestfile(interceptChannel(tc.lines))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseIntercept feeds arbitrary text to the intercept parser: it must
// not panic, and whatever it accepts the rule compiler accepts too.
func FuzzParseIntercept(f *testing.F) {
	f.Add("new_msg {\n\tdrop if \"payload.x == assigns.y\"\n\tset mine \"true\"\n\tremove a b\n}")
	f.Add("e")
	f.Add("new_msg edit_msg {\n\tset mine \"true\"\n}")
	f.Add("e {\n}")
	f.Add("e {\n\tset \"k\" \"{'a': [1, 2.5, null]}\"\n}")
	f.Add("e {\n\tdrop if\n}")
	f.Add("e {\n\tremove a b if \"assigns.x\"\n\tremove if\n}")
	f.Fuzz(func(t *testing.T, body string) {
		d, ok := fuzzDispenser("intercept " + body)
		if !ok {
			return
		}
		d.Next()
		specs, err := parseIntercept(d, "room:*")
		if err != nil {
			return
		}
		_, err = channels.CompileRules(channels.RulesSpec{Channels: []channels.ChannelSpec{{Pattern: "room:*", Intercept: specs}}})
		// Event names (wildcards, control events, one event twice on a
		// line) are the rule compiler's to check.
		if err != nil && !strings.Contains(err.Error(), "intercept #") && !strings.Contains(err.Error(), "duplicate event") {
			t.Fatalf("parsed %q into %+v, which does not compile: %v", body, specs, err)
		}
	})
}
