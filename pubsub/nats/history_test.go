package natsbroker

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// TestLongHistoryMatchesMemory publishes long histories, with trims and
// size changes, to this broker and to the in-memory one, and checks that
// History answers alike for positions spread over the whole stream (which
// exercises walks, jumps along marks and full scans).
func TestLongHistoryMatchesMemory(t *testing.T) {
	b, _ := startBroker(t, testOptions(t))
	mem := pubsub.NewMemory()
	if err := mem.Start(func(*pubsub.Message) {}); err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	type phase struct{ count, size int }
	phases := []phase{{150, 1000}, {200, 1000}, {60, 120}, {5, 400}}
	n := 0
	var nEpoch, mEpoch string
	for _, ph := range phases {
		for range ph.count {
			n++
			opts := pubsub.PublishOptions{HistorySize: ph.size}
			pn, err := b.Publish(bg, &pubsub.Message{Topic: "t", Event: strconv.Itoa(n)}, opts)
			if err != nil {
				t.Fatal(err)
			}
			pm, _ := mem.Publish(bg, &pubsub.Message{Topic: "t", Event: strconv.Itoa(n)}, opts)
			if pn.Seq != pm.Seq {
				t.Fatalf("publish %d at seq %d, memory %d", n, pn.Seq, pm.Seq)
			}
			nEpoch, mEpoch = pn.Epoch, pm.Epoch
		}
	}
	render := func(res pubsub.HistoryResult, epoch string) string {
		s := fmt.Sprintf("latest %d recovered %v:", res.Latest.Seq, res.Recovered)
		for i, m := range res.Messages {
			if m.Position.Epoch != epoch || m.Event != strconv.FormatUint(m.Position.Seq, 10) {
				return fmt.Sprintf("message %d: %s at %v", i, m.Event, m.Position)
			}
			if i == 0 || i == len(res.Messages)-1 {
				s += " " + m.Event
			}
		}
		return s + fmt.Sprintf(" (%d)", len(res.Messages))
	}
	var cases []pubsub.HistoryOptions
	for _, limit := range []int{0, 7, 100, -1} {
		cases = append(cases, pubsub.HistoryOptions{Limit: limit})
		for _, since := range []uint64{0, 50, 290, 291, 300, 330, 380, 400, 407, 410, 414, 415, 416} {
			cases = append(cases, pubsub.HistoryOptions{Since: &pubsub.Position{Seq: since}, Limit: limit})
		}
	}
	for _, c := range cases {
		name := fmt.Sprintf("limit %d", c.Limit)
		cn, cm := c, c
		if c.Since != nil {
			name += fmt.Sprintf(" since %d", c.Since.Seq)
			cn.Since = &pubsub.Position{Epoch: nEpoch, Seq: c.Since.Seq}
			cm.Since = &pubsub.Position{Epoch: mEpoch, Seq: c.Since.Seq}
		}
		rn, err := b.History(bg, "t", cn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rm, _ := mem.History(bg, "t", cm)
		if got, want := render(rn, nEpoch), render(rm, mEpoch); got != want {
			t.Errorf("%s: %s, memory %s", name, got, want)
		}
	}
}

// TestStreamDeleted checks that a history stream deleted under a running
// broker is recreated with new epochs for every topic.
func TestStreamDeleted(t *testing.T) {
	o := testOptions(t)
	b, r := startBroker(t, o)
	other, _ := startBroker(t, o)
	if err := b.Subscribe(bg, "t"); err != nil {
		t.Fatal(err)
	}
	opts := pubsub.PublishOptions{HistorySize: 10}
	var last pubsub.Position
	for i := range 3 {
		p, err := b.Publish(bg, &pubsub.Message{Topic: "t", Event: strconv.Itoa(i)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	deleteStreams(t, o.URLs[0], o.Prefix)
	// Another node writes first into the new stream; this node's cached
	// state of the topic must not be taken for the new stream's.
	p0, err := other.Publish(bg, &pubsub.Message{Topic: "t", Event: "other"}, opts)
	if err != nil {
		t.Fatalf("publish after the stream was deleted: %v", err)
	}
	p1, err := b.Publish(bg, &pubsub.Message{Topic: "t", Event: "again"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p0.Epoch == last.Epoch || p0.Seq != 1 || p1 != (pubsub.Position{Epoch: p0.Epoch, Seq: 2}) {
		t.Errorf("publishes after the deletion at %v and %v, before at %v", p0, p1, last)
	}
	res, err := b.History(bg, "t", pubsub.HistoryOptions{Since: &last})
	if err != nil || res.Recovered || res.Latest != p1 {
		t.Errorf("history since %v = %+v, %v", last, res, err)
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the messages of the new stream", func() bool { return len(r.all()) == 5 })
}
