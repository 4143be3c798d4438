package natsbroker

import (
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

func TestBrokerConformance(t *testing.T) {
	requireServer(t)
	pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker {
		return newTestBroker(t, testOptions(t))
	})
}

func TestPresenceConformance(t *testing.T) {
	requireServer(t)
	pubsubtest.RunPresence(t, func(t *testing.T) pubsub.PresenceManager {
		return newTestPresence(t, testOptions(t))
	})
}

// TestClusterConformance runs the multi-node suite: brokers and presence
// managers of one prefix act as the nodes of a cluster.
func TestClusterConformance(t *testing.T) {
	requireServer(t)
	pubsubtest.RunCluster(t, pubsubtest.Cluster{
		NewBrokers: func(t *testing.T, n int) []pubsub.Broker {
			o := testOptions(t)
			out := make([]pubsub.Broker, n)
			for i := range out {
				out[i] = newTestBroker(t, o)
			}
			return out
		},
		NewPresences: func(t *testing.T, n int) []pubsub.PresenceManager {
			o := testOptions(t)
			out := make([]pubsub.PresenceManager, n)
			for i := range out {
				out[i] = newTestPresence(t, o)
			}
			return out
		},
		ExpireWithin: 5 * time.Second,
	})
}
