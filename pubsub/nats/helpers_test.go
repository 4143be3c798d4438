package natsbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// sharedURL is the NATS server (with JetStream) the tests use, unless
// NATS_TEST_URL names another.
func sharedURL() string {
	if u := os.Getenv("NATS_TEST_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// requireServer skips the test when the shared server is unreachable, or
// fails it when the CI environment variable is set.
func requireServer(t testing.TB) string {
	t.Helper()
	u := sharedURL()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("bad NATS_TEST_URL %q: %v", u, err)
	}
	conn, err := net.DialTimeout("tcp", parsed.Host, time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("NATS server %s unreachable: %v", u, err)
		}
		t.Skipf("NATS server %s unreachable (start nats-server -js): %v", u, err)
	}
	_ = conn.Close()
	return u
}

// randomPrefix returns a subject prefix unique to one test.
func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// testOptions returns Options for the shared server with a fresh prefix,
// whose streams are deleted when the test ends.
func testOptions(t testing.TB) Options {
	t.Helper()
	u := requireServer(t)
	o := Options{
		URLs:        []string{u},
		Prefix:      randomPrefix(),
		Storage:     "memory",
		PresenceTTL: 2 * time.Second,
		Logger:      zaptest.NewLogger(t),
	}
	t.Cleanup(func() { deleteStreams(t, u, o.Prefix) })
	return o
}

// deleteStreams removes the streams of prefix.
func deleteStreams(t testing.TB, u, prefix string) {
	nc, err := nats.Connect(u)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := newNames(prefix)
	for _, s := range []string{n.historyStream, n.presenceStream} {
		_ = js.DeleteStream(ctx, s)
	}
}

// newTestBroker returns a broker (not started) on the shared server.
func newTestBroker(t testing.TB, o Options) *Broker {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// newTestPresence returns a presence manager on the shared server.
func newTestPresence(t testing.TB, o Options) *Presence {
	t.Helper()
	p, err := NewPresence(o)
	if err != nil {
		t.Fatalf("NewPresence: %v", err)
	}
	return p
}

// recorder is a Handler keeping every message.
type recorder struct {
	mu   sync.Mutex
	msgs []*pubsub.Message
}

func (r *recorder) handle(m *pubsub.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// all returns the messages received so far.
func (r *recorder) all() []*pubsub.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pubsub.Message(nil), r.msgs...)
}

// startBroker starts a new broker with a recorder; it is closed when the
// test ends.
func startBroker(t testing.TB, o Options) (*Broker, *recorder) {
	t.Helper()
	b := newTestBroker(t, o)
	r := &recorder{}
	if err := b.Start(r.handle); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, r
}

// kill stops p as a crash would: no last heartbeat, no cleanup.
func kill(p *Presence) {
	if !p.life.Close() {
		return
	}
	close(p.done)
	p.wg.Wait()
	p.c.close()
}

var bg = context.Background()
