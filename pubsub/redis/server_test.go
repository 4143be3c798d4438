package redisbroker

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// server is a redis-server of one test, on a free loopback port, without
// persistence: a restart loses every key, as a crash of an ephemeral Redis
// does.
type server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
}

// newServer reserves a port for a private redis-server without starting
// it. The server is stopped when the test ends.
func newServer(t testing.TB) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed, skipping")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &server{t: t, port: port, dir: t.TempDir()}
	t.Cleanup(s.stop)
	return s
}

// addr is the server's address.
func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// url is the server's URL for database db.
func (s *server) url(db int) string { return fmt.Sprintf("redis://%s/%d", s.addr(), db) }

// start runs the server and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			_ = c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not answer within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server by its PID (as a crash would) and waits for it.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// restart kills the server and starts it again, empty, on the same port.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// deadlineCtx returns a context that ends after d.
func deadlineCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pause stops the server process (SIGSTOP): connections stay open but
// nothing answers, as with a hung server or a network partition.
func (s *server) pause() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// resume continues a paused server.
func (s *server) resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }
