package redisbroker

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// errShutdown is returned by dials after Close.
var errShutdown = errors.New("redisbroker: shutting down")

// dialFunc is the dial hook of rueidis.ClientOption.
type dialFunc = func(ctx context.Context, dst string, d *net.Dialer, cfg *tls.Config) (net.Conn, error)

// conns keeps the network connections of one client, so that Close can cut
// them at once: rueidis waits up to a second per connection for a silent
// server to answer a goodbye PING, which would make Close slow while Redis
// hangs.
//
// For the same reason a connection is closed when the context of the call
// that dialed it ends before the server sent anything: rueidis dials its
// pipelined connections on first use, with the call's context, and gives
// up on a handshake the hung server never answers by that goodbye PING, a
// second after the call's deadline unless the connection is closed.
type conns struct {
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
	closed bool
}

// wrap returns a dial function that dials with next (or like rueidis does
// when next is nil) and tracks the connection, closing it if ctx ends
// before the server answered on it.
func (cs *conns) wrap(next dialFunc) dialFunc {
	return func(ctx context.Context, dst string, d *net.Dialer, cfg *tls.Config) (net.Conn, error) {
		cs.mu.Lock()
		closed := cs.closed
		cs.mu.Unlock()
		if closed {
			return nil, errShutdown
		}
		var c net.Conn
		var err error
		switch {
		case next != nil:
			c, err = next(ctx, dst, d, cfg)
		case cfg != nil:
			c, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", dst)
		default:
			c, err = d.DialContext(ctx, "tcp", dst)
		}
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, owner: cs}
		tc.unwatch = context.AfterFunc(ctx, func() { _ = c.Close() })
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if cs.closed {
			_ = c.Close()
			return nil, errShutdown
		}
		if cs.open == nil {
			cs.open = make(map[*trackedConn]struct{})
		}
		cs.open[tc] = struct{}{}
		return tc, nil
	}
}

// closeAll closes every connection and refuses new ones.
func (cs *conns) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	open := cs.open
	cs.open = nil
	cs.mu.Unlock()
	for c := range open {
		_ = c.Conn.Close()
	}
}

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	owner    *conns
	unwatch  func() bool // stops closing the connection when the dial's ctx ends
	answered atomic.Bool // the server sent something: unwatch was called
}

// Read reads from the connection. The server's first bytes (its answer to
// the handshake) make the connection outlive the call that dialed it.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.answered.Load() && c.answered.CompareAndSwap(false, true) {
		c.unwatch()
	}
	return n, err
}

// Close closes the connection and stops tracking it.
func (c *trackedConn) Close() error {
	c.unwatch() // the dial's context need not keep the connection in mind
	c.owner.mu.Lock()
	delete(c.owner.open, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}
