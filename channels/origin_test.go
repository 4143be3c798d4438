package channels

import (
	"strings"
	"testing"
)

func TestOriginPolicyCheck(t *testing.T) {
	type check struct {
		origin string
		want   bool
	}
	tests := []struct {
		name      string
		entries   []string
		reqScheme string
		reqHost   string
		checks    []check
	}{
		{ // §8.5 item 61
			name:    "allowed origins",
			entries: []string{"//example.com", "http://scheme.com", "//port.com:81"},
			checks: []check{
				{"http://notallowed.com/", false},
				{"http://example.com/", true},
				{"https://example.com/", true},
				{"http://scheme.com/", true},
				{"https://scheme.com/", false},
				{"http://scheme.com:8080/", false},
				{"http://scheme.com:80/", true},
				{"http://port.com:81/", true},
				{"https://port.com:81/", true},
				{"http://port.com:82/", false},
				{"http://port.com/", false},
				{"http://EXAMPLE.com", true},
				{"http://example.com:4000", true},
			},
		},
		{ // §8.5 item 62
			name:    "wildcard subdomains",
			entries: []string{"https://*.ex.com", "http://*.ex.com"},
			checks: []check{
				{"http://org1.ex.com", true},
				{"https://org1.ex.com", true},
				{"https://ex.com", true},
				{"https://a.b.ex.com", true},
				{"https://org1.prefix-ex.com", false},
				{"https://prefix-ex.com", false},
				{"https://ex.com.evil.com", false},
				{"https://org1.ex.com:8443", false},
			},
		},
		{ // §8.5 item 62
			name:    "nested wildcard subdomains",
			entries: []string{"http://*.foo.example.com"},
			checks: []check{
				{"http://org1.foo.example.com", true},
				{"http://foo.example.com", true},
				{"http://bad.example.com", false},
				{"http://org1.prefix-foo.example.com", false},
				{"http://org1.bar.example.com", false},
			},
		},
		{ // §8.5 item 63
			name:    "subdomains need a wildcard",
			entries: []string{"//ex.com"},
			checks: []check{
				{"http://org1.ex.com", false},
				{"http://ex.com", true},
			},
		},
		{ // §8.5 item 64
			name:    "host-less origins rejected by a list",
			entries: []string{"//example.com"},
			checks: []check{
				{"file://", false},
				{"null", false},
				{"http://exa mple.com", false},
				{"http://example.com:99999", false},
				{"http://example.com:abc", false},
				{"", true}, // no Origin header
			},
		},
		{
			name:    "bare hosts",
			entries: []string{"example.com", "localhost:4000", "*.ex.org"},
			checks: []check{
				{"https://example.com", true},
				{"http://example.com:8080", true},
				{"http://localhost:4000", true},
				{"http://localhost:4001", false},
				{"https://a.ex.org", true},
				{"https://ex.org", true},
			},
		},
		{
			name:    "custom scheme",
			entries: []string{"chrome-extension://abcdef"},
			checks: []check{
				{"chrome-extension://abcdef", true},
				{"chrome-extension://other", false},
				{"http://abcdef", false},
			},
		},
		{
			name:    "ipv6",
			entries: []string{"http://[::1]:4000"},
			checks: []check{
				{"http://[::1]:4000", true},
				{"http://[::1]", false},
			},
		},
		{ // §8.5 item 66
			name: "conn http", entries: nil, reqScheme: "http", reqHost: "example.com",
			checks: []check{
				{"http://example.com", true},
				{"http://example.com:80", true},
				{"http://Example.COM", true},
				{"https://example.com", false},
				{"ws://example.com", false},
				{"wss://example.com", false},
				{"http://www.example.com", false},
				{"http://www.another.com", false},
				{"http://example.com:8080", false},
				{"null", false},
				{"file://", false},
				{"", true},
			},
		},
		{ // §8.5 item 66
			name: "conn https", entries: []string{"conn"}, reqScheme: "https", reqHost: "example.com:443",
			checks: []check{
				{"https://example.com", true},
				{"http://example.com", false},
				{"https://example.com:4000", false},
			},
		},
		{
			name: "conn explicit port", entries: []string{" conn "}, reqScheme: "HTTP", reqHost: "EXAMPLE.com:4000",
			checks: []check{
				{"http://example.com:4000", true},
				{"http://example.com", false},
			},
		},
		{
			name: "conn empty scheme means http", entries: []string{}, reqScheme: "", reqHost: "[::1]:4000",
			checks: []check{
				{"http://[::1]:4000", true},
				{"https://[::1]:4000", false},
			},
		},
		{
			name: "conn without request host", entries: nil, reqScheme: "http", reqHost: "",
			checks: []check{
				{"http://example.com", false},
				{"", true},
			},
		},
		{ // §8.5 items 64 and 67
			name: "off", entries: []string{"off"}, reqScheme: "http", reqHost: "example.com",
			checks: []check{
				{"http://anything.com", true},
				{"https://example.com:1", true},
				{"null", true},
				{"file://", true},
				{"%%%", true},
				{"", true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseOriginPolicy(tt.entries)
			if err != nil {
				t.Fatalf("ParseOriginPolicy(%q): %v", tt.entries, err)
			}
			for _, c := range tt.checks {
				if got := p.Check(c.origin, tt.reqScheme, tt.reqHost); got != c.want {
					t.Errorf("%s: Check(%q, %q, %q) = %v, want %v", p, c.origin, tt.reqScheme, tt.reqHost, got, c.want)
				}
			}
		})
	}
}

func TestOriginPolicyNilIsConn(t *testing.T) {
	var p *OriginPolicy
	if !p.Check("http://h.com", "http", "h.com") || p.Check("http://x.com", "http", "h.com") {
		t.Fatal("nil policy does not behave like conn mode")
	}
	if got := p.String(); got != "conn" {
		t.Fatalf("nil policy String() = %q, want %q", got, "conn")
	}
}

func TestParseOriginPolicyErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		wantErr string
	}{
		{"no host", []string{"https://"}, `entry "https://": origin has no host`},
		{"file", []string{"//ok.com", "file:///x"}, `entry "file:///x"`},
		{"empty entry", []string{""}, "empty origin"},
		{"off mixed", []string{"off", "//a.com"}, `"off" cannot be combined`},
		{"conn mixed", []string{"//a.com", "conn"}, `"conn" cannot be combined`},
		{"bad port", []string{"//a.com:x"}, `entry "//a.com:x"`},
		{"port zero", []string{"//a.com:0"}, "invalid port"},
		{"port too big", []string{"http://a.com:70000"}, "invalid port"},
		{"bare wildcard", []string{"https://*."}, `"*" is only allowed`},
		{"inner wildcard", []string{"https://a.*.com"}, `"*" is only allowed`},
		{"star", []string{"*"}, `"*" is only allowed`},
		{"bad url", []string{"http://a b.com"}, "parse origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseOriginPolicy(tt.entries)
			if err == nil {
				t.Fatalf("ParseOriginPolicy(%q) = %s, want error containing %q", tt.entries, p, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseOriginPolicy(%q) error %q, want it to contain %q", tt.entries, err, tt.wantErr)
			}
		})
	}
}

func TestOriginPolicyString(t *testing.T) {
	tests := []struct {
		entries []string
		want    string
	}{
		{nil, "conn"},
		{[]string{"conn"}, "conn"},
		{[]string{"OFF"}, "off"},
		{[]string{"//example.com", "http://scheme.com", "//port.com:81", "https://*.Ex.com", "http://[::1]:4000"},
			"origins [//example.com http://scheme.com:80 //port.com:81 https://*.ex.com:443 http://[::1]:4000]"},
	}
	for _, tt := range tests {
		p, err := ParseOriginPolicy(tt.entries)
		if err != nil {
			t.Fatalf("ParseOriginPolicy(%q): %v", tt.entries, err)
		}
		if got := p.String(); got != tt.want {
			t.Errorf("ParseOriginPolicy(%q).String() = %q, want %q", tt.entries, got, tt.want)
		}
	}
}

func TestOriginPoliciesAreIndependent(t *testing.T) { // §8.5 item 69
	a, errA := ParseOriginPolicy([]string{"//a.example"})
	b, errB := ParseOriginPolicy([]string{"//b.example"})
	if errA != nil || errB != nil {
		t.Fatalf("ParseOriginPolicy: %v, %v", errA, errB)
	}
	if !a.Check("https://a.example", "", "") || a.Check("https://b.example", "", "") {
		t.Error("policy a does not allow exactly a.example")
	}
	if !b.Check("https://b.example", "", "") || b.Check("https://a.example", "", "") {
		t.Error("policy b does not allow exactly b.example")
	}
}

func FuzzOriginCheck(f *testing.F) {
	f.Add("//example.com", "http://scheme.com", "http://example.com/", "http", "example.com")
	f.Add("https://*.ex.com", "", "https://org1.ex.com", "https", "ex.com:443")
	f.Add("conn", "", "http://h:80", "http", "h")
	f.Add("off", "", "null", "https", "")
	f.Add("", "", "file://", "", "[::1]:4000")
	f.Add("//port.com:81", "localhost:4000", "http://port.com:81", "ws", "x:y:z")
	f.Fuzz(func(t *testing.T, e1, e2, origin, reqScheme, reqHost string) {
		var entries []string
		for _, e := range []string{e1, e2} {
			if e != "" {
				entries = append(entries, e)
			}
		}
		p, err := ParseOriginPolicy(entries)
		if err != nil {
			if p != nil {
				t.Fatalf("ParseOriginPolicy(%q) returned a policy and error %v", entries, err)
			}
			return
		}
		_ = p.String()
		allowed := p.Check(origin, reqScheme, reqHost)
		if origin == "" && !allowed {
			t.Fatalf("%s rejected a request without Origin", p)
		}
		if p.mode == originOff && !allowed {
			t.Fatalf("off policy rejected %q", origin)
		}
	})
}
