package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
	"github.com/caddy-channels/caddy-channels/webhook"
)

// backendsStartWait bounds the wait for an app process's ready line.
const backendsStartWait = 15 * time.Second

// backendLog collects an app's log lines (without the "chat: <date> "
// prefix of the processes) and wakes waiters on every line.
type backendLog struct {
	mu      sync.Mutex
	partial bytes.Buffer
	lines   []string
	changed chan struct{}
	t       *testing.T
	name    string
}

func newBackendLog(t *testing.T, name string) *backendLog {
	return &backendLog{changed: make(chan struct{}), t: t, name: name}
}

var backendLogPrefix = regexp.MustCompile(`^chat: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

func (l *backendLog) add(line string) {
	line = backendLogPrefix.ReplaceAllString(line, "")
	l.mu.Lock()
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Write receives a process's stderr.
func (l *backendLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.partial.Write(p)
	var complete []string
	for {
		line, err := l.partial.ReadString('\n')
		if err != nil {
			l.partial.Reset()
			l.partial.WriteString(line)
			break
		}
		complete = append(complete, strings.TrimRight(line, "\r\n"))
	}
	l.mu.Unlock()
	for _, line := range complete {
		l.add(line)
	}
	return len(p), nil
}

func (l *backendLog) logf(format string, args ...any) { l.add(fmt.Sprintf(format, args...)) }

func (l *backendLog) snapshot() ([]string, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines), l.changed
}

// waitFor waits until some line matches re (or exited is closed) and
// returns its submatches.
func (l *backendLog) waitFor(t *testing.T, re *regexp.Regexp, d time.Duration, exited <-chan struct{}) []string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		lines, changed := l.snapshot()
		for _, line := range lines {
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		}
		select {
		case <-changed:
		case <-exited:
			lines, _ = l.snapshot()
			t.Fatalf("%s exited before logging %q; log:\n%s", l.name, re, strings.Join(lines, "\n"))
		case <-timer.C:
			t.Fatalf("%s: no log line %q after %v; log:\n%s", l.name, re, d, strings.Join(lines, "\n"))
		}
	}
}

// backendApp is one running example app.
type backendApp struct {
	url string // base URL, no trailing slash
	log *backendLog
}

// requireTool returns the path of tool, skipping the test without it
// unless CI is set (then it is a failure), as requireNode does.
func requireTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is not on PATH; set CI to make this a failure", tool)
		}
		t.Fatalf("%s is required when CI is set: %v", tool, err)
	}
	return p
}

// startGoBackend serves examples/backend/chat in-process.
func startGoBackend(t *testing.T) *backendApp {
	l := newBackendLog(t, "go app")
	srv := httptest.NewServer(chat.New(webhooksJSSecret, l.logf).Handler())
	t.Cleanup(srv.Close)
	return &backendApp{url: srv.URL, log: l}
}

var backendReady = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)

// startProcessBackend runs an example app as a process on a free loopback
// port (it binds port 0 and logs the port it got) and waits for its ready
// line. The process is killed and waited for when the test ends.
func startProcessBackend(t *testing.T, name string, argv ...string) *backendApp {
	t.Helper()
	l := newBackendLog(t, name)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CHANNELS_WEBHOOK_SECRET="+webhooksJSSecret, "LISTEN=", "PYTHONUNBUFFERED=1")
	cmd.Stdout = l
	cmd.Stderr = l
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			lines, _ := l.snapshot()
			t.Logf("%s log:\n%s", name, strings.Join(lines, "\n"))
		}
	})
	m := l.waitFor(t, backendReady, backendsStartWait, exited)
	return &backendApp{url: m[1], log: l}
}

// backendSign signs body at unix time ts with key, as the gateway does.
func backendSign(key, body string, ts int64) string {
	return webhook.Sign(key, time.Unix(ts, 0), []byte(body))
}

// backendAnswer is what an app answered, for comparisons.
type backendAnswer struct {
	Status      int
	ContentType string
	Body        string
}

// backendDo sends one request to h (a base URL) and returns the answer.
func backendDo(t *testing.T, method, u string, hdr map[string]string, body string) backendAnswer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, u, err)
	}
	return backendAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// backendHook posts body to the app's webhook path with event and sig.
func backendHook(t *testing.T, base, path, event, sig, body string) backendAnswer {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json", "User-Agent": "caddy-channels"}
	if event != "" {
		hdr["X-Channels-Event"] = event
	}
	if sig != "" {
		hdr["X-Channels-Signature"] = sig
	}
	return backendDo(t, http.MethodPost, base+path, hdr, body)
}

// backendLogin logs name in through Caddy's reverse_proxy /login.
func backendLogin(t *testing.T, name string) string {
	t.Helper()
	a := backendDo(t, http.MethodPost, baseURL+"/login", map[string]string{"Content-Type": "application/json"}, `{"name":"`+name+`"}`)
	var out struct{ Token string }
	if a.Status != 200 || json.Unmarshal([]byte(a.Body), &out) != nil || out.Token == "" {
		t.Fatalf("login %s through Caddy: %+v", name, a)
	}
	return out.Token
}

// TestBackends runs the same scenario against the three example chat apps
// (Go, Node.js, Python), each behind a real Caddy loaded with the channels
// block of examples/backend/Caddyfile and /login proxied to the app:
//
//   - forged, stale, future and missing signatures sent straight to the app
//     are refused with 401 (and a correctly signed control call succeeds);
//   - a corpus of signed webhook calls gets the same status, content type
//     and bytes as the reference Go app (chat.App) gives, and the app's
//     tokens pass the reference's connect and the reverse;
//   - js/backends.test.mjs drives phoenix.js: connect, join, push with
//     reply, broadcast and broadcast_from to another client, assigns,
//     push, binary echo, stop, leave;
//   - the app logs the leave notifications of the run (leave and closed),
//     and none for the stopped channel or the refused join.
//
// It is skipped when node (or, for its subtest, python3) is missing,
// unless the CI environment variable is set.
func TestBackends(t *testing.T) {
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)

	apps := []struct {
		name  string
		start func(t *testing.T) *backendApp
	}{
		{"go", startGoBackend},
		{"node", func(t *testing.T) *backendApp {
			return startProcessBackend(t, "node app", node, filepath.Join("examples", "backend-node", "server.mjs"), "--listen", "127.0.0.1:0")
		}},
		{"python", func(t *testing.T) *backendApp {
			python := requireTool(t, "python3")
			return startProcessBackend(t, "python app", python, filepath.Join("examples", "backend-python", "server.py"), "--listen", "127.0.0.1:0")
		}},
	}
	for _, tc := range apps {
		t.Run(tc.name, func(t *testing.T) {
			app := tc.start(t)
			backendSignatures(t, app)
			backendParity(t, app)

			hostport := strings.TrimPrefix(app.url, "http://")
			loadCaddyfile(t, site(webhooksJSChannels(app.url), "\thandle /login {\n\t\treverse_proxy "+hostport+"\n\t}"))
			alice, carol := backendLogin(t, "alice"), backendLogin(t, "carol")

			cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "backends.test.mjs")
			cmd.Env = append(os.Environ(),
				"CHANNELS_URL="+wsBase+"/socket",
				"CHANNELS_TOKEN_ALICE="+alice,
				"CHANNELS_TOKEN_CAROL="+carol,
				"NO_COLOR=1",
			)
			runLogged(ctx, t, "node --test", cmd)

			backendLeaves(t, app)
		})
	}
}

// backendSignatures sends forged and stale requests straight to the app.
func backendSignatures(t *testing.T, app *backendApp) {
	t.Helper()
	body := `{"socket":{"id":"user_socket:alice","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{"user":"alice","room":"lobby"}},"topic":"room:lobby","event":"whoami","payload":{},"ref":"3","join_ref":"2"}`
	now := time.Now().Unix()
	valid := backendSign(webhooksJSSecret, body, now)
	unauthorized := backendAnswer{401, "application/json", `{"error":"invalid signature"}` + "\n"}
	cases := []struct {
		name string
		sig  string
		want backendAnswer
	}{
		{"valid", valid, backendAnswer{200, "application/json", `{"reply":{"status":"ok","response":{"room":"lobby","user":"alice"}}}` + "\n"}},
		{"4 minutes old", backendSign(webhooksJSSecret, body, now-240), backendAnswer{200, "application/json", `{"reply":{"status":"ok","response":{"room":"lobby","user":"alice"}}}` + "\n"}},
		{"forged (other secret)", backendSign("not-the-secret", body, now), unauthorized},
		{"forged (other body)", backendSign(webhooksJSSecret, body+" ", now), unauthorized},
		{"forged (timestamp changed)", strings.Replace(valid, fmt.Sprint(now), fmt.Sprint(now-1), 1), unauthorized},
		{"stale (6 minutes old)", backendSign(webhooksJSSecret, body, now-360), unauthorized},
		{"future (6 minutes ahead)", backendSign(webhooksJSSecret, body, now+360), unauthorized},
		{"missing", "", unauthorized},
		{"no v1", fmt.Sprintf("t=%d", now), unauthorized},
		{"v1 not hex", fmt.Sprintf("t=%d,v1=zz", now), unauthorized},
		{"two timestamps", "t=1," + valid, unauthorized},
	}
	for _, tc := range cases {
		if got := backendHook(t, app.url, "/channels/event", "handle_in", tc.sig, body); got != tc.want {
			t.Errorf("signature %s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The other hooks check signatures too, stale ones included.
	for _, h := range [][3]string{
		{"/socket/connect", "connect", `{"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{}},"params":{"token":"x"},"headers":{},"auth_token":null}`},
		{"/channels/join", "join", `{"socket":{"id":"user_socket:alice","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{"user":"alice"}},"topic":"room:lobby","payload":{},"join_ref":"1"}`},
		{"/channels/leave", "leave", `{"socket":{"id":"user_socket:alice","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":{"user":"mallory"}},"topic":"room:forged","reason":"leave"}`},
	} {
		for _, sig := range []string{backendSign("not-the-secret", h[2], now), backendSign(webhooksJSSecret, h[2], now-360)} {
			if got := backendHook(t, app.url, h[0], h[1], sig, h[2]); got != unauthorized {
				t.Errorf("%s with %s: got %+v, want %+v", h[1], sig, got, unauthorized)
			}
		}
	}
}

// backendParity sends a corpus of requests to the app and to the
// reference Go app, and compares the answers byte for byte.
func backendParity(t *testing.T, app *backendApp) {
	t.Helper()
	ref := chat.New(webhooksJSSecret, nil)
	refSrv := httptest.NewServer(ref.Handler())
	defer refSrv.Close()

	// Tokens: the app's pass the reference's connect, and the reverse.
	login := func(base string) string {
		a := backendDo(t, http.MethodPost, base+"/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, url.Values{"name": {"alice"}}.Encode())
		var out struct{ Token string }
		if a.Status != 200 || a.ContentType != "application/json" || json.Unmarshal([]byte(a.Body), &out) != nil {
			t.Fatalf("login at %s: %+v", base, a)
		}
		return out.Token
	}
	appToken, refToken := login(app.url), login(refSrv.URL)

	sock := func(assigns string) string {
		return `{"id":"user_socket:alice","transport":"websocket","vsn":"2.0.0","remote_ip":"127.0.0.1","assigns":` + assigns + `}`
	}
	anon := `{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"203.0.113.7","assigns":{}}`
	connectBody := func(params, authToken string) string {
		return `{"socket":` + anon + `,"params":` + params + `,"headers":{"user-agent":"t"},"auth_token":` + authToken + `}`
	}
	const member = `{"user":"alice","room":"lobby"}`
	const renamed = `{"user":"alice","room":"lobby","nick":"Al"}`
	event := func(assigns, ev, payload string) string {
		return `{"socket":` + sock(assigns) + `,"topic":"room:lobby","event":"` + ev + `",` + payload + `,"ref":"5","join_ref":"3"}`
	}
	join := func(assigns, topic string) string {
		return `{"socket":` + sock(assigns) + `,"topic":"` + topic + `","payload":{"since":0},"join_ref":"1"}`
	}
	type call struct{ path, event, body string }
	calls := []call{
		{"/socket/connect", "connect", connectBody(`{"token":"`+appToken+`","vsn":"2.0.0"}`, "null")},
		{"/socket/connect", "connect", connectBody(`{"token":"`+refToken+`","vsn":"2.0.0"}`, "null")},
		{"/socket/connect", "connect", connectBody(`{"vsn":"2.0.0"}`, `"`+appToken+`"`)},
		{"/socket/connect", "connect", connectBody(`{"vsn":"2.0.0"}`, "null")},
		{"/socket/connect", "connect", connectBody(`{"token":{"a":"1"}}`, "null")},
		{"/socket/connect", "connect", connectBody(`{"token":"x.y.z"}`, "null")},
		{"/socket/connect", "connect", connectBody(`{"token":"Ym9i`+appToken[strings.Index(appToken, "."):]+`"}`, "null")},
		{"/socket/connect", "connect", connectBody(`"nope"`, "null")},
		{"/socket/connect", "connect", `null`},
		{"/socket/connect", "connect", `[1]`},
		{"/socket/connect", "connect", `{"socket":{"id":5}}`},
		{"/channels/join", "join", join(`{"user":"alice"}`, "room:lobby")},
		{"/channels/join", "join", join(`{"user":"bob"}`, "room:private-staff")},
		{"/channels/join", "join", join(`{"user":"carol"}`, "room:private-staff")},
		{"/channels/join", "join", join(`{"user":"alice"}`, "room:private-other")},
		{"/channels/join", "join", join(`{}`, "room:lobby")},
		{"/channels/join", "join", join(`{"user":"alice"}`, "admin:1")},
		{"/channels/join", "join", join(`{"user":"alice"}`, "room:")},
		{"/channels/join", "join", join(`{"user":"alice"}`, `room:<&>\u2028`)},
		{"/channels/join", "join", `{"topic":7}`},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":{"body":"hi"}`)},
		{"/channels/event", "handle_in", event(renamed, "new_msg", `"payload":{"body":"hi <b>&</b>"}`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":{}`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":{"body":"\u00a0\u0085"}`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":{"body":"`+strings.Repeat("é", 2000)+`"}`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":{"body":"`+strings.Repeat("é", 2001)+`"}`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":[1]`)},
		{"/channels/event", "handle_in", event(member, "new_msg", `"payload":null,"binary":"AAE="`)},
		{"/channels/event", "handle_in", event(member, "shout", `"payload":{"body":"HEY"}`)},
		{"/channels/event", "handle_in", event(member, "whoami", `"payload":{}`)},
		{"/channels/event", "handle_in", event(renamed, "whoami", `"payload":null`)},
		{"/channels/event", "handle_in", event(member, "rename", `"payload":{"nick":" Al "}`)},
		{"/channels/event", "handle_in", event(member, "rename", `"payload":{"nick":"\u00a0😀\u3000"}`)},
		{"/channels/event", "handle_in", event(member, "rename", `"payload":{"nick":"`+strings.Repeat("😀", 32)+`"}`)},
		{"/channels/event", "handle_in", event(member, "rename", `"payload":{"nick":"`+strings.Repeat("😀", 33)+`"}`)},
		{"/channels/event", "handle_in", event(member, "rename", `"payload":{"nick":7}`)},
		{"/channels/event", "handle_in", event(member, "bye", `"payload":{}`)},
		{"/channels/event", "handle_in", event(member, "ping_me", `"payload":{"n":1}`)},
		{"/channels/event", "handle_in", event(member, "ping_me", `"payload":{}`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":{"a":[1,2]}`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":{"s":"<&>\u2028\u2029\u0001\b\f\n\t\"\\é","\uffff":1,"😀":2,"n":[-0,0.5,1e21,1e-7,1.5e-7,12345678901234567890,1e20,100,2.5e-6],"o":{"z":true,"y":null,"x":[]}}`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":{"a":"\ud800"}`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":{"a":1e400}`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":null,"binary":"AAH/"`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":null,"binary":"AAF="`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":null,"binary":""`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":null,"binary":"!!"`)},
		{"/channels/event", "handle_in", event(member, "echo", `"payload":"x"`)},
		{"/channels/event", "handle_in", event(member, "dance", `"payload":{}`)},
		{"/channels/event", "handle_in", `{"event":"echo","binary":5}`},
		{"/channels/event", "handle_in", `"x"`},
		{"/channels/leave", "leave", `{"socket":` + sock(member) + `,"topic":"room:parity","reason":"closed"}`},
		{"/channels/leave", "join", `{}`},
		{"/channels/leave", "", `{}`},
	}
	now := time.Now().Unix()
	for _, c := range calls {
		sig := backendSign(webhooksJSSecret, c.body, now)
		got := backendHook(t, app.url, c.path, c.event, sig, c.body)
		want := backendHook(t, refSrv.URL, c.path, c.event, sig, c.body)
		if got != want {
			t.Errorf("%s %s %.200s:\n got %+v\nwant %+v", c.event, c.path, c.body, got, want)
		}
	}
	// Routing and login errors.
	for _, r := range []struct{ method, path, ctype, body string }{
		{http.MethodGet, "/channels/event", "", ""},
		{http.MethodGet, "/login", "", ""},
		{http.MethodPost, "/nowhere", "", ""},
		{http.MethodPost, "/login", "application/json", `{"name":""}`},
		{http.MethodPost, "/login", "application/json; charset=utf-8", `{"name":"a b"}`},
		{http.MethodPost, "/login", "application/json", `{"name":"a\u0001é\u2028"}`},
		{http.MethodPost, "/login", "application/json", `{"name":5}`},
		{http.MethodPost, "/login", "application/json", `{"name":`},
		{http.MethodPost, "/login", "application/json", ``},
		{http.MethodPost, "/login", "application/x-www-form-urlencoded", "name=a%20b"},
		{http.MethodPost, "/login", "application/x-www-form-urlencoded", "name=%zz"},
		{http.MethodPost, "/login", "text/plain", "name=alice"},
		{http.MethodPost, "/login", "application/x-www-form-urlencoded", "name=" + strings.Repeat("x", 33)},
	} {
		hdr := map[string]string{}
		if r.ctype != "" {
			hdr["Content-Type"] = r.ctype
		}
		got := backendDo(t, r.method, app.url+r.path, hdr, r.body)
		want := backendDo(t, r.method, refSrv.URL+r.path, hdr, r.body)
		if got != want {
			t.Errorf("%s %s %q %q:\n got %+v\nwant %+v", r.method, r.path, r.ctype, r.body, got, want)
		}
	}
}

// backendLeaves checks the leave notifications of the phoenix.js run in
// the app's log: "leave" for channel.leave(), "closed" for the channels
// still joined when the sockets closed, none for the channel the app
// stopped or the refused join, and none for the forged call.
func backendLeaves(t *testing.T, app *backendApp) {
	t.Helper()
	for _, want := range []string{
		"leave: alice left room:bk-leave (leave)",
		"leave: alice left room:lobby (closed)",
		"leave: carol left room:lobby (closed)",
	} {
		app.log.waitFor(t, regexp.MustCompile("^"+regexp.QuoteMeta(want)+"$"), webhooksJSLeaveWait, nil)
	}
	webhooksSettled(t, "/socket", 0)
	lines, _ := app.log.snapshot()
	for _, line := range lines {
		if strings.HasPrefix(line, "leave: ") && (strings.Contains(line, "room:bk-bye") || strings.Contains(line, "room:private-staff") || strings.Contains(line, "room:forged")) {
			t.Errorf("unexpected leave notification in the app's log: %q", line)
		}
	}
}
