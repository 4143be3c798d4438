package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// runNodeWithControl runs the node test script with env, plus
// controlVar set to the URL of a loopback HTTP server answering with
// control: the script calls it to make the Go side kill, restart or fail
// over something at the right moment of its scenario. The control server
// is closed when the test ends; the script must finish within
// phoenixJSTimeout.
func runNodeWithControl(t *testing.T, node, script string, control http.HandlerFunc, controlVar string, env ...string) {
	t.Helper()
	ctl := &http.Server{Handler: control}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ctl.Serve(l)
	t.Cleanup(func() { ctl.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, controlVar+"=http://"+l.Addr().String(), "NO_COLOR=1")
	runLogged(ctx, t, "node --test", cmd)
}
