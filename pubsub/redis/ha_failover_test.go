package redisbroker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// collector records the events a broker's Handler got.
type collector struct {
	mu     sync.Mutex
	events []string
	seen   map[string]int
}

func (c *collector) handle(m *pubsub.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	c.events = append(c.events, m.Event)
	c.seen[m.Event]++
}

func (c *collector) has(event string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[event] > 0
}

func (c *collector) duplicates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for e, n := range c.seen {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s x%d", e, n))
		}
	}
	return out
}

// failoverFunc kills the master serving the test's topic, waits for the
// promotion of its replica and returns how long that took. It leaves the
// restart of the killed node to the setup's next user.
type failoverFunc func(t *testing.T, topic string) time.Duration

// runFailover checks a failover between two nodes: broadcasts work again
// after it, nothing is delivered twice, and a catch-up from the last
// position before it either returns exactly the later messages or reports
// Recovered false (a new epoch), never a silent gap or a repeat.
func runFailover(t *testing.T, env testEnv, failover failoverFunc) {
	const topic, pre = "room:failover", 20
	opts := pubsub.PublishOptions{HistorySize: 1000}
	a, b := newTestBroker(t, env), newTestBroker(t, env)
	var got collector
	if err := a.Start(func(*pubsub.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(got.handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	ctx := context.Background()
	if err := b.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var last pubsub.Position
	for i := range pre {
		pos, err := a.Publish(ctx, &pubsub.Message{Topic: topic, Event: fmt.Sprintf("pre-%d", i)}, opts)
		if err != nil {
			t.Fatal(err)
		}
		last = pos
	}
	pubsubtest.WaitFor(t, 10*time.Second, "pre-failover broadcasts", func() bool { return got.has(fmt.Sprintf("pre-%d", pre-1)) })

	took := failover(t, topic)
	promoted := time.Now()
	failed, n := 0, 0
	var firstOK time.Duration
	// Publish until node B receives a broadcast published after the
	// failover: its subscription is back.
	pubsubtest.WaitFor(t, 30*time.Second, "a broadcast received after the failover", func() bool {
		ev := fmt.Sprintf("post-%d", n)
		if _, err := a.Publish(ctx, &pubsub.Message{Topic: topic, Event: ev}, opts); err != nil {
			failed++
			time.Sleep(20 * time.Millisecond)
			return false
		}
		if firstOK == 0 {
			firstOK = time.Since(promoted)
		}
		n++
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) && !got.has(ev) {
			time.Sleep(5 * time.Millisecond)
		}
		return got.has(ev)
	})
	t.Logf("failover: promotion %v after the kill; first publish succeeded %v after the promotion (%d failed); node B received again after %v (%d publishes)",
		took.Round(time.Millisecond), firstOK.Round(time.Millisecond), failed, time.Since(promoted).Round(time.Millisecond), n)
	if d := got.duplicates(); len(d) > 0 {
		t.Errorf("delivered twice: %v", d)
	}

	res, err := a.History(ctx, topic, pubsub.HistoryOptions{Since: &last})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered {
		if res.Latest.Epoch != last.Epoch {
			t.Fatalf("recovered across epochs %s -> %s", last.Epoch, res.Latest.Epoch)
		}
		for i, m := range res.Messages {
			if m.Position.Seq != last.Seq+uint64(i)+1 {
				t.Fatalf("catch-up message %d has seq %d after %d", i, m.Position.Seq, last.Seq)
			}
		}
	} else if res.Latest.Epoch == last.Epoch {
		t.Fatalf("not recovered within the same epoch %s (since %d, latest %d)", last.Epoch, last.Seq, res.Latest.Seq)
	}
	all, err := a.History(ctx, topic, pubsub.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept, count := 0, map[string]int{}
	for _, m := range all.Messages {
		count[m.Event]++
		if count[m.Event] == 2 {
			t.Errorf("history holds %s twice", m.Event)
		}
		if len(m.Event) > 4 && m.Event[:4] == "pre-" {
			kept++
		}
	}
	t.Logf("catch-up from the last pre-failover position: recovered=%v, epoch %s -> %s; history kept %d of %d pre-failover messages",
		res.Recovered, last.Epoch, res.Latest.Epoch, kept, pre)
}

func TestSentinelFailover(t *testing.T) {
	s := sharedSentinel(t)
	runFailover(t, newSentinelEnv(t), func(t *testing.T, _ string) time.Duration {
		old, took, err := s.Failover(30 * time.Second)
		heal(&ha.healSentinel, old, s.WaitHealthy)
		if err != nil {
			t.Fatal(err)
		}
		return took
	})
}

func TestRedisClusterFailover(t *testing.T) {
	c := sharedCluster(t)
	env := newClusterEnv(t)
	runFailover(t, env, func(t *testing.T, topic string) time.Duration {
		k := keys{prefix: env.prefix, sharded: true}
		old, took, err := c.FailoverOf(k.historyMeta(topic), 30*time.Second)
		heal(&ha.healCluster, old, c.WaitHealthy)
		if err != nil {
			t.Fatal(err)
		}
		return took
	})
}

// heal records in *dst the restart of the killed node old (if any) for the
// setup's next user.
func heal(dst *func() error, old *pubsubtest.RedisProc, healthy func(time.Duration) error) {
	if old == nil {
		return
	}
	ha.mu.Lock()
	defer ha.mu.Unlock()
	*dst = func() error {
		if err := old.Start(); err != nil {
			return err
		}
		return healthy(30 * time.Second)
	}
}
