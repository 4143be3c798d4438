package natsbroker

import (
	"strconv"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

// natsSpec runs nats-server with JetStream storing in the test's
// directory, which survives a restart.
var natsSpec = pubsubtest.ServerSpec{
	Binary: "nats-server",
	Args: func(port int, dir string) []string {
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir}
	},
}

// ownServer is a nats-server started by a test (see pubsubtest.Server), so
// that the test can stop and restart it; the shared server is never
// touched.
type ownServer struct{ *pubsubtest.Server }

// startOwnServer starts a private nats-server, skipping the test if the
// binary is not installed.
func startOwnServer(t testing.TB) *ownServer {
	t.Helper()
	s := &ownServer{pubsubtest.NewServer(t, natsSpec)}
	s.Start()
	return s
}

// url is the server's client URL.
func (s *ownServer) url() string { return "nats://" + s.Addr() }
