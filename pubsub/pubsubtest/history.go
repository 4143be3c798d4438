package pubsubtest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// ttl is the HistoryTTL of the timing tests: long enough for a slow
// machine, short enough for a quick run.
const ttl = time.Second

// margin is the slack the timing tests leave around each expiry.
const margin = 100 * time.Millisecond

func testHistoryNewStream(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	res := mustHistory(t, b, "t", pubsub.HistoryOptions{Limit: -1})
	if res.Latest.Epoch == "" || res.Latest.Seq != 0 || !res.Recovered || res.Messages != nil {
		t.Fatalf("History of a new topic = %+v, want an empty stream", res)
	}
	if _, err := pubsub.ParsePosition(res.Latest.String()); err != nil {
		t.Fatalf("epoch %q does not parse: %v", res.Latest.Epoch, err)
	}
	epoch := res.Latest.Epoch
	if again := mustHistory(t, b, "t", pubsub.HistoryOptions{}); again.Latest != res.Latest || len(again.Messages) != 0 {
		t.Fatalf("second History = %+v, want the same empty stream", again)
	}
	pos := mustPublish(t, b, "t", "e1", pubsub.PublishOptions{HistorySize: 10})
	if pos != (pubsub.Position{Epoch: epoch, Seq: 1}) {
		t.Fatalf("first publish at %v, want %s:1", pos, epoch)
	}
	since := res.Latest
	res = mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since})
	if got := events(t, res.Messages, epoch); !res.Recovered || !slices.Equal(got, []string{"e1"}) || res.Latest != pos {
		t.Errorf("History since %v = %v recovered %v latest %v", since, got, res.Recovered, res.Latest)
	}
	quiet()
	if n := len(r.all()); n != 0 {
		t.Errorf("%d messages delivered without a subscription", n)
	}
}

func testHistorySince(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	opts := pubsub.PublishOptions{HistorySize: 3}
	var epoch string
	for i := 1; i <= 5; i++ {
		pos := mustPublish(t, b, "t", "e"+strconv.Itoa(i), opts)
		if i > 1 && pos.Epoch != epoch {
			t.Fatalf("publish %d changed the epoch from %q to %q", i, epoch, pos.Epoch)
		}
		epoch = pos.Epoch
		if pos.Seq != uint64(i) {
			t.Fatalf("publish %d got seq %d", i, pos.Seq)
		}
	}
	at := func(seq uint64) *pubsub.Position { return &pubsub.Position{Epoch: epoch, Seq: seq} }
	tests := []struct {
		name      string
		opts      pubsub.HistoryOptions
		want      []string
		recovered bool
	}{
		{"all kept", pubsub.HistoryOptions{}, []string{"e3", "e4", "e5"}, true},
		{"newest 2", pubsub.HistoryOptions{Limit: 2}, []string{"e4", "e5"}, true},
		{"limit above size", pubsub.HistoryOptions{Limit: 9}, []string{"e3", "e4", "e5"}, true},
		{"position only", pubsub.HistoryOptions{Limit: -1}, nil, true},
		{"since oldest gap", pubsub.HistoryOptions{Since: at(2)}, []string{"e3", "e4", "e5"}, true},
		{"since middle", pubsub.HistoryOptions{Since: at(3)}, []string{"e4", "e5"}, true},
		{"since paged", pubsub.HistoryOptions{Since: at(2), Limit: 2}, []string{"e3", "e4"}, true},
		{"since paged on", pubsub.HistoryOptions{Since: at(4), Limit: 2}, []string{"e5"}, true},
		{"since latest", pubsub.HistoryOptions{Since: at(5)}, nil, true},
		{"since position only", pubsub.HistoryOptions{Since: at(4), Limit: -1}, nil, true},
		{"since too old", pubsub.HistoryOptions{Since: at(1)}, nil, false},
		{"since zero", pubsub.HistoryOptions{Since: at(0)}, nil, false},
		{"since future", pubsub.HistoryOptions{Since: at(6)}, nil, false},
		{"other epoch", pubsub.HistoryOptions{Since: &pubsub.Position{Epoch: epoch + "x", Seq: 4}}, nil, false},
		{"zero position", pubsub.HistoryOptions{Since: &pubsub.Position{}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustHistory(t, b, "t", tt.opts)
			if got := events(t, res.Messages, epoch); !slices.Equal(got, tt.want) {
				t.Errorf("messages %v, want %v", got, tt.want)
			}
			if res.Recovered != tt.recovered {
				t.Errorf("recovered %v, want %v", res.Recovered, tt.recovered)
			}
			if res.Latest != *at(5) {
				t.Errorf("latest %v, want %s:5", res.Latest, epoch)
			}
			for _, m := range res.Messages {
				if m.Topic != "t" || string(m.Payload) != `{}` {
					t.Errorf("history message %+v, want topic t and payload {}", m)
				}
			}
		})
	}
}

func testHistorySizeChanges(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	publish := func(from, to, size int) {
		for i := from; i <= to; i++ {
			mustPublish(t, b, "t", strconv.Itoa(i), pubsub.PublishOptions{HistorySize: size})
		}
	}
	check := func(want ...string) {
		t.Helper()
		res := mustHistory(t, b, "t", pubsub.HistoryOptions{})
		if got := events(t, res.Messages, res.Latest.Epoch); !slices.Equal(got, want) {
			t.Errorf("history %v, want %v", got, want)
		}
		if n := len(res.Messages); n > 0 && res.Messages[n-1].Position != res.Latest {
			t.Errorf("newest message at %v, latest %v", res.Messages[n-1].Position, res.Latest)
		}
	}
	publish(1, 10, 10)
	check("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	publish(11, 11, 3) // shrinks
	check("9", "10", "11")
	publish(12, 14, 5) // grows again
	check("10", "11", "12", "13", "14")
	publish(15, 21, 1)
	check("21")
}

func testHistoryTTL(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	opts := pubsub.PublishOptions{HistorySize: 10, HistoryTTL: ttl}
	t0 := time.Now()
	p1 := mustPublish(t, b, "t", "e1", opts)
	t1 := time.Now() // e1 expires between t0+ttl and t1+ttl
	epoch := p1.Epoch
	sleepUntil(t1.Add(ttl / 2))
	t2 := time.Now()
	mustPublish(t, b, "t", "e2", opts)
	t3 := time.Now() // e2 and the stream expire between t2+ttl and t3+ttl

	res := mustHistory(t, b, "t", pubsub.HistoryOptions{})
	if !inTime(t, t0.Add(ttl-margin), "publishing two messages") {
		return
	}
	if got := events(t, res.Messages, epoch); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Fatalf("before expiry: %v", got)
	}

	sleepUntil(t1.Add(ttl + margin)) // e1 expired
	since0 := pubsub.Position{Epoch: epoch, Seq: 0}
	since1 := pubsub.Position{Epoch: epoch, Seq: 1}
	res = mustHistory(t, b, "t", pubsub.HistoryOptions{})
	res0 := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since0})
	res1 := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since1})
	if !inTime(t, t2.Add(ttl-margin), "reading history") {
		return
	}
	if got := events(t, res.Messages, epoch); !slices.Equal(got, []string{"e2"}) || res.Latest.Seq != 2 || res.Latest.Epoch != epoch {
		t.Fatalf("after e1 expired: %v latest %v", got, res.Latest)
	}
	if res0.Recovered || res0.Messages != nil {
		t.Errorf("since %v after expiry: %+v, want not recovered", since0, res0)
	}
	if got := events(t, res1.Messages, epoch); !res1.Recovered || !slices.Equal(got, []string{"e2"}) {
		t.Errorf("since %v: %v recovered %v", since1, got, res1.Recovered)
	}

	sleepUntil(t3.Add(ttl + margin)) // e2 expired and so did the stream
	since2 := pubsub.Position{Epoch: epoch, Seq: 2}
	res = mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since2})
	if res.Recovered || res.Latest.Epoch == epoch || res.Latest.Epoch == "" || res.Latest.Seq != 0 || res.Messages != nil {
		t.Fatalf("after stream expiry: %+v, want a new empty stream", res)
	}
	p := mustPublish(t, b, "t", "e3", opts)
	if p != (pubsub.Position{Epoch: res.Latest.Epoch, Seq: 1}) {
		t.Errorf("publish after recreation at %v, want %s:1", p, res.Latest.Epoch)
	}
}

func testStreamExpiryNewEpoch(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	mustSubscribe(t, b, "t")
	opts := pubsub.PublishOptions{HistorySize: 5, HistoryTTL: ttl}
	t0 := time.Now()
	p1 := mustPublish(t, b, "t", "e1", opts)
	sleepUntil(t0.Add(ttl * 6 / 10))
	t1 := time.Now()
	p2 := mustPublish(t, b, "t", "e2", opts) // refreshes the stream
	if !inTime(t, t0.Add(ttl-margin), "publishing") {
		return
	}
	sleepUntil(t1.Add(ttl * 6 / 10))
	p3 := mustPublish(t, b, "t", "e3", opts)
	t3 := time.Now()
	if !inTime(t, t1.Add(ttl-margin), "publishing") {
		return
	}
	if p1.Epoch != p2.Epoch || p2.Epoch != p3.Epoch || p3.Seq != 3 {
		t.Fatalf("positions %v %v %v, want one stream", p1, p2, p3)
	}
	sleepUntil(t3.Add(ttl + margin))
	p4 := mustPublish(t, b, "t", "e4", opts)
	if p4.Epoch == p3.Epoch || p4.Seq != 1 {
		t.Fatalf("publish after expiry at %v, want a new epoch at seq 1", p4)
	}
	got := waitCount(t, r, "t", 4)
	if !slices.Equal(names(got), []string{"e1", "e2", "e3", "e4"}) || got[3].Position != p4 || got[2].Position != p3 {
		t.Errorf("delivered %v, last at %v", names(got), got[len(got)-1].Position)
	}
}

func testHistoryTTLExtendsStream(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	opts := pubsub.PublishOptions{HistorySize: 5, HistoryTTL: ttl}
	t0 := time.Now()
	p := mustPublish(t, b, "t", "e1", opts)
	t1 := time.Now()
	last := t0
	for range 3 {
		sleepUntil(last.Add(ttl * 4 / 10))
		next := time.Now()
		mustHistory(t, b, "t", pubsub.HistoryOptions{Limit: -1, TTL: ttl})
		if !inTime(t, last.Add(ttl-margin), "extending the stream") {
			return
		}
		last = next
	}
	sleepUntil(t1.Add(ttl + margin)) // e1 has expired, the stream lives on
	res := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &p})
	since0 := pubsub.Position{Epoch: p.Epoch}
	res0 := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since0})
	next := mustPublish(t, b, "t", "e2", opts)
	if !inTime(t, last.Add(ttl-margin), "reading history") {
		return
	}
	// A client that saw e1 is up to date, one that saw nothing is not.
	if !res.Recovered || res.Latest != p || res.Messages != nil {
		t.Errorf("since latest after entry expiry: %+v", res)
	}
	if res0.Recovered {
		t.Errorf("since %v recovered although e1 expired", since0)
	}
	if next != (pubsub.Position{Epoch: p.Epoch, Seq: 2}) {
		t.Errorf("next publish at %v, want %s:2", next, p.Epoch)
	}
}

func testPublishWithoutHistoryDropsStream(t *testing.T, newBroker NewBroker) {
	b, r := started(t, newBroker)
	mustSubscribe(t, b, "t")
	p1 := mustPublish(t, b, "t", "e1", pubsub.PublishOptions{HistorySize: 5})
	m := &pubsub.Message{Topic: "t", Event: "e2", Position: pubsub.Position{Epoch: "stale", Seq: 9}}
	if pos, err := b.Publish(bg(t), m, pubsub.PublishOptions{}); err != nil || !pos.IsZero() {
		t.Fatalf("publish without history = %v, %v", pos, err)
	}
	got := waitCount(t, r, "t", 2)
	if !slices.Equal(names(got), []string{"e1", "e2"}) || got[0].Position != p1 || !got[1].Position.IsZero() {
		t.Errorf("delivered %v at %v, %v", names(got), got[0].Position, got[1].Position)
	}
	res := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &p1})
	if res.Recovered || res.Latest.Epoch == p1.Epoch || res.Latest.Seq != 0 || res.Messages != nil {
		t.Errorf("recovery across a message without history: %+v", res)
	}
	p3 := mustPublish(t, b, "t", "e3", pubsub.PublishOptions{HistorySize: 5})
	if p3 != (pubsub.Position{Epoch: res.Latest.Epoch, Seq: 1}) {
		t.Errorf("publish into the new stream at %v, want %s:1", p3, res.Latest.Epoch)
	}
}

func testHistoryTopicsIndependent(t *testing.T, newBroker NewBroker) {
	b, _ := started(t, newBroker)
	opts := pubsub.PublishOptions{HistorySize: 5}
	mustPublish(t, b, "a", "a1", opts)
	mustPublish(t, b, "a", "a2", opts)
	pb := mustPublish(t, b, "b", "b1", opts)
	if pb.Seq != 1 {
		t.Errorf("first publish on b at %v, want seq 1", pb)
	}
	mustPublish(t, b, "c", "c1", pubsub.PublishOptions{}) // no stream for c
	ra := mustHistory(t, b, "a", pubsub.HistoryOptions{})
	rb := mustHistory(t, b, "b", pubsub.HistoryOptions{})
	if got := events(t, ra.Messages, ra.Latest.Epoch); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("history of a: %v", got)
	}
	if got := events(t, rb.Messages, rb.Latest.Epoch); !slices.Equal(got, []string{"b1"}) || rb.Latest != pb {
		t.Errorf("history of b: %v latest %v", got, rb.Latest)
	}
	rc := mustHistory(t, b, "c", pubsub.HistoryOptions{})
	if rc.Messages != nil || rc.Latest.Seq != 0 || rc.Latest.Epoch == "" {
		t.Errorf("history of c: %+v, want a new empty stream", rc)
	}
}
