package integration

// `caddy channels gen` end to end: for each language, the generated
// webhook handler runs as a real process behind a real Caddy configured
// with the generated channel block, and raw WebSocket clients plus the
// generated phoenix.js client module drive it.

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

	"github.com/caddy-channels/caddy-channels/gen"
)

const (
	// genSecret is the webhook_secret shared by Caddy and the handlers.
	genSecret = "gen-test-webhook-secret"
	// genStartWait bounds a handler's start (a Go handler is built first).
	genStartWait = 20 * time.Second
)

// TestGen generates a handler per language and checks, through Caddy:
// joins allowed by the join hook, a push broadcast to both subscribers and
// replied to, leave notifications reaching the app (its stdout), forged
// and stale signatures refused with 401, and the phoenix.js client module
// working against it.
func TestGen(t *testing.T) {
	for _, lang := range gen.Languages {
		t.Run(lang, func(t *testing.T) { testGenLang(t, lang) })
	}
}

func testGenLang(t *testing.T, lang string) {
	bin := map[string]string{"node": "node", "python": "python3", "go": "go"}[lang]
	tool := requireTool(t, bin)

	port := strconv.Itoa(freePort(t))
	appURL := "http://127.0.0.1:" + port
	dir := t.TempDir()
	res, err := gen.Generate(gen.Options{Name: "Room", Lang: lang, Out: dir, AppURL: appURL})
	if err != nil {
		t.Fatal(err)
	}
	if res.Listen != "127.0.0.1:"+port {
		t.Fatalf("listen %q, want 127.0.0.1:%s", res.Listen, port)
	}
	handler := res.Files[0].Path

	argv := []string{tool, handler}
	if lang == "go" {
		exe := filepath.Join(dir, "handler")
		build := exec.Command(tool, "build", "-o", exe, handler)
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", handler, err, out)
		}
		argv = []string{exe}
	}
	app := genStart(t, dir, argv)

	path := freshPath("gen-" + lang)
	loadCaddyfile(t, site("\tchannels {\n\t\tpath "+path+"\n\t\twebhook_secret "+genSecret+"\n"+res.Channel+"\t}"))

	// Join, push with reply and broadcast to a second client.
	alice := dial(t, path, v2q, nil)
	bob := dial(t, path, v2q, nil)
	alice.join("1", "1", "room:lobby")
	bob.join("7", "7", "room:lobby")
	alice.send(`["1","2","room:lobby","new_msg",{"body":"hi"}]`)
	alice.expect(`[null,null,"room:lobby","new_msg",{"body":"hi"}]`)
	alice.expect(`["1","2","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	bob.expect(`[null,null,"room:lobby","new_msg",{"body":"hi"}]`)
	// A push without payload is broadcast as {}.
	bob.send(`["7","8","room:lobby","ping",null]`)
	bob.expect(`[null,null,"room:lobby","ping",{}]`)
	bob.expect(`["7","8","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	alice.expect(`[null,null,"room:lobby","ping",{}]`)

	// Leaves reach the app: an explicit leave, then a closed socket.
	alice.send(`["1","3","room:lobby","phx_leave",{}]`)
	alice.expect(`["1","3","room:lobby","phx_reply",{"status":"ok","response":{}}]`)
	alice.expect(`["1","1","room:lobby","phx_close",{}]`)
	app.waitLine(t, "leave topic=room:lobby reason=leave socket=anonymous")
	bob.conn.Close()
	app.waitLine(t, "leave topic=room:lobby reason=closed socket=anonymous")

	// Calls that Caddy did not sign are refused.
	joinURL := appURL + "/channels/room/join"
	body := `{"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},"topic":"room:x","payload":{},"join_ref":"1"}`
	now := time.Now().Unix()
	for _, tc := range []struct {
		what, sig string
		want      int
	}{
		{"valid", backendSign(genSecret, body, now), http.StatusOK},
		{"forged", backendSign("not-the-secret", body, now), http.StatusUnauthorized},
		{"stale", backendSign(genSecret, body, now-6*60), http.StatusUnauthorized},
		{"future", backendSign(genSecret, body, now+6*60), http.StatusUnauthorized},
		{"tampered", backendSign(genSecret, body+" ", now), http.StatusUnauthorized},
		{"missing", "", http.StatusUnauthorized},
		{"garbage", "t=abc,v1=zz", http.StatusUnauthorized},
	} {
		if got := genPost(t, joinURL, tc.sig, body); got != tc.want {
			t.Errorf("%s signature: status %d, want %d", tc.what, got, tc.want)
		}
	}

	// The generated phoenix.js client module, in Node with the pinned
	// phoenix and ws packages of js/.
	t.Run("phoenix.js", func(t *testing.T) {
		node := requireNode(t)
		genPhoenixJS(t, node, dir, res.Files[1].Path, path)
		app.waitLine(t, "leave topic=room:js reason=leave socket=anonymous")
	})
}

// genPhoenixJS runs a script that uses the client module: connect, join
// room:js, push new_msg and wait for its ok reply and its broadcast, leave.
func genPhoenixJS(t *testing.T, node, dir, client, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	modules, err := filepath.Abs(filepath.Join(phoenixJSDir, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	// The client module is an ES module, as a bundler would treat it.
	script := `import WebSocket from "ws"
import {connectSocket, joinRoom} from "./` + filepath.Base(client) + `"

const fail = (why) => { console.log("FAIL " + why); process.exit(1) }
setTimeout(() => fail("timed out"), 5000)
const socket = connectSocket(process.env.CHANNELS_URL, {transport: WebSocket})
let replied = false, broadcast = false
const done = () => {
  if (!replied || !broadcast) return
  channel.leave().receive("ok", () => { console.log("left"); socket.disconnect(() => process.exit(0)) })
}
const channel = joinRoom(socket, "room:js", {
  events: ["new_msg"],
  onEvent: (event, payload) => { console.log("event " + event + " " + JSON.stringify(payload)); broadcast = true; done() },
  onJoin: (response) => {
    console.log("joined " + JSON.stringify(response))
    channel.push("new_msg", {body: "from js"})
      .receive("ok", (reply) => { console.log("reply ok " + JSON.stringify(reply)); replied = true; done() })
      .receive("error", (reply) => fail("push refused " + JSON.stringify(reply)))
  },
  onError: (response) => fail("join refused " + JSON.stringify(response)),
})
`
	files := map[string]string{"package.json": `{"type":"module"}`, "drive.mjs": script}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, node, "drive.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHANNELS_URL="+wsBase+path)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node drive.mjs: %v\n%s", err, out)
	}
	for _, want := range []string{`joined {}`, `reply ok {}`, `event new_msg {"body":"from js"}`, "left"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("node drive.mjs: output lacks %q:\n%s", want, out)
		}
	}
}

// genPost posts body to url with the signature header (none if empty) and
// returns the status.
func genPost(t *testing.T, url, sig, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Channels-Event", "join")
	if sig != "" {
		req.Header.Set("X-Channels-Signature", sig)
	}
	resp, err := (&http.Client{Timeout: recvTimeout}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// genApp is a running generated handler and the lines it printed.
type genApp struct {
	mu    sync.Mutex
	lines []string
}

// genStart starts argv in dir with the webhook secret, logs its output,
// waits until it says it is listening, and stops it (by its PID) when the
// test ends.
func genStart(t *testing.T, dir string, argv []string) *genApp {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gen.SecretEnv+"="+genSecret, "HOST=", "PORT=", "PYTHONUNBUFFERED=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lineLogger{t: t, prefix: filepath.Base(argv[len(argv)-1]) + " stderr: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	app := &genApp{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			app.mu.Lock()
			app.lines = append(app.lines, sc.Text())
			app.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		cmd.Wait()
		app.mu.Lock()
		defer app.mu.Unlock()
		t.Logf("%s printed:\n%s", argv[len(argv)-1], strings.Join(app.lines, "\n"))
	})
	deadline := time.Now().Add(genStartWait)
	for !app.has("listening on http://") {
		if time.Now().After(deadline) {
			t.Fatalf("%v did not start within %v", argv, genStartWait)
		}
		select {
		case <-done:
			t.Fatalf("%v exited before listening", argv)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return app
}

// has reports whether some printed line contains s.
func (a *genApp) has(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// waitLine waits until the app printed a line containing s.
func (a *genApp) waitLine(t *testing.T, s string) {
	t.Helper()
	eventually(t, whLeaveWait, fmt.Sprintf("the handler to print %q", s), func() bool { return a.has(s) })
}
