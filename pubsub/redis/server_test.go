package redisbroker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// redisSpec runs redis-server without persistence: a restart loses every
// key, as a crash of an ephemeral Redis does.
var redisSpec = pubsubtest.ServerSpec{
	Binary: "redis-server",
	Args: func(port int, dir string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir}
	},
	Ready:        answersPing,
	StartTimeout: 5 * time.Second,
}

// server is a redis-server of one test (see pubsubtest.Server).
type server struct{ *pubsubtest.Server }

// newServer reserves a port for a private redis-server without starting
// it. The server is stopped when the test ends.
func newServer(t testing.TB) *server {
	t.Helper()
	return &server{pubsubtest.NewServer(t, redisSpec)}
}

// url is the server's URL for database db.
func (s *server) url(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// answersPing reports whether the Redis at addr answers PING.
func answersPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_, _ = c.Write([]byte("PING\r\n"))
	buf := make([]byte, 7)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// deadlineCtx returns a context that ends after d.
func deadlineCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
