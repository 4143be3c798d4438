package integration

// The chaos suite: two real Caddy nodes (cmd/caddy) on a private broker
// (Redis with an append-only file, or NATS with JetStream on disk), 1,000
// sockets on history-backed topics and a steady publish rate, through a
// broker kill and restart, a config reload with changed rules on one
// node, a webhook app killed and restarted, 100 sockets reconnecting at
// once and disconnects by id. Every message published with a 202 must be
// accepted by every subscriber exactly once, in order, after _since
// catch-up; every disconnect by id must close its socket; no other socket
// may be closed by the server; goroutines and RSS must come back.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
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
)

const (
	chaosSockets = 1000
	chaosTopics  = 4
	chaosRate    = 100 // publishes per second, both nodes together
	chaosAPIKey  = "chaos-key"
)

func TestChaosRedis(t *testing.T) { testChaos(t, "redis") }

func TestChaosNATS(t *testing.T) { testChaos(t, "nats") }

// chaosBroker is the private broker server, killed with SIGKILL.
type chaosBroker struct {
	t      *testing.T
	engine string
	port   int
	dir    string
	p      *proc
}

func (b *chaosBroker) start() {
	b.t.Helper()
	port := strconv.Itoa(b.port)
	switch b.engine {
	case "redis":
		b.p = startProc(b.t, "redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "",
			"--appendonly", "yes", "--appendfsync", "always", "--dir", b.dir)
	default:
		b.p = startProc(b.t, "nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", b.dir)
	}
	waitPort(b.t, "127.0.0.1:"+port, 10*time.Second)
}

// kill ends the server as a crash does and waits until it is gone.
func (b *chaosBroker) kill() {
	b.p.cmd.Process.Signal(syscall.SIGKILL)
	<-b.p.done
}

func (b *chaosBroker) pubsubLine() string {
	if b.engine == "redis" {
		return fmt.Sprintf("pubsub redis redis://127.0.0.1:%d/0 {\n\t\t\treconnect_max 500ms\n\t\t}", b.port)
	}
	return fmt.Sprintf("pubsub nats nats://127.0.0.1:%d {\n\t\t\tmax_reconnect_wait 500ms\n\t\t}", b.port)
}

// chaosNode is one Caddy process.
type chaosNode struct {
	p     *proc
	port  int
	admin int
	ws    string
}

func chaosCaddyfile(n *chaosNode, pubsub string, hookPort int, extra string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	grace_period 1s
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	channels {
		api_key %s
		idle_timeout 10m
		id "has(params.user) ? dyn('user:' + params.user) : null"
		%s
		channel feed:* {
			join allow
			history 10000
		}
		channel hook:* {
			join upstream http://127.0.0.1:%d/join
		}
		%s
	}
}
`, n.admin, n.port, chaosAPIKey, pubsub, hookPort, extra)
}

// chaosHook is the webhook app; kill closes its listener and every
// connection at once, start listens again on the same port.
type chaosHook struct {
	t    *testing.T
	port int
	srv  *http.Server
}

func (h *chaosHook) start() {
	h.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; the kernel may hold it briefly
		if l, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(h.port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("webhook app: %v", err)
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})}
	go h.srv.Serve(l)
}

func (h *chaosHook) kill() { h.srv.Close() }

// api posts to a node's API and returns the status (0 when no answer).
func chaosAPI(client *http.Client, n *chaosNode, what, body string) int {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/socket/api/%s", n.port, what), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+chaosAPIKey)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// publisher publishes numbered ticks at a steady rate, round robin over
// topics and nodes, and records which answered 202.
type publisher struct {
	nodes  []*chaosNode
	client *http.Client
	one    sync.Mutex // held across a publish

	mu       sync.Mutex
	next     int
	ok       map[string][]int // per topic, the 202 numbers in publish order
	statuses map[int]int      // answer status → count, while counting
}

// publish publishes one tick; publishes are serialized, so that the 202
// list of a topic is in the order the broker numbered them.
func (p *publisher) publish(topic string) int {
	p.one.Lock()
	defer p.one.Unlock()
	p.mu.Lock()
	p.next++
	n, node := p.next, p.nodes[p.next%len(p.nodes)]
	p.mu.Unlock()
	status := chaosAPI(p.client, node, "broadcast", fmt.Sprintf(`{"topic":%q,"event":"tick","payload":{"n":%d}}`, topic, n))
	p.mu.Lock()
	p.statuses[status]++
	if status == http.StatusAccepted {
		p.ok[topic] = append(p.ok[topic], n)
	}
	p.mu.Unlock()
	return n
}

// accepted reports whether the publish of n on topic answered 202.
func (p *publisher) accepted(topic string, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.ok[topic]
	return len(l) > 0 && l[len(l)-1] == n
}

// run publishes until ctx ends.
func (p *publisher) run(ctx context.Context, topics []string) {
	tick := time.NewTicker(time.Second / chaosRate)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.publish(topics[i%len(topics)])
	}
}

// takeStatuses returns the answer counts since the last call.
func (p *publisher) takeStatuses() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.statuses
	p.statuses = map[int]int{}
	return s
}

// nodeStats reads a node's goroutine count (admin pprof) and RSS.
func nodeStats(t *testing.T, n *chaosNode) (goroutines int, rssKB int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", n.admin))
	if err != nil {
		t.Fatalf("goroutines: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	line, _, _ := bytes.Cut(b, []byte("\n"))
	_, total, _ := strings.Cut(string(line), "total ")
	goroutines, _ = strconv.Atoi(strings.TrimSpace(total))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return goroutines, rssKB
}

// forceGC makes node n run a garbage collection (the heap profile
// endpoint's gc=1), which also paces the return of free memory to the OS.
func forceGC(t *testing.T, n *chaosNode) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", n.admin))
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// waitAll waits until cond holds for every client, each woken by its
// own signal; bound is a safety net.
func waitAll(t *testing.T, clients []*chaosClient, bound time.Duration, what string, cond func(*chaosClient) bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for _, c := range clients {
		for !cond(c) {
			select {
			case <-c.changed:
			case <-time.After(time.Until(deadline)):
				c.mu.Lock()
				state := fmt.Sprintf("accepted %d, last %v, waiting %q, err %v", len(c.accepted), c.accepted[max(0, len(c.accepted)-3):], c.waiting, c.rejoinErr)
				c.mu.Unlock()
				t.Fatalf("client %d (%s) after %v: not yet %s: %s", c.id, c.topic, bound, what, state)
			}
		}
	}
}

func testChaos(t *testing.T, engine string) {
	for _, bin := range []string{"redis-server", "nats-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("%s is not installed; set CI to make this a failure", bin)
			}
			t.Fatalf("%s is required when CI is set", bin)
		}
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < 4*chaosSockets {
		lim.Cur = min(lim.Max, 8*chaosSockets)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur < 4*chaosSockets {
			t.Skipf("open file limit %d is too low for %d sockets", lim.Cur, chaosSockets)
		}
	}
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	broker := &chaosBroker{t: t, engine: engine, port: freePort(t), dir: t.TempDir()}
	broker.start()
	hook := &chaosHook{t: t, port: freePort(t)}
	hook.start()
	t.Cleanup(hook.kill)

	nodes := make([]*chaosNode, 2)
	files := make([]string, 2)
	for i := range nodes {
		n := &chaosNode{port: freePort(t), admin: freePort(t)}
		n.ws = fmt.Sprintf("ws://127.0.0.1:%d/socket", n.port)
		files[i] = filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(files[i], []byte(chaosCaddyfile(n, broker.pubsubLine(), hook.port, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		n.p = startProc(t, bin, "run", "--config", files[i], "--adapter", "caddyfile")
		waitPort(t, "127.0.0.1:"+strconv.Itoa(n.port), 20*time.Second)
		nodes[i] = n
	}

	prefix := fmt.Sprintf("feed:%d:", time.Now().UnixNano())
	topics := make([]string, chaosTopics)
	for i := range topics {
		topics[i] = prefix + strconv.Itoa(i)
	}
	clients := make([]*chaosClient, chaosSockets)
	for i := range clients {
		clients[i] = &chaosClient{id: i, url: nodes[i%2].ws, topic: topics[i%chaosTopics], user: "u" + strconv.Itoa(i), changed: make(chan struct{}, 1)}
		if err := clients[i].connect(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.stop()
		}
	})
	waitAll(t, clients, 60*time.Second, "joined", func(c *chaosClient) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.waiting == "" && c.epoch != ""
	})
	t.Logf("%d sockets joined on 2 nodes in %v", chaosSockets, time.Since(began).Round(time.Millisecond))

	pub := &publisher{nodes: nodes, client: &http.Client{Timeout: 5 * time.Second}, ok: map[string][]int{}, statuses: map[int]int{}}
	ctx, stopPublishing := context.WithCancel(context.Background())
	published := make(chan struct{})
	go func() { pub.run(ctx, topics); close(published) }()
	t.Cleanup(stopPublishing)

	// The steady state: every client has accepted a tick published now.
	settle := func(what string) {
		t.Helper()
		marks := make(map[string]int, len(topics))
		for _, topic := range topics {
			for marks[topic] == 0 {
				if n := pub.publish(topic); pub.accepted(topic, n) {
					marks[topic] = n
				}
			}
		}
		waitAll(t, clients, 60*time.Second, what, func(c *chaosClient) bool { return c.hasAtLeast(marks[c.topic]) })
	}
	settle("caught up with the steady state")
	// Warm up once the paths the faults take (a reconnect wave, catch-ups),
	// so that the start sample holds what a Go process keeps after its
	// first peak (the runtime returns freed heap to the OS only slowly)
	// and the end sample shows what the faults leaked, not that peak.
	reconnectAll(t, clients[100:200])
	settle("caught up after the warm-up reconnects")
	g0 := make([]int, 2)
	r0 := make([]int, 2)
	for i, n := range nodes {
		g0[i], r0[i] = stableStats(t, n)
	}
	pub.takeStatuses()

	// (1) The broker is killed and restarted.
	start := time.Now()
	broker.kill()
	broker.start()
	down := time.Since(start)
	settle("caught up after the broker restart")
	t.Logf("fault 1, broker killed and restarted (%v down): publish answers %v, catch-ups so far %d, recovered in %v",
		down.Round(time.Millisecond), pub.takeStatuses(), totalCatchUps(clients), time.Since(start).Round(time.Millisecond))

	// (2) A config reload with changed rules on node 0: a new channel.
	start = time.Now()
	newCfg := chaosCaddyfile(nodes[0], broker.pubsubLine(), hook.port, "channel extra:* {\n\t\t\tjoin allow\n\t\t}")
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", nodes[0].admin), strings.NewReader(newCfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	probe := &chaosClient{id: -1, url: nodes[0].ws, topic: "extra:probe", user: "probe", changed: make(chan struct{}, 1)}
	if err := probe.connect(); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*chaosClient{probe}, 10*time.Second, "joined a channel of the new rules", func(c *chaosClient) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.waiting == "" || c.rejoinErr != nil
	})
	if probe.rejoinErr != nil {
		t.Fatalf("join under the reloaded rules: %v", probe.rejoinErr)
	}
	probe.stop()
	settle("caught up after the reload")
	t.Logf("fault 2, config reload with a new channel rule on node 0: publish answers %v, took %v", pub.takeStatuses(), time.Since(start).Round(time.Millisecond))

	// (3) The webhook app is killed: joins it decides fail, sockets stay;
	// once it is back, they succeed.
	hook.kill()
	refused := hookJoin(t, nodes[1].ws)
	if refused == "" {
		t.Fatal("a join upstream succeeded while the webhook app was down")
	}
	hook.start()
	var recovered string
	for try := 0; try < 100; try++ { // the circuit breaker lets a trial call through after its cool-down
		if recovered = hookJoin(t, nodes[1].ws); recovered == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if recovered != "" {
		t.Fatalf("joins upstream still refused after the webhook app came back: %s", recovered)
	}
	settle("caught up after the webhook app restart")
	t.Logf("fault 3, webhook app killed and restarted: join while down answered %s; publish answers %v", refused, pub.takeStatuses())

	// (4) 100 sockets close and reconnect at once, with _since.
	reconnectAll(t, clients[:100])
	settle("caught up after 100 reconnects")
	t.Logf("fault 4, 100 sockets reconnected at once: publish answers %v", pub.takeStatuses())

	// (5) Disconnects by id, half through each node.
	targets := clients[500:510]
	for i, c := range targets {
		c.expectDisconnect()
		if status := chaosAPI(pub.client, nodes[i%2], "disconnect", fmt.Sprintf(`{"id":"user:%s"}`, c.user)); status != http.StatusAccepted {
			t.Fatalf("disconnect %s: %d", c.user, status)
		}
	}
	waitAll(t, targets, 20*time.Second, "disconnected by id", func(c *chaosClient) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.closes) > 0
	})
	settle("caught up after the disconnects")
	t.Logf("fault 5, %d disconnects by id (both nodes): every socket closed with 1001 and caught up; publish answers %v", len(targets), pub.takeStatuses())

	stopPublishing()
	<-published
	settle("caught up with the last ticks")

	// Exactly once, in order, for every 202.
	pub.mu.Lock()
	ok := pub.ok
	pub.mu.Unlock()
	var failures int
	for _, c := range clients {
		c.mu.Lock()
		if err := checkExactlyOnce(c, ok[c.topic]); err != nil {
			failures++
			if failures <= 5 {
				t.Errorf("client %d (%s): %v", c.id, c.topic, err)
			}
		}
		for _, why := range c.closes {
			want := strings.HasPrefix(why, "disconnect:1001") && c.id >= 500 && c.id < 510
			if !want {
				t.Errorf("client %d: socket closed by the server: %s", c.id, why)
			}
		}
		if c.id >= 500 && c.id < 510 && len(c.closes) != 1 {
			t.Errorf("client %d: closes %v, want one disconnect", c.id, c.closes)
		}
		c.mu.Unlock()
	}
	if failures > 0 {
		t.Errorf("%d of %d clients did not get every 202 message exactly once", failures, len(clients))
	}
	total := 0
	for _, l := range ok {
		total += len(l)
	}
	t.Logf("%d messages published with 202 on %d topics, each accepted by its %d subscribers exactly once; %d catch-ups with _since",
		total, len(topics), chaosSockets/chaosTopics, totalCatchUps(clients))

	// Goroutines and RSS back to within 10% of the steady state.
	for i, n := range nodes {
		var g, r int
		// The runtime hands freed heap back to the OS in the background,
		// paced by GC cycles: each poll forces one (pprof's gc=1), so
		// RSS falls back as soon as the memory is free, and stays up only
		// when something still holds it.
		for try := 0; ; try++ {
			forceGC(t, n)
			g, r = nodeStats(t, n)
			if within10(g, g0[i]) && within10(r, r0[i]) || try == 100 {
				break
			}
			time.Sleep(100 * time.Millisecond) // timers and idle connections wind down
		}
		t.Logf("node %d: goroutines %d → %d, RSS %d → %d kB", i, g0[i], g, r0[i], r)
		if !within10(g, g0[i]) || !within10(r, r0[i]) {
			t.Errorf("node %d did not come back: goroutines %d → %d, RSS %d → %d kB", i, g0[i], g, r0[i], r)
		}
	}
	t.Logf("chaos %s took %v", engine, time.Since(began).Round(time.Millisecond))
}

// reconnectAll closes the clients' sockets and reconnects them, all at
// once.
func reconnectAll(t *testing.T, clients []*chaosClient) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.closeAndReconnect(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// stableStats samples a node until two samples 200 ms apart agree on
// goroutines within 1% (requests and handshakes winding down), bounded.
func stableStats(t *testing.T, n *chaosNode) (int, int) {
	t.Helper()
	forceGC(t, n) // measured as at the end: after a collection
	g, r := nodeStats(t, n)
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		forceGC(t, n)
		g2, r2 := nodeStats(t, n)
		if within(g2, g, 0.01) {
			return g2, r2
		}
		g, r = g2, r2
	}
	return g, r
}

// hookJoin joins a hook:* topic on a new socket and returns "" when the
// join succeeded, or the error reply.
func hookJoin(t *testing.T, ws string) string {
	t.Helper()
	c, _, err := chaosDialer.Dial(ws+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.WriteMessage(1, []byte(`["1","1","hook:x","phx_join",{}]`))
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound: webhook_timeout is 3s
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("join hook:x: %v", err)
	}
	if bytes.Contains(b, []byte(`"status":"ok"`)) {
		return ""
	}
	return string(b)
}

// checkExactlyOnce compares what c accepted with the 202 list of its
// topic: every 202 number once, in order; numbers whose publish answered
// otherwise may appear (an ambiguous failure) but never twice. c.mu is
// held.
func checkExactlyOnce(c *chaosClient, ok []int) error {
	if c.rejoinErr != nil {
		return c.rejoinErr
	}
	if c.dups > 0 {
		return fmt.Errorf("%d duplicates: %v; closes %v", c.dups, c.dupInfo, c.closes)
	}
	seen := make(map[int]bool, len(c.accepted))
	want := make(map[int]bool, len(ok))
	for _, n := range ok {
		want[n] = true
	}
	var got []int
	for _, n := range c.accepted {
		if seen[n] {
			return fmt.Errorf("%d accepted twice", n)
		}
		seen[n] = true
		if want[n] {
			got = append(got, n)
		}
	}
	if len(got) != len(ok) {
		return fmt.Errorf("accepted %d of the %d messages published with 202", len(got), len(ok))
	}
	for i := range ok {
		if got[i] != ok[i] {
			return fmt.Errorf("message %d: got %d, want %d (out of order)", i, got[i], ok[i])
		}
	}
	return nil
}

func totalCatchUps(clients []*chaosClient) int {
	n := 0
	for _, c := range clients {
		c.mu.Lock()
		n += c.catchUps
		c.mu.Unlock()
	}
	return n
}

func within10(v, ref int) bool { return within(v, ref, 0.10) }

// within reports whether v is within frac of ref.
func within(v, ref int, frac float64) bool {
	return float64(v) <= (1+frac)*float64(ref) && float64(v) >= (1-frac)*float64(ref)
}
