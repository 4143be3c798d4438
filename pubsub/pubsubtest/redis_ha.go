package pubsubtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRedisHA skips the test when redis-server or redis-cli is not
// installed (or fails it when the CI environment variable is set): the
// Sentinel and Cluster helpers need both.
func RequireRedisHA(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed: %v", bin, err)
			}
			t.Skipf("%s not installed, skipping: %v", bin, err)
		}
	}
}

// RedisProc is one redis-server process (data node or sentinel) of a
// Sentinel or Cluster setup, on a free loopback port.
type RedisProc struct {
	Port int
	args []string
	cmd  *exec.Cmd
}

// Addr is 127.0.0.1:port.
func (p *RedisProc) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// Start runs the process and waits until it answers PING.
func (p *RedisProc) Start() error {
	p.cmd = exec.Command("redis-server", p.args...)
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on %d: %w", p.Port, err)
	}
	return waitFor(10*time.Second, func() bool {
		out, err := p.CLI("PING")
		return err == nil && out == "PONG"
	})
}

// Kill kills the process by its PID (SIGKILL, as a crash) and waits for it.
func (p *RedisProc) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Running reports whether the process was started and not killed.
func (p *RedisProc) Running() bool { return p.cmd != nil }

// CLI runs redis-cli against the process and returns its trimmed output.
func (p *RedisProc) CLI(args ...string) (string, error) {
	cmd := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port)}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// info returns field of INFO section on the process ("" if absent).
func (p *RedisProc) info(section, field string) string {
	out, err := p.CLI("INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// newProc reserves a port for a process whose arguments args builds.
func newProc(dir string, args func(port int, dir string) ([]string, error)) (*RedisProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, strconv.Itoa(port))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	a, err := args(port, d)
	if err != nil {
		return nil, err
	}
	return &RedisProc{Port: port, args: a}, nil
}

// dataArgs are the arguments of an ephemeral data node.
func dataArgs(port int, dir string, extra ...string) []string {
	return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no"}, extra...)
}

// RedisSentinel is a master, a replica and sentinels monitoring them
// under the name "mymaster" with a 500 ms down-after time.
type RedisSentinel struct {
	Data      []*RedisProc // the master at start, then the replica
	Sentinels []*RedisProc
}

// SentinelMasterName is the name the sentinels of StartRedisSentinel use.
const SentinelMasterName = "mymaster"

// StartRedisSentinel starts one master, one replica and n sentinels
// (quorum n/2+1) with their files under dir. Close stops them.
func StartRedisSentinel(dir string, n int) (_ *RedisSentinel, err error) {
	s := &RedisSentinel{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	master, err := newProc(dir, func(port int, d string) ([]string, error) { return dataArgs(port, d), nil })
	if err != nil {
		return nil, err
	}
	replica, err := newProc(dir, func(port int, d string) ([]string, error) {
		return dataArgs(port, d, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port)), nil
	})
	if err != nil {
		return nil, err
	}
	s.Data = []*RedisProc{master, replica}
	for _, p := range s.Data {
		if err := p.Start(); err != nil {
			return nil, err
		}
	}
	for range n {
		sp, err := newProc(dir, func(port int, d string) ([]string, error) {
			conf := filepath.Join(d, "sentinel.conf")
			body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
				"sentinel monitor %s 127.0.0.1 %d %d\n"+
				"sentinel down-after-milliseconds %[3]s 500\n"+
				"sentinel failover-timeout %[3]s 3000\n"+
				"sentinel parallel-syncs %[3]s 1\n", port, d, SentinelMasterName, master.Port, n/2+1)
			return []string{conf, "--sentinel"}, os.WriteFile(conf, []byte(body), 0o644)
		})
		if err != nil {
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, sp)
		if err := sp.Start(); err != nil {
			return nil, err
		}
	}
	return s, s.WaitHealthy(20 * time.Second)
}

// SentinelAddrs lists the sentinels' addresses.
func (s *RedisSentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, p := range s.Sentinels {
		out[i] = p.Addr()
	}
	return out
}

// Master returns the data node the sentinels name as master.
func (s *RedisSentinel) Master() (*RedisProc, error) {
	for _, sp := range s.Sentinels {
		out, err := sp.CLI("SENTINEL", "get-master-addr-by-name", SentinelMasterName)
		if err != nil {
			continue
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			continue
		}
		for _, p := range s.Data {
			if strconv.Itoa(p.Port) == f[1] {
				return p, nil
			}
		}
	}
	return nil, errors.New("no sentinel names a known master")
}

// WaitHealthy waits until every sentinel names the same running master,
// which serves as master, every other data node runs as its replica with
// the link up, and every sentinel knows all other sentinels and the
// replicas.
func (s *RedisSentinel) WaitHealthy(timeout time.Duration) error {
	err := waitFor(timeout, func() bool {
		m, err := s.Master()
		if err != nil || !m.Running() || m.info("replication", "role") != "master" {
			return false
		}
		for _, sp := range s.Sentinels {
			out, err := sp.CLI("SENTINEL", "get-master-addr-by-name", SentinelMasterName)
			if err != nil || !strings.HasSuffix(out, strconv.Itoa(m.Port)) {
				return false
			}
			if sp.sentinelCount("num-other-sentinels") != len(s.Sentinels)-1 ||
				sp.sentinelCount("num-slaves") != len(s.Data)-1 {
				return false
			}
		}
		for _, p := range s.Data {
			if p != m && (!p.Running() || p.info("replication", "master_link_status") != "up" ||
				p.info("replication", "master_port") != strconv.Itoa(m.Port)) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("sentinel setup not healthy: %w", err)
	}
	return nil
}

// sentinelCount reads a numeric field of SENTINEL MASTER.
func (p *RedisProc) sentinelCount(field string) int {
	out, err := p.CLI("SENTINEL", "master", SentinelMasterName)
	if err != nil {
		return -1
	}
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		if strings.TrimSpace(lines[i]) == field {
			n, _ := strconv.Atoi(strings.TrimSpace(lines[i+1]))
			return n
		}
	}
	return -1
}

// Failover kills the master (SIGKILL) and waits until the sentinels named
// and the replica took over the new master. It returns the killed node
// (restart it with Start: the sentinels make it a replica) and how long
// the promotion took, from the kill until the new master answered as
// master.
func (s *RedisSentinel) Failover(timeout time.Duration) (old *RedisProc, took time.Duration, err error) {
	old, err = s.Master()
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	old.Kill()
	err = waitFor(timeout, func() bool {
		m, err := s.Master()
		return err == nil && m != old && m.info("replication", "role") == "master"
	})
	if err != nil {
		return old, 0, fmt.Errorf("no failover after killing %s: %w", old.Addr(), err)
	}
	return old, time.Since(start), nil
}

// Close kills every process.
func (s *RedisSentinel) Close() {
	for _, p := range append(append([]*RedisProc(nil), s.Sentinels...), s.Data...) {
		p.Kill()
	}
}

// RedisCluster is a Redis Cluster of masters with one replica each, with
// a 1000 ms cluster-node-timeout and cluster-require-full-coverage off
// (the other shards serve while one fails over).
type RedisCluster struct {
	Nodes []*RedisProc
}

// StartRedisCluster starts masters*2 nodes with their files under dir and
// creates a cluster of masters with one replica each. Close stops them.
func StartRedisCluster(dir string, masters int) (_ *RedisCluster, err error) {
	c := &RedisCluster{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for range 2 * masters {
		p, err := newProc(dir, func(port int, d string) ([]string, error) {
			bus, err := freePort()
			return dataArgs(port, d, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(bus),
				"--cluster-require-full-coverage", "no", "--cluster-replica-validity-factor", "0"), err
		})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, p)
		if err := p.Start(); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := c.Nodes[0].CLI(args...); err != nil {
		return nil, fmt.Errorf("cluster create: %w: %s", err, out)
	}
	return c, c.WaitHealthy(30 * time.Second)
}

// Addrs lists the nodes' addresses.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		out[i] = p.Addr()
	}
	return out
}

// clusterNode is a line of CLUSTER NODES.
type clusterNode struct {
	port     int
	master   bool
	failed   bool
	slots    [][2]int
	masterID string
	id       string
}

// nodes parses CLUSTER NODES as p sees it.
func (p *RedisProc) nodes() ([]clusterNode, error) {
	out, err := p.CLI("CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("cluster nodes: %w: %s", err, out)
	}
	var ns []clusterNode
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		_, port, _ := net.SplitHostPort(addr)
		n := clusterNode{id: f[0], masterID: f[3]}
		n.port, _ = strconv.Atoi(port)
		n.master = strings.Contains(f[2], "master")
		n.failed = strings.Contains(f[2], "fail")
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if ok {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil {
				n.slots = append(n.slots, [2]int{a, b})
			}
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// byPort returns the node on port.
func (c *RedisCluster) byPort(port int) *RedisProc {
	for _, p := range c.Nodes {
		if p.Port == port {
			return p
		}
	}
	return nil
}

// live returns a running node.
func (c *RedisCluster) live() (*RedisProc, error) {
	for _, p := range c.Nodes {
		if p.Running() {
			return p, nil
		}
	}
	return nil, errors.New("no node running")
}

// MasterOf returns the master serving key's slot.
func (c *RedisCluster) MasterOf(key string) (*RedisProc, error) {
	p, err := c.live()
	if err != nil {
		return nil, err
	}
	out, err := p.CLI("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return nil, fmt.Errorf("cluster keyslot: %w: %s", err, out)
	}
	slot, err := strconv.Atoi(out)
	if err != nil {
		return nil, fmt.Errorf("cluster keyslot: %q", out)
	}
	ns, err := p.nodes()
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		for _, r := range n.slots {
			if n.master && !n.failed && r[0] <= slot && slot <= r[1] {
				if m := c.byPort(n.port); m != nil {
					return m, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no master serves slot %d", slot)
}

// WaitHealthy waits until every running node reports cluster_state ok,
// all 16384 slots are served by running masters, and every master has a
// running replica with its link up.
func (c *RedisCluster) WaitHealthy(timeout time.Duration) error {
	err := waitFor(timeout, func() bool {
		for _, p := range c.Nodes {
			if !p.Running() {
				return false
			}
			if out, err := p.CLI("CLUSTER", "INFO"); err != nil || !strings.Contains(out, "cluster_state:ok") {
				return false
			}
		}
		ns, err := c.Nodes[0].nodes()
		if err != nil {
			return false
		}
		slots, replicated := 0, map[string]bool{}
		for _, n := range ns {
			if n.failed {
				return false
			}
			if n.master {
				for _, r := range n.slots {
					slots += r[1] - r[0] + 1
				}
				continue
			}
			if p := c.byPort(n.port); p == nil || p.info("replication", "master_link_status") != "up" {
				return false
			}
			replicated[n.masterID] = true
		}
		for _, n := range ns {
			if n.master && len(n.slots) > 0 && !replicated[n.id] {
				return false
			}
		}
		return slots == 16384
	})
	if err != nil {
		return fmt.Errorf("redis cluster not healthy: %w", err)
	}
	return nil
}

// FailoverOf kills the master serving key's slot (SIGKILL) and waits
// until its replica took over the slot. It returns the killed node
// (restart it with Start: it rejoins as a replica) and how long the
// takeover took, from the kill until a running master served the slot.
func (c *RedisCluster) FailoverOf(key string, timeout time.Duration) (old *RedisProc, took time.Duration, err error) {
	old, err = c.MasterOf(key)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	old.Kill()
	err = waitFor(timeout, func() bool {
		m, err := c.MasterOf(key)
		return err == nil && m != old && m.info("replication", "role") == "master"
	})
	if err != nil {
		return old, 0, fmt.Errorf("no failover after killing %s: %w", old.Addr(), err)
	}
	return old, time.Since(start), nil
}

// Close kills every node.
func (c *RedisCluster) Close() {
	for _, p := range c.Nodes {
		p.Kill()
	}
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
