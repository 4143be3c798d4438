package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// TestRedisHungDialWithinTimeout makes calls on a hung Redis that each
// may need a connection not dialed yet (rueidis dials its pipelined
// connections on first use, with the call's context, and picks one at
// random for a keyed call): the dial reaches the paused server, which never
// answers the handshake. Without closing that connection when the call's
// context ends, rueidis gives up on it only after a goodbye PING that
// waits one more second, so about one call in five took 1.5 s instead of
// the 0.5 s command timeout. The bound leaves 0.75 s of that second for a
// loaded machine.
func TestRedisHungDialWithinTimeout(t *testing.T) {
	srv := newServer(t)
	srv.Start()
	opts, _ := faultOptions(srv)
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(*pubsub.Message) {}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPresence(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	bound := opts.CommandTimeout + 750*time.Millisecond
	calls := map[string]func(ctx context.Context, topic string) error{
		"history": func(ctx context.Context, topic string) error {
			_, err := b.History(ctx, topic, pubsub.HistoryOptions{})
			return err
		},
		"presence list": func(ctx context.Context, topic string) error {
			_, err := p.List(ctx, topic)
			return err
		},
	}
	for name, call := range calls {
		for i := range 12 {
			topic := fmt.Sprintf("hung-%d", i)
			start := time.Now()
			err := call(deadlineCtx(t, 10*time.Second), topic)
			d := time.Since(start)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s %s while Redis hangs: %v, want ErrUnavailable", name, topic, err)
			}
			if d > bound {
				t.Errorf("%s %s while Redis hangs took %v, want at most %v", name, topic, d, bound)
			}
		}
	}
	srv.Resume()
	_ = b.Close()
	_ = p.Close()
}
