package channels

import (
	"fmt"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// benchInterceptSubs is the subscriber count of the intercept benchmarks,
// the size the issue asks to measure; BenchmarkFanoutDeliver/subs=1000 is
// the plain broadcast to compare with.
const benchInterceptSubs = 1000

// benchInterceptPayload is the published payload: the shape of a chat
// message with a mute list.
const benchInterceptPayload = `{"body":"hello","ts":1234567890,"user_id":"u7","muted_by":["u3","u5"]}`

// BenchmarkFanoutIntercept fans one intercepted message out to 1,000 V2
// subscribers (Hub.deliver through deliverIntercepted). Cases:
//
//	drop+set      drop if a mute list names the subscriber, set mine: one
//	              drop if and one set, the configuration the issue names
//	drop          the drop if alone (payload forwarded unchanged)
//	set-distinct  set a value that differs per subscriber: no frame sharing
//	none          intercept without steps: a push with the join_ref
//
// joinrefs=same gives every subscriber join_ref "3", as phoenix.js clients
// that join one topic first do; joinrefs=distinct gives each its own, the
// worst case for frame sharing.
func BenchmarkFanoutIntercept(b *testing.B) {
	cases := []struct {
		name  string
		steps []InterceptStepSpec
	}{
		{"drop+set", []InterceptStepSpec{
			{DropIf: "assigns.user_id in payload.muted_by"},
			{Set: "mine", Expr: "payload.user_id == assigns.user_id"},
		}},
		{"drop", []InterceptStepSpec{{DropIf: "assigns.user_id in payload.muted_by"}}},
		{"set-distinct", []InterceptStepSpec{{Set: "to", Expr: "assigns.user_id"}}},
		{"none", nil},
	}
	for _, tc := range cases {
		for _, refs := range []string{"same", "distinct"} {
			b.Run(fmt.Sprintf("%s/joinrefs=%s/subs=%d", tc.name, refs, benchInterceptSubs), func(b *testing.B) {
				h, _ := newInterceptHub(b, RulesSpec{Channels: []ChannelSpec{{
					Pattern:   "room:*",
					Intercept: []InterceptSpec{{Event: "new_msg", Steps: tc.steps}},
				}}})
				subs := make([]*subscription, benchInterceptSubs)
				for i := range subs {
					jr := "3"
					if refs == "distinct" {
						jr = fmt.Sprint(i + 3)
					}
					subs[i] = newInterceptSubscriber(h, V2, "room:big", jr, map[string]any{"user_id": fmt.Sprintf("u%d", i)})
				}
				// The last subscriber is never muted, so runFanout's check
				// that it got every message holds.
				m := &pubsub.Message{Topic: "room:big", Event: "new_msg", Payload: []byte(benchInterceptPayload), Node: h.node}
				runFanout(b, subs, func() { h.deliver(m) })
			})
		}
	}
}
