package channels

import (
	"strings"
	"testing"
)

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", `invalid topic pattern "": empty`},
		{"a*b", `invalid topic pattern "a*b": * is only allowed as the last character`},
		{"**", `invalid topic pattern "**": * is only allowed as the last character`},
		{"*room", `invalid topic pattern "*room": * is only allowed as the last character`},
		{"room *", `invalid topic pattern "room *": whitespace at byte 4`},
		{" room", `invalid topic pattern " room": whitespace at byte 0`},
		{"room\t", `invalid topic pattern "room\t": whitespace at byte 4`},
		{"ro\x00om", `invalid topic pattern "ro\x00om": control character at byte 2`},
		{"room\u0085", `invalid topic pattern "room\u0085": whitespace at byte 4`},
		{"room\u00a0x", `invalid topic pattern "room\u00a0x": whitespace at byte 4`},
		{"room\x7f", `invalid topic pattern "room\x7f": control character at byte 4`},
		{"ro\xffom", `invalid topic pattern "ro\xffom": not valid UTF-8`},
	}
	for _, tt := range tests {
		_, err := ParsePattern(tt.in)
		if err == nil {
			t.Errorf("ParsePattern(%q) = nil error, want %q", tt.in, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParsePattern(%q) error = %q, want %q", tt.in, err, tt.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		topic   string
		sub     string
		ok      bool
	}{
		{"room:*", "room:lobby", "lobby", true},
		{"room:*", "room:", "", true},
		{"room:*", "room:a:b", "a:b", true},
		{"room:*", "room", "", false},
		{"room:*", "rooms:1", "", false},
		{"room:*", "", "", false},
		{"room*", "room", "", true},
		{"room*", "rooms:1", "s:1", true},
		{"room*", "roo", "", false},
		{"*", "", "", true},
		{"*", "anything:at all", "anything:at all", true},
		{"lobby", "lobby", "", true},
		{"lobby", "lobby2", "", false},
		{"lobby", "lobb", "", false},
		{"lobby", "Lobby", "", false},
		{"sala:ü*", "sala:ü:1", ":1", true},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.String(); got != tt.pattern {
			t.Errorf("ParsePattern(%q).String() = %q", tt.pattern, got)
		}
		sub, ok := p.Match(tt.topic)
		if sub != tt.sub || ok != tt.ok {
			t.Errorf("%q.Match(%q) = %q, %v; want %q, %v", tt.pattern, tt.topic, sub, ok, tt.sub, tt.ok)
		}
	}
}

func TestPatternZeroValue(t *testing.T) {
	var p Pattern
	if _, ok := p.Match(""); !ok {
		t.Error("zero Pattern does not match the empty topic")
	}
	if _, ok := p.Match("room:1"); ok {
		t.Error("zero Pattern matches a non-empty topic")
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"room:*", "room*", "*", "lobby", "", "a*b", "**", "room *", "ro\x00m", "ü*", "\xff*"} {
		f.Add(s, "room:1")
	}
	f.Fuzz(func(t *testing.T, s, topic string) {
		p, err := ParsePattern(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid topic pattern") {
				t.Fatalf("ParsePattern(%q) error %q does not name the pattern", s, err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePattern(%q).String() = %q", s, p.String())
		}
		prefix, wild := strings.CutSuffix(s, "*")
		if strings.Contains(prefix, "*") {
			t.Fatalf("ParsePattern(%q) accepted a non-trailing *", s)
		}
		sub, ok := p.Match(prefix)
		if !ok || sub != "" {
			t.Fatalf("%q.Match(%q) = %q, %v; want \"\", true", s, prefix, sub, ok)
		}
		sub, ok = p.Match(prefix + topic)
		switch {
		case wild && (!ok || sub != topic):
			t.Fatalf("%q.Match(%q) = %q, %v; want %q, true", s, prefix+topic, sub, ok, topic)
		case !wild && ok != (topic == ""):
			t.Fatalf("%q.Match(%q) = %v, want %v", s, prefix+topic, ok, topic == "")
		}
	})
}
