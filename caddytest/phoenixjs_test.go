package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// phoenixJSDir holds the phoenix npm client tests (package.json and the
// committed package-lock.json), relative to this package.
const phoenixJSDir = "js"

// phoenixJSAPIKey is the api_key of the /short mount, passed to node.
const phoenixJSAPIKey = "phoenixjs-test-key"

// phoenixJSTimeout bounds npm ci plus the whole node run.
const phoenixJSTimeout = 90 * time.Second

// phoenixJSChannels is what js/phoenix.test.mjs expects: /socket for rooms,
// refused joins and binary frames; /short with a 1s idle timeout, an id
// rule and the publish API; /auth accepting only auth token 1234.
const phoenixJSChannels = `	channels {
		path /socket
		channel room:* {
			join allow reply "{'welcome': subtopic}"
			handle_in new_msg broadcast
			handle_in typing broadcast_from
			handle_in ping reply
			handle_in bin reply
		}
		channel private:* {
			join if "has(params.password) && params.password == 'letmein'"
		}
		channel secret:* {
			join deny forbidden
		}
	}
	channels {
		path /short
		api_key ` + phoenixJSAPIKey + `
		idle_timeout 1s
		id "'user_socket:' + params.user"
		channel room:* {
			join allow
			handle_in ping reply
		}
	}
	channels {
		path /auth
		connect if "auth_token == '1234'"
		channel room:* {
			join allow
		}
	}`

// TestPhoenixJS runs js/phoenix.test.mjs, the stock phoenix.js client
// against this handler, and fails if any of its tests fails. It is skipped
// when node is missing, unless the CI environment variable is set.
func TestPhoenixJS(t *testing.T) {
	node := requireNode(t)

	loadCaddyfile(t, site(phoenixJSChannels))

	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()

	ensureNodeModules(ctx, t)

	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "phoenix.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_SHORT_URL="+wsBase+"/short",
		"CHANNELS_AUTH_URL="+wsBase+"/auth",
		"CHANNELS_API_KEY="+phoenixJSAPIKey,
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)
}

// runLogged runs cmd in phoenixJSDir, sends its output to t.Log line by
// line as it arrives, and fails the test if it does not exit with 0.
func runLogged(ctx context.Context, t *testing.T, what string, cmd *exec.Cmd) {
	t.Helper()
	cmd.Dir = phoenixJSDir
	cmd.WaitDelay = 5 * time.Second
	w := &lineLogger{t: t, prefix: what + ": "}
	cmd.Stdout = w
	cmd.Stderr = w
	err := cmd.Run()
	w.flush()
	if ctx.Err() != nil {
		t.Fatalf("%s: %v (limit %v)", what, ctx.Err(), phoenixJSTimeout)
	}
	if err != nil {
		t.Fatalf("%s failed: %v", what, err)
	}
}

// lineLogger is an io.Writer that logs every complete line with t.Log.
type lineLogger struct {
	t      *testing.T
	prefix string

	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			// An incomplete line: keep it for the next write.
			l.buf.Reset()
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(l.prefix + strings.TrimRight(line, "\r\n"))
	}
}

// flush logs a trailing line without a newline.
func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(&l.buf)
	for sc.Scan() {
		l.t.Log(l.prefix + sc.Text())
	}
	l.buf.Reset()
}

// requireNode returns the path of node, skipping the test without it unless
// CI is set (then a missing node is a failure).
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("node is not on PATH; set CI to make this a failure")
		}
		t.Fatalf("node is required when CI is set: %v", err)
	}
	return node
}

// ensureNodeModules runs npm ci in phoenixJSDir when node_modules is
// missing.
func ensureNodeModules(ctx context.Context, t *testing.T) {
	t.Helper()
	_, err := os.Stat(filepath.Join(phoenixJSDir, "node_modules"))
	if err == nil {
		return
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checking node_modules: %v", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("node_modules is missing and npm is not on PATH: %v", err)
	}
	runLogged(ctx, t, "npm ci", exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund"))
}
