package pubsubtest

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// ServerSpec describes how to run a broker server binary for one test.
type ServerSpec struct {
	// Binary is the executable looked up in PATH, such as "redis-server".
	Binary string
	// Args returns the command line of a server listening on 127.0.0.1:port
	// and keeping any files in dir.
	Args func(port int, dir string) []string
	// Ready reports whether the server at addr serves requests. Nil means
	// that accepting a TCP connection is enough.
	Ready func(addr string) bool
	// StartTimeout bounds the wait for Ready after each start; zero means
	// 10 seconds.
	StartTimeout time.Duration
}

// Server is a broker server process private to one test, on a loopback port
// reserved for it, so that the test may kill, restart, pause and resume it
// without touching the shared server other tests use. Its files live in a
// temporary directory that outlives restarts within the test. It is killed
// when the test ends.
type Server struct {
	t    testing.TB
	spec ServerSpec
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// NewServer reserves a port for a server of spec without starting it. A
// missing binary skips the test, or fails it when the CI environment
// variable is set (CI must run every broker test).
func NewServer(t testing.TB, spec ServerSpec) *Server {
	t.Helper()
	bin, err := exec.LookPath(spec.Binary)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: %v", spec.Binary, err)
		}
		t.Skipf("%s not installed, skipping: %v", spec.Binary, err)
	}
	s := &Server{t: t, spec: spec, bin: bin, port: FreePort(t), dir: t.TempDir()}
	t.Cleanup(s.Stop)
	return s
}

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Addr is the server's address, 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start runs the server and returns once it is ready, failing the test if
// it is not within the spec's StartTimeout.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.spec.Args(s.port, s.dir)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.spec.Binary, err)
	}
	timeout := s.spec.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ready := s.spec.Ready
	if ready == nil {
		ready = acceptsTCP
	}
	deadline := time.Now().Add(timeout)
	for !ready(s.Addr()) {
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("%s on port %d was not ready within %v", s.spec.Binary, s.port, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server by its PID, as a crash would (no shutdown, no last
// words to its clients), and waits for it to exit. It is a no-op when the
// server is not running. A paused server is killed as well.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port and
// directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Pause stops the server process (SIGSTOP): its connections stay open but
// nothing answers, as with a hung server or a network partition.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// signal sends sig to the running server.
func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// acceptsTCP reports whether addr accepts a TCP connection.
func acceptsTCP(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
