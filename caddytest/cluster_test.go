package integration

// Two real Caddy processes (cmd/caddy, built once per run) share one
// broker, a private redis-server or nats-server this test starts on a free
// loopback port. phoenix.js clients on both nodes (js/cluster.test.mjs)
// check broadcasts across nodes, merged presence lists, catch-up after
// moving to the other node, a disconnect API call on one node closing a
// socket on the other, and a broker restart in the middle of the run.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// clusterAPIKey is the api_key of both nodes.
const clusterAPIKey = "cluster-key"

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something accepts on addr.
func waitPort(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp4", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v", addr, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proc is a process the test started; stop ends it by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	w := &lineLogger{t: t, prefix: filepath.Base(name) + ": "}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// clusterBroker is a private broker server of one engine.
type clusterBroker struct {
	t      *testing.T
	engine string
	port   int
	dir    string
	mu     sync.Mutex
	p      *proc
}

func (b *clusterBroker) start() {
	b.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(b.port)
	switch b.engine {
	case "redis":
		b.p = startProc(b.t, "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(b.port), "--save", "", "--appendonly", "no", "--dir", b.dir)
	case "nats":
		b.p = startProc(b.t, "nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(b.port), "-js", "-sd", b.dir)
	}
	waitPort(b.t, addr, 10*time.Second)
}

// restart stops the broker server and starts it again on the same port.
func (b *clusterBroker) restart() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.p.stop() // waits for the process to exit: the nodes' connections are dead from here on
	b.start()
}

// pubsubLine is the Caddyfile pubsub directive for the broker.
func (b *clusterBroker) pubsubLine(prefix string) string {
	switch b.engine {
	case "redis":
		return fmt.Sprintf("pubsub redis redis://127.0.0.1:%d/0 {\n\t\t\tkey_prefix %s:\n\t\t\tpresence_ttl 2s\n\t\t\treconnect_max 500ms\n\t\t}", b.port, prefix)
	default:
		return fmt.Sprintf("pubsub nats nats://127.0.0.1:%d {\n\t\t\tprefix %s\n\t\t\tpresence_ttl 2s\n\t\t\tmax_reconnect_wait 500ms\n\t\t}", b.port, prefix)
	}
}

// clusterCaddyfile is one node's config.
func clusterCaddyfile(port int, pubsub string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 1s
	log {
		level WARN
	}
}
http://127.0.0.1:%d {
	channels {
		api_key %s
		id "has(params.user) ? dyn('user_socket:' + params.user) : null"
		%s
		longpoll {
			window 1s
		}
		channel room:* {
			join allow
			handle_in msg broadcast
			presence {
				key "has(params.name) ? params.name : 'nobody'"
				batch 20ms
			}
		}
		channel feed:* {
			join allow
			history 1000
		}
	}
}
`, port, clusterAPIKey, pubsub)
}

// buildCaddy builds cmd/caddy once per test binary run.
var buildCaddy = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "channels-cluster-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/caddy")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ../cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
})

func TestClusterRedis(t *testing.T) { testCluster(t, "redis") }

func TestClusterNATS(t *testing.T) { testCluster(t, "nats") }

func testCluster(t *testing.T, engine string) {
	node := requireNode(t)
	for _, bin := range map[string]string{"redis": "redis-server", "nats": "nats-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("%s is not installed; set CI to make this a failure", bin)
			}
			t.Fatalf("%s is required when CI is set", bin)
		}
	}
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	broker := &clusterBroker{t: t, engine: engine, port: freePort(t), dir: t.TempDir()}
	broker.start()

	prefix := fmt.Sprintf("cluster%d", time.Now().UnixNano())
	var urls []string
	var nodes []*proc
	for range 2 {
		port := freePort(t)
		file := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(file, []byte(clusterCaddyfile(port, broker.pubsubLine(prefix))), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startProc(t, bin, "run", "--config", file, "--adapter", "caddyfile"))
		waitPort(t, "127.0.0.1:"+strconv.Itoa(port), 20*time.Second)
		urls = append(urls, fmt.Sprintf("ws://127.0.0.1:%d/socket", port))
	}

	// Before the JS test, which kills node B.
	t.Run("longpoll without sticky sessions", func(t *testing.T) { testClusterLongPoll(t, urls) })

	// The JS test asks for the broker restart through this control server.
	control := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/restart-broker":
			broker.restart()
			fmt.Fprint(w, "ok")
			return
		case "/kill-node-b": // a crash: no shutdown, no untrack
			nodes[1].cmd.Process.Kill()
			<-nodes[1].done
			fmt.Fprint(w, "ok")
			return
		}
		http.NotFound(w, r)
	})
	runNodeWithControl(t, node, "cluster.test.mjs", control, "CLUSTER_CONTROL",
		"CLUSTER_URL_A="+urls[0],
		"CLUSTER_URL_B="+urls[1],
		"CLUSTER_API_KEY="+clusterAPIKey,
		"CLUSTER_ENGINE="+engine,
	)
}
