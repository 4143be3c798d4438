package channels

import (
	"io"
	"net"
	"sync"
	"time"
)

// closeGrace is how long a socket waits for the peer's close frame after
// sending its own before the connection is dropped.
const closeGrace = 3 * time.Second

// sendQueue is the single writer of one socket. Send queues a frame without
// blocking; a writer goroutine, started only while frames are pending,
// writes every queued frame with one vectored write (writev), so a burst of
// broadcasts to a subscriber costs one syscall instead of one per frame.
// An idle socket therefore holds no writer goroutine.
//
// With a write delay (Config.WriteDelay) the writer waits up to that long
// before its first write, so that frames sent meanwhile join the same
// writev; a close frame, or a batch reaching flushFrames frames or half
// the byte budget, ends the wait at once. Without one, the writer of a
// busy socket holds briefly in the same way (transport_websocket_hold.go).
// How a batch is written: transport_websocket_write.go.
//
// The write deadline is refreshed only when less than half of writeTimeout
// remains, not on every write: a write that blocks on a peer that stopped
// reading fails between writeTimeout/2 and writeTimeout after it started.
//
// The queue holds at most maxBytes of frames. A frame that would exceed the
// budget marks the socket as a slow consumer: pending frames are dropped,
// a close frame is written and the connection is closed.
type sendQueue struct {
	nc           net.Conn
	writeTimeout time.Duration
	writeDelay   time.Duration // 0: write as soon as a frame is queued
	maxBytes     int

	mu       sync.Mutex
	pending  []*Frame
	bytes    int
	writing  bool
	closing  bool // a close frame is queued: nothing else is accepted
	stopped  bool // the write side has ended: nothing more is written
	ncClosed bool
	slow     bool          // closed because the budget was exceeded
	vectored bool          // nc takes one writev per batch
	holdNext bool          // the writer about to start holds first
	gathered bool          // the last hold gathered frames
	flushed  chan struct{} // closed when the write side has ended
	kick     chan struct{} // ends a write delay or hold early; nil without one
	batchAt  time.Duration // when the last batch began, since clockBase

	// Owned by the writer goroutine.
	spare    []*Frame
	bufs     net.Buffers
	deadline time.Duration // the write deadline last set on nc, since clockBase
	delay    *time.Timer   // the write delay timer, created on first use
}

// flushFrames is the batch size at which a write delay ends early: one
// writev takes at most this many buffers (the kernel's IOV_MAX).
const flushFrames = 1024

func newSendQueue(nc net.Conn, writeTimeout time.Duration, maxBytes int) *sendQueue {
	return &sendQueue{nc: nc, writeTimeout: writeTimeout, maxBytes: maxBytes, vectored: isVectored(nc), flushed: make(chan struct{})}
}

// setWriteDelay makes the writer wait up to d for more frames before each
// batch. It is called once, before the first frame is queued.
func (q *sendQueue) setWriteDelay(d time.Duration) {
	if d > 0 {
		q.writeDelay = d
		q.kick = make(chan struct{}, 1)
	}
}

// Send queues f. It reports false when the frame was not queued because the
// socket is closing or has just exceeded its budget (it is then being
// closed as a slow consumer).
func (q *sendQueue) Send(f *Frame) bool {
	q.mu.Lock()
	if q.closing {
		q.mu.Unlock()
		return false
	}
	if q.bytes+f.Size() > q.maxBytes {
		q.slow = true
		q.clearLocked()
		q.closeLocked(closeFrame(CloseSlowConsumer, "slow consumer"))
		q.mu.Unlock()
		return false
	}
	q.pending = append(q.pending, f)
	q.bytes += f.Size()
	q.startLocked()
	if q.kick != nil && (len(q.pending) >= flushFrames || 2*q.bytes >= q.maxBytes) {
		q.kickLocked()
	}
	q.mu.Unlock()
	return true
}

// SendNow is Send for the socket's reader goroutine (replies): when
// nothing is queued or being written and no write delay is set, it writes
// f on the calling goroutine instead of waking a writer goroutine, which
// saves a goroutine start and a hand-off per reply. Frames queued by
// others meanwhile are written after it, by a writer goroutine, so order
// is kept. It must not be called with a lock held: the write may block
// for up to writeTimeout.
func (q *sendQueue) SendNow(f *Frame) bool {
	q.mu.Lock()
	if q.writing || q.closing || q.stopped || len(q.pending) > 0 || q.writeDelay > 0 || f.Size() > q.maxBytes {
		q.mu.Unlock()
		return q.Send(f)
	}
	q.writing = true
	q.mu.Unlock()

	q.refreshDeadline()
	_, err := q.nc.Write(f.wire)
	if err != nil {
		q.finish(err)
		return true
	}
	q.mu.Lock()
	q.writing = false
	if len(q.pending) > 0 {
		q.startLocked()
	}
	q.mu.Unlock()
	return true
}

// sendControl queues a control frame (pong) outside the byte budget.
func (q *sendQueue) sendControl(f *Frame) {
	q.mu.Lock()
	if !q.closing {
		q.pending = append(q.pending, f)
		q.startLocked()
	}
	q.mu.Unlock()
}

// Close queues a close frame after the pending frames; the write side ends
// once it is written (or the write fails). Later calls do nothing.
func (q *sendQueue) Close(code int, reason string) {
	q.mu.Lock()
	if !q.closing {
		q.closeLocked(closeFrame(code, reason))
	}
	q.mu.Unlock()
}

// drainAndAbort ends a socket whose close frame was already written by
// someone else (gorilla's 1009 for an oversized frame): nothing more is
// written, the rest of the peer's input is read and discarded for up to
// closeGrace so that closing does not reset the connection before the
// peer has read the close frame, and then the connection is closed.
func (q *sendQueue) drainAndAbort(limit int64) {
	q.mu.Lock()
	q.closing = true
	q.clearLocked()
	q.stopLocked()
	q.mu.Unlock()
	q.nc.SetReadDeadline(time.Now().Add(closeGrace))
	io.Copy(io.Discard, io.LimitReader(q.nc, limit))
	q.Abort()
}

// Abort closes the connection at once, dropping pending frames.
func (q *sendQueue) Abort() {
	q.mu.Lock()
	q.closing = true
	q.clearLocked()
	q.stopLocked()
	closeNC := !q.ncClosed
	q.ncClosed = true
	q.mu.Unlock()
	if closeNC {
		q.nc.Close()
	}
}

// Slow reports whether the queue was closed because its budget was exceeded.
func (q *sendQueue) Slow() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.slow
}

// isClosing reports whether a close frame has been queued.
func (q *sendQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// waitFlushed waits until the write side has ended, at most d.
func (q *sendQueue) waitFlushed(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-q.flushed:
	case <-t.C:
	}
}

// extendRead pushes the read deadline idle into the future, unless the
// socket is closing (then the close grace deadline stands).
func (q *sendQueue) extendRead(idle time.Duration) {
	q.mu.Lock()
	if !q.closing {
		q.nc.SetReadDeadline(time.Now().Add(idle))
	}
	q.mu.Unlock()
}

// closeLocked queues the close frame and marks the queue closing.
// Lock should be held.
func (q *sendQueue) closeLocked(f *Frame) {
	q.closing = true
	q.pending = append(q.pending, f)
	q.startLocked()
	q.kickLocked()
}

// kickLocked ends the writer's write delay or hold, if any. Lock should be
// held.
func (q *sendQueue) kickLocked() {
	if q.kick != nil {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// clearLocked drops pending frames. Lock should be held.
func (q *sendQueue) clearLocked() {
	clear(q.pending)
	q.pending = q.pending[:0]
	q.bytes = 0
}

// stopLocked ends the write side. Lock should be held.
func (q *sendQueue) stopLocked() {
	if !q.stopped {
		q.stopped = true
		close(q.flushed)
		q.kickLocked()
	}
}

// startLocked starts the writer goroutine unless it runs.
// Lock should be held.
func (q *sendQueue) startLocked() {
	if !q.writing && !q.stopped {
		q.writing = true
		t := monoNow()
		q.noteBatchLocked(t)
		writerStarted(t)
		go q.run()
	}
}

// run writes batches until the queue is empty, then exits. With a write
// delay, or when its socket is busy, it first waits for more frames to
// join the first batch; frames queued while a batch is written follow at
// once.
func (q *sendQueue) run() {
	defer writerExited()
	if q.writeDelay > 0 {
		q.wait()
	} else {
		q.hold()
	}
	for {
		q.mu.Lock()
		if q.stopped || len(q.pending) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		batch := q.pending
		q.drainKickLocked()
		q.pending = q.spare[:0]
		q.bytes = 0
		closing := q.closing
		q.mu.Unlock()

		err := q.write(batch)
		clear(batch)
		q.spare = batch[:0]

		if err != nil || closing {
			q.finish(err)
			return
		}
	}
}

// wait blocks for the write delay or until kicked (a close frame, a full
// batch or the end of the write side), whichever comes first.
func (q *sendQueue) wait() {
	q.mu.Lock()
	full := q.closing || q.stopped || len(q.pending) >= flushFrames || 2*q.bytes >= q.maxBytes
	q.mu.Unlock()
	if full {
		return
	}
	if q.delay == nil {
		q.delay = time.NewTimer(q.writeDelay)
	} else {
		q.delay.Reset(q.writeDelay)
	}
	select {
	case <-q.delay.C:
	case <-q.kick:
		q.delay.Stop()
	}
}

// drainKickLocked drops a kick for frames that are being taken, so that it
// does not cut the next write delay short. Kicks are sent with the lock
// held, so one left after the batch is taken belongs to that batch.
// Lock should be held.
func (q *sendQueue) drainKickLocked() {
	if q.kick != nil {
		select {
		case <-q.kick:
		default:
		}
	}
}

// finish ends the write side after the close frame was written or a write
// failed. After a clean close frame the write half is shut down and the read
// loop gets closeGrace to receive the peer's close frame: closing at once
// with unread input would reset the connection and could discard the close
// frame before the client reads it. The read loop then calls Abort.
func (q *sendQueue) finish(err error) {
	q.mu.Lock()
	q.closing = true
	q.clearLocked()
	q.writing = false
	q.stopLocked()
	if cw, ok := q.nc.(interface{ CloseWrite() error }); ok && err == nil && !q.ncClosed {
		cw.CloseWrite()
		q.nc.SetReadDeadline(time.Now().Add(closeGrace))
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	q.Abort()
}
