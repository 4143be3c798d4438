package channels

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countConn is a connection that counts its Write and SetWriteDeadline
// calls. Not being a *net.TCPConn, it gets each batch as one Write.
type countConn struct {
	net.Conn
	writes    atomic.Int64
	deadlines atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func (c *countConn) SetWriteDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (server, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	pc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sc.Close(); pc.Close() })
	return sc.(*net.TCPConn), pc.(*net.TCPConn)
}

// testFrame returns a text frame carrying s.
func testFrame(s string) *Frame {
	return finishFrame(append(newFrameBuf(len(s)), s...), false)
}

// readExactly reads len(want) bytes from c (giving up after a generous
// bound) and fails unless they equal want.
func readExactly(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("peer read %q, want %q", got, want)
	}
}

// Frames sent within the write delay reach the peer complete and in order,
// in fewer writes than frames. The frames are spread out (5 ms apart, 100
// ms in all, well within the 1 s delay) so that without a delay each would
// be written on its own.
func TestSendQueueWriteDelayCoalesces(t *testing.T) {
	sc, pc := tcpPair(t)
	cc := &countConn{Conn: sc}
	q := newSendQueue(cc, time.Minute, 1<<20)
	q.setWriteDelay(MaxWriteDelay)

	const n = 20
	var want []byte
	for i := range n {
		f := testFrame(strings.Repeat("x", i))
		want = append(want, f.Wire()...)
		if !q.Send(f) {
			t.Fatalf("frame %d not queued", i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	readExactly(t, pc, want)
	if w := cc.writes.Load(); w >= n {
		t.Fatalf("%d frames took %d writes, want fewer", n, w)
	}
}

// A close frame ends the write delay: queued frames and the close frame
// are written without waiting for the delay to pass.
func TestSendQueueWriteDelayCloseFlushes(t *testing.T) {
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 1<<20)
	q.setWriteDelay(time.Hour) // beyond any test timeout: only the kick ends it

	f := testFrame("last words")
	q.Send(f)
	q.Close(CloseGoingAway, "bye")
	want := append(append([]byte{}, f.Wire()...), closeFrame(CloseGoingAway, "bye").Wire()...)
	readExactly(t, pc, want)
}

// A batch reaching half of the byte budget is written without waiting
// for the delay, so that a burst within the delay is not taken for a slow
// consumer.
func TestSendQueueWriteDelayFullBatchFlushes(t *testing.T) {
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 4096)
	q.setWriteDelay(time.Hour)

	var want []byte
	for want == nil || 2*len(want) < 4096 {
		f := testFrame(strings.Repeat("y", 200))
		want = append(want, f.Wire()...)
		if !q.Send(f) {
			t.Fatal("frame not queued")
		}
	}
	readExactly(t, pc, want)
	if q.Slow() {
		t.Fatal("socket taken for a slow consumer")
	}
}

// The write deadline is set once for writes that follow each other well
// within half of the write timeout, not once per write.
func TestSendQueueDeadlineRefreshedRarely(t *testing.T) {
	sc, pc := tcpPair(t)
	cc := &countConn{Conn: sc}
	q := newSendQueue(cc, time.Hour, 1<<20)

	for i := range 20 {
		f := testFrame(strings.Repeat("z", i))
		q.Send(f)
		readExactly(t, pc, f.Wire()) // one write per frame
	}
	if d := cc.deadlines.Load(); d != 1 {
		t.Fatalf("write deadline set %d times over 20 writes, want 1", d)
	}
}

// A peer that stops reading is disconnected: the blocked write fails at
// its deadline and the write side ends.
func TestSendQueueStuckPeerDisconnected(t *testing.T) {
	sc, pc := tcpPair(t)
	sc.SetWriteBuffer(4096)
	pc.SetReadBuffer(4096)
	const timeout = 200 * time.Millisecond
	q := newSendQueue(sc, timeout, 1<<30)

	// 12 MB: more than loopback buffers hold. On a loaded machine the
	// blocked write may already have failed before the last Send: the
	// queue then refuses the rest, which is the outcome awaited below.
	chunk := strings.Repeat("s", 60000)
	queued := 0
	for queued < 200 && q.Send(testFrame(chunk)) {
		queued++
	}
	if queued == 0 {
		t.Fatalf("only %d frames queued before the write side ended", queued)
	}
	// The bound is generous: the guarantee is timeout/2 to timeout after
	// the write that blocks began; this only asserts that it happens.
	select {
	case <-q.flushed:
	case <-time.After(30 * time.Second):
		t.Fatal("stuck peer was not disconnected")
	}
	if q.Send(testFrame("after")) {
		t.Fatal("frame queued after the write side ended")
	}
	// The connection is closed: the peer sees the end of the stream once
	// it drains what was buffered.
	pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, pc); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("peer read: %v", err)
	}
}

// TestSendQueueSendNowWritesInline: a reply on an idle queue is on the
// wire when SendNow returns; with frames queued, it goes after them.
func TestSendQueueSendNowWritesInline(t *testing.T) {
	server, peer := tcpPair(t)
	cc := &countConn{Conn: server}
	q := newSendQueue(cc, time.Second, 1<<20)
	f := testFrame("reply-1")
	q.SendNow(f)
	if got := cc.writes.Load(); got != 1 {
		t.Fatalf("SendNow on an idle queue returned after %d writes, want the frame written (1)", got)
	}
	readExactly(t, peer, f.wire)

	// Queued frames first, then the reply: the reply joins the queue.
	var want []byte
	for i := range 50 {
		b := testFrame("broadcast-" + strings.Repeat("x", i))
		want = append(want, b.wire...)
		q.Send(b)
	}
	r := testFrame("reply-2")
	q.SendNow(r)
	want = append(want, r.wire...)
	readExactly(t, peer, want)
}

// TestSendQueueSendNowWithWriteDelay: with a write delay, replies are
// queued like every other frame (coalescing is the user's choice).
func TestSendQueueSendNowWithWriteDelay(t *testing.T) {
	server, peer := tcpPair(t)
	cc := &countConn{Conn: server}
	q := newSendQueue(cc, time.Second, 1<<20)
	q.setWriteDelay(time.Hour)
	q.SendNow(testFrame("a"))
	if got := cc.writes.Load(); got != 0 {
		t.Fatalf("SendNow wrote inline (%d writes) despite a write delay", got)
	}
	q.Close(CloseGoingAway, "")
	readExactly(t, peer, testFrame("a").wire)
}

// TestSendQueueSendNowConcurrent: replies written inline while other
// goroutines queue broadcasts lose and reorder nothing per sender.
func TestSendQueueSendNowConcurrent(t *testing.T) {
	server, peer := tcpPair(t)
	q := newSendQueue(server, 5*time.Second, 1<<24)
	const n = 2000
	done := make(chan struct{})
	go func() {
		for i := range n {
			q.Send(testFrame(fmt.Sprintf("b%05d", i)))
		}
		close(done)
	}()
	for i := range n {
		q.SendNow(testFrame(fmt.Sprintf("r%05d", i)))
	}
	<-done
	q.Close(CloseGoingAway, "")

	data, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	next := map[byte]int{'b': 0, 'r': 0}
	frame := testFrame("x00000")
	hdr := len(frame.wire) - 6
	for len(data) >= len(frame.wire) && next['b']+next['r'] < 2*n {
		body := string(data[hdr:len(frame.wire)])
		want := fmt.Sprintf("%c%05d", body[0], next[body[0]])
		if body != want {
			t.Fatalf("got frame %q, want %q next", body, want)
		}
		next[body[0]]++
		data = data[len(frame.wire):]
	}
	if next['b'] != n || next['r'] != n {
		t.Fatalf("got %d broadcasts and %d replies, want %d each", next['b'], next['r'], n)
	}
}

// holdForTest makes the shared hold epoch last an hour, so that a held
// writer is released only by a kick, until the test ends.
func holdForTest(t *testing.T) {
	t.Helper()
	holdEpoch.mu.Lock()
	holdEpoch.length = time.Hour
	holdEpoch.mu.Unlock()
	t.Cleanup(func() {
		holdEpoch.mu.Lock()
		holdEpoch.length = holdTime
		holdEpoch.mu.Unlock()
		holdEpoch.end()
	})
}

// markBusy makes q's next batch hold, as if its last batch had begun just
// now and its last hold had gathered frames (a batch time in the future:
// no clock reading makes the gap reach idleGap).
func markBusy(q *sendQueue) {
	q.mu.Lock()
	q.batchAt = monoNow() + time.Hour
	q.gathered = true
	q.mu.Unlock()
}

// A busy socket's writer holds its batch: frames queued meanwhile are
// written together, in order, and the close frame ends the hold.
func TestSendQueueHoldCoalescesBusySocket(t *testing.T) {
	holdForTest(t)
	sc, pc := tcpPair(t)
	cc := &countConn{Conn: sc}
	q := newSendQueue(cc, time.Minute, 1<<20)
	markBusy(q)

	const n = 100
	var want []byte
	for i := range n {
		f := testFrame(fmt.Sprintf("frame-%03d", i))
		want = append(want, f.Wire()...)
		if !q.Send(f) {
			t.Fatalf("frame %d not queued", i)
		}
	}
	if w := cc.writes.Load(); w != 0 {
		t.Fatalf("%d writes while the writer holds", w)
	}
	q.Close(CloseGoingAway, "bye")
	want = append(want, closeFrame(CloseGoingAway, "bye").Wire()...)
	readExactly(t, pc, want)
	if w := cc.writes.Load(); w != 1 {
		t.Fatalf("%d frames and the close frame took %d writes, want 1", n, w)
	}
}

// A held batch reaching half of the byte budget is written at once, so
// that a hold is never taken for a slow consumer.
func TestSendQueueHoldFullBatchFlushes(t *testing.T) {
	holdForTest(t)
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 4096)
	markBusy(q)

	var want []byte
	for want == nil || 2*len(want) < 4096 {
		f := testFrame(strings.Repeat("h", 200))
		want = append(want, f.Wire()...)
		if !q.Send(f) {
			t.Fatal("frame not queued")
		}
	}
	readExactly(t, pc, want)
	if q.Slow() {
		t.Fatal("held socket taken for a slow consumer")
	}
}

// The budget still applies while a writer holds: a frame beyond it marks
// the socket slow, drops what is queued and writes the close frame.
func TestSendQueueHoldSlowConsumer(t *testing.T) {
	holdForTest(t)
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 4096)
	markBusy(q)

	if !q.Send(testFrame("first")) {
		t.Fatal("first frame not queued")
	}
	if q.Send(testFrame(strings.Repeat("b", 5000))) {
		t.Fatal("frame beyond the budget queued")
	}
	if !q.Slow() {
		t.Fatal("socket not marked slow")
	}
	readExactly(t, pc, closeFrame(CloseSlowConsumer, "slow consumer").Wire())
}

// A socket whose last batch began long ago does not hold, even if its
// last hold gathered frames: a frame sent after a quiet spell is written
// at once (with an hour-long epoch, a hold would never end here).
func TestSendQueueIdleSocketDoesNotHold(t *testing.T) {
	holdForTest(t)
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 1<<20)

	first := testFrame("first batch")
	q.Send(first) // no batch before: no hold
	readExactly(t, pc, first.Wire())

	q.mu.Lock()
	for q.writing { // the first writer exits before the idle spell is faked
		q.mu.Unlock()
		time.Sleep(time.Millisecond)
		q.mu.Lock()
	}
	q.batchAt = monoNow() - idleGap
	q.gathered = true
	q.mu.Unlock()
	f := testFrame("after a quiet spell")
	q.Send(f)
	readExactly(t, pc, f.Wire())
}

// With the real epoch, a held batch is written once the epoch ends, with
// no kick, and in order with what follows.
func TestSendQueueHoldEnds(t *testing.T) {
	sc, pc := tcpPair(t)
	q := newSendQueue(sc, time.Minute, 1<<20)
	markBusy(q)
	var want []byte
	for i := range 10 {
		f := testFrame(fmt.Sprintf("held-%d", i))
		want = append(want, f.Wire()...)
		q.Send(f)
	}
	readExactly(t, pc, want)
}

// Busy sockets are told apart by the gap since their last batch, by what
// their last hold gathered, and by whether the writer backlog drained just
// before (the publisher was waiting for the writers).
func TestSendQueueBusyDecision(t *testing.T) {
	sc, _ := tcpPair(t)
	defer drainedAt.Store(drainedAt.Load())
	for _, tt := range []struct {
		name      string
		batchAt   time.Duration // relative to now; 0: no batch yet
		gathered  bool
		saturated bool
		delay     time.Duration
		hold      bool
	}{
		{"first batch", 0, true, true, 0, false},
		{"recent batch, server idle between publishes", time.Hour, false, false, 0, false},
		{"recent batch, writers just drained", time.Hour, false, true, 0, true},
		{"recent batch after a gathering hold", time.Hour, true, false, 0, true},
		{"long quiet spell, writers just drained", -time.Hour, false, true, 0, false},
		{"long quiet spell after a gathering hold", -time.Hour, true, true, 0, false},
		{"with a write delay", time.Hour, true, true, time.Millisecond, false},
	} {
		waitNoBacklog(t)
		q := newSendQueue(sc, time.Minute, 1<<20)
		q.setWriteDelay(tt.delay)
		// A drain an hour ahead is always less than drainGap before now;
		// one an hour ago never is.
		if tt.saturated {
			drainedAt.Store(int64(monoNow() + time.Hour))
		} else {
			drainedAt.Store(int64(monoNow() - time.Hour))
		}
		q.mu.Lock()
		if tt.batchAt != 0 {
			q.batchAt = monoNow() + tt.batchAt
		}
		q.gathered = tt.gathered
		q.noteBatchLocked(monoNow())
		got := q.holdNext
		q.mu.Unlock()
		if got != tt.hold {
			t.Errorf("%s: hold = %v, want %v", tt.name, got, tt.hold)
		}
	}
}

// waitNoBacklog waits until no writer goroutine of an earlier test is
// running, so that the saturation verdict is the test's own.
func waitNoBacklog(t *testing.T) {
	t.Helper()
	for writers.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
}

// The writers mark the server as saturated when a round of writers begins
// right after the last one ended; the rest of that fan-out shares the
// verdict, later publishes do not.
func TestWriterSaturation(t *testing.T) {
	waitNoBacklog(t)
	defer drainedAt.Store(drainedAt.Load())
	base := monoNow()
	drainedAt.Store(int64(base))
	if !saturated(base + drainGap/2) {
		t.Error("a batch right after the last round: not saturated")
	}
	if saturated(base + 2*drainGap) {
		t.Error("a batch well after the last round: saturated")
	}

	start := base + drainGap/2
	writerStarted(start)
	if !saturated(start + fanoutWindow/2) {
		t.Error("the rest of a fan-out that began right after the last round: not saturated")
	}
	if saturated(start + 2*fanoutWindow) {
		t.Error("a later publish in a round lengthened by its hold: saturated")
	}
	writerExited()

	drainedAt.Store(int64(base))
	writerStarted(base + time.Hour)
	if saturated(base + time.Hour + fanoutWindow/2) {
		t.Error("a fan-out that began long after the last round: saturated")
	}
	writerExited()
}
