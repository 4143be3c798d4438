package channels

import (
	"sync"
	"sync/atomic"
	"time"
)

// Adaptive coalescing of a busy socket's writes (without a configured
// write delay). A writer normally writes what is queued at once. When the
// server publishes as fast as it can, that makes every writer run between
// two publishes and write one frame per syscall: with GOMAXPROCS 1 (a
// server pinned to one core), the publisher waits in the network poller
// while a thousand writers run, and the next publish is only read once
// they have all run (or once the runtime's monitor polls the network, every
// 10 ms).
//
// The writers detect that: the server is saturated by its writes when a
// round of writers (from none running to none running again) begins less
// than drainGap after the last round ended: the next publish was waiting
// for the writers. The batches that begin within fanoutWindow of the
// round's start (the rest of that publish's fan-out) share the verdict;
// later ones, of the next publishes, do not, so that a round lengthened by
// its own hold does not make the next publish hold too. A writer blocked in
// a write to a slow peer keeps its round going, which only means no hold.
// A writer starting a batch on a saturated server first holds, until
// the end of the current hold epoch (at most holdTime; one epoch, and one
// timer, shared by all sockets), so that the publisher runs meanwhile and
// the frames it publishes join the batch; a socket keeps holding while its
// holds gather at least two frames each (more than one frame per holdTime).
// A server that is idle between publishes (100 messages per second to a
// thousand sockets leave it idle part of each 10 ms) does not hold, and a
// socket whose last batch began idleGap or more ago never holds, so latency
// at low rates is unchanged. As with the write delay, a close frame, the
// end of the write side, or a batch of flushFrames frames or half the byte
// budget end the hold at once.

const (
	// holdTime is the longest a busy socket's writer holds its batch.
	holdTime = 5 * time.Millisecond
	// drainGap: a round of writers that begins less than this after the
	// last one ended marks the server as saturated by its writes.
	drainGap = 500 * time.Microsecond
	// fanoutWindow: batches that begin this soon after their round began
	// belong to the same fan-out and share its verdict.
	fanoutWindow = time.Millisecond
	// idleGap: a socket whose last batch began this long ago never holds.
	idleGap = 50 * time.Millisecond
	// keepGathered is how many frames a hold must gather for the socket's
	// next batch to hold again.
	keepGathered = 2
)

// The writer goroutines of all send queues, in monoNow units. Updates from
// several cores may interleave (a reader may see the count of one round
// with the times of another): the verdict is a hint, and a wrong one costs
// one hold or one missed hold.
var (
	writers        atomic.Int64 // writer goroutines started, not yet exited
	drainedAt      atomic.Int64 // when writers last dropped to zero (0: never)
	roundStart     atomic.Int64 // when the current round began
	roundSaturated atomic.Bool  // the current round began right after the last ended
)

// saturated reports whether, at t, the server is saturated by its writes.
func saturated(t time.Duration) bool {
	if writers.Load() == 0 {
		d := drainedAt.Load()
		return d != 0 && t-time.Duration(d) < drainGap
	}
	return roundSaturated.Load() && t-time.Duration(roundStart.Load()) < fanoutWindow
}

// writerStarted counts a writer goroutine started at t.
func writerStarted(t time.Duration) {
	if writers.Load() == 0 {
		roundSaturated.Store(saturated(t))
		roundStart.Store(int64(t))
	}
	writers.Add(1)
}

// writerExited counts a writer goroutine out.
func writerExited() {
	if writers.Add(-1) == 0 {
		drainedAt.Store(int64(monoNow()))
	}
}

// holdEpoch is the hold shared by every busy writer: writers that hold
// wait for the current epoch's channel, which one timer closes holdTime
// after the epoch opened.
var holdEpoch = epoch{length: holdTime}

// epoch is a recurring deadline shared by many waiters.
type epoch struct {
	mu     sync.Mutex
	length time.Duration
	open   chan struct{} // closed when the epoch ends; nil while none is open
	timer  *time.Timer
}

// join returns the channel of the open epoch, opening one that ends after
// the epoch's length if none is open.
func (e *epoch) join() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open == nil {
		e.open = make(chan struct{})
		if e.timer == nil {
			e.timer = time.AfterFunc(e.length, e.end)
		} else {
			e.timer.Reset(e.length)
		}
	}
	return e.open
}

// end closes the open epoch, releasing its waiters.
func (e *epoch) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open != nil {
		close(e.open)
		e.open = nil
	}
}

// noteBatchLocked records that a new batch begins at t (the first frame
// is queued on an idle queue) and decides whether its writer holds.
// Lock should be held.
func (q *sendQueue) noteBatchLocked(t time.Duration) {
	if q.writeDelay > 0 {
		return
	}
	q.holdNext = q.batchAt != 0 && t-q.batchAt < idleGap && (q.gathered || saturated(t))
	q.batchAt = t
}

// hold waits, before the writer takes its first batch, until the hold
// epoch ends or the queue is kicked, and records whether frames joined the
// batch meanwhile. It returns at once unless the batch was marked to hold.
// holdNext and gathered are the writer's own from its start (set under the
// lock before it is started) to its exit (which takes the lock).
func (q *sendQueue) hold() {
	if !q.holdNext {
		q.gathered = false
		return
	}
	q.holdNext = false
	q.mu.Lock()
	if q.closing || q.stopped || len(q.pending) >= flushFrames || 2*q.bytes >= q.maxBytes {
		q.mu.Unlock()
		return
	}
	if q.kick == nil {
		q.kick = make(chan struct{}, 1) // only sockets that hold get one
	}
	queued := len(q.pending)
	q.mu.Unlock()

	select {
	case <-holdEpoch.join():
	case <-q.kick:
	}

	q.mu.Lock()
	q.gathered = len(q.pending)-queued >= keepGathered
	q.mu.Unlock()
}
