//go:build unix

package channels

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// h1IO is the reader under a lean connection's bufio.Reader. A request
// queued with send is written by the first Read, from inside the
// descriptor's read wait: Go's poller clears a connection's read
// readiness before it calls the read callback, so writing there (rather
// than before) means the answer's readiness cannot be lost, and the
// callback can go straight to waiting instead of first trying a read that
// can only fail with EAGAIN. That saves one system call per webhook call.
type h1IO struct {
	nc  net.Conn
	rc  syscall.RawConn // nil: plain Write and Read on nc
	req []byte          // request not yet written
	// deadline of a request write that has to wait
	deadline time.Time
	// state of the Read in progress, kept here so that step, bound once,
	// needs no closure per call.
	p       []byte
	n       int
	err     error
	blocked bool // the request write would block: finish it on nc
	step    func(fd uintptr) bool
}

// newH1IO returns the I/O of nc.
func newH1IO(nc net.Conn) *h1IO {
	c := &h1IO{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.step = c.doStep
		}
	}
	return c
}

// send queues req to be written by the next Read; a write that has to
// wait does so until deadline.
func (c *h1IO) send(req []byte, deadline time.Time) { c.req, c.deadline = req, deadline }

// Read writes a queued request, then reads what is there.
func (c *h1IO) Read(p []byte) (int, error) {
	if c.rc == nil {
		if err := c.flush(); err != nil {
			return 0, err
		}
		return c.nc.Read(p)
	}
	c.p, c.n, c.err, c.blocked = p, 0, nil, false
	err := c.rc.Read(c.step)
	n, serr := c.n, c.err
	c.p, c.err = nil, nil
	if err != nil {
		return n, fmt.Errorf("read: %w", err)
	}
	if serr != nil {
		return n, serr
	}
	if c.blocked {
		if err := c.flush(); err != nil {
			return 0, err
		}
		return c.Read(p)
	}
	return n, nil
}

// flush writes what is left of a queued request with a plain Write,
// which waits under the connection's write deadline.
func (c *h1IO) flush() error {
	if len(c.req) == 0 {
		c.req = nil
		return nil
	}
	if err := c.nc.SetWriteDeadline(c.deadline); err != nil {
		c.req = nil
		return fmt.Errorf("write deadline: %w", err)
	}
	_, err := c.nc.Write(c.req)
	c.req = nil
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// doStep is the callback of rc.Read: write the queued request and wait,
// or read into c.p.
func (c *h1IO) doStep(fd uintptr) bool {
	if c.req != nil {
		for len(c.req) > 0 {
			n, err := syscall.Write(int(fd), c.req)
			if n > 0 {
				c.req = c.req[n:]
			}
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				c.blocked = true
				return true
			case err != nil:
				c.req = nil
				c.err = fmt.Errorf("write: %w", err)
				return true
			}
		}
		c.req = nil
		return false // the answer cannot be there yet: wait for it
	}
	for {
		n, err := syscall.Read(int(fd), c.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			c.err = fmt.Errorf("read: %w", err)
		case n == 0 && len(c.p) > 0:
			c.err = io.EOF
		default:
			c.n = n
		}
		return true
	}
}
