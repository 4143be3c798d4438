package channels

import (
	"fmt"
	"testing"
)

// benchRoutingRules compiles n channel rules, exact ("topic:0", …) or
// wildcard ("ns0:*", …), and returns them with a topic that only the last
// rule matches: the worst case of a first-match scan.
func benchRoutingRules(b *testing.B, n int, wildcard bool) (*Rules, string, string) {
	b.Helper()
	spec := RulesSpec{}
	for i := range n {
		p := fmt.Sprintf("topic:%d", i)
		if wildcard {
			p = fmt.Sprintf("ns%d:*", i)
		}
		spec.Channels = append(spec.Channels, ChannelSpec{Pattern: p, Join: &GateSpec{Action: "allow"}})
	}
	r, err := CompileRules(spec)
	if err != nil {
		b.Fatalf("CompileRules: %v", err)
	}
	if wildcard {
		return r, fmt.Sprintf("ns%d:42", n-1), "42"
	}
	return r, fmt.Sprintf("topic:%d", n-1), ""
}

// BenchmarkRulesRoute routes a topic to the last of 1, 10 and 100 channel
// rules, exact and wildcard.
func BenchmarkRulesRoute(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, kind := range []string{"exact", "wildcard"} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, kind), func(b *testing.B) {
				r, topic, wantSub := benchRoutingRules(b, n, kind == "wildcard")
				rule, sub, ok := r.Route(topic)
				if !ok || rule != &r.Channels[n-1] || sub != wantSub {
					b.Fatalf("Route(%q) = %v, %q, %v; want the last rule", topic, rule, sub, ok)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, _, ok := r.Route(topic); !ok {
						b.Fatal("no route")
					}
				}
			})
		}
	}
}

// BenchmarkRulesRouteMiss scans 100 rules for a topic none matches, as a
// join of an unknown topic does.
func BenchmarkRulesRouteMiss(b *testing.B) {
	r, _, _ := benchRoutingRules(b, 100, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := r.Route("other:1"); ok {
			b.Fatal("unexpected route")
		}
	}
}
