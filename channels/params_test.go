package channels

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseParams(t *testing.T) {
	type m = map[string]any
	type l = []any
	tests := []struct {
		name  string
		query string
		want  map[string]any
	}{
		{"empty", "", m{}},
		{"scalars", "foo=bar&baz=bat", m{"foo": "bar", "baz": "bat"}},
		{"phoenix.js url", "token=abc&nested%5Ba%5D=1&vsn=2.0.0", m{"token": "abc", "nested": m{"a": "1"}, "vsn": "2.0.0"}},
		{"nested maps", "users[name]=hello&users[age]=17&users[address][street]=foo",
			m{"users": m{"name": "hello", "age": "17", "address": m{"street": "foo"}}}},
		{"deep nesting", "a[b][c]=1", m{"a": m{"b": m{"c": "1"}}}},
		{"plus and percent", "my+weird+field=q1%212%22%27w%245%267%2Fz8%29%3F", m{"my weird field": "q1!2\"'w$5&7/z8)?"}},
		{"utf8 escapes", "name=b%C3%A5%C2%AE", m{"name": "bå®"}},
		{"lower-case hex", "a=%c3%a5", m{"a": "å"}},
		{"empty key and value", "=", m{"": ""}},
		{"key without equals", "key", m{"key": ""}},
		{"key with empty value", "key=", m{"key": ""}},
		{"empty key", "=value", m{"": "value"}},
		{"value with equals", "a=b=c", m{"a": "b=c"}},
		{"list without value", "foo[]", m{"foo": l{""}}},
		{"list", "foo[]=bar&foo[]=baz", m{"foo": l{"bar", "baz"}}},
		{"two lists", "foo[]=bar&foo[]=baz&bat[]=1&bat[]=2", m{"foo": l{"bar", "baz"}, "bat": l{"1", "2"}}},
		{"list in map", "x[y][z][]=1&x[y][z][]=2", m{"x": m{"y": m{"z": l{"1", "2"}}}}},
		{"map in list", "x[y][][z]=1", m{"x": m{"y": l{m{"z": "1"}}}}},
		{"map in list merges", "x[][a]=1&x[][b]=2", m{"x": l{m{"a": "1", "b": "2"}}}},
		{"nested lists", "x[][][]=1", m{"x": l{l{l{"1"}}}}},
		{"phoenix.js array", "c[0]=1&c[1]=2", m{"c": m{"0": "1", "1": "2"}}},
		{"phoenix.js encoded array", "c%5B0%5D=1&c%5B1%5D=2", m{"c": m{"0": "1", "1": "2"}}},
		{"empty pairs", "&x=1&&y=2&", m{"x": "1", "y": "2"}},
		{"duplicate scalar last wins", "foo=bar&foo=baz", m{"foo": "baz"}},
		{"duplicate nested last wins", "x[y][z]=1&x[y][z]=2", m{"x": m{"y": m{"z": "2"}}}},
		{"scalar then map", "a=1&a[b]=2", m{"a": m{"b": "2"}}},
		{"map then scalar", "a[b]=2&a=1", m{"a": "1"}},
		{"list then map", "x[]=1&x[y]=1", m{"x": m{"y": "1"}}},
		{"map then list", "x[y]=1&x[]=2", m{"x": l{"2"}}},
		{"deep then scalar", "x[y][][w]=2&x[y]=1", m{"x": m{"y": "1"}}},
		{"numeric then scalar", "x[y][0][w]=2&x[y]=1", m{"x": m{"y": "1"}}},
		// Plug links a level into its parent only when the level is first
		// created, so a later a[c] does not override the scalar a=1.
		{"existing level not relinked", "a[b]=2&a=1&a[c]=3", m{"a": "1"}},
		{"leading bracket is literal", "[a]=1", m{"[a]": "1"}},
		{"unclosed bracket is literal", "a[b=1", m{"a[b": "1"}},
		{"stray close is literal", "a]=1", m{"a]": "1"}},
		{"trailing text is literal", "a[b]c=1", m{"a[b]c": "1"}},
		{"close inside segment", "a[b]c]=1", m{"a": m{"b]c": "1"}}},
		{"open inside segment", "a[b[c]=1", m{"a": m{"b[c": "1"}}},
		{"double close", "a[b]]=1", m{"a": m{"b]": "1"}}},
		{"encoded ampersand", "a=1%262&b=%3D", m{"a": "1&2", "b": "="}},
		{"max depth", "a" + strings.Repeat("[x]", maxParamsDepth) + "=1", nestedParam(maxParamsDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseParams(tt.query)
			if err != nil {
				t.Fatalf("ParseParams(%q) error: %v", tt.query, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseParams(%q) = %#v, want %#v", tt.query, got, tt.want)
			}
		})
	}
}

// nestedParam builds {"a": {"x": {"x": ... "1"}}} with depth "x" levels.
func nestedParam(depth int) map[string]any {
	var v any = "1"
	for i := 0; i < depth; i++ {
		v = map[string]any{"x": v}
	}
	return map[string]any{"a": v}
}

func TestParseParamsErrors(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		wantErr string
	}{
		{"bad hex", "_utf8=%R2%9P%93", "invalid percent-encoding"},
		{"truncated escape", "a=%4", "invalid percent-encoding"},
		{"lone percent", "a=%", "invalid percent-encoding"},
		{"bad key escape", "a%zz=1", "key of parameter 1"},
		{"invalid utf8 value", "a=%FF", "not valid UTF-8"},
		{"invalid utf8 key", "%C3=1", "not valid UTF-8"},
		{"raw invalid utf8", "a=\xff", "not valid UTF-8"},
		{"truncated utf8", "a=%E2%82", "not valid UTF-8"},
		{"too deep", "a" + strings.Repeat("[x]", maxParamsDepth+1) + "=1", "deeper than 32"},
		{"too deep lists", "a" + strings.Repeat("[]", maxParamsDepth+1) + "=1", "deeper than 32"},
		{"too many", strings.Repeat("a=1&", maxParams) + "b=2", "more than 1000 parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseParams(tt.query)
			if err == nil {
				t.Fatalf("ParseParams(%q) = %#v, want error containing %q", tt.query, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseParams(%q) error %q, want it to contain %q", tt.query, err, tt.wantErr)
			}
		})
	}
}

func TestParseParamsLimitsBoundary(t *testing.T) {
	var b strings.Builder
	for i := 0; i < maxParams; i++ {
		if i > 0 {
			b.WriteString("&&") // empty pairs are not counted
		}
		fmt.Fprintf(&b, "k%d=%d", i, i)
	}
	got, err := ParseParams(b.String())
	if err != nil {
		t.Fatalf("ParseParams with %d params: %v", maxParams, err)
	}
	if len(got) != maxParams || got["k999"] != "999" {
		t.Fatalf("ParseParams with %d params: got %d keys, k999=%v", maxParams, len(got), got["k999"])
	}
}

func FuzzParseParams(f *testing.F) {
	for _, s := range []string{
		"", "a=1", "a[b][c]=1", "a[]=1&a[]=2", "c[0]=1&c[1]=2", "a=1&a[b]=2",
		"x[][a]=1&x[][b]=2", "x[][][]=1", "my+field=%41%c3%a5", "a[b]c]=1", "[a]=1",
		"a[b]=2&a=1&a[c]=3", "a=%", "a=%FF", "&&=&",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		got, err := ParseParams(query)
		if err != nil {
			return
		}
		checkParamValue(t, got, 0)
	})
}

// checkParamValue asserts that v only holds strings, maps and lists, with
// valid UTF-8 everywhere and nesting within the depth limit.
func checkParamValue(t *testing.T, v any, depth int) {
	t.Helper()
	if depth > maxParamsDepth+1 {
		t.Fatalf("value nested %d levels deep", depth)
	}
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			t.Fatalf("leaf %q is not valid UTF-8", v)
		}
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) {
				t.Fatalf("key %q is not valid UTF-8", k)
			}
			checkParamValue(t, e, depth+1)
		}
	case []any:
		if len(v) == 0 {
			t.Fatalf("empty list")
		}
		for _, e := range v {
			checkParamValue(t, e, depth+1)
		}
	default:
		t.Fatalf("unexpected value type %T", v)
	}
}
