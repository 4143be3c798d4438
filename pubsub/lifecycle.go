package pubsub

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// The states of a Lifecycle, in the only order it goes through them.
const (
	lifeNew int32 = iota
	lifeStarted
	lifeClosed
)

// Lifecycle is the state a Broker or PresenceManager adapter shares between
// its methods: new, then started by Start, then closed by Close for good.
// It answers the state errors every adapter must give (ErrNotStarted
// before Start, ErrAlreadyStarted for a second Start, ErrClosed after
// Close, Close idempotent) with one wording: prefix, operation, topic.
// Its methods are safe for concurrent use; Start and Close are serialized,
// so that Close waits for a Start in progress.
type Lifecycle struct {
	prefix string
	mu     sync.Mutex // held by Start and Close
	state  atomic.Int32
}

// NewLifecycle returns the Lifecycle of a broker that Start starts.
// prefix begins every error message, the operation follows it at once:
// "redisbroker: " gives `redisbroker: subscribe "t": pubsub: closed`.
func NewLifecycle(prefix string) *Lifecycle {
	return &Lifecycle{prefix: prefix}
}

// NewStartedLifecycle returns a Lifecycle that is started already, for a
// component its constructor starts, such as a presence manager. prefix is
// as for NewLifecycle: "redisbroker: presence " gives
// `redisbroker: presence list "t": pubsub: closed`.
func NewStartedLifecycle(prefix string) *Lifecycle {
	l := &Lifecycle{prefix: prefix}
	l.state.Store(lifeStarted)
	return l
}

// Start checks that h is not nil and that the Lifecycle is new, then runs
// begin, which connects and starts the adapter's goroutines; when begin
// returns nil the Lifecycle is started. An error of begin is returned as
// it is and leaves the Lifecycle new, so that Start may be tried again.
// A second Start fails with ErrAlreadyStarted, one after Close with
// ErrClosed, a nil h with ErrInvalidArgument (each wrapped).
func (l *Lifecycle) Start(h Handler, begin func() error) error {
	if h == nil {
		return fmt.Errorf("%sstart: nil handler: %w", l.prefix, ErrInvalidArgument)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state.Load() {
	case lifeStarted:
		return fmt.Errorf("%sstart: %w", l.prefix, ErrAlreadyStarted)
	case lifeClosed:
		return fmt.Errorf("%sstart: %w", l.prefix, ErrClosed)
	}
	if err := begin(); err != nil {
		return err
	}
	l.state.Store(lifeStarted)
	return nil
}

// Check validates the topic of a call op and the state: it returns
// ErrInvalidArgument for an empty topic, ErrNotStarted before Start and
// ErrClosed after Close (each wrapped), and nil for a call the adapter
// may serve.
func (l *Lifecycle) Check(op, topic string) error {
	if topic == "" {
		return fmt.Errorf("%s%s: empty topic: %w", l.prefix, op, ErrInvalidArgument)
	}
	switch l.state.Load() {
	case lifeNew:
		return fmt.Errorf("%s%s %q: %w", l.prefix, op, topic, ErrNotStarted)
	case lifeClosed:
		return l.closedError(op, topic)
	}
	return nil
}

// ClosedError returns ErrClosed, wrapped with op and topic, once Close was
// called, and nil before. An adapter reports a call that failed because
// Close ended it meanwhile with this error rather than with the failure.
func (l *Lifecycle) ClosedError(op, topic string) error {
	if !l.Closed() {
		return nil
	}
	return l.closedError(op, topic)
}

// closedError is the error of a call op on topic after Close.
func (l *Lifecycle) closedError(op, topic string) error {
	return fmt.Errorf("%s%s %q: %w", l.prefix, op, topic, ErrClosed)
}

// Started reports whether Start succeeded and Close was not called yet.
func (l *Lifecycle) Started() bool { return l.state.Load() == lifeStarted }

// Closed reports whether Close was called.
func (l *Lifecycle) Closed() bool { return l.state.Load() == lifeClosed }

// Close marks the Lifecycle closed and reports whether the adapter has to
// stop what Start started: true only for the first Close after a Start
// that succeeded. Every later call answers false, so that an adapter's
// Close is idempotent. Close waits for a Start in progress.
func (l *Lifecycle) Close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Swap(lifeClosed) == lifeStarted
}
