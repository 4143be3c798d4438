package pubsubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSCluster is a cluster of nats-server processes with JetStream,
// private to one test: each server has its own client, route and
// monitoring ports on the loopback interface and its own JetStream
// directory, which survives a restart. A test may kill (SIGKILL) and
// restart any of them; all are killed when the test ends.
type NATSCluster struct {
	t       testing.TB
	Servers []*NATSClusterServer
}

// NATSClusterServer is one server of a NATSCluster.
type NATSClusterServer struct {
	// Name is the server_name, "n1", "n2", …, as JetStream reports it
	// (stream leaders, peers) and nats.Conn.ConnectedServerName returns.
	Name string
	// Port, RoutePort and MonitorPort are its client, cluster and HTTP
	// monitoring ports.
	Port, RoutePort, MonitorPort int

	t    testing.TB
	bin  string
	dir  string
	conf string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// NewNATSCluster writes the configs of an n-server cluster and starts its
// servers, returning once each has JetStream ready and the cluster has a
// meta leader. A missing nats-server skips the test, or fails it when the
// CI environment variable is set.
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("nats-server not installed: %v", err)
		}
		t.Skipf("nats-server not installed, skipping: %v", err)
	}
	c := &NATSCluster{t: t}
	for i := range n {
		s := &NATSClusterServer{
			Name: "n" + strconv.Itoa(i+1), t: t, bin: bin, dir: t.TempDir(),
			Port: FreePort(t), RoutePort: FreePort(t), MonitorPort: FreePort(t),
		}
		c.Servers = append(c.Servers, s)
	}
	var routes []string
	for _, s := range c.Servers {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(s.RoutePort))
	}
	for _, s := range c.Servers {
		s.conf = filepath.Join(s.dir, "nats.conf")
		if err := os.WriteFile(s.conf, []byte(s.config(routes)), 0o600); err != nil {
			t.Fatalf("write %s config: %v", s.Name, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Kill()
			if t.Failed() {
				s.logTail(40)
			}
		}
	})
	for _, s := range c.Servers {
		s.Start()
	}
	c.WaitHealthy(30 * time.Second)
	return c
}

// config is the server's configuration file.
func (s *NATSClusterServer) config(routes []string) string {
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
	store_dir: %q
}
cluster {
	name: channels-test
	listen: 127.0.0.1:%d
	routes: [
		%s
	]
}
`, s.Name, s.Port, s.MonitorPort, filepath.Join(s.dir, "js"), s.RoutePort, strings.Join(routes, "\n\t\t"))
}

// URLs are the client URLs of every server, running or not.
func (c *NATSCluster) URLs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.URL()
	}
	return out
}

// Server returns the server named name, failing the test if there is none.
func (c *NATSCluster) Server(name string) *NATSClusterServer {
	c.t.Helper()
	for _, s := range c.Servers {
		if s.Name == name {
			return s
		}
	}
	c.t.Fatalf("no NATS server named %q", name)
	return nil
}

// WaitHealthy waits until every running server answers /healthz with 200
// (JetStream ready and, for a restarted server, caught up with the
// cluster) and reports a meta leader, failing the test after timeout.
func (c *NATSCluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	WaitFor(c.t, timeout, "the NATS cluster to be healthy", func() bool {
		for _, s := range c.Servers {
			if s.Running() && (!s.Healthy() || s.MetaLeader() == "") {
				return false
			}
		}
		return true
	})
}

// StreamLeader returns the name of the server leading the JetStream
// stream, as the first running server that knows it reports it; "" if no
// running server reports a leader.
func (c *NATSCluster) StreamLeader(stream string) string {
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		if l := s.StreamLeader(stream); l != "" {
			return l
		}
	}
	return ""
}

// URL is the server's client URL.
func (s *NATSClusterServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// Start runs the server (again) and returns once it accepts client
// connections; it fails the test after 10 seconds. JetStream may not be
// ready yet: see NATSCluster.WaitHealthy.
func (s *NATSClusterServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("%s log: %v", s.Name, err)
	}
	defer log.Close()
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server %s: %v", s.Name, err)
	}
	s.cmd = cmd
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	deadline := time.Now().Add(10 * time.Second)
	for !acceptsTCP(addr) {
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server %s on %s not accepting within 10s", s.Name, addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL by its PID, as a crash would, and
// waits for it to exit. It is a no-op when the server is not running.
func (s *NATSClusterServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// PID is the server's process id, 0 when it is not running.
func (s *NATSClusterServer) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the server was started and not killed.
func (s *NATSClusterServer) Running() bool { return s.PID() != 0 }

// Healthy reports whether the server's /healthz answers 200.
func (s *NATSClusterServer) Healthy() bool {
	res, err := s.monitor("/healthz")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// MetaLeader returns the JetStream meta leader the server knows of, or "".
func (s *NATSClusterServer) MetaLeader() string {
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if s.monitorJSON("/jsz", &jsz) != nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

// StreamLeader returns the leader of the stream as this server reports
// it, or "" if it does not know the stream or of a leader.
func (s *NATSClusterServer) StreamLeader(stream string) string {
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name    string `json:"name"`
				Cluster *struct {
					Leader string `json:"leader"`
				} `json:"cluster"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if s.monitorJSON("/jsz?accounts=true&streams=true", &jsz) != nil {
		return ""
	}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			if st.Name == stream && st.Cluster != nil {
				return st.Cluster.Leader
			}
		}
	}
	return ""
}

// monitor GETs path on the monitoring port.
func (s *NATSClusterServer) monitor(path string) (*http.Response, error) {
	cl := http.Client{Timeout: time.Second}
	return cl.Get("http://127.0.0.1:" + strconv.Itoa(s.MonitorPort) + path)
}

// monitorJSON decodes the JSON answer to path on the monitoring port.
func (s *NATSClusterServer) monitorJSON(path string, v any) error {
	res, err := s.monitor(path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// logTail logs the last n lines of the server's log.
func (s *NATSClusterServer) logTail(n int) {
	b, err := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s.t.Logf("nats-server %s log (last %d lines):\n%s", s.Name, len(lines), strings.Join(lines, "\n"))
}
