package channels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// interceptRoomSpec is the rules of most tests: room:* intercepts new_msg
// (drop muted, mark mine, strip secret) and secret_only (a step that fails
// at runtime); other events are plain broadcasts.
var interceptRoomSpec = RulesSpec{Channels: []ChannelSpec{{
	Pattern: "room:*",
	Join:    &GateSpec{Action: "allow"},
	Intercept: []InterceptSpec{
		{Event: "new_msg", Steps: []InterceptStepSpec{
			{DropIf: "has(payload.muted_by) && payload.muted_by.exists(u, u == assigns.user_id)"},
			{Set: "mine", Expr: "payload.user_id == assigns.user_id"},
			{Remove: "secret"},
		}},
		{Event: "broken", Steps: []InterceptStepSpec{
			{DropIf: "payload.nope == 1"}, // no such key: evaluation error
			{Set: "n", Expr: "assigns.missing"},
			{Set: "ok", Expr: "true"},
		}},
		{Event: "plain_push"},
	},
}}}

// newInterceptHub returns a hub with spec's rules whose warnings are
// recorded.
func newInterceptHub(t testing.TB, spec RulesSpec) (*Hub, *observer.ObservedLogs) {
	t.Helper()
	rules, err := CompileRules(spec)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	h, err := NewHub(Config{Rules: rules, Logger: zap.New(core)}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// newInterceptSubscriber adds a subscriber with a join_ref and published
// assigns.
func newInterceptSubscriber(h *Hub, ser Serializer, topic, joinRef string, assigns map[string]any) *subscription {
	s := newTestSubscriber(h, ser, topic)
	s.joinRef = StringRef(joinRef)
	s.assigns = assigns
	s.publishAssigns()
	return s
}

// frames returns the payloads of the frames queued on s and empties its
// queue.
func frames(s *subscription) []string {
	var out []string
	for _, f := range s.sock.wsq().pending {
		out = append(out, string(f.Payload()))
	}
	s.sock.wsq().pending = s.sock.wsq().pending[:0]
	s.sock.wsq().bytes = 0
	return out
}

func publishJSON(h *Hub, topic, event, payload string) {
	h.deliver(&pubsub.Message{Topic: topic, Event: event, Payload: []byte(payload), Node: h.node})
}

func expectFrames(t *testing.T, name string, s *subscription, want ...string) {
	t.Helper()
	got := frames(s)
	if len(got) != len(want) {
		t.Fatalf("%s: got %d frames %q, want %d %q", name, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: frame %d\n got: %s\nwant: %s", name, i, got[i], want[i])
		}
	}
}

func TestInterceptDropSetRemove(t *testing.T) {
	h, logs := newInterceptHub(t, interceptRoomSpec)
	alice := newInterceptSubscriber(h, V2, "room:1", "3", map[string]any{"user_id": "alice"})
	bob := newInterceptSubscriber(h, V2, "room:1", "7", map[string]any{"user_id": "bob"})
	carol := newInterceptSubscriber(h, V1, "room:1", "", map[string]any{"user_id": "carol"})

	publishJSON(h, "room:1", "new_msg", `{"user_id":"alice","body":"hi","secret":42,"muted_by":["bob"]}`)
	expectFrames(t, "alice", alice, `["3",null,"room:1","new_msg",{"user_id":"alice","body":"hi","muted_by":["bob"],"mine":true}]`)
	expectFrames(t, "bob (muted)", bob)
	expectFrames(t, "carol (V1)", carol, `{"event":"new_msg","payload":{"user_id":"alice","body":"hi","muted_by":["bob"],"mine":false},"ref":null,"topic":"room:1"}`)

	// Not intercepted: the broadcast frame, shared.
	publishJSON(h, "room:1", "other", `{"secret":1}`)
	expectFrames(t, "alice", alice, `[null,null,"room:1","other",{"secret":1}]`)
	expectFrames(t, "bob", bob, `[null,null,"room:1","other",{"secret":1}]`)
	expectFrames(t, "carol", carol, `{"event":"other","payload":{"secret":1},"ref":null,"topic":"room:1"}`)

	// An intercept without steps turns the broadcast into a push.
	publishJSON(h, "room:1", "plain_push", `{"a":1}`)
	expectFrames(t, "alice", alice, `["3",null,"room:1","plain_push",{"a":1}]`)
	expectFrames(t, "bob", bob, `["7",null,"room:1","plain_push",{"a":1}]`)

	if n := logs.Len(); n != 0 {
		t.Fatalf("unexpected warnings: %v", logs.All())
	}
}

// A step whose expression fails is skipped: nothing is dropped, nothing
// set, later steps still run, and the failure is logged once per second
// per step, not once per subscriber.
func TestInterceptBrokenExpressionDoesNotBreakDelivery(t *testing.T) {
	h, logs := newInterceptHub(t, interceptRoomSpec)
	var subs []*subscription
	for i := range 50 {
		subs = append(subs, newInterceptSubscriber(h, V2, "room:1", "3", map[string]any{"user_id": fmt.Sprint(i)}))
	}
	for range 3 {
		publishJSON(h, "room:1", "broken", `{"x":1}`)
	}
	for i, s := range subs {
		want := `["3",null,"room:1","broken",{"x":1,"ok":true}]`
		expectFrames(t, fmt.Sprint("subscriber ", i), s, want, want, want)
	}
	entries := logs.FilterMessage("intercept step failed to evaluate; skipped").All()
	if len(entries) != 2 { // one per failing step
		t.Fatalf("got %d warnings, want 2 (one per failing step): %v", len(entries), entries)
	}
	for _, e := range entries {
		ctx := e.ContextMap()
		if ctx["channel"] != "room:*" || ctx["event"] != "broken" || !strings.Contains(fmt.Sprint(ctx["step"]), "payload.nope") && !strings.Contains(fmt.Sprint(ctx["step"]), "assigns.missing") {
			t.Fatalf("warning lacks the rule: %v", ctx)
		}
	}
}

// Subscribers with the same serializer, join_ref and outcome share one
// frame; the join_ref and the payload each split the sharing.
func TestInterceptSharesFrames(t *testing.T) {
	h, _ := newInterceptHub(t, interceptRoomSpec)
	a1 := newInterceptSubscriber(h, V2, "room:1", "3", map[string]any{"user_id": "x"})
	a2 := newInterceptSubscriber(h, V2, "room:1", "3", map[string]any{"user_id": "y"})
	b1 := newInterceptSubscriber(h, V2, "room:1", "4", map[string]any{"user_id": "z"})
	mine := newInterceptSubscriber(h, V2, "room:1", "3", map[string]any{"user_id": "me"})
	v1a := newInterceptSubscriber(h, V1, "room:1", "3", map[string]any{"user_id": "x"})
	v1b := newInterceptSubscriber(h, V1, "room:1", "9", map[string]any{"user_id": "y"})
	publishJSON(h, "room:1", "new_msg", `{"user_id":"me"}`)
	f := func(s *subscription) *Frame { return s.sock.wsq().pending[0] }
	if f(a1) != f(a2) {
		t.Error("same join_ref and payload: frames not shared")
	}
	if f(a1) == f(b1) {
		t.Error("different join_refs share a frame")
	}
	if f(a1) == f(mine) {
		t.Error("different payloads share a frame")
	}
	if f(v1a) != f(v1b) {
		t.Error("V1 frames carry no join_ref and should be shared")
	}
	if got := string(f(mine).Payload()); got != `["3",null,"room:1","new_msg",{"user_id":"me","mine":true}]` {
		t.Errorf("mine: %s", got)
	}
}

// broadcast_from excludes the sender on the intercepted path too.
func TestInterceptHonoursExclude(t *testing.T) {
	h, _ := newInterceptHub(t, interceptRoomSpec)
	a := newInterceptSubscriber(h, V2, "room:1", "3", nil)
	b := newInterceptSubscriber(h, V2, "room:1", "3", nil)
	h.deliver(&pubsub.Message{Topic: "room:1", Event: "plain_push", Payload: []byte(`{}`), Node: h.node, Exclude: a.id})
	expectFrames(t, "sender", a)
	expectFrames(t, "other", b, `["3",null,"room:1","plain_push",{}]`)
}

// Binary payloads: drop if runs (payload is {} for it), set and remove do
// not apply, V2 subscribers get a kind-0 push with their join_ref and V1
// subscribers get nothing, as on the broadcast path.
func TestInterceptBinaryPayload(t *testing.T) {
	h, logs := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Intercept: []InterceptSpec{{Event: "bin", Steps: []InterceptStepSpec{
			{DropIf: "assigns.muted"},
			{Set: "x", Expr: "1"},
			{Remove: "y"},
		}}},
	}}})
	keep := newInterceptSubscriber(h, V2, "room:b", "12", map[string]any{"muted": false})
	drop := newInterceptSubscriber(h, V2, "room:b", "12", map[string]any{"muted": true})
	v1 := newInterceptSubscriber(h, V1, "room:b", "12", map[string]any{"muted": false})
	h.deliver(&pubsub.Message{Topic: "room:b", Event: "bin", Payload: []byte{1, 2}, Binary: true, Node: h.node})
	want := []byte{0, 2, 6, 3, '1', '2', 'r', 'o', 'o', 'm', ':', 'b', 'b', 'i', 'n', 1, 2}
	if got := keep.sock.wsq().pending; len(got) != 1 || !got[0].IsBinary() || !bytes.Equal(got[0].Payload(), want) {
		t.Fatalf("kept subscriber got %v", got)
	}
	expectFrames(t, "dropped", drop)
	expectFrames(t, "V1", v1)
	if logs.Len() != 0 {
		t.Fatalf("unexpected warnings: %v", logs.All())
	}
}

// A payload that is not a JSON object passes through for V1; expressions
// see payload as {}.
func TestInterceptNonObjectPayload(t *testing.T) {
	h, _ := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern:   "room:*",
		Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{DropIf: "size(payload) > 0"}, {Set: "k", Expr: "1"}}}},
	}}})
	v1 := newInterceptSubscriber(h, V1, "room:1", "1", nil)
	v2 := newInterceptSubscriber(h, V2, "room:1", "1", nil)
	publishJSON(h, "room:1", "e", `[1,2]`)
	expectFrames(t, "V1", v1, `{"event":"e","payload":[1,2],"ref":null,"topic":"room:1"}`)
	expectFrames(t, "V2", v2) // V2 pushes must be objects
}

// Set values of every CEL type become JSON; keys set twice take the last
// value; remove then set re-adds; keys are matched after unescaping.
func TestInterceptSetValues(t *testing.T) {
	h, logs := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{
			{Set: "b", Expr: "true"},
			{Set: "s", Expr: `"q\"uote\u2028"`},
			{Set: "i", Expr: "-3"},
			{Set: "u", Expr: "3u"},
			{Set: "d", Expr: "1.5"},
			{Set: "n", Expr: "null"},
			{Set: "l", Expr: "[1, 'a', {'k': [true]}]"},
			{Set: "m", Expr: "{'z': 1, 'a': payload.a}"},
			{Set: "t", Expr: "timestamp('2024-01-02T03:04:05Z')"},
			{Set: "twice", Expr: "1"},
			{Set: "twice", Expr: "2"},
			{Remove: "back"},
			{Set: "back", Expr: "'again'"},
			{Remove: "gone"},
			{Set: "nan", Expr: "0.0/0.0"}, // not JSON: skipped and logged
		}}},
	}}})
	s := newInterceptSubscriber(h, V2, "room:1", "1", nil)
	publishJSON(h, "room:1", "e", `{ "a" : {"x": [1, 2]}, "g\u006fne":1, "back":0, "twice":0, "gone":2 }`)
	got := frames(s)
	if len(got) != 1 {
		t.Fatalf("got %q", got)
	}
	want := `["1",null,"room:1","e",{"a" : {"x": [1, 2]},"back":"again","twice":2,"b":true,"s":"q\"uote\u2028","i":-3,"u":3,"d":1.5,"n":null,"l":[1,"a",{"k":[true]}],"m":{"a":{"x":[1,2]},"z":1},"t":"2024-01-02T03:04:05Z"}]`
	if got[0] != want {
		t.Fatalf("\n got: %s\nwant: %s", got[0], want)
	}
	if !json.Valid([]byte(got[0])) {
		t.Fatal("invalid JSON")
	}
	if logs.FilterMessage("intercept step failed to evaluate; skipped").Len() != 1 {
		t.Fatalf("NaN set not logged: %v", logs.All())
	}
}

func TestInterceptCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		ic   []InterceptSpec
		want string
	}{
		{"wildcard", []InterceptSpec{{Event: "*"}}, `intercept #1: needs an event name`},
		{"empty event", []InterceptSpec{{Event: ""}}, `intercept #1: empty event`},
		{"control event", []InterceptSpec{{Event: "phx_reply"}}, `control event`},
		{"duplicate", []InterceptSpec{{Event: "e"}, {Event: "e"}}, `intercept "e": duplicate event`},
		{"no op", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{}}}}, `step #1: want exactly one of`},
		{"two ops", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{DropIf: "true", Remove: "k"}}}}, `want exactly one of`},
		{"set without expr", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Set: "k"}}}}, `set "k" needs an expression`},
		{"expr on drop", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{DropIf: "true", Expr: "1"}}}}, `expr is only valid with set`},
		{"drop not bool", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{DropIf: "1"}}}}, `want bool`},
		{"unknown variable", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Set: "k", Expr: "params.x"}}}}, `undeclared reference to 'params'`},
		{"syntax", []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{DropIf: "payload.("}}}}, `drop expression "payload.("`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileRules(RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*", Intercept: tc.ic}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `channel "room:*"`) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Steps are described in Caddyfile syntax for logs.
func TestInterceptStepString(t *testing.T) {
	r := testRules(t, interceptRoomSpec)
	steps := r.Channels[0].Intercepts[0].Steps
	got := []string{steps[0].String(), steps[1].String(), steps[2].String()}
	want := []string{
		`drop if "has(payload.muted_by) && payload.muted_by.exists(u, u == assigns.user_id)"`,
		`set mine "payload.user_id == assigns.user_id"`,
		`remove secret`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: %s, want %s", i, got[i], want[i])
		}
	}
	if !r.Channels[0].Intercepts[0].usesPayload {
		t.Error("usesPayload not detected")
	}
	if (&Intercept{}).edits() {
		t.Error("edits of an empty intercept")
	}
}

// Only expressions that read payload make delivery decode it (a
// comprehension variable named payload counts too: conservative).
func TestInterceptUsesPayload(t *testing.T) {
	for src, want := range map[string]bool{
		"assigns.x == 1":              false,
		"payload.x == 1":              true,
		"has(payload.x)":              true,
		"topic.startsWith('payload')": false,
	} {
		e, err := CompileExpr(ExprDrop, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := exprReads(e, "payload")
		if err != nil || got != want {
			t.Errorf("%s: got %v %v, want %v", src, got, err, want)
		}
	}
}

// A subscription removed between building and queuing its frame gets
// nothing (no push after its phx_close).
func TestInterceptSendSkipsUnsubscribed(t *testing.T) {
	h := newTestHub(t)
	a := newTestSubscriber(h, V2, "room:1")
	b := newTestSubscriber(h, V2, "room:1")
	snap := h.topics.snapshot("room:1", &pubsub.Message{Topic: "room:1"}, nil)
	if len(snap) != 2 {
		t.Fatalf("snapshot has %d subscribers", len(snap))
	}
	f := closeFrame(1000, "")
	h.topics.remove(a)
	if n := h.topics.sendSubscribed("room:1", []queuedFrame{{a, f}, {b, f}}); n != 1 {
		t.Fatalf("queued %d frames, want 1", n)
	}
	if len(a.sock.wsq().pending) != 0 || len(b.sock.wsq().pending) != 1 {
		t.Fatal("frame queued on an unsubscribed subscription")
	}
	h.topics.remove(b)
	if n := h.topics.sendSubscribed("room:1", []queuedFrame{{b, f}}); n != 0 {
		t.Fatal("queued on a topic without subscribers")
	}
}

// Channel assigns merged by a handle_in webhook are published
// copy-on-write: deliveries on other goroutines never see a map being
// written (run with -race).
func TestInterceptAssignsUpdatesRace(t *testing.T) {
	h, _ := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern:   "room:*",
		Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Set: "n", Expr: "has(assigns.n) ? assigns.n : -1"}}}},
	}}})
	s := newInterceptSubscriber(h, V2, "room:1", "1", map[string]any{"user_id": "u"})
	s.sock.wsq().maxBytes = 1 << 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			s.mergeAssigns(map[string]any{"n": int64(i)})
		}
	})
	for range 200 {
		publishJSON(h, "room:1", "e", `{}`)
	}
	wg.Wait()
	if got := s.deliveryAssigns().m; got["n"] != int64(199) || got["user_id"] != "u" {
		t.Fatalf("assigns after merges: %v", got)
	}
}

// With intercepts configured on other events, the broadcast path still
// does no per-subscriber allocation.
func TestInterceptLeavesBroadcastPathAlone(t *testing.T) {
	h, _ := newInterceptHub(t, interceptRoomSpec)
	allocs, subs := deliverAllocs(h, 1000)
	if allocs > 5 {
		t.Fatalf("deliver made %.0f allocations, want at most 5", allocs)
	}
	first := subs[0].sock.wsq().pending[0]
	for _, s := range subs {
		if len(s.sock.wsq().pending) != 1 || s.sock.wsq().pending[0] != first {
			t.Fatal("broadcast not shared")
		}
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	if ok, n := l.allow(t0); !ok || n != 0 {
		t.Fatal("first entry held back")
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatal("entry within a second let through")
		}
	}
	if ok, n := l.allow(t0.Add(logEvery)); !ok || n != 5 {
		t.Fatalf("after a second: %v, %d suppressed, want true, 5", ok, n)
	}
}

// Removing a key the payload does not have leaves it as published, byte
// for byte; removing one it has re-composes it.
func TestInterceptRemoveAbsentKeyKeepsPayload(t *testing.T) {
	h, _ := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern:   "room:*",
		Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Remove: "secret"}}}},
	}}})
	s := newInterceptSubscriber(h, V2, "room:1", "1", nil)
	publishJSON(h, "room:1", "e", `{ "a" : 1 }`)
	publishJSON(h, "room:1", "e", `{ "a" : 1, "secret": 2 }`)
	expectFrames(t, "subscriber", s, `["1",null,"room:1","e",{ "a" : 1 }]`, `["1",null,"room:1","e",{"a" : 1}]`)
}

// Frames are queued chunk by chunk; every subscriber gets exactly one,
// whatever its position, and the excluded last one none.
func TestInterceptChunks(t *testing.T) {
	h, _ := newInterceptHub(t, interceptRoomSpec)
	var subs []*subscription
	for range 2*interceptChunk + 3 {
		subs = append(subs, newInterceptSubscriber(h, V2, "room:1", "3", nil))
	}
	last := subs[len(subs)-1]
	h.deliver(&pubsub.Message{Topic: "room:1", Event: "plain_push", Payload: []byte(`{}`), Node: h.node, Exclude: last.id})
	for i, s := range subs {
		want := 1
		if s == last {
			want = 0
		}
		if n := len(s.sock.wsq().pending); n != want {
			t.Fatalf("subscriber %d got %d frames, want %d", i, n, want)
		}
	}
	if got := h.Stats().Deliveries; got != uint64(len(subs)-1) {
		t.Fatalf("deliveries %d, want %d", got, len(subs)-1)
	}
}

// A conditional remove removes when its condition is true and, failing
// closed, when it cannot be evaluated.
func TestInterceptRemoveIf(t *testing.T) {
	h, logs := newInterceptHub(t, RulesSpec{Channels: []ChannelSpec{{
		Pattern: "room:*",
		Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{
			{Remove: "email", If: "assigns.role != 'admin'"},
		}}},
	}}})
	admin := newInterceptSubscriber(h, V2, "room:1", "1", map[string]any{"role": "admin"})
	guest := newInterceptSubscriber(h, V2, "room:1", "2", map[string]any{"role": "guest"})
	norole := newInterceptSubscriber(h, V2, "room:1", "3", nil)
	publishJSON(h, "room:1", "e", `{"name":"n","email":"e@x"}`)
	expectFrames(t, "admin", admin, `["1",null,"room:1","e",{"name":"n","email":"e@x"}]`)
	expectFrames(t, "guest", guest, `["2",null,"room:1","e",{"name":"n"}]`)
	expectFrames(t, "no role (evaluation error)", norole, `["3",null,"room:1","e",{"name":"n"}]`)
	if logs.Len() != 1 {
		t.Fatalf("want one warning, got %v", logs.All())
	}
	if _, err := CompileRules(RulesSpec{Channels: []ChannelSpec{{Pattern: "x", Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Set: "k", Expr: "1", If: "true"}}}}}}}); err == nil || !strings.Contains(err.Error(), "if is only valid with remove") {
		t.Fatalf("if on set: %v", err)
	}
	if got := testRules(t, RulesSpec{Channels: []ChannelSpec{{Pattern: "x", Intercept: []InterceptSpec{{Event: "e", Steps: []InterceptStepSpec{{Remove: "k", If: "payload.a == 1"}}}}}}}); !got.Channels[0].Intercepts[0].usesPayload || got.Channels[0].Intercepts[0].Steps[0].String() != `remove k if "payload.a == 1"` {
		t.Fatalf("conditional remove: %+v", got.Channels[0].Intercepts[0])
	}
}
