package redisbroker

import (
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// runConformance runs the broker, presence and multi-node suites on the
// namespaces newEnv returns.
func runConformance(t *testing.T, newEnv func(testing.TB) testEnv) {
	t.Run("Broker", func(t *testing.T) {
		pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker { return newTestBroker(t, newEnv(t)) })
	})
	t.Run("Presence", func(t *testing.T) {
		pubsubtest.RunPresence(t, func(t *testing.T) pubsub.PresenceManager {
			return newTestPresence(t, newEnv(t), 0)
		})
	})
	t.Run("Cluster", func(t *testing.T) {
		pubsubtest.RunCluster(t, clusterSuite(newEnv))
	})
}

// TestSentinelConformance runs the conformance suites through Redis
// Sentinel (a master, a replica, three sentinels).
func TestSentinelConformance(t *testing.T) { runConformance(t, newSentinelEnv) }

// TestRedisClusterConformance runs the conformance suites on a Redis
// Cluster of three shards: every topic's keys and sharded channel on the
// shard of its hash slot.
func TestRedisClusterConformance(t *testing.T) { runConformance(t, newClusterEnv) }
