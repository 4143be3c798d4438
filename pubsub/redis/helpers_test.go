package redisbroker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap/zaptest"
)

// sharedAddr is the Redis server the tests share; each test uses its own
// key prefix (and a random database), so that runs never collide.
const sharedAddr = "127.0.0.1:6379"

// requireRedis skips the test when addr does not answer, or fails it when
// the CI environment variable is set.
func requireRedis(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s unreachable in CI: %v", addr, err)
		}
		t.Skipf("redis at %s unreachable, skipping: %v", addr, err)
	}
	_ = c.Close()
}

// testEnv is one test's namespace on a Redis server.
type testEnv struct {
	url      string
	prefix   string
	sentinel []string // sentinel addresses instead of url
	cluster  []string // cluster node addresses instead of url
}

// newEnv returns a namespace on the shared server whose keys are deleted
// when the test ends.
func newEnv(t testing.TB) testEnv {
	t.Helper()
	requireRedis(t, sharedAddr)
	env := testEnv{
		url:    fmt.Sprintf("redis://%s/%d", sharedAddr, 8+rand.IntN(8)),
		prefix: fmt.Sprintf("test-%016x:", rand.Uint64()),
	}
	t.Cleanup(func() { env.cleanup(t) })
	return env
}

// options returns Options for env with short timeouts and a test logger.
func (env testEnv) options(t testing.TB) Options {
	return Options{
		URL:            env.url,
		Sentinel:       SentinelOptions{Addrs: env.sentinel, MasterName: sentinelName(env.sentinel)},
		Cluster:        ClusterOptions{Addrs: env.cluster},
		KeyPrefix:      env.prefix,
		DialTimeout:    time.Second,
		CommandTimeout: time.Second,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		Logger:         zaptest.NewLogger(t),
	}
}

// cleanup deletes every key of env.
func (env testEnv) cleanup(t testing.TB) {
	opt, err := rueidis.ParseURL(env.url)
	if err != nil {
		t.Error(err)
		return
	}
	opt.ForceSingleClient, opt.DisableCache = true, true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return // the server is gone; nothing to clean
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(env.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		if len(e.Elements) > 0 {
			c.Do(ctx, c.B().Del().Key(e.Elements...).Build())
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}
