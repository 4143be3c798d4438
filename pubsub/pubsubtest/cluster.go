package pubsubtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Cluster describes implementations whose instances share one backend, as
// the nodes of a cluster do. Nil fields skip their tests.
type Cluster struct {
	// NewBrokers returns n new, not yet started brokers that act as n nodes
	// on one backend. The suite closes them.
	NewBrokers func(t *testing.T, n int) []pubsub.Broker
	// NewPresences returns n presence managers of n nodes on one backend.
	// If they implement pubsub.PresenceExpirer, the suite also checks that
	// the entries of a node closed without Untrack are reported once,
	// cluster-wide, within ExpireWithin. The suite closes them.
	NewPresences func(t *testing.T, n int) []pubsub.PresenceManager
	// ExpireWithin bounds how long after a presence manager's Close its
	// entries are reported expired on a surviving node. 0 means 10s.
	ExpireWithin time.Duration
}

// RunCluster runs the multi-node conformance tests as subtests of t.
func RunCluster(t *testing.T, c Cluster) {
	t.Helper()
	if c.NewBrokers != nil {
		t.Run("CrossNodeDelivery", func(t *testing.T) { testCrossNodeDelivery(t, c) })
		t.Run("CrossNodeOrder", func(t *testing.T) { testCrossNodeOrder(t, c) })
		t.Run("CrossNodeHistory", func(t *testing.T) { testCrossNodeHistory(t, c) })
	}
	if c.NewPresences != nil {
		t.Run("PresenceMerged", func(t *testing.T) { testPresenceMerged(t, c) })
		t.Run("PresenceExpiresOnce", func(t *testing.T) { testPresenceExpiresOnce(t, c) })
	}
}

// startedNodes returns n started brokers with their recorders.
func startedNodes(t *testing.T, c Cluster, n int) ([]pubsub.Broker, []*recorder) {
	t.Helper()
	bs := c.NewBrokers(t, n)
	if len(bs) != n {
		t.Fatalf("NewBrokers returned %d brokers, want %d", len(bs), n)
	}
	rs := make([]*recorder, n)
	for i, b := range bs {
		rs[i] = newRecorder()
		t.Cleanup(func() {
			_ = b.Close()
			if v := rs[i].err(); v != "" {
				t.Errorf("handler of node %d: %s", i, v)
			}
		})
		if err := b.Start(rs[i].handle); err != nil {
			t.Fatalf("Start node %d: %v", i, err)
		}
	}
	return bs, rs
}

func testCrossNodeDelivery(t *testing.T, c Cluster) {
	bs, rs := startedNodes(t, c, 2)
	a, b := bs[0], bs[1]
	mustSubscribe(t, b, "t")
	m1 := &pubsub.Message{Topic: "t", Event: "e1", Payload: []byte{0, 1, 2}, Binary: true, Exclude: 42, Node: "node-a"}
	p1, err := a.Publish(bg(t), m1, pubsub.PublishOptions{HistorySize: 10})
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, a, "t", "e2", pubsub.PublishOptions{})
	mustPublish(t, b, "t", "e3", pubsub.PublishOptions{})
	got := waitCount(t, rs[1], "t", 3)
	if !slices.Equal(names(got), []string{"e1", "e2", "e3"}) && !slices.Equal(names(got), []string{"e1", "e3", "e2"}) {
		t.Fatalf("node b got %v", names(got))
	}
	d := got[0]
	if string(d.Payload) != "\x00\x01\x02" || !d.Binary || d.Exclude != 42 || d.Node != "node-a" || d.Position != p1 {
		t.Errorf("node b got %+v, want the published message at %v", d, p1)
	}
	quiet()
	if n := len(rs[0].all()); n != 0 {
		t.Errorf("node a, not subscribed, got %d messages", n)
	}
	// Unsubscribing on b stops delivery to b while a receives.
	mustSubscribe(t, a, "t")
	mustUnsubscribe(t, b, "t")
	mustPublish(t, b, "t", "e4", pubsub.PublishOptions{})
	waitCount(t, rs[0], "t", 1)
	quiet()
	if n := rs[1].count("t"); n != 3 {
		t.Errorf("node b got %d messages after unsubscribing, want 3", n)
	}
}

func testCrossNodeOrder(t *testing.T, c Cluster) {
	const perNode = 100
	bs, rs := startedNodes(t, c, 2)
	for _, b := range bs {
		mustSubscribe(t, b, "t")
	}
	opts := pubsub.PublishOptions{HistorySize: 2 * perNode}
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() {
			for j := range perNode {
				m := &pubsub.Message{Topic: "t", Event: "e", Payload: fmt.Appendf(nil, "%d/%d", i, j)}
				if _, err := b.Publish(bg(t), m, opts); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var first []string
	for i, r := range rs {
		got := waitCount(t, r, "t", 2*perNode)
		var seen []string
		next := make([]int, len(bs))
		for k, m := range got {
			if m.Position.Seq != uint64(k+1) {
				t.Fatalf("node %d: delivery %d has seq %d", i, k, m.Position.Seq)
			}
			var p, n int
			if _, err := fmt.Sscanf(string(m.Payload), "%d/%d", &p, &n); err != nil {
				t.Fatal(err)
			}
			if p < 0 || p >= len(bs) || n != next[p] {
				t.Fatalf("node %d: delivery %d is %s, out of its publisher's order", i, k, m.Payload)
			}
			next[p]++
			seen = append(seen, string(m.Payload))
		}
		if i == 0 {
			first = seen
		} else if !slices.Equal(seen, first) {
			t.Errorf("nodes saw different orders")
		}
	}
}

func testCrossNodeHistory(t *testing.T, c Cluster) {
	bs, _ := startedNodes(t, c, 2)
	a, b := bs[0], bs[1]
	res := mustHistory(t, a, "t", pubsub.HistoryOptions{Limit: -1})
	p1 := mustPublish(t, b, "t", "e1", pubsub.PublishOptions{HistorySize: 5})
	if p1 != (pubsub.Position{Epoch: res.Latest.Epoch, Seq: 1}) {
		t.Errorf("publish on b at %v, want %s:1 (the stream History created on a)", p1, res.Latest.Epoch)
	}
	p2 := mustPublish(t, a, "t", "e2", pubsub.PublishOptions{HistorySize: 5})
	if p2 != (pubsub.Position{Epoch: p1.Epoch, Seq: 2}) {
		t.Errorf("publish on a at %v, want %s:2", p2, p1.Epoch)
	}
	since := res.Latest
	got := mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &since})
	if ev := events(t, got.Messages, p1.Epoch); !got.Recovered || !slices.Equal(ev, []string{"e1", "e2"}) || got.Latest != p2 {
		t.Errorf("history on b since %v: %v recovered %v latest %v", since, ev, got.Recovered, got.Latest)
	}
	mustPublish(t, a, "t", "e3", pubsub.PublishOptions{}) // drops the stream for every node
	got = mustHistory(t, b, "t", pubsub.HistoryOptions{Since: &p2})
	if got.Recovered || got.Latest.Epoch == p2.Epoch {
		t.Errorf("history on b after a dropped the stream: %+v", got)
	}
}

// presences returns n managers of c, closed when the test ends.
func presences(t *testing.T, c Cluster, n int) []pubsub.PresenceManager {
	t.Helper()
	ps := c.NewPresences(t, n)
	if len(ps) != n {
		t.Fatalf("NewPresences returned %d managers, want %d", len(ps), n)
	}
	for _, p := range ps {
		t.Cleanup(func() { _ = p.Close() })
	}
	return ps
}

func testPresenceMerged(t *testing.T, c Cluster) {
	ps := presences(t, c, 2)
	a, b := ps[0], ps[1]
	track := func(p pubsub.PresenceManager, topic string, e pubsub.PresenceEntry) {
		t.Helper()
		if err := p.Track(bg(t), topic, e); err != nil {
			t.Fatal(err)
		}
	}
	track(a, "t", pubsub.PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{"n":1}`), Node: "A"})
	track(b, "t", pubsub.PresenceEntry{ID: "r2", Key: "bob", Meta: []byte(`{"n":2}`), Node: "B"})
	want := `[r1 alice {"n":1} A][r2 bob {"n":2} B]`
	for i, p := range ps {
		if got := presenceString(mustList(t, p, "t")); got != want {
			t.Errorf("node %d lists %s, want %s", i, got, want)
		}
	}
	track(b, "t", pubsub.PresenceEntry{ID: "r2", Key: "bob", Meta: []byte(`{"n":3}`), Node: "B"})
	if err := a.Untrack(bg(t), "t", "r1"); err != nil {
		t.Fatal(err)
	}
	want = `[r2 bob {"n":3} B]`
	for i, p := range ps {
		if got := presenceString(mustList(t, p, "t")); got != want {
			t.Errorf("node %d lists %s, want %s", i, got, want)
		}
	}
}

func testPresenceExpiresOnce(t *testing.T, c Cluster) {
	ps := presences(t, c, 3)
	if _, ok := ps[0].(pubsub.PresenceExpirer); !ok {
		t.Skip("presence managers do not implement pubsub.PresenceExpirer")
	}
	within := c.ExpireWithin
	if within <= 0 {
		within = 10 * time.Second
	}
	var mu sync.Mutex
	reports := map[string]int{} // "node topic entry" -> count
	for i, p := range ps {
		p.(pubsub.PresenceExpirer).OnExpire(func(topic string, e pubsub.PresenceEntry) {
			mu.Lock()
			reports[fmt.Sprintf("%s [%s %s %s %s]", topic, e.ID, e.Key, e.Meta, e.Node)]++
			if i == 0 {
				reports["reported by the closed node"]++
			}
			mu.Unlock()
		})
	}
	track := func(p pubsub.PresenceManager, topic string, e pubsub.PresenceEntry) {
		t.Helper()
		if err := p.Track(bg(t), topic, e); err != nil {
			t.Fatal(err)
		}
	}
	track(ps[0], "t1", pubsub.PresenceEntry{ID: "r1", Key: "alice", Meta: []byte(`{}`), Node: "A"})
	track(ps[0], "t2", pubsub.PresenceEntry{ID: "r2", Key: "alice", Meta: []byte(`{"x":1}`), Node: "A"})
	track(ps[0], "t1", pubsub.PresenceEntry{ID: "r3", Key: "gone", Node: "A"})
	track(ps[1], "t1", pubsub.PresenceEntry{ID: "s1", Key: "bob", Node: "B"})
	track(ps[2], "t2", pubsub.PresenceEntry{ID: "s2", Key: "carol", Node: "C"})
	if err := ps[0].Untrack(bg(t), "t1", "r3"); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Close(); err != nil { // killed: no Untrack of r1, r2
		t.Fatal(err)
	}
	closed := time.Now()
	want := map[string]int{
		`t1 [r1 alice {} A]`:      1,
		`t2 [r2 alice {"x":1} A]`: 1,
	}
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(reports))
		for k, v := range reports {
			out[k] = v
		}
		return out
	}
	WaitFor(t, within, "the closed node's entries to be reported expired", func() bool {
		return len(snapshot()) >= len(want)
	})
	t.Logf("entries reported expired %v after Close", time.Since(closed).Round(time.Millisecond))
	// Survivors keep their entries alive for as long again.
	time.Sleep(min(within/2, time.Since(closed)))
	got := snapshot()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expiry reports %v, want %v", got, want)
	}
	if got := presenceString(mustList(t, ps[1], "t1")); got != `[s1 bob  B]` {
		t.Errorf("t1 lists %s, want only the survivor's entry", got)
	}
	if got := presenceString(mustList(t, ps[1], "t2")); got != `[s2 carol  C]` {
		t.Errorf("t2 lists %s, want only the survivor's entry", got)
	}
}
