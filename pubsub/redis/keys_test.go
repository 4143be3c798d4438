package redisbroker

import (
	"strings"
	"testing"
)

// hashTag is the part of key Redis Cluster hashes: the first {…} with
// something inside, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func TestKeysShareOneSlotPerTopic(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		k := keys{prefix: "app:", sharded: sharded}
		for _, topic := range []string{"room:1", "a}b", "}x", "{y}", "}", "user_socket:42", "ω"} {
			names := []string{k.historyMeta(topic), k.historyStrm(topic), k.presenceHash(topic), k.presenceDead(topic)}
			if sharded {
				names = append(names, k.channel(topic))
			}
			tag := hashTag(names[0])
			for _, n := range names[1:] {
				if hashTag(n) != tag {
					t.Errorf("topic %q: %s hashes %q, %s hashes %q", topic, names[0], tag, n, hashTag(n))
				}
			}
			if !k.isChannel(k.channel(topic), topic) {
				t.Errorf("topic %q: isChannel(%q) false", topic, k.channel(topic))
			}
			if k.isChannel(k.channel(topic+"x"), topic) || k.isChannel(k.channel(topic), topic+"x") {
				t.Errorf("topic %q: isChannel accepts another topic's channel", topic)
			}
		}
		shared := []string{k.presenceIndex(), k.sweepClock(), k.sweepGrace()}
		for _, n := range shared {
			if hashTag(n) != "presence" {
				t.Errorf("%s hashes %q, want presence", n, hashTag(n))
			}
		}
	}
	// Distinct topics never share a key name.
	k := keys{prefix: "p:"}
	seen := map[string]string{}
	for _, topic := range []string{"a", "a}:hm", "}a", "#{x}}a", "{a}", "a:hm"} {
		for _, n := range []string{k.historyMeta(topic), k.historyStrm(topic), k.presenceHash(topic), k.presenceDead(topic)} {
			if other, ok := seen[n]; ok {
				t.Errorf("key %s of topic %q is also a key of %q", n, topic, other)
			}
			seen[n] = topic
		}
	}
	if got := (keys{prefix: "p:"}).channel("room"); got != "p:room" {
		t.Errorf("classic channel %q, want p:room (unchanged for rolling upgrades)", got)
	}
}
