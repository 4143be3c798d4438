package integration

// The socket drainer (drain { batch; interval; timeout }): a reload that
// drops the handler drains its sockets in batches, and so does a process
// that is asked to stop; the leave webhook of every drained socket reaches
// the app before the process exits.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// drainApp is a real HTTP app that records the leave webhooks it gets.
type drainApp struct {
	url string

	mu      sync.Mutex
	reasons []string
	changed chan struct{} // signalled on every leave
}

func newDrainApp(t *testing.T) *drainApp {
	t.Helper()
	app := &drainApp{changed: make(chan struct{}, 1)}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var leave struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(body, &leave); err != nil {
			t.Errorf("leave body %q: %v", body, err)
		}
		app.mu.Lock()
		app.reasons = append(app.reasons, leave.Reason)
		app.mu.Unlock()
		select {
		case app.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	app.url = "http://" + l.Addr().String() + "/leave"
	return app
}

func (app *drainApp) leaves() []string {
	app.mu.Lock()
	defer app.mu.Unlock()
	return slices.Clone(app.reasons)
}

// waitLeaves waits until n leaves arrived (bounded by d) and checks that
// each has reason shutdown.
func (app *drainApp) waitLeaves(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for len(app.leaves()) < n {
		select {
		case <-app.changed:
		case <-deadline.C:
			t.Fatalf("%d leave webhooks after %v, want %d", len(app.leaves()), d, n)
		}
	}
	if got := app.leaves(); len(got) != n || slices.ContainsFunc(got, func(r string) bool { return r != "shutdown" }) {
		t.Fatalf("leave webhooks %v, want %d with reason shutdown", got, n)
	}
}

// drainBlock is a channels block with a drain and a leave webhook.
func drainBlock(path, leaveURL string, batch int, interval time.Duration) string {
	return fmt.Sprintf(`	channels {
		path %s
		drain {
			batch %d
			interval %s
			timeout 20s
		}
		channel room:* {
			join allow
			leave upstream %s
		}
	}`, path, batch, interval, leaveURL)
}

// closeTimes reads every conn until it closes, in parallel, and returns
// when each one saw its close, sorted; any close other than 1001 fails.
func closeTimes(t *testing.T, conns []*websocket.Conn, bound time.Duration) []time.Time {
	t.Helper()
	type end struct {
		at  time.Time
		err error
	}
	ends := make(chan end, len(conns))
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(time.Now().Add(bound)) // a bound, not a wait
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					ends <- end{time.Now(), err}
					return
				}
			}
		}()
	}
	var times []time.Time
	for range conns {
		e := <-ends
		if !websocket.IsCloseError(e.err, 1001) {
			t.Errorf("socket ended with %v, want close 1001", e.err)
		}
		times = append(times, e.at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times
}

// checkBatches fails if a batch's first socket closed before it was due:
// batch k (from 0) is not sent before k intervals after start.
func checkBatches(t *testing.T, times []time.Time, start time.Time, batch int, interval time.Duration) {
	t.Helper()
	for k := 1; k*batch < len(times); k++ {
		if at := times[k*batch].Sub(start); at < time.Duration(k)*interval {
			t.Errorf("socket %d closed %v after the drain began, before batch %d was due at %v", k*batch+1, at, k+1, time.Duration(k)*interval)
		}
	}
}

// dialJoined opens n V2 sockets at url and joins each to a room.
func dialJoined(t *testing.T, url string, n int) []*websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: recvTimeout}
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := d.Dial(url+"/websocket?vsn=2.0.0", nil)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		t.Cleanup(func() { c.Close() })
		topic := fmt.Sprintf("room:%d", i)
		c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","1",%q,"phx_join",{}]`, topic))
		c.SetReadDeadline(time.Now().Add(recvTimeout))
		if _, b, err := c.ReadMessage(); err != nil || !json.Valid(b) {
			t.Fatalf("join %s: %s %v", topic, b, err)
		}
		conns[i] = c
	}
	return conns
}

// A reload that drops the handler drains its sockets in batches, in the
// background (the reload itself does not wait), with a leave webhook per
// socket.
func TestRemovedHandlerDrainsInBatches(t *testing.T) {
	const sockets, batch, interval = 6, 2, 300 * time.Millisecond
	app := newDrainApp(t)
	loadCaddyfile(t, site(drainBlock("/drained", app.url, batch, interval)))
	conns := dialJoined(t, wsBase+"/drained", sockets)

	start := time.Now()
	loadCaddyfile(t, site(`	respond /drained/* "no sockets here" 200`))
	times := closeTimes(t, conns, 20*time.Second)
	checkBatches(t, times, start, batch, interval)
	app.waitLeaves(t, sockets, 20*time.Second)
}

// A process asked to stop (SIGINT) drains before it exits: the sockets
// close with 1001 in batches and every leave webhook has reached the app
// by the time the process is gone.
func TestShutdownDrainsBeforeExit(t *testing.T) {
	const sockets, batch, interval = 12, 4, 200 * time.Millisecond
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	app := newDrainApp(t)
	port := freePort(t)
	caddyfile := fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tlog {\n\t\tlevel WARN\n\t}\n}\nhttp://127.0.0.1:%d {\n%s\n}\n",
		port, drainBlock("/socket", app.url, batch, interval))
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	node := startProc(t, bin, "run", "--config", file, "--adapter", "caddyfile")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitPort(t, addr, 20*time.Second)
	conns := dialJoined(t, "ws://"+addr+"/socket", sockets)

	start := time.Now()
	if err := node.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	times := closeTimes(t, conns, 20*time.Second)
	select {
	case <-node.done:
	case <-time.After(30 * time.Second): // a bound: the drain timeout is 20s
		t.Fatal("caddy did not exit after the drain")
	}
	checkBatches(t, times, start, batch, interval)
	// Delivered before the exit, not merely queued.
	if got := app.leaves(); len(got) != sockets {
		t.Fatalf("%d leave webhooks had arrived when caddy exited, want %d: %v", len(got), sockets, got)
	}
	app.waitLeaves(t, sockets, time.Second)
}
