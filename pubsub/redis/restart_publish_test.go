package redisbroker

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// TestRedisPublishAfterRestartSucceeds: once Redis is back after a
// restart and the broker's pub/sub connection is restored, every publish
// succeeds. rueidis pipelines commands over several connections and, on
// a connection that no call is waiting on, reads nothing: without a
// reader on every connection (AlwaysPipelining) each stale connection
// failed the first call that landed on it with EOF, long after Redis had
// come back (a 503 from the publish API while the cluster delivered).
func TestRedisPublishAfterRestartSucceeds(t *testing.T) {
	srv := newServer(t)
	srv.Start()
	opts, logs := faultOptions(srv)
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{}
	if err := b.Start(in.handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Subscribe(deadlineCtx(t, time.Second), "t"); err != nil {
		t.Fatal(err)
	}
	// publish sends the kinds of call the hub makes: a plain PUBLISH and
	// the history script, whose keys spread it over every connection.
	publish := func(i int) error {
		for _, o := range []pubsub.PublishOptions{{Transient: true}, {}, {HistorySize: 100}} {
			m := &pubsub.Message{Topic: "t", Payload: fmt.Appendf(nil, "%d", i)}
			if _, err := b.Publish(deadlineCtx(t, time.Second), m, o); err != nil {
				return err
			}
		}
		return nil
	}
	// Warm every pipelined connection up.
	for i := range 20 {
		if err := publish(i); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	pubsubtest.WaitFor(t, 10*time.Second, "the pub/sub connection to be restored", func() bool {
		return logs.FilterMessageSnippet("restored").Len() > 0
	})
	for i := range 50 {
		if err := publish(100 + i); err != nil {
			t.Fatalf("publish %d after Redis came back: %v", i, err)
		}
	}
	pubsubtest.WaitFor(t, 5*time.Second, "the last message", func() bool { return in.has("t", "149") })
}
