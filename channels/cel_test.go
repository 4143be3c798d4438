package channels

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// queryParams decodes a query string the way connect params arrive: one
// string per key.
func queryParams(t testing.TB, raw string) map[string]any {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("parse query %q: %v", raw, err)
	}
	m := make(map[string]any, len(q))
	for k, v := range q {
		m[k] = v[0]
	}
	return m
}

// jsonParams decodes a join payload the way encoding/json does it.
func jsonParams(t testing.TB, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}

func strPtr(s string) *string { return &s }

var testNow = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func mustCompile(t testing.TB, kind ExprKind, src string) *Expr {
	t.Helper()
	e, err := CompileExpr(kind, src)
	if err != nil {
		t.Fatalf("CompileExpr(%s, %q): %v", kind, src, err)
	}
	return e
}

func TestEvalBool(t *testing.T) {
	connect := func(query string, headers map[string]string, token *string) *Vars {
		return &Vars{Params: queryParams(t, query), Headers: headers, AuthToken: token, Now: testNow}
	}
	join := func(topic, sub, payload string, assigns map[string]any) *Vars {
		return &Vars{Topic: topic, Subtopic: sub, Params: jsonParams(t, payload), Assigns: assigns, Now: testNow}
	}
	admin := map[string]any{"role": "admin", "user": "42", "level": int64(3)}
	tests := []struct {
		name    string
		kind    ExprKind
		src     string
		vars    *Vars
		want    bool
		wantErr string
	}{
		{"token set", ExprConnect, "params.token != ''", connect("token=abc&vsn=2.0.0", nil, nil), true, ""},
		{"token empty", ExprConnect, "params.token != ''", connect("token=&vsn=2.0.0", nil, nil), false, ""},
		{"token missing", ExprConnect, "params.token != ''", connect("vsn=2.0.0", nil, nil), false, "no such key: token"},
		{"has present", ExprConnect, "has(params.token)", connect("token=abc", nil, nil), true, ""},
		{"has absent", ExprConnect, "has(params.token)", connect("vsn=2.0.0", nil, nil), false, ""},
		{"in present", ExprConnect, "'token' in params", connect("token=abc", nil, nil), true, ""},
		{"in absent", ExprConnect, "'token' in params", connect("", nil, nil), false, ""},
		{"nil params", ExprConnect, "size(params) == 0 && !has(params.x)", &Vars{}, true, ""},
		{"header", ExprConnect, "headers['origin'] == 'https://example.com'", connect("", map[string]string{"origin": "https://example.com"}, nil), true, ""},
		{"header absent", ExprConnect, "!('origin' in headers)", connect("", nil, nil), true, ""},
		{"auth token null", ExprConnect, "auth_token == null", connect("", nil, nil), true, ""},
		{"auth token set", ExprConnect, "auth_token == 'secret'", connect("", nil, strPtr("secret")), true, ""},
		{"auth token not null", ExprConnect, "auth_token != null", connect("", nil, strPtr("")), true, ""},
		{"now after", ExprConnect, "now > timestamp('2020-01-01T00:00:00Z')", connect("", nil, nil), true, ""},
		{"now before", ExprConnect, "now < timestamp('2024-05-06T07:08:09Z')", connect("", nil, nil), false, ""},
		{"now field", ExprConnect, "now.getFullYear() == 2024", connect("", nil, nil), true, ""},
		{"zero now is current time", ExprConnect, "now > timestamp('2020-01-01T00:00:00Z')", &Vars{}, true, ""},
		{"ext strings", ExprConnect, "params.name.lowerAscii() == 'bob' && params.name.lowerAscii().indexOf('o') == 1", connect("name=BOB", nil, nil), true, ""},
		{"wrong type", ExprConnect, "params.token > 1", connect("token=5", nil, nil), false, "no such overload"},
		{"non-bool dyn", ExprConnect, "params.token", connect("token=abc", nil, nil), false, `evaluate "params.token": result is string, want bool`},
		{"topic", ExprJoin, "topic == 'room:1' && subtopic == '1'", join("room:1", "1", `{}`, nil), true, ""},
		{"assigns role", ExprJoin, "assigns.role == 'admin'", join("admin:x", "x", `{}`, admin), true, ""},
		{"assigns missing", ExprJoin, "assigns.role == 'admin'", join("admin:x", "x", `{}`, nil), false, "no such key: role"},
		{"assigns int", ExprJoin, "assigns.level >= 3", join("t", "", `{}`, admin), true, ""},
		{"json number equals int", ExprJoin, "params.n == 1", join("t", "", `{"n": 1}`, nil), true, ""},
		{"json number compares to int", ExprJoin, "params.n > 1 && params.n < 2.5", join("t", "", `{"n": 2}`, nil), true, ""},
		{"exists", ExprJoin, "params.tags.exists(t, t == 'b')", join("t", "", `{"tags": ["a", "b"]}`, nil), true, ""},
		{"all", ExprJoin, "params.tags.all(t, t.size() == 1)", join("t", "", `{"tags": ["a", "bc"]}`, nil), false, ""},
		{"filter", ExprJoin, "params.tags.filter(t, t != 'a').size() == 2", join("t", "", `{"tags": ["a", "b", "c"]}`, nil), true, ""},
		{"map", ExprJoin, "params.tags.map(t, t + '!') == ['a!', 'b!']", join("t", "", `{"tags": ["a", "b"]}`, nil), true, ""},
		{"nested", ExprJoin, "params.user.id == subtopic", join("user:7", "7", `{"user": {"id": "7"}}`, nil), true, ""},
		{"null payload value", ExprJoin, "params.x == null", join("t", "", `{"x": null}`, nil), true, ""},
		{"assign sees assigns", ExprAssign, "assigns.user + ':' + params.room", &Vars{Params: queryParams(t, "room=r1"), Assigns: admin}, false, "result is string, want bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := CompileExpr(tt.kind, tt.src)
			if err != nil {
				if tt.wantErr != "" && strings.Contains(err.Error(), tt.wantErr) {
					return
				}
				t.Fatalf("CompileExpr: %v", err)
			}
			got, err := e.EvalBool(tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EvalBool error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.src)) {
					t.Errorf("EvalBool error %q does not name the expression", err)
				}
				if got {
					t.Errorf("EvalBool returned true with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("EvalBool: %v", err)
			}
			if got != tt.want {
				t.Errorf("EvalBool = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvalValue(t *testing.T) {
	vars := &Vars{
		Topic:    "room:1",
		Subtopic: "1",
		Params:   jsonParams(t, `{"n": 1.5, "list": [1, "a", null, {"k": [true]}], "user": "42"}`),
		Assigns:  map[string]any{"user": "42", "count": int64(7), "big": uint64(1 << 63)},
		Now:      time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600)),
	}
	tests := []struct {
		name     string
		kind     ExprKind
		src      string
		want     any
		wantJSON string
	}{
		{"welcome", ExprReply, "{'welcome': true}", map[string]any{"welcome": true}, `{"welcome":true}`},
		{"empty map", ExprReply, "{}", map[string]any{}, `{}`},
		{
			"scalars", ExprReply,
			"{'i': 1, 'u': 2u, 'd': 1.5, 's': 'x', 'b': false, 'n': null}",
			map[string]any{"i": int64(1), "u": uint64(2), "d": 1.5, "s": "x", "b": false, "n": nil},
			`{"b":false,"d":1.5,"i":1,"n":null,"s":"x","u":2}`,
		},
		{
			"special types", ExprReply,
			"{'ts': timestamp('2024-01-02T03:04:05.123456789Z'), 'whole': timestamp('2024-01-02T03:04:05Z'), 'dur': duration('90s'), 'bytes': b'hi', 'type': type(1)}",
			map[string]any{"ts": "2024-01-02T03:04:05.123456789Z", "whole": "2024-01-02T03:04:05Z", "dur": "1m30s", "bytes": "aGk=", "type": "int"},
			`{"bytes":"aGk=","dur":"1m30s","ts":"2024-01-02T03:04:05.123456789Z","type":"int","whole":"2024-01-02T03:04:05Z"}`,
		},
		{"now in UTC", ExprReply, "{'now': now}", map[string]any{"now": "2024-05-06T06:08:09.123456789Z"}, `{"now":"2024-05-06T06:08:09.123456789Z"}`},
		{
			"non-string keys", ExprReply,
			"{'m': {1: 'one', true: 'yes', 2u: 'two'}}",
			map[string]any{"m": map[string]any{"1": "one", "true": "yes", "2": "two"}},
			`{"m":{"1":"one","2":"two","true":"yes"}}`,
		},
		{
			"nested", ExprReply,
			"{'a': {'b': [1, [2, {'c': 'd'}]]}, 'topic': topic, 'sub': subtopic}",
			map[string]any{"a": map[string]any{"b": []any{int64(1), []any{int64(2), map[string]any{"c": "d"}}}}, "topic": "room:1", "sub": "1"},
			`{"a":{"b":[1,[2,{"c":"d"}]]},"sub":"1","topic":"room:1"}`,
		},
		{
			"params passthrough", ExprReply, "params",
			map[string]any{"n": 1.5, "list": []any{1.0, "a", nil, map[string]any{"k": []any{true}}}, "user": "42"},
			`{"list":[1,"a",null,{"k":[true]}],"n":1.5,"user":"42"}`,
		},
		{
			"assigns passthrough", ExprReply, "{'a': assigns}",
			map[string]any{"a": map[string]any{"user": "42", "count": int64(7), "big": uint64(1 << 63)}},
			`{"a":{"big":9223372036854775808,"count":7,"user":"42"}}`,
		},
		{"list", ExprAssign, "params.list.map(x, type(x) == string ? x : 'other')", []any{"other", "a", "other", "other"}, `["other","a","other","other"]`},
		{"assign string", ExprAssign, "'u:' + params.user", "u:42", `"u:42"`},
		{"assign int", ExprAssign, "assigns.count + 1", int64(8), `8`},
		{"assign float", ExprAssign, "params.n * 2.0", 3.0, `3`},
		{"id", ExprID, "'user_socket:' + params.user", "user_socket:42", `"user_socket:42"`},
		{"null id", ExprID, "has(params.nobody) ? params.nobody : null", nil, `null`},
		{"literal null id", ExprID, "null", nil, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCompile(t, tt.kind, tt.src)
			v := vars
			if tt.kind == ExprAssign || tt.kind == ExprID {
				v = &Vars{Params: vars.Params, Assigns: vars.Assigns}
			}
			got, err := e.EvalValue(v)
			if err != nil {
				t.Fatalf("EvalValue: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("EvalValue = %#v, want %#v", got, tt.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			if string(b) != tt.wantJSON {
				t.Errorf("json = %s, want %s", b, tt.wantJSON)
			}
		})
	}
}

func TestEvalValueErrors(t *testing.T) {
	vars := &Vars{Params: jsonParams(t, `{"s": "x", "n": 1, "m": {"a": 1}}`)}
	tests := []struct {
		kind ExprKind
		src  string
		want string
	}{
		{ExprReply, "params.s", `evaluate "params.s": result is string, want map`},
		{ExprReply, "params.missing", `evaluate "params.missing": no such key: missing`},
		{ExprReply, "{'x': 0.0 / 0.0}", `evaluate "{'x': 0.0 / 0.0}": map value "x": double NaN cannot be represented in JSON`},
		{ExprAssign, "[1.0 / 0.0]", `evaluate "[1.0 / 0.0]": list element 0: double +Inf cannot be represented in JSON`},
		{ExprID, "params.n", `evaluate "params.n": result is double, want string or null`},
		{ExprID, "params.m", `evaluate "params.m": result is map, want string or null`},
	}
	for _, tt := range tests {
		e := mustCompile(t, tt.kind, tt.src)
		got, err := e.EvalValue(vars)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s %q: EvalValue = %v, %v; want error %q", tt.kind, tt.src, got, err, tt.want)
		}
	}
}

func TestCompileExprErrors(t *testing.T) {
	tests := []struct {
		kind ExprKind
		src  string
		want []string
	}{
		{ExprConnect, "", []string{`connect expression "": empty`}},
		{ExprConnect, "  ", []string{`connect expression "  ": empty`}},
		{ExprConnect, "params.token ==", []string{`connect expression "params.token ==": `, "Syntax error"}},
		{ExprConnect, "topic == 'x'", []string{`connect expression "topic == 'x'": `, "undeclared reference to 'topic'"}},
		{ExprConnect, "assigns.role == 'x'", []string{"undeclared reference to 'assigns'"}},
		{ExprJoin, "headers['x'] == 'y'", []string{"undeclared reference to 'headers'"}},
		{ExprJoin, "auth_token == null", []string{"undeclared reference to 'auth_token'"}},
		{ExprAssign, "topic", []string{"undeclared reference to 'topic'"}},
		{ExprID, "subtopic", []string{"undeclared reference to 'subtopic'"}},
		{ExprJoin, "1 + 2", []string{`join expression "1 + 2": result type is int, want bool`}},
		{ExprConnect, "params", []string{`connect expression "params": result type is map(string, dyn), want bool`}},
		{ExprJoin, "topic", []string{`join expression "topic": result type is string, want bool`}},
		{ExprReply, "'x'", []string{`reply expression "'x'": result type is string, want map`}},
		{ExprReply, "[1]", []string{`reply expression "[1]": result type is list(int), want map`}},
		{ExprReply, "true", []string{`reply expression "true": result type is bool, want map`}},
		{ExprID, "1", []string{`id expression "1": result type is int, want string or null`}},
		{ExprID, "params.size() > 0", []string{`id expression "params.size() > 0": result type is bool, want string or null`}},
		{ExprJoin, "nosuchfn(topic)", []string{"undeclared reference to 'nosuchfn'"}},
		{ExprConnect, "'a' + 1 == 'a1'", []string{"no matching overload"}},
		{ExprKind(99), "true", []string{`compile expression "true": unknown kind ExprKind(99)`}},
		{ExprKind(-1), "true", []string{`unknown kind ExprKind(-1)`}},
	}
	for _, tt := range tests {
		e, err := CompileExpr(tt.kind, tt.src)
		if err == nil {
			t.Errorf("CompileExpr(%s, %q) = %v, want error", tt.kind, tt.src, e)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CompileExpr(%s, %q) error = %q, want it to contain %q", tt.kind, tt.src, err, w)
			}
		}
	}
}

func TestCompileExprAcceptsDynResults(t *testing.T) {
	for _, tt := range []struct {
		kind ExprKind
		src  string
	}{
		{ExprConnect, "params.flag"},
		{ExprJoin, "assigns.ok"},
		{ExprReply, "params.reply"},
		{ExprReply, "{'a': 1}"},
		{ExprID, "params.id"},
		{ExprID, "'x'"},
		{ExprID, "null"},
		{ExprAssign, "1"},
		{ExprAssign, "[now]"},
	} {
		e, err := CompileExpr(tt.kind, tt.src)
		if err != nil {
			t.Errorf("CompileExpr(%s, %q): %v", tt.kind, tt.src, err)
			continue
		}
		if e.String() != tt.src || e.Kind() != tt.kind {
			t.Errorf("Expr = %s %q, want %s %q", e.Kind(), e.String(), tt.kind, tt.src)
		}
	}
}

func TestExprKindString(t *testing.T) {
	want := map[ExprKind]string{ExprConnect: "connect", ExprAssign: "assign", ExprID: "id", ExprJoin: "join", ExprReply: "reply",
		ExprPresenceKey: "presence key", ExprPresenceMeta: "presence meta", ExprDrop: "drop", ExprSet: "set",
		exprKindCount: fmt.Sprintf("ExprKind(%d)", int(exprKindCount))}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("ExprKind(%d).String() = %q, want %q", int(k), k.String(), s)
		}
	}
}

func TestEvalLimits(t *testing.T) {
	list := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = float64(i)
		}
		return l
	}
	big := strings.Repeat("a", 1<<20)
	iterErr := func(src string) string {
		return fmt.Sprintf("evaluate %q: iteration limit of 2000 exceeded", src)
	}
	tests := []struct {
		name string
		n    int
		src  string
		want string // error; empty for true
	}{
		{"nested", 1000, "params.l.all(a, params.l.all(b, a == b || true))", iterErr("params.l.all(a, params.l.all(b, a == b || true))")},
		{"nested map", 100, "params.l.map(a, params.l.map(b, a + b)).size() > 0", iterErr("params.l.map(a, params.l.map(b, a + b)).size() > 0")},
		{"long list", 300000, "params.l.exists(a, a < 0) == false", iterErr("params.l.exists(a, a < 0) == false")},
		{"sequential loops add up", 1500, "params.l.all(a, a >= 0) && params.l.all(a, a >= 0)", iterErr("params.l.all(a, a >= 0) && params.l.all(a, a >= 0)")},
		{"just under", ExprIterationLimit - 1, "params.l.all(a, a >= 0)", ""},
		{"at the limit", ExprIterationLimit, "params.l.all(a, a >= 0)", iterErr("params.l.all(a, a >= 0)")},
		{"nested within", 40, "params.l.all(a, params.l.exists(b, b == a))", ""},
		{"cost of big strings", 100, "params.l.all(a, !params.s.contains('b'))", `evaluate "params.l.all(a, !params.s.contains('b'))": operation cancelled: actual cost limit exceeded`},
		{"big string once", 1, "!params.s.contains('b')", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCompile(t, ExprJoin, tt.src)
			start := time.Now()
			ok, err := e.EvalBool(&Vars{Params: map[string]any{"l": list(tt.n), "s": big}})
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("evaluation took %v", elapsed)
			}
			if tt.want == "" {
				if err != nil || !ok {
					t.Fatalf("EvalBool = %v, %v; want true", ok, err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("EvalBool = %v, %v; want error %q", ok, err, tt.want)
			}
		})
	}
}

func TestEvalConcurrent(t *testing.T) {
	cond := mustCompile(t, ExprJoin, "assigns.user == subtopic && params.n > 0")
	reply := mustCompile(t, ExprReply, "{'user': assigns.user, 'n': params.n}")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				user := fmt.Sprint(g*1000 + i)
				v := &Vars{
					Topic:    "user:" + user,
					Subtopic: user,
					Params:   map[string]any{"n": float64(i + 1)},
					Assigns:  map[string]any{"user": user},
				}
				ok, err := cond.EvalBool(v)
				if err != nil || !ok {
					errs <- fmt.Errorf("EvalBool(%s) = %v, %v", user, ok, err)
					return
				}
				got, err := reply.EvalValue(v)
				want := map[string]any{"user": user, "n": float64(i + 1)}
				if err != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("EvalValue(%s) = %v, %v", user, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
