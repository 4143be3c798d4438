package natsbroker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
)

// streamEvents counts the JetStream advisories of stream creations and
// updates on a server.
type streamEvents struct{ created, updated atomic.Int64 }

func watchStreamEvents(t *testing.T, url string) *streamEvents {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ev := &streamEvents{}
	if _, err := nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.*.>", func(m *nats.Msg) {
		switch {
		case strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.STREAM.CREATED."):
			ev.created.Add(1)
		case strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.STREAM.UPDATED."):
			ev.updated.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ev
}

// setUpClient connects a client for cfg and sets its stream up.
func setUpClient(t *testing.T, o Options, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	t.Helper()
	c, err := dial(o, "broker", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ensure(ctx)
}

// TestStreamSetupUpdatesOnlyOnDrift starts nodes on the streams of a
// prefix: the first creates each stream, the next ones with the same
// settings neither create nor update it (an update racing a creation can
// hang nats-server 2.9 and crash it), and one with other settings updates
// it. It reads what the server reports, so a setting the server fills in
// (a default duplicate window, say) that the comparison misread would make
// every start an update.
func TestStreamSetupUpdatesOnlyOnDrift(t *testing.T) {
	for _, storage := range []string{"memory", "file"} {
		t.Run(storage, func(t *testing.T) {
			o := testOptions(t)
			o.Storage = storage
			o, err := o.normalize()
			if err != nil {
				t.Fatal(err)
			}
			ev := watchStreamEvents(t, o.URLs[0])
			b := &Broker{opts: o, names: newNames(o.Prefix)}
			p := &Presence{opts: o, names: newNames(o.Prefix)}
			configs := []jetstream.StreamConfig{b.historyStreamConfig(), p.streamConfig()}
			for round := range 3 {
				for _, cfg := range configs {
					if _, err := setUpClient(t, o, cfg); err != nil {
						t.Fatalf("round %d, %s: %v", round, cfg.Name, err)
					}
				}
			}
			time.Sleep(100 * time.Millisecond) // let the advisories arrive
			if c, u := ev.created.Load(), ev.updated.Load(); c != 2 || u != 0 {
				t.Fatalf("3 rounds of setting up 2 streams: %d created, %d updated; want 2 and 0", c, u)
			}

			changed := configs[0]
			changed.MaxMsgsPerSubject += 100
			s, err := setUpClient(t, o, changed)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.MaxMsgsPerSubject != changed.MaxMsgsPerSubject {
				t.Fatalf("after a setup with max %d per subject the stream keeps %d", changed.MaxMsgsPerSubject, info.Config.MaxMsgsPerSubject)
			}
			time.Sleep(100 * time.Millisecond)
			if u := ev.updated.Load(); u != 1 {
				t.Fatalf("a setup with other settings made %d updates; want 1", u)
			}
		})
	}
}

// TestStreamSetupConcurrentNodes has two nodes set up each of many fresh
// streams at the same moment, on a private server with file storage, as
// two Caddy nodes starting together do. Each setup must succeed and the
// server must live on: with CreateOrUpdateStream (the earlier setup),
// nats-server 2.9.10 left a setup unanswered after 289 and 475 streams in
// two runs of this test, and a longer probe crashed the server.
func TestStreamSetupConcurrentNodes(t *testing.T) {
	srv := startOwnServer(t)
	o := Options{URLs: []string{srv.url()}, Prefix: randomPrefix(), Storage: "file", Logger: zaptest.NewLogger(t)}
	o, err := o.normalize()
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{opts: o, names: newNames(o.Prefix)}
	base := b.historyStreamConfig()
	var clients [2]*client
	for i := range clients {
		c, err := dial(o, "broker", base, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		clients[i] = c
	}
	for n := range 600 {
		cfg := base
		cfg.Name = fmt.Sprintf("%s_%d", base.Name, n)
		cfg.Subjects = []string{fmt.Sprintf("setup%d.>", n)}
		cfg.RePublish = &jetstream.RePublish{Source: fmt.Sprintf("setup%d.>", n), Destination: fmt.Sprintf("setuplive%d.>", n)}
		var wg sync.WaitGroup
		errs := make([]error, len(clients))
		for i, c := range clients {
			c.mu.Lock()
			c.cfg, c.stream, c.configured = cfg, nil, false
			c.mu.Unlock()
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, errs[i] = c.ensure(ctx)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("stream %d, node %d: %v", n, i, err)
			}
		}
		js, _ := jetstream.New(clients[0].nc)
		if err := js.DeleteStream(context.Background(), cfg.Name); err != nil {
			t.Fatalf("stream %d: delete: %v", n, err)
		}
	}
}
