package channels

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// orderBroker is the in-memory broker with its Subscribe slowed down: it
// records when a subscription to watch starts and ends, waiting up to
// hold (or until released) in between, so the test can see whether a
// client saw its socket open before the subscription was in place.
type orderBroker struct {
	*pubsub.Memory
	watch   string
	hold    time.Duration
	release chan struct{}

	mu     sync.Mutex
	events []string
}

func (b *orderBroker) record(e string) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

func (b *orderBroker) Subscribe(ctx context.Context, topic string) error {
	if topic != b.watch {
		return b.Memory.Subscribe(ctx, topic)
	}
	b.record("subscribe")
	select {
	case <-b.release:
	case <-time.After(b.hold):
	}
	err := b.Memory.Subscribe(ctx, topic)
	b.record("subscribed")
	return err
}

// The socket id's broker subscription is in place before the handshake
// answers 101, so a disconnect by id published as soon as the client sees
// the socket open (from any node) is not lost.
func TestSocketIDSubscribedBeforeOpen(t *testing.T) {
	b := &orderBroker{Memory: pubsub.NewMemory(), watch: "user:7", hold: 300 * time.Millisecond, release: make(chan struct{})}
	rules := testRules(t, RulesSpec{ID: "'user:' + params.id"})
	h, err := NewHub(Config{Rules: rules}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c := wsDial(t, serveHub(t, h)+"/websocket?vsn=2.0.0&id=7")
	b.record("open")
	close(b.release)

	b.mu.Lock()
	got := append([]string(nil), b.events...)
	b.mu.Unlock()
	if len(got) != 3 || got[0] != "subscribe" || got[1] != "subscribed" || got[2] != "open" {
		t.Fatalf("order = %v, want [subscribe subscribed open]", got)
	}

	// And the disconnect then reaches the socket.
	if err := h.Disconnect(context.Background(), "user:7"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, CloseGoingAway) {
				t.Fatalf("socket ended with %v, want close 1001", err)
			}
			return
		}
	}
}

// A disconnect by id published the moment each client sees its socket
// open closes every one of them, also when the disconnect overtakes the
// server on its way from the 101 to the socket's first write: the socket
// is registered under its id before the 101, and a close that reaches it
// before it can send is carried out when it opens. Sockets are dialed
// from several goroutines at once so that the window is hit often.
func TestDisconnectAsSoonAsOpen(t *testing.T) {
	rules := testRules(t, RulesSpec{ID: "'user:' + params.id"})
	h, err := NewHub(Config{Rules: rules}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	url := serveHub(t, h)
	const workers, perWorker = 4, 25
	errs := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("%d-%d", w, i)
				c, _, err := websocket.DefaultDialer.Dial(url+"/websocket?vsn=2.0.0&id="+id, nil)
				if err != nil {
					errs <- fmt.Errorf("dial %s: %w", id, err)
					continue
				}
				if err := h.Disconnect(context.Background(), "user:"+id); err != nil {
					errs <- err
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, not a wait
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						if !websocket.IsCloseError(err, CloseGoingAway) {
							errs <- fmt.Errorf("socket %s ended with %v, want close 1001", id, err)
						}
						break
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
