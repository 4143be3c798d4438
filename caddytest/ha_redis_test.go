package integration

// Two real Caddy nodes on a highly available Redis: Sentinel (a master, a
// replica, three sentinels) or Redis Cluster (three masters with one
// replica each), all from the redis-server binary on free loopback ports.
// phoenix.js clients (js/ha_redis.test.mjs) check broadcasts across nodes
// before and after the test kills the master serving their topic (SIGKILL
// by PID; /failover waits until the replica is promoted), a catch-up with
// _since that delivers every message once, and presence lists converging.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

func TestHARedisSentinel(t *testing.T) {
	pubsubtest.RequireRedisHA(t)
	s, err := pubsubtest.StartRedisSentinel(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	line := fmt.Sprintf("pubsub redis sentinel %s {\n\t\t\tmaster_name %s\n\t\t\tkey_prefix %%s:\n\t\t\tpresence_ttl 8s\n\t\t\treconnect_max 500ms\n\t\t}",
		strings.Join(s.SentinelAddrs(), " "), pubsubtest.SentinelMasterName)
	testHARedis(t, line, func(string) (time.Duration, error) {
		_, took, err := s.Failover(30 * time.Second)
		return took, err
	})
}

func TestHARedisCluster(t *testing.T) {
	pubsubtest.RequireRedisHA(t)
	c, err := pubsubtest.StartRedisCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	line := fmt.Sprintf("pubsub redis cluster %s {\n\t\t\tkey_prefix %%s:\n\t\t\tpresence_ttl 8s\n\t\t\treconnect_max 500ms\n\t\t}",
		strings.Join(c.Addrs(), " "))
	var prefix string
	testHARedis(t, line, func(topic string) (time.Duration, error) {
		// The topic's history hash, as the broker names it.
		_, took, err := c.FailoverOf(prefix+":{"+topic+"}:hm", 30*time.Second)
		return took, err
	}, &prefix)
}

// testHARedis runs two Caddy nodes with the pubsub line (whose %s is the
// key prefix) and the JS failover test; failover kills the master serving
// a topic and returns how long the promotion took. If prefixOut is given
// it receives the key prefix.
func testHARedis(t *testing.T, pubsubLine string, failover func(topic string) (time.Duration, error), prefixOut ...*string) {
	node := requireNode(t)
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("ha%d", time.Now().UnixNano())
	for _, p := range prefixOut {
		*p = prefix
	}
	var urls []string
	for range 2 {
		port := freePort(t)
		file := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(file, []byte(clusterCaddyfile(port, fmt.Sprintf(pubsubLine, prefix))), 0o600); err != nil {
			t.Fatal(err)
		}
		startProc(t, bin, "run", "--config", file, "--adapter", "caddyfile")
		waitPort(t, "127.0.0.1:"+strconv.Itoa(port), 20*time.Second)
		urls = append(urls, fmt.Sprintf("ws://127.0.0.1:%d/socket", port))
	}
	control := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/failover" {
			http.NotFound(w, r)
			return
		}
		took, err := failover(r.URL.Query().Get("topic"))
		if err != nil {
			t.Errorf("failover: %v", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t.Logf("failover: replica promoted %v after the master was killed", took.Round(time.Millisecond))
		_ = json.NewEncoder(w).Encode(map[string]int64{"promotion_ms": took.Milliseconds()})
	})
	runNodeWithControl(t, node, "ha_redis.test.mjs", control, "CLUSTER_CONTROL",
		"CLUSTER_URL_A="+urls[0],
		"CLUSTER_URL_B="+urls[1],
		"CLUSTER_API_KEY="+clusterAPIKey,
	)
}
