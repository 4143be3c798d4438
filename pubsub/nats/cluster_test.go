package natsbroker

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// TestTwoNodes runs two brokers and presence managers on one prefix, as two
// Caddy nodes: broadcasts and history cross nodes, presence is merged, and
// the entries of a killed node are reported once, by a survivor, within
// the documented time.
func TestTwoNodes(t *testing.T) {
	o := testOptions(t)
	o.PresenceTTL = time.Second
	a, ra := startBroker(t, o)
	b, rb := startBroker(t, o)
	for _, br := range []*Broker{a, b} {
		if err := br.Subscribe(bg, "room:1"); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := a.Publish(bg, &pubsub.Message{Topic: "room:1", Event: "hello", Node: "A", Exclude: 7}, pubsub.PublishOptions{HistorySize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(bg, &pubsub.Message{Topic: "room:1", Event: "hi", Node: "B"}, pubsub.PublishOptions{HistorySize: 10}); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"A": ra, "B": rb} {
		pubsubtest.WaitFor(t, 5*time.Second, "delivery on "+name, func() bool { return len(r.all()) == 2 })
		got := r.all()
		if got[0].Event != "hello" || got[0].Position != pos || got[0].Node != "A" || got[0].Exclude != 7 ||
			got[1].Event != "hi" || got[1].Position.Seq != 2 {
			t.Errorf("node %s got %+v %+v", name, got[0], got[1])
		}
	}

	// Presence: A and C track entries, B watches; A is killed.
	pa, pb, pc := newTestPresence(t, o), newTestPresence(t, o), newTestPresence(t, o)
	defer pb.Close()
	defer pc.Close()
	var mu sync.Mutex
	reports := map[string]int{}
	for name, p := range map[string]*Presence{"A": pa, "B": pb, "C": pc} {
		p.OnExpire(func(topic string, e pubsub.PresenceEntry) {
			mu.Lock()
			reports[fmt.Sprintf("%s %s/%s %s", name, topic, e.ID, e.Meta)]++
			mu.Unlock()
		})
	}
	track := func(p *Presence, topic, id string) {
		t.Helper()
		if err := p.Track(bg, topic, pubsub.PresenceEntry{ID: id, Key: id, Meta: []byte(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	track(pa, "room:1", "a1")
	track(pa, "room:2", "a2")
	track(pc, "room:1", "c1")
	if es, err := pb.List(bg, "room:1"); err != nil || len(es) != 2 {
		t.Fatalf("merged list = %v, %v", es, err)
	}
	kill(pa)
	killed := time.Now()
	// Survivors: 2/3 to 1.2 times the TTL after the kill, plus the time
	// of one check.
	pubsubtest.WaitFor(t, 3*o.PresenceTTL, "the killed node's entries to expire", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) == 2
	})
	t.Logf("expired %v after the kill", time.Since(killed).Round(time.Millisecond))
	if d := time.Since(killed); d < o.PresenceTTL/2 {
		t.Errorf("entries expired %v after the kill, sooner than the TTL allows", d)
	}
	time.Sleep(2 * o.PresenceTTL) // no second report, no report of live entries
	mu.Lock()
	var keys []string
	for k, n := range reports {
		keys = append(keys, fmt.Sprintf("%s x%d", k[2:], n))
		if k[0] == 'A' {
			t.Errorf("the killed node reported %s", k)
		}
	}
	mu.Unlock()
	sort.Strings(keys)
	if want := `[room:1/a1 {"id":"a1"} x1 room:2/a2 {"id":"a2"} x1]`; fmt.Sprint(keys) != want {
		t.Errorf("reports %v, want %s", keys, want)
	}
	for topic, want := range map[string]int{"room:1": 1, "room:2": 0} {
		if es, err := pc.List(bg, topic); err != nil || len(es) != want {
			t.Errorf("List(%s) = %v, %v; want %d entries", topic, es, err, want)
		}
	}
}

// TestTopicNames checks that topics holding subject syntax map to
// distinct subjects.
func TestTopicNames(t *testing.T) {
	o := testOptions(t)
	b, r := startBroker(t, o)
	topics := []string{"a.*", "a.>", "a.b", "a", "a b", ">", "*", "a\x00b", "ü.🙂"}
	for _, topic := range topics[:2] {
		if err := b.Subscribe(bg, topic); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range topics {
		if _, err := b.Publish(bg, &pubsub.Message{Topic: topic, Event: topic}, pubsub.PublishOptions{HistorySize: 1}); err != nil {
			t.Fatalf("publish %q: %v", topic, err)
		}
	}
	// A last message on a subscribed topic, published after the others
	// on the same connection, arrives after any stray one would have.
	if _, err := b.Publish(bg, &pubsub.Message{Topic: "a.*", Event: "last"}, pubsub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the last message", func() bool {
		all := r.all()
		return len(all) > 0 && all[len(all)-1].Event == "last"
	})
	var got []string
	for _, m := range r.all() {
		got = append(got, m.Topic)
	}
	if fmt.Sprint(got) != "[a.* a.> a.*]" {
		t.Errorf("delivered %q, want only the subscribed topics", got)
	}
	for _, topic := range topics[1:] { // a.* has the last message on top
		res, err := b.History(bg, topic, pubsub.HistoryOptions{})
		if err != nil || len(res.Messages) != 1 || res.Messages[0].Event != topic {
			t.Errorf("history of %q = %+v, %v", topic, res, err)
		}
	}
}
