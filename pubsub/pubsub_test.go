package pubsub

import (
	"errors"
	"strings"
	"testing"
)

func TestPositionString(t *testing.T) {
	tests := []struct {
		pos  Position
		want string
	}{
		{Position{}, ""},
		{Position{Epoch: "ab12", Seq: 0}, "ab12:0"},
		{Position{Epoch: "ab12", Seq: 7}, "ab12:7"},
		{Position{Epoch: "A-b_9", Seq: 18446744073709551615}, "A-b_9:18446744073709551615"},
	}
	for _, tt := range tests {
		if got := tt.pos.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.pos, got, tt.want)
		}
		if got := tt.pos.IsZero(); got != (tt.want == "") {
			t.Errorf("%#v.IsZero() = %v", tt.pos, got)
		}
	}
}

func TestParsePosition(t *testing.T) {
	long := strings.Repeat("e", MaxEpochLen)
	valid := []struct {
		in   string
		want Position
	}{
		{"ab12:0", Position{Epoch: "ab12", Seq: 0}},
		{"ab12:42", Position{Epoch: "ab12", Seq: 42}},
		{"A-b_9:18446744073709551615", Position{Epoch: "A-b_9", Seq: 18446744073709551615}},
		{"x:1", Position{Epoch: "x", Seq: 1}},
		{long + ":5", Position{Epoch: long, Seq: 5}},
	}
	for _, tt := range valid {
		got, err := ParsePosition(tt.in)
		if err != nil {
			t.Errorf("ParsePosition(%q) error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePosition(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParsePosition(%q).String() = %q", tt.in, s)
		}
	}
	invalid := []string{
		"",
		":",
		"ab",
		"ab:",
		":5",
		"ab:5:6",
		"a:b:5",
		"ab:05",
		"ab:00",
		"ab:+5",
		"ab:-5",
		"ab: 5",
		"ab:5 ",
		" ab:5",
		"ab:0x5",
		"ab:18446744073709551616",
		"ab:99999999999999999999999",
		"a b:5",
		"a.b:5",
		"é:5",
		"ab:٣",
		long + "e:5",
		"ab:5\n",
	}
	for _, in := range invalid {
		got, err := ParsePosition(in)
		if err == nil {
			t.Errorf("ParsePosition(%q) = %#v, want error", in, got)
			continue
		}
		if !errors.Is(err, ErrInvalidPosition) {
			t.Errorf("ParsePosition(%q) error %v does not wrap ErrInvalidPosition", in, err)
		}
		if got != (Position{}) {
			t.Errorf("ParsePosition(%q) returned %#v with its error", in, got)
		}
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "ab12:0", "ab12:42", "x:18446744073709551615", "ab:05", "a:b:1", "ab:18446744073709551616", ":1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPosition) {
				t.Fatalf("ParsePosition(%q) error %v does not wrap ErrInvalidPosition", s, err)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("ParsePosition(%q).String() = %q, not canonical", s, got)
		}
		if p.Epoch == "" || len(p.Epoch) > MaxEpochLen {
			t.Fatalf("ParsePosition(%q) accepted epoch %q", s, p.Epoch)
		}
		again, err := ParsePosition(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %#v, %v", s, again, err)
		}
	})
}
