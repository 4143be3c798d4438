package channels

import (
	"testing"
)

// BenchmarkGateDecide decides the static gates. The CEL "if" gate alone is
// BenchmarkGateDecideCEL; BenchmarkJoinDecision covers a whole join.
func BenchmarkGateDecide(b *testing.B) {
	v := &Vars{Topic: "room:42", Subtopic: "42", Params: map[string]any{}, Assigns: map[string]any{}}
	cases := []struct {
		name   string
		gate   Gate
		ok     bool
		reason string
	}{
		{"allow", Gate{Action: GateAllow}, true, ""},
		{"deny", Gate{Action: GateDeny}, false, ReasonUnauthorized},
		{"deny_reason", Gate{Action: GateDeny, Reason: "closed"}, false, "closed"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if ok, reason, err := c.gate.Decide(v); ok != c.ok || reason != c.reason || err != nil {
				b.Fatalf("Decide = %v, %q, %v; want %v, %q", ok, reason, err, c.ok, c.reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.gate.Decide(v)
			}
		})
	}
}

// BenchmarkJoinDecision runs the rule work of one join as Socket.join does
// it: route the topic, decode the join payload into params, decide the gate
// against params and assigns, and evaluate the reply expression if any.
func BenchmarkJoinDecision(b *testing.B) {
	payload := JSONPayload([]byte(`{"token":"42","device":"web","since":1700000000}`))
	assigns := map[string]any{"role": "member", "user_id": "7", "rooms": []any{"1", "42", "99"}}
	cases := []struct {
		name  string
		join  GateSpec
		reply string // expected reply JSON, "" for none
	}{
		{"allow", GateSpec{Action: "allow"}, ""},
		{"deny", GateSpec{Action: "deny"}, ""},
		{"if_params_assigns", GateSpec{
			Expr: "assigns.role == 'admin' || (has(params.token) && params.token == subtopic && subtopic in assigns.rooms)",
		}, ""},
		{"if_with_reply", GateSpec{
			Expr:  "params.token == subtopic",
			Reply: "{'user': assigns.user_id, 'room': subtopic}",
		}, `{"room":"42","user":"7"}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := mustRules(b, RulesSpec{Channels: []ChannelSpec{
				{Pattern: "lobby", Join: &GateSpec{Action: "allow"}},
				{Pattern: "user:*", Join: &GateSpec{Action: "deny"}},
				{Pattern: "room:*", Join: &c.join},
			}})
			join := func() (bool, []byte) {
				rule, sub, ok := r.Route("room:42")
				if !ok {
					b.Fatal("no route")
				}
				v := &Vars{Params: payloadParams(payload), Assigns: assigns, Topic: "room:42", Subtopic: sub}
				ok, _, err := rule.Join.Decide(v)
				if err != nil {
					b.Fatalf("Decide: %v", err)
				}
				if !ok || rule.Join.Reply == nil {
					return ok, nil
				}
				raw, err := evalJSONObject(rule.Join.Reply, v)
				if err != nil {
					b.Fatalf("reply: %v", err)
				}
				return true, raw
			}
			ok, reply := join()
			if want := c.name != "deny"; ok != want || string(reply) != c.reply {
				b.Fatalf("join = %v, %s; want %v, %s", ok, reply, want, c.reply)
			}
			b.ReportAllocs()
			for b.Loop() {
				join()
			}
		})
	}
}
