package redisbroker

import (
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// newTestBroker returns an unstarted Broker of env.
func newTestBroker(t testing.TB, env testEnv) *Broker {
	t.Helper()
	b, err := New(env.options(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestPresence returns a Presence of env with the given TTL (0: the
// default), closed when the test ends.
func newTestPresence(t testing.TB, env testEnv, ttl time.Duration) *Presence {
	t.Helper()
	opts := env.options(t)
	opts.PresenceTTL = ttl
	p, err := NewPresence(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestBrokerConformance(t *testing.T) {
	pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker {
		return newTestBroker(t, newEnv(t))
	})
}

func TestPresenceConformance(t *testing.T) {
	pubsubtest.RunPresence(t, func(t *testing.T) pubsub.PresenceManager {
		return newTestPresence(t, newEnv(t), 0)
	})
}

// TestClusterConformance runs the multi-node tests: brokers and presence
// managers of several nodes on one Redis namespace, with a 1s presence TTL.
func TestClusterConformance(t *testing.T) {
	pubsubtest.RunCluster(t, clusterSuite(newEnv))
}

// clusterSuite is the multi-node suite's setup: the nodes of one test
// share a namespace from newEnv; presence entries expire after 1s.
func clusterSuite(newEnv func(testing.TB) testEnv) pubsubtest.Cluster {
	const ttl = time.Second
	return pubsubtest.Cluster{
		NewBrokers: func(t *testing.T, n int) []pubsub.Broker {
			env := newEnv(t)
			out := make([]pubsub.Broker, n)
			for i := range out {
				out[i] = newTestBroker(t, env)
			}
			return out
		},
		NewPresences: func(t *testing.T, n int) []pubsub.PresenceManager {
			env := newEnv(t)
			out := make([]pubsub.PresenceManager, n)
			for i := range out {
				out[i] = newTestPresence(t, env, ttl)
			}
			return out
		},
		ExpireWithin: 3 * ttl,
	}
}
