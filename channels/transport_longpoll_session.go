package channels

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// lpSession is a LongPoll session: a socket whose Transport buffers frames
// until the client's next GET takes them. Frames are kept by reference
// (the same *Frame the fan-out queued on every subscriber). Inbound
// messages arrive in POSTs, handled one POST at a time (in), which stands
// for a WebSocket socket's read loop.
type lpSession struct {
	id     string
	token  string // the session's signed token, handed out with every answer
	sock   *Socket
	window time.Duration
	limit  int // max_queue_size: buffered payload bytes before the session is closed

	in sync.Mutex // held while a POST's messages are handled, and by end

	mu       sync.Mutex
	buf      []*Frame
	bufBytes int
	wake     chan struct{} // closed when frames arrive, the session closes, or a newer GET comes; nil while nobody waits
	polls    uint64        // GETs seen; a waiting GET that is no longer the newest answers 204
	active   int           // GETs and POSTs being served: the session does not expire meanwhile
	lastSeen time.Time     // when the last GET or POST began or ended
	closing  bool          // no more frames: the next GET that finds none answers 410
	slow     bool
	ended    atomic.Bool // terminated and unregistered

	expiry  *time.Timer
	endOnce sync.Once
	onEnd   func(*lpSession) // removes the session from the hub's table
}

var _ Transport = (*lpSession)(nil)

// Name implements Transport.
func (ss *lpSession) Name() string { return "longpoll" }

// Send implements Transport: f is kept for the next GET. Server-to-client
// binary frames do not exist over LongPoll (Phoenix sends none either):
// they are dropped, and counted.
func (ss *lpSession) Send(f *Frame) bool {
	if f.IsBinary() {
		ss.sock.hub.stats.longpollBinaryDropped.Add(1)
		if c := ss.sock.hub.logger().Check(zap.DebugLevel, "binary frame not sent over longpoll"); c != nil {
			c.Write(zap.String("socket_id", ss.sock.id))
		}
		return false
	}
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return false
	}
	ss.buf = append(ss.buf, f)
	ss.bufBytes += len(f.Payload())
	over := ss.bufBytes > ss.limit
	if over {
		ss.closing, ss.slow = true, true
	}
	ss.wakeLocked()
	ss.mu.Unlock()
	if over {
		ss.sock.hub.stats.slowConsumers.Add(1)
		ss.sock.hub.logger().Warn("slow consumer disconnected: longpoll session buffered more than max_queue_size",
			zap.String("socket_id", ss.sock.id), zap.String("remote", ss.sock.remoteAddr), zap.Int("max_queue_size", ss.limit))
		go ss.end()
		return false
	}
	return true
}

// SendNow implements Transport; a reply waits for the next GET like any
// frame.
func (ss *lpSession) SendNow(f *Frame) bool { return ss.Send(f) }

// Close implements Transport: frames already buffered are still handed
// to the next GET, after which the session is gone (410). LongPoll has no
// close frame: code and reason are not sent.
func (ss *lpSession) Close(int, string) {
	ss.mu.Lock()
	ss.closing = true
	ss.wakeLocked()
	ss.mu.Unlock()
	go ss.end()
}

// Abort implements Transport: the session ends and buffered frames are
// dropped.
func (ss *lpSession) Abort() {
	ss.mu.Lock()
	ss.closing = true
	clear(ss.buf)
	ss.buf, ss.bufBytes = nil, 0
	ss.wakeLocked()
	ss.mu.Unlock()
	go ss.end()
}

// wakeLocked wakes the GET waiting for frames, if any. mu is held.
func (ss *lpSession) wakeLocked() {
	if ss.wake != nil {
		close(ss.wake)
		ss.wake = nil
	}
}

// poll serves one GET: it returns the buffered frames at once, or waits
// up to the window for some. status is 200 (frames), 204 (none within the
// window, or a newer GET took over) or 410 (the session is gone).
func (ss *lpSession) poll(ctx context.Context) (frames []*Frame, status int) {
	timer := time.NewTimer(ss.window)
	defer timer.Stop()
	ss.mu.Lock()
	ss.polls++
	gen := ss.polls
	ss.active++
	ss.lastSeen = time.Now()
	ss.wakeLocked() // an older GET answers 204: only the newest is served
	defer func() {
		ss.active--
		ss.lastSeen = time.Now()
		ss.mu.Unlock()
	}()
	for {
		if len(ss.buf) > 0 {
			frames = ss.buf
			ss.buf, ss.bufBytes = nil, 0
			return frames, 200
		}
		if ss.closing {
			return nil, 410
		}
		if gen != ss.polls {
			return nil, 204
		}
		if ss.wake == nil {
			ss.wake = make(chan struct{})
		}
		wake := ss.wake
		ss.mu.Unlock()
		select {
		case <-wake:
			ss.mu.Lock()
		case <-timer.C:
			ss.mu.Lock()
			if len(ss.buf) == 0 || gen != ss.polls {
				return nil, 204
			}
		case <-ctx.Done():
			ss.mu.Lock()
			return nil, 204 // the client is gone: keep the frames for the next GET
		}
	}
}

// gone reports whether the session has ended and has nothing left to
// hand out: every request on it answers 410.
func (ss *lpSession) gone() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.closing && len(ss.buf) == 0
}

// posting marks a POST being handled (begin true) or done: like a GET, it
// keeps the session from expiring while it lasts, and its end counts as
// the client's last sign of life.
func (ss *lpSession) posting(begin bool) {
	ss.mu.Lock()
	if begin {
		ss.active++
	} else {
		ss.active--
	}
	ss.lastSeen = time.Now()
	ss.mu.Unlock()
}

// checkExpiry runs every 1.5 windows: a session that saw no request for
// longer than that is closed with leave reason "timeout", as Phoenix's
// LongPoll server stops inactive sessions.
func (ss *lpSession) checkExpiry() {
	ss.mu.Lock()
	idle := ss.active == 0 && time.Since(ss.lastSeen) > ss.window*3/2
	closing := ss.closing
	expiry := ss.expiry // set under ss.mu by lpOpen, possibly after this timer fired
	ss.mu.Unlock()
	switch {
	case closing:
		// ended (or ending): drop what no GET came to take
		ss.mu.Lock()
		clear(ss.buf)
		ss.buf, ss.bufBytes = nil, 0
		ss.mu.Unlock()
		ss.onEnd(ss)
	case idle:
		if c := ss.sock.hub.logger().Check(zap.DebugLevel, "longpoll session expired"); c != nil {
			c.Write(zap.String("socket_id", ss.sock.id), zap.Duration("window", ss.window))
		}
		// Nobody polls: what is buffered goes nowhere.
		ss.sock.endReason.CompareAndSwap(nil, LeaveReasonTimeout)
		ss.Abort()
		expiry.Reset(ss.window * 3 / 2)
	default:
		expiry.Reset(ss.window * 3 / 2)
	}
}

// release drops an ended session that has nothing left for a GET from
// the hub's table, and stops its expiry timer.
func (ss *lpSession) release() {
	if ss.ended.Load() && ss.gone() {
		ss.mu.Lock()
		expiry := ss.expiry
		ss.mu.Unlock()
		expiry.Stop()
		ss.onEnd(ss)
	}
}

// end terminates the session's socket once: its channels leave (webhooks
// and presence), it leaves the registry, and, when no frame is left for a
// GET, the hub's session table. It waits for a POST being handled.
func (ss *lpSession) end() {
	ss.endOnce.Do(func() {
		ss.in.Lock()
		ss.sock.terminate()
		ss.in.Unlock()
		ss.sock.hub.unregister(ss.sock)
		ss.sock.hub.stats.longpollLive.Add(-1)
		ss.ended.Store(true)
		ss.release()
		if c := ss.sock.hub.logger().Check(zap.DebugLevel, "socket closed"); c != nil {
			c.Write(zap.String("socket_id", ss.sock.id), zap.String("transport", "longpoll"), zap.Bool("slow", ss.slow))
		}
	})
}
