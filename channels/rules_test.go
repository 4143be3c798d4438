package channels

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// exampleSpec is the rule set of the documented Caddyfile example.
func exampleSpec() RulesSpec {
	return RulesSpec{
		Connect: &GateSpec{Action: "if", Expr: "params.token != ''"},
		Assign: []AssignSpec{
			{Key: "user_id", Expr: "params.user"},
			{Key: "role", Expr: "assigns.user_id == '1' ? 'admin' : 'member'"},
		},
		ID: "'user_socket:' + params.user",
		Channels: []ChannelSpec{
			{
				Pattern: "room:*",
				Join:    &GateSpec{Action: "allow"},
				HandleIn: []HandleInSpec{
					{Event: "new_msg", Action: "broadcast"},
					{Event: "typing", Action: "broadcast_from"},
					{Event: "ping", Action: "reply"},
				},
			},
			{Pattern: "admin:*", Join: &GateSpec{Action: "if", Expr: "assigns.role == 'admin'"}},
			{Pattern: "secret:*", Join: &GateSpec{Action: "deny", Reason: "unauthorized"}},
			{Pattern: "welcome", Join: &GateSpec{Action: "allow", Reply: "{'welcome': true, 'topic': topic}"}},
			{Pattern: "closed:*", HandleIn: []HandleInSpec{{Event: "*", Action: "noreply"}}},
		},
	}
}

func mustRules(t testing.TB, spec RulesSpec) *Rules {
	t.Helper()
	r, err := CompileRules(spec)
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	return r
}

func TestRulesExample(t *testing.T) {
	r := mustRules(t, exampleSpec())

	// Connect, assigns and id, as a socket would run them.
	v := &Vars{Params: queryParams(t, "token=t0k&user=1&vsn=2.0.0"), Headers: map[string]string{}, Assigns: map[string]any{}}
	if ok, reason, err := r.Connect.Decide(v); !ok || reason != "" || err != nil {
		t.Fatalf("Connect.Decide = %v, %q, %v; want true", ok, reason, err)
	}
	for _, a := range r.Assigns {
		val, err := a.Expr.EvalValue(v)
		if err != nil {
			t.Fatalf("assign %s: %v", a.Key, err)
		}
		v.Assigns[a.Key] = val
	}
	if want := map[string]any{"user_id": "1", "role": "admin"}; !reflect.DeepEqual(v.Assigns, want) {
		t.Errorf("assigns = %v, want %v", v.Assigns, want)
	}
	id, err := r.ID.EvalValue(v)
	if err != nil || id != "user_socket:1" {
		t.Errorf("id = %v, %v; want user_socket:1", id, err)
	}
	if ok, reason, err := r.Connect.Decide(&Vars{Params: queryParams(t, "token=&user=1")}); ok || reason != "unauthorized" || err != nil {
		t.Errorf("Connect.Decide(empty token) = %v, %q, %v; want false, unauthorized, nil", ok, reason, err)
	}
	ok, reason, err := r.Connect.Decide(&Vars{Params: queryParams(t, "user=1")})
	if ok || reason != "unauthorized" || err == nil || !strings.Contains(err.Error(), "no such key: token") {
		t.Errorf("Connect.Decide(no token) = %v, %q, %v; want false, unauthorized, no such key", ok, reason, err)
	}

	// Joins.
	member := map[string]any{"user_id": "2", "role": "member"}
	tests := []struct {
		topic   string
		assigns map[string]any
		pattern string
		sub     string
		ok      bool
		reason  string
	}{
		{"room:lobby", member, "room:*", "lobby", true, ""},
		{"admin:panel", v.Assigns, "admin:*", "panel", true, ""},
		{"admin:panel", member, "admin:*", "panel", false, "unauthorized"},
		{"admin:panel", nil, "admin:*", "panel", false, "unauthorized"},
		{"secret:x", v.Assigns, "secret:*", "x", false, "unauthorized"},
		{"welcome", member, "welcome", "", true, ""},
		{"closed:1", member, "closed:*", "1", false, "unauthorized"},
	}
	for _, tt := range tests {
		rule, sub, found := r.Route(tt.topic)
		if !found {
			t.Errorf("Route(%q) found nothing", tt.topic)
			continue
		}
		if rule.Pattern.String() != tt.pattern || sub != tt.sub {
			t.Errorf("Route(%q) = %q, %q; want %q, %q", tt.topic, rule.Pattern, sub, tt.pattern, tt.sub)
		}
		ok, reason, _ := rule.Join.Decide(&Vars{Topic: tt.topic, Subtopic: sub, Params: map[string]any{}, Assigns: tt.assigns})
		if ok != tt.ok || reason != tt.reason {
			t.Errorf("join %q with %v = %v, %q; want %v, %q", tt.topic, tt.assigns, ok, reason, tt.ok, tt.reason)
		}
	}
	if _, _, found := r.Route("nowhere"); found {
		t.Error(`Route("nowhere") found a rule`)
	}

	// The welcome reply.
	rule, sub, _ := r.Route("welcome")
	if rule.Join.Reply == nil {
		t.Fatal("welcome rule has no reply")
	}
	resp, err := rule.Join.Reply.EvalValue(&Vars{Topic: "welcome", Subtopic: sub})
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	if b, _ := json.Marshal(resp); string(b) != `{"topic":"welcome","welcome":true}` {
		t.Errorf("reply = %s", b)
	}
	if rule, _, _ := r.Route("room:1"); rule.Join.Reply != nil {
		t.Error("room rule has a reply")
	}
}

func TestRouteFirstMatchWins(t *testing.T) {
	tests := []struct {
		patterns []string
		topic    string
		want     string
		sub      string
	}{
		{[]string{"food*", "foo*"}, "food:1", "food*", ":1"},
		{[]string{"food*", "foo*"}, "foo:1", "foo*", ":1"},
		{[]string{"foo*", "food*"}, "food:1", "foo*", "d:1"},
		{[]string{"room:lobby", "room:*"}, "room:lobby", "room:lobby", ""},
		{[]string{"room:*", "room:lobby"}, "room:lobby", "room:*", "lobby"},
		{[]string{"lobby", "*"}, "other", "*", "other"},
		{[]string{"lobby", "*"}, "lobby", "lobby", ""},
	}
	for _, tt := range tests {
		var spec RulesSpec
		for _, p := range tt.patterns {
			spec.Channels = append(spec.Channels, ChannelSpec{Pattern: p})
		}
		r := mustRules(t, spec)
		rule, sub, ok := r.Route(tt.topic)
		if !ok || rule.Pattern.String() != tt.want || sub != tt.sub {
			t.Errorf("%v: Route(%q) = %v, %q, %v; want %q, %q", tt.patterns, tt.topic, rule, sub, ok, tt.want, tt.sub)
		}
	}
}

func TestHandleIn(t *testing.T) {
	r := mustRules(t, RulesSpec{Channels: []ChannelSpec{
		{Pattern: "a", HandleIn: []HandleInSpec{
			{Event: "*", Action: "noreply"},
			{Event: "new_msg", Action: "broadcast"},
			{Event: "typing", Action: "broadcast_from"},
			{Event: "ping", Action: "reply"},
		}},
		{Pattern: "b", HandleIn: []HandleInSpec{{Event: "only", Action: "reply"}}},
		{Pattern: "c"},
	}})
	tests := []struct {
		topic, event string
		want         HandleInAction
		ok           bool
	}{
		{"a", "new_msg", HandleInBroadcast, true},
		{"a", "typing", HandleInBroadcastFrom, true},
		{"a", "ping", HandleInReply, true},
		{"a", "other", HandleInNoReply, true},
		{"a", "*", HandleInNoReply, true},
		{"b", "only", HandleInReply, true},
		{"b", "other", 0, false},
		{"c", "any", 0, false},
	}
	for _, tt := range tests {
		rule, _, _ := r.Route(tt.topic)
		entry, ok := rule.HandleIn(tt.event)
		var got HandleInAction
		if entry != nil {
			got = entry.Action
		}
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s HandleIn(%q) = %v, %v; want %v, %v", tt.topic, tt.event, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCompileRulesErrors(t *testing.T) {
	ch := func(pattern string, join *GateSpec, h ...HandleInSpec) RulesSpec {
		return RulesSpec{Channels: []ChannelSpec{{Pattern: pattern, Join: join, HandleIn: h}}}
	}
	tests := []struct {
		name string
		spec RulesSpec
		want string
	}{
		{"unknown handle_in action", ch("room:*", nil, HandleInSpec{Event: "typing", Action: "broadcastt"}),
			`channel "room:*": handle_in "typing": unknown action "broadcastt" (want broadcast, broadcast_from, reply, noreply or upstream)`},
		{"empty handle_in action", ch("room:*", nil, HandleInSpec{Event: "typing"}),
			`channel "room:*": handle_in "typing": unknown action "" (want broadcast, broadcast_from, reply, noreply or upstream)`},
		{"duplicate handle_in", ch("room:*", nil, HandleInSpec{Event: "ping", Action: "reply"}, HandleInSpec{Event: "ping", Action: "noreply"}),
			`channel "room:*": handle_in "ping": duplicate event`},
		{"duplicate wildcard", ch("room:*", nil, HandleInSpec{Event: "*", Action: "reply"}, HandleInSpec{Event: "*", Action: "noreply"}),
			`channel "room:*": handle_in "*": duplicate event`},
		{"empty event", ch("room:*", nil, HandleInSpec{Action: "reply"}),
			`channel "room:*": handle_in #1: empty event`},
		{"event with space", ch("room:*", nil, HandleInSpec{Event: "a b", Action: "reply"}),
			`channel "room:*": handle_in #1: invalid event "a b"`},
		{"control event", ch("room:*", nil, HandleInSpec{Event: "phx_join", Action: "reply"}),
			`channel "room:*": handle_in #1: event "phx_join" is a control event and cannot be handled`},
		{"unknown gate action", ch("room:*", &GateSpec{Action: "maybe"}),
			`channel "room:*": join: unknown action "maybe" (want allow, deny, if, upstream or jwt)`},
		{"if without expr", RulesSpec{Connect: &GateSpec{Action: "if"}},
			`connect: action if needs an expression`},
		{"join if without expr", ch("room:*", &GateSpec{Action: "if", Expr: "  "}),
			`channel "room:*": join: action if needs an expression`},
		{"expr on allow", ch("room:*", &GateSpec{Action: "allow", Expr: "true"}),
			`channel "room:*": join: an expression is only valid with action if or jwt, not allow`},
		{"reason on allow", ch("room:*", &GateSpec{Action: "allow", Reason: "x"}),
			`channel "room:*": join: reason is only valid with action deny, not allow`},
		{"reason on if", ch("room:*", &GateSpec{Expr: "true", Reason: "x"}),
			`channel "room:*": join: reason is only valid with action deny, not if`},
		{"reply on deny", ch("secret:*", &GateSpec{Action: "deny", Reply: "{}"}),
			`channel "secret:*": join: reply is not allowed with action deny`},
		{"reply on connect", RulesSpec{Connect: &GateSpec{Action: "allow", Reply: "{}"}},
			`connect: reply is only allowed on a channel's join gate`},
		{"non-bool join", ch("admin:*", &GateSpec{Action: "if", Expr: "1 + 2"}),
			`channel "admin:*": join: join expression "1 + 2": result type is int, want bool`},
		{"wrong reply type", ch("room:*", &GateSpec{Action: "allow", Reply: "'hi'"}),
			`channel "room:*": join: reply expression "'hi'": result type is string, want map`},
		{"empty assign key", RulesSpec{Assign: []AssignSpec{{Key: "a", Expr: "1"}, {Expr: "params.user"}}},
			`assign #2: empty key`},
		{"empty assign expr", RulesSpec{Assign: []AssignSpec{{Key: "a"}}},
			`assign "a": assign expression "": empty`},
		{"wrong id type", RulesSpec{ID: "1"},
			`id: id expression "1": result type is int, want string or null`},
		{"bad pattern", RulesSpec{Channels: []ChannelSpec{{Pattern: "room:lobby"}, {Pattern: "a*b"}}},
			`channel #2: invalid topic pattern "a*b": * is only allowed as the last character`},
		{"empty pattern", RulesSpec{Channels: []ChannelSpec{{Pattern: ""}}},
			`channel #1: invalid topic pattern "": empty`},
		{"duplicate pattern", RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*"}, {Pattern: "lobby"}, {Pattern: "room:*"}}},
			`channel "room:*": duplicate pattern (already used by channel #1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CompileRules(tt.spec)
			if err == nil {
				t.Fatalf("CompileRules = %v, want error %q", r, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("CompileRules error = %q\n want %q", err, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		spec RulesSpec
		want []string
	}{
		{RulesSpec{Connect: &GateSpec{Expr: "topic == 'x'"}}, []string{`connect: connect expression "topic == 'x'": `, "undeclared reference to 'topic'"}},
		{RulesSpec{Assign: []AssignSpec{{Key: "k", Expr: "params.("}}}, []string{`assign "k": assign expression "params.(": `, "Syntax error"}},
		{RulesSpec{ID: "subtopic"}, []string{`id: id expression "subtopic": `, "undeclared reference to 'subtopic'"}},
	} {
		_, err := CompileRules(tt.spec)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("CompileRules error = %v, want it to contain %q", err, w)
			}
		}
	}
}

func TestGateDecide(t *testing.T) {
	cond := mustCompile(t, ExprJoin, "params.n > 1")
	tests := []struct {
		name    string
		gate    Gate
		params  map[string]any
		ok      bool
		reason  string
		wantErr string
	}{
		{"zero gate denies", Gate{}, nil, false, "unauthorized", ""},
		{"allow", Gate{Action: GateAllow}, nil, true, "", ""},
		{"deny default reason", Gate{Action: GateDeny}, nil, false, "unauthorized", ""},
		{"deny reason", Gate{Action: GateDeny, Reason: "closed for maintenance"}, nil, false, "closed for maintenance", ""},
		{"if true", Gate{Action: GateIf, Cond: cond}, map[string]any{"n": 2.0}, true, "", ""},
		{"if false", Gate{Action: GateIf, Cond: cond}, map[string]any{"n": 1.0}, false, "unauthorized", ""},
		{"if missing key", Gate{Action: GateIf, Cond: cond}, map[string]any{}, false, "unauthorized", `evaluate "params.n > 1": no such key: n`},
		{"if wrong type", Gate{Action: GateIf, Cond: cond}, map[string]any{"n": "2"}, false, "unauthorized", `evaluate "params.n > 1": no such overload`},
		{"if without cond", Gate{Action: GateIf}, nil, false, "unauthorized", "if gate without condition"},
		{"unknown action", Gate{Action: GateAction(42)}, nil, false, "unauthorized", "gate action GateAction(42) cannot be decided here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason, err := tt.gate.Decide(&Vars{Params: tt.params})
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("Decide = %v, %q; want %v, %q", ok, reason, tt.ok, tt.reason)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Decide error = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Errorf("Decide error = %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

func TestGateString(t *testing.T) {
	r := mustRules(t, RulesSpec{
		Connect: &GateSpec{Expr: "params.token != ''"},
		Channels: []ChannelSpec{
			{Pattern: "a", Join: &GateSpec{Action: "allow"}},
			{Pattern: "b", Join: &GateSpec{Action: "deny"}},
			{Pattern: "c", Join: &GateSpec{Action: "deny", Reason: "go away"}},
			{Pattern: "d", Join: &GateSpec{Action: "if", Expr: "assigns.role == 'admin'", Reply: "{'ok': true}"}},
			{Pattern: "e", Join: &GateSpec{Reply: "{}"}},
			{Pattern: "f"},
		},
	})
	want := []string{
		`allow`,
		`deny`,
		`deny "go away"`,
		`if "assigns.role == 'admin'" reply "{'ok': true}"`,
		`allow reply "{}"`,
		`deny`,
	}
	if got := r.Connect.String(); got != `if "params.token != ''"` {
		t.Errorf("connect gate = %s", got)
	}
	for i, w := range want {
		if got := r.Channels[i].Join.String(); got != w {
			t.Errorf("channel %s gate = %s, want %s", r.Channels[i].Pattern, got, w)
		}
	}
}

func TestConnectDefaultsToAllow(t *testing.T) {
	r := mustRules(t, RulesSpec{})
	if ok, reason, err := r.Connect.Decide(&Vars{}); !ok || reason != "" || err != nil {
		t.Errorf("Decide = %v, %q, %v; want allow", ok, reason, err)
	}
	if r.ID != nil || len(r.Assigns) != 0 || len(r.Channels) != 0 {
		t.Errorf("empty spec compiled to %+v", r)
	}
	r = mustRules(t, RulesSpec{Connect: &GateSpec{}})
	if r.Connect.Action != GateAllow {
		t.Errorf("empty connect gate = %s, want allow", r.Connect.String())
	}
}

func TestParseActions(t *testing.T) {
	for _, a := range []GateAction{GateAllow, GateDeny, GateIf, GateUpstream, GateJWT} {
		got, err := ParseGateAction(a.String())
		if err != nil || got != a {
			t.Errorf("ParseGateAction(%q) = %v, %v", a, got, err)
		}
	}
	for _, a := range []HandleInAction{HandleInBroadcast, HandleInBroadcastFrom, HandleInReply, HandleInNoReply, HandleInUpstream} {
		got, err := ParseHandleInAction(a.String())
		if err != nil || got != a {
			t.Errorf("ParseHandleInAction(%q) = %v, %v", a, got, err)
		}
	}
	if _, err := ParseGateAction("Allow"); err == nil || err.Error() != `unknown action "Allow" (want allow, deny, if, upstream or jwt)` {
		t.Errorf("ParseGateAction(Allow) error = %v", err)
	}
	if _, err := ParseHandleInAction("push"); err == nil || err.Error() != `unknown action "push" (want broadcast, broadcast_from, reply, noreply or upstream)` {
		t.Errorf("ParseHandleInAction(push) error = %v", err)
	}
	if s := HandleInAction(0).String(); s != "HandleInAction(0)" {
		t.Errorf("HandleInAction(0).String() = %q", s)
	}
}

func TestRulesSpecJSON(t *testing.T) {
	const config = `{
		"connect": {"action": "if", "expr": "params.token != ''"},
		"assign": [{"key": "user_id", "expr": "params.user"}],
		"id": "'user_socket:' + params.user",
		"channels": [
			{"pattern": "room:*", "join": {"action": "allow", "reply": "{'welcome': true}"},
			 "handle_in": [{"event": "new_msg", "action": "broadcast"}, {"event": "*", "action": "noreply"}]},
			{"pattern": "secret:*", "join": {"action": "deny", "reason": "nope"}}
		]
	}`
	var spec RulesSpec
	dec := json.NewDecoder(strings.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("decode: %v", err)
	}
	r := mustRules(t, spec)
	if got := r.Connect.String(); got != `if "params.token != ''"` {
		t.Errorf("connect = %s", got)
	}
	if len(r.Assigns) != 1 || r.Assigns[0].Key != "user_id" || r.Assigns[0].Expr.String() != "params.user" {
		t.Errorf("assigns = %+v", r.Assigns)
	}
	rule, _, _ := r.Route("room:1")
	if got := rule.Join.String(); got != `allow reply "{'welcome': true}"` {
		t.Errorf("room join = %s", got)
	}
	if a, ok := rule.HandleIn("new_msg"); !ok || a.Action != HandleInBroadcast {
		t.Errorf("room new_msg = %v, %v", a, ok)
	}
	rule, _, _ = r.Route("secret:1")
	if ok, reason, _ := rule.Join.Decide(&Vars{}); ok || reason != "nope" {
		t.Errorf("secret join = %v, %q", ok, reason)
	}

	b, err := json.Marshal(RulesSpec{Channels: []ChannelSpec{{Pattern: "lobby", Join: &GateSpec{Action: "allow"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"channels":[{"pattern":"lobby","join":{"action":"allow"}}]}`; string(b) != want {
		t.Errorf("marshal = %s, want %s", b, want)
	}
}

func BenchmarkGateDecideCEL(b *testing.B) {
	r := mustRules(b, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Join:    &GateSpec{Expr: "assigns.role == 'admin' || (has(params.token) && params.token == subtopic)"},
	}}})
	rule, sub, _ := r.Route("room:42")
	v := &Vars{
		Topic:    "room:42",
		Subtopic: sub,
		Params:   map[string]any{"token": "42"},
		Assigns:  map[string]any{"role": "member", "user_id": "7"},
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, _, err := rule.Join.Decide(v)
		if !ok || err != nil {
			b.Fatalf("Decide = %v, %v", ok, err)
		}
	}
}
