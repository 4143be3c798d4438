package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"1", []int{1}, false},
		{"0-2", []int{0, 1, 2}, false},
		{"0,2-3,2", []int{0, 2, 3}, false},
		{" 1 ", []int{1}, false},
		{"", nil, true},
		{"a", nil, true},
		{"3-1", nil, true},
		{"-1", nil, true},
		{"1024", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"fanout", "-sockets", "5", "-messages", "7", "-via", "push"}, ""},
		{[]string{"idle"}, "idle needs -server-pid"},
		{[]string{"idle", "-server-pid", "1"}, ""},
		{[]string{}, "missing scenario"},
		{[]string{"nope"}, "unknown scenario"},
		{[]string{"fanout", "-via", "carrier-pigeon"}, "-via"},
		{[]string{"fanout", "-via", "push", "-batch", "5"}, "-batch needs -via api"},
		{[]string{"echo", "-inflight", "0"}, "-inflight"},
		{[]string{"echo", "-rate", "5000"}, ""},
		{[]string{"echo", "-rate", "5000", "-inflight", "2"}, "-inflight must be 1"},
		{[]string{"echo", "-rate", "-1"}, "-rate"},
		{[]string{"echo", "-cpu", "x"}, "-cpu"},
		{[]string{"churn", "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		cfg, err := parseConfig(tt.args, io.Discard)
		if tt.err == "" {
			if err != nil {
				t.Errorf("parseConfig(%v): %v", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("parseConfig(%v) = %v, %v; want error containing %q", tt.args, cfg, err, tt.err)
		}
	}
	cfg, err := parseConfig([]string{"fanout", "-sockets", "5", "-messages", "7", "-cpu", "1"}, io.Discard)
	if err != nil || cfg.sockets != 5 || cfg.messages != 7 || !slices.Equal(cfg.cpus, []int{1}) || cfg.url != "ws://127.0.0.1:8091/socket" {
		t.Errorf("parseConfig = %+v, %v", cfg, err)
	}
}

func TestWSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ws://127.0.0.1:8091/socket", "ws://127.0.0.1:8091/socket/websocket?vsn=2.0.0"},
		{"http://127.0.0.1:8091/socket/", "ws://127.0.0.1:8091/socket/websocket?vsn=2.0.0"},
		{"wss://localhost/s/websocket?token=a", "wss://localhost/s/websocket?token=a&vsn=2.0.0"},
	}
	for _, tt := range tests {
		u, err := phoenixV2.wsURL(tt.in)
		if err != nil || u.String() != tt.want {
			t.Errorf("wsURL(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
		}
	}
	if _, err := phoenixV2.wsURL("ftp://x"); err == nil {
		t.Error("wsURL(ftp://x) succeeded")
	}
	if _, err := newDialer("ws://192.0.2.1/socket", phoenixV2, 10, 3, 1); err == nil {
		t.Error("several source addresses accepted for a non-loopback server")
	}
}

// The paced schedule spreads pushes evenly: socket i of n sends its k-th
// push (i + k*n)/rate seconds after the start, so all sockets together
// send rate pushes per second and no two are due at the same time.
func TestPaceDue(t *testing.T) {
	begin := time.Unix(1000, 0)
	const n, rate = 4, 100.0
	seen := map[time.Duration]bool{}
	for i := range n {
		p := pace{begin: begin, rate: rate, index: i, n: n}
		for k := range 5 {
			d := p.due(k).Sub(begin)
			if want := time.Duration(i+k*n) * 10 * time.Millisecond; d != want {
				t.Fatalf("socket %d push %d due at %v, want %v", i, k, d, want)
			}
			if seen[d] {
				t.Fatalf("two pushes due at %v", d)
			}
			seen[d] = true
		}
	}
}
