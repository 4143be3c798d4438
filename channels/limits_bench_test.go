package channels

import (
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// BenchmarkPushReply handles one pushed event answered by a reply rule,
// with no limits and with a message limit and a per-event limit that the
// pushes stay under: the cost of the limits on the push path.
func BenchmarkPushReply(b *testing.B) {
	for _, bc := range []struct {
		name  string
		lim   LimitsConfig
		event string
	}{
		{"unlimited", LimitsConfig{}, ""},
		{"limit_messages", LimitsConfig{Messages: Rate{N: 1 << 30, Per: time.Second}}, ""},
		{"limit_messages_and_event", LimitsConfig{Messages: Rate{N: 1 << 30, Per: time.Second}}, "1073741824/1s"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rules, err := CompileRules(RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"},
				HandleIn: []HandleInSpec{{Event: "echo", Action: "reply", Limit: bc.event}}}}})
			if err != nil {
				b.Fatal(err)
			}
			h, err := NewHub(Config{Rules: rules, Limits: bc.lim}, pubsub.NewMemory(), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { h.Close() })
			sub := newTestSubscriber(h, V2, "room:1")
			sub.joinRef = StringRef("1")
			s := sub.sock
			s.channels = channelList{sub}
			m := &Message{JoinRef: StringRef("1"), Ref: StringRef("2"), Topic: "room:1", Event: "echo", Payload: JSONPayload([]byte(`{"n":1}`))}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if n%benchDrainEvery == 0 {
					drainQueues([]*subscription{sub})
				}
				s.handle(m)
				n++
			}
			if got := len(s.wsq().pending); got != (n-1)%benchDrainEvery+1 {
				b.Fatalf("%d replies queued, want %d: pushes were refused", got, (n-1)%benchDrainEvery+1)
			}
		})
	}
}
