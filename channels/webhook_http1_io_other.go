//go:build !unix

package channels

import (
	"fmt"
	"net"
	"time"
)

// h1IO is the reader under a lean connection's bufio.Reader: a request
// queued with send is written by the next Read, then the answer is read.
type h1IO struct {
	nc       net.Conn
	req      []byte
	deadline time.Time
}

// newH1IO returns the I/O of nc.
func newH1IO(nc net.Conn) *h1IO { return &h1IO{nc: nc} }

// send queues req to be written by the next Read; a write that has to
// wait does so until deadline.
func (c *h1IO) send(req []byte, deadline time.Time) { c.req, c.deadline = req, deadline }

// Read writes a queued request, then reads what is there.
func (c *h1IO) Read(p []byte) (int, error) {
	if c.req != nil {
		err := c.nc.SetWriteDeadline(c.deadline)
		if err == nil {
			_, err = c.nc.Write(c.req)
		}
		c.req = nil
		if err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	return c.nc.Read(p)
}
