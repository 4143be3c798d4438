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
// The queue holds at most maxBytes of frames. A frame that would exceed the
// budget marks the socket as a slow consumer: pending frames are dropped,
// a close frame is written and the connection is closed.
type sendQueue struct {
	nc           net.Conn
	writeTimeout time.Duration
	maxBytes     int

	mu       sync.Mutex
	pending  []*Frame
	bytes    int
	writing  bool
	closing  bool // a close frame is queued: nothing else is accepted
	stopped  bool // the write side has ended: nothing more is written
	ncClosed bool
	slow     bool          // closed because the budget was exceeded
	flushed  chan struct{} // closed when the write side has ended

	// Owned by the writer goroutine.
	spare []*Frame
	bufs  net.Buffers
}

func newSendQueue(nc net.Conn, writeTimeout time.Duration, maxBytes int) *sendQueue {
	return &sendQueue{nc: nc, writeTimeout: writeTimeout, maxBytes: maxBytes, flushed: make(chan struct{})}
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
	}
}

// startLocked starts the writer goroutine unless it runs.
// Lock should be held.
func (q *sendQueue) startLocked() {
	if !q.writing && !q.stopped {
		q.writing = true
		go q.run()
	}
}

// run writes batches until the queue is empty, then exits.
func (q *sendQueue) run() {
	for {
		q.mu.Lock()
		if q.stopped || len(q.pending) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		batch := q.pending
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

// write sends a batch of frames with one vectored write.
func (q *sendQueue) write(batch []*Frame) error {
	q.bufs = q.bufs[:0]
	for _, f := range batch {
		q.bufs = append(q.bufs, f.wire)
	}
	bufs := q.bufs // WriteTo consumes its receiver
	q.nc.SetWriteDeadline(time.Now().Add(q.writeTimeout))
	_, err := bufs.WriteTo(q.nc)
	clear(q.bufs)
	return err
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
