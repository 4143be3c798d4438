package redisbroker

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// The Sentinel setup and the Redis Cluster are started once per test
// binary, at their first use, and stopped by TestMain. Failover tests leave
// them healthy again (the killed node restarted as a replica).
var ha struct {
	mu       sync.Mutex
	dir      string
	sentinel *pubsubtest.RedisSentinel
	cluster  *pubsubtest.RedisCluster
	failed   error // a setup that did not start: later tests fail at once
	// heal restarts a node a failover test killed and waits until the setup
	// is healthy; the next user of the setup runs it (none, usually: the
	// failover tests come last).
	healSentinel, healCluster func() error
}

func TestMain(m *testing.M) {
	code := m.Run()
	ha.mu.Lock()
	if ha.sentinel != nil {
		ha.sentinel.Close()
	}
	if ha.cluster != nil {
		ha.cluster.Close()
	}
	if ha.dir != "" {
		_ = os.RemoveAll(ha.dir)
	}
	ha.mu.Unlock()
	os.Exit(code)
}

// haDir returns the directory of the shared setups' files; ha.mu is held.
func haDir(t testing.TB) string {
	if ha.dir == "" {
		d, err := os.MkdirTemp("", "redisbroker-ha-")
		if err != nil {
			t.Fatal(err)
		}
		ha.dir = d
	}
	return ha.dir
}

// sharedSentinel returns the binary's Sentinel setup (a master, a replica
// and three sentinels), starting it if needed.
func sharedSentinel(t testing.TB) *pubsubtest.RedisSentinel {
	t.Helper()
	return sharedSetup(t, &ha.healSentinel, &ha.sentinel, func(dir string) (*pubsubtest.RedisSentinel, error) {
		return pubsubtest.StartRedisSentinel(dir, 3)
	})
}

// sharedCluster returns the binary's Redis Cluster (three masters with one
// replica each), starting it if needed.
func sharedCluster(t testing.TB) *pubsubtest.RedisCluster {
	t.Helper()
	return sharedSetup(t, &ha.healCluster, &ha.cluster, func(dir string) (*pubsubtest.RedisCluster, error) {
		return pubsubtest.StartRedisCluster(dir, 3)
	})
}

// sharedSetup returns *setup, first running the pending *heal (left by a
// test that killed a server) or starting the setup if there is none. A
// failure is kept in ha.failed so that later tests fail at once instead
// of starting servers again.
func sharedSetup[T any](t testing.TB, heal *func() error, setup **T, start func(dir string) (*T, error)) *T {
	t.Helper()
	pubsubtest.RequireRedisHA(t)
	ha.mu.Lock()
	defer ha.mu.Unlock()
	if ha.failed != nil {
		t.Fatal(ha.failed)
	}
	if h := *heal; h != nil {
		*heal = nil
		if err := h(); err != nil {
			ha.failed = err
			t.Fatal(err)
		}
	}
	if *setup == nil {
		v, err := start(haDir(t))
		if err != nil {
			ha.failed = err
			t.Fatal(err)
		}
		*setup = v
	}
	return *setup
}

// newSentinelEnv returns a namespace on the shared Sentinel setup.
func newSentinelEnv(t testing.TB) testEnv {
	return testEnv{sentinel: sharedSentinel(t).SentinelAddrs(), prefix: randomPrefix()}
}

// newClusterEnv returns a namespace on the shared Redis Cluster.
func newClusterEnv(t testing.TB) testEnv {
	return testEnv{cluster: sharedCluster(t).Addrs(), prefix: randomPrefix()}
}

// randomPrefix is a key prefix of its own for one test.
func randomPrefix() string { return fmt.Sprintf("test-%016x:", rand.Uint64()) }

// sentinelName is the master name for sentinel addresses, or "".
func sentinelName(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	return pubsubtest.SentinelMasterName
}
