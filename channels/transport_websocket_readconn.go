package channels

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// An idle socket's reader goroutine is parked until the peer sends
// something. Where it parks decides its stack size: the garbage collector
// halves a parked goroutine's stack only while less than a quarter of it is
// in use. Parked inside gorilla's ReadMessage (NextReader, advanceFrame,
// bufio, net.Conn.Read) the reader used more than 2 KB of stack, so its
// stack stayed at 8 KB once a join had grown it. The read loop therefore
// waits for input on its own, in a shallow frame, with a small read
// through readConn, and only calls gorilla once a byte has arrived: the
// parked stack then shrinks to 4 KB.
//
// Waiting must not happen while gorilla's read buffer still holds bytes of
// the next frame (pipelined frames): the socket's bufio.Reader is therefore
// created here, handed to gorilla by the hijack (gorilla reuses a hijacked
// reader of more than 256 bytes when Upgrader.ReadBufferSize is 0), and
// checked with Buffered before each wait.
//
// While it waits, the socket holds no read buffer either: the
// bufio.Reader gorilla reads from is emptied (the zero value) and its
// buffer goes back to a pool, and the next input brings one back. Gorilla
// never reads while the socket waits, and keeps no reference into the
// buffer between messages (it copies payloads out).

// Gorilla reuses the hijacked reader only if it holds more than 256 bytes;
// a smaller buffer would make gorilla allocate its own, invisible one.
const _ = uint(readBufferSize - 257)

// waitReadSize is how much the wait reads at once. A small message
// (heartbeat, push) arrives whole in it, so waking costs no more reads
// than before; only the rest of a larger one takes a second read.
const waitReadSize = 128

// The held bytes are indexed with uint8.
const _ = uint8(waitReadSize)

// readConn is the net.Conn gorilla reads from. It holds the bytes that
// wait read, then the error wait met, and hands them to the next Reads:
// gorilla sees the same stream, and the same errors, as from the
// connection itself. Writes and deadlines go straight to the connection.
type readConn struct {
	net.Conn
	err  error // returned by the next Read once the held bytes are read
	buf  [waitReadSize]byte
	r, w uint8 // held bytes: buf[r:w]
}

// Read returns the held bytes, then the held error, then reads the
// connection.
func (c *readConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += uint8(n)
		return n, nil
	}
	if err := c.err; err != nil {
		c.err = nil
		return 0, err
	}
	return c.Conn.Read(p)
}

// wait blocks until the peer sends something or the read fails (read
// deadline, closed connection); what it read, and the error, are kept
// for the next Reads.
func (c *readConn) wait() {
	n, err := c.Conn.Read(c.buf[:])
	c.r, c.w, c.err = 0, uint8(n), err
}

// pending reports whether input is already at hand: held bytes or error,
// or bytes in the socket's read buffer.
func (c *readConn) pending(br *bufio.Reader) bool {
	return c.r < c.w || c.err != nil || br.Buffered() > 0
}

// readBuffers holds read buffers (as bufio.Readers) for sockets that
// have input at hand.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// lendBuffer makes br a reader of rc with a pooled buffer and returns the
// pooled reader, which must be handed back with returnBuffer.
func lendBuffer(br *bufio.Reader, rc *readConn) *bufio.Reader {
	lent := readBuffers.Get().(*bufio.Reader)
	lent.Reset(rc)
	*br = *lent
	return lent
}

// returnBuffer empties br, which must hold no unread bytes that matter,
// and puts the lent reader back in the pool.
func returnBuffer(br, lent *bufio.Reader) {
	*br = bufio.Reader{}
	lent.Reset(nil)
	readBuffers.Put(lent)
}

// readHijacker wraps the response writer that can hijack the connection,
// so that gorilla reads through a readConn and a read buffer the socket
// can inspect.
type readHijacker struct {
	http.ResponseWriter
	hj http.Hijacker

	rc   *readConn     // set by a successful Hijack
	br   *bufio.Reader // set by a successful Hijack; gorilla reads from it
	lent *bufio.Reader // the pooled reader whose buffer br uses
}

// Hijack hijacks the connection and substitutes the readConn and a
// reader with a lent readBufferSize buffer for it. When the client sent data before the
// handshake completed, the HTTP server's reader is passed through as is
// (gorilla refuses the upgrade then).
func (h *readHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := h.hj.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return nc, brw, err
	}
	h.rc = &readConn{Conn: nc}
	h.br = new(bufio.Reader)
	h.lent = lendBuffer(h.br, h.rc)
	return h.rc, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// newReadHijacker wraps w's hijacker (see hijackable), or returns nil when
// w cannot hijack.
func newReadHijacker(w http.ResponseWriter) *readHijacker {
	inner := hijackable(w)
	hj, ok := inner.(http.Hijacker)
	if !ok {
		return nil
	}
	return &readHijacker{ResponseWriter: inner, hj: hj}
}
