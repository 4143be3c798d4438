package integration

// Two real Caddy nodes on a three-server NATS cluster with JetStream
// (streams of three replicas), phoenix.js clients on both (js/ha.test.mjs),
// through the SIGKILL of the server node A is connected to, made the
// leader of the history stream first, and its restart: broadcasts cross nodes before and after, _since catch-up
// returns every message that got a 202 exactly once, presence lists
// converge without a live user leaving.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// haPubsubLine is a node's pubsub directive: seed is the one server it
// lists (it learns the others from the cluster), name its connection name.
func haPubsubLine(seed, prefix, name string) string {
	return fmt.Sprintf(`pubsub nats %s {
			name %s
			prefix %s
			replicas 3
			presence_ttl 2s
			max_reconnect_wait 500ms
		}`, seed, name, prefix)
}

// connectionServer returns the name of the server holding a client
// connection named name, from each server's /connz, or "".
func connectionServer(c *pubsubtest.NATSCluster, name string) string {
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(s.MonitorPort) + "/connz")
		if err != nil {
			continue
		}
		var connz struct {
			Conns []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		err = json.NewDecoder(res.Body).Decode(&connz)
		res.Body.Close()
		if err != nil {
			continue
		}
		for _, cn := range connz.Conns {
			if cn.Name == name {
				return s.Name
			}
		}
	}
	return ""
}

// leadOn moves the leadership of stream to the server named name by
// asking its leader to step down until the election picks that server.
func leadOn(t *testing.T, c *pubsubtest.NATSCluster, stream, name string) {
	nc, err := nats.Connect(strings.Join(c.URLs(), ","))
	if err != nil {
		t.Errorf("connect: %v", err)
		return
	}
	defer nc.Close()
	for range 20 {
		leader := ""
		pubsubtest.WaitFor(t, 20*time.Second, "a leader of "+stream, func() bool {
			leader = c.StreamLeader(stream)
			return leader != ""
		})
		if leader == name {
			return
		}
		if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second); err != nil {
			t.Logf("step down: %v", err)
		}
		pubsubtest.WaitFor(t, 20*time.Second, "the step-down of "+leader, func() bool { return c.StreamLeader(stream) != leader })
	}
	t.Logf("%s still does not lead %s; going on", name, stream)
}

func TestHANATS(t *testing.T) {
	node := requireNode(t)
	c := pubsubtest.NewNATSCluster(t, 3)
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("ha%d", time.Now().UnixNano())
	var urls []string
	for i, name := range []string{"caddy-a", "caddy-b"} {
		port := freePort(t)
		file := filepath.Join(t.TempDir(), "Caddyfile")
		conf := clusterCaddyfile(port, haPubsubLine(c.Servers[i].URL(), prefix, name))
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		startProc(t, bin, "run", "--config", file, "--adapter", "caddyfile")
		waitPort(t, "127.0.0.1:"+strconv.Itoa(port), 20*time.Second)
		urls = append(urls, fmt.Sprintf("ws://127.0.0.1:%d/socket", port))
	}
	pubsubtest.WaitFor(t, 20*time.Second, "both nodes connected to NATS", func() bool {
		return connectionServer(c, "caddy-a") != "" && connectionServer(c, "caddy-b") != ""
	})
	t.Logf("node A on %s, node B on %s", connectionServer(c, "caddy-a"), connectionServer(c, "caddy-b"))

	// The JS test asks for the kill and the restart through this server.
	var victim atomic.Pointer[pubsubtest.NATSClusterServer]
	control := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/kill-server-of-a":
			v := c.Server(connectionServer(c, "caddy-a"))
			victim.Store(v)
			// The worst case: the server also leads the history stream.
			stream := strings.ReplaceAll(prefix, ".", "_") + "_history"
			leadOn(t, c, stream, v.Name)
			leader := c.StreamLeader(stream)
			v.Kill()
			killed := time.Now()
			// Node A's connections are back once the server that holds
			// them is another one.
			for time.Since(killed) < 20*time.Second {
				if s := connectionServer(c, "caddy-a"); s != "" && s != v.Name {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("killed %s (history stream leader %s); node A on %s %v later", v.Name, leader,
				connectionServer(c, "caddy-a"), time.Since(killed).Round(time.Millisecond))
			fmt.Fprint(w, v.Name)
		case "/restart-server":
			v := victim.Load()
			v.Start()
			start := time.Now()
			c.WaitHealthy(30 * time.Second)
			t.Logf("%s restarted, healthy %v later", v.Name, time.Since(start).Round(time.Millisecond))
			fmt.Fprint(w, "ok")
		default:
			http.NotFound(w, r)
		}
	})
	runNodeWithControl(t, node, "ha.test.mjs", control, "HA_CONTROL",
		"HA_URL_A="+urls[0],
		"HA_URL_B="+urls[1],
		"HA_API_KEY="+clusterAPIKey,
	)
}
