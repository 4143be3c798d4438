package channels

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// This file is the lean HTTP/1.1 client of http:// webhook upstreams: per
// upstream address a pool of idle keep-alive connections, requests written
// by hand in one write, and answers read on the calling goroutine. It
// spares the two goroutine hand-offs per request of net/http's transport;
// https:// upstreams still go through net/http (TLS, HTTP/2).

const (
	// h1IdleTimeout closes a pooled connection unused for that long.
	h1IdleTimeout = 90 * time.Second
	// h1KeepAlive is the TCP keep-alive period of dialled connections.
	h1KeepAlive = 30 * time.Second
	// h1ReadBufferSize is the read buffer of a connection.
	h1ReadBufferSize = 4 << 10
	// h1MaxKeptWriteBuffer is the largest request buffer kept with an
	// idle connection.
	h1MaxKeptWriteBuffer = 64 << 10
	// h1DeadlineSlackDiv sets how late a call's timeout may fire on the
	// lean path: Timeout/h1DeadlineSlackDiv.
	h1DeadlineSlackDiv = 256
	// h1MaxPools is the number of per-address pools kept before those
	// without idle connections are swept.
	h1MaxPools = 1024
)

// h1Target is a parsed http:// upstream URL served by the lean client.
type h1Target struct {
	pool *h1Pool
	// host is the Host header; uri is the request target (path?query).
	host, uri string
}

// h1TargetOf returns the lean target of rawURL, or nil when the URL is
// for net/http (https, user info, anything it does not parse).
func (w *Webhooks) h1TargetOf(rawURL string) *h1Target {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil
	}
	host := u.Hostname()
	if host == "" || !validH1HeaderValue(u.Host) {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	uri := u.RequestURI()
	if !validH1HeaderValue(uri) {
		return nil
	}
	return &h1Target{pool: w.h1Pool(net.JoinHostPort(host, port)), host: u.Host, uri: uri}
}

// validH1HeaderValue reports whether s can go in a request head as is:
// printable ASCII without spaces (net/http converts international host
// names, so those stay with it).
func validH1HeaderValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// h1Pool returns the pool of addr, creating it.
func (w *Webhooks) h1Pool(addr string) *h1Pool {
	w.h1mu.Lock()
	defer w.h1mu.Unlock()
	if p := w.h1pools[addr]; p != nil {
		return p
	}
	if len(w.h1pools) >= h1MaxPools {
		for a, p := range w.h1pools {
			if p.idleCount() == 0 {
				delete(w.h1pools, a)
			}
		}
	}
	p := &h1Pool{addr: addr, max: w.cfg.MaxConcurrency}
	w.h1pools[addr] = p
	return p
}

// closeH1Idle closes the idle connections of every pool.
func (w *Webhooks) closeH1Idle() {
	w.h1mu.Lock()
	pools := make([]*h1Pool, 0, len(w.h1pools))
	for _, p := range w.h1pools {
		pools = append(pools, p)
	}
	w.h1mu.Unlock()
	for _, p := range pools {
		p.closeIdle(0)
	}
}

// h1Pool holds the idle keep-alive connections to one address, most
// recently used last, at most max of them.
type h1Pool struct {
	addr string
	max  int

	mu    sync.Mutex
	idle  []*h1Conn
	timer *time.Timer // sweeps idle connections while there are some
}

// h1Conn is one connection with its buffers.
type h1Conn struct {
	nc     net.Conn
	io     *h1IO
	br     *bufio.Reader
	wbuf   []byte
	reused bool // has served a request before this one
	// readDeadline is the read deadline set on nc.
	readDeadline time.Time
	idleFrom     time.Time
}

// get returns an idle connection, or nil.
func (p *h1Pool) get() *h1Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if time.Since(c.idleFrom) < h1IdleTimeout {
			return c
		}
		c.nc.Close()
	}
	return nil
}

// put returns a connection that can serve another request.
func (p *h1Pool) put(c *h1Conn) {
	if cap(c.wbuf) > h1MaxKeptWriteBuffer {
		c.wbuf = nil
	}
	c.reused = true
	c.idleFrom = time.Now()
	p.mu.Lock()
	if len(p.idle) >= p.max {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
	if p.timer == nil {
		p.timer = time.AfterFunc(h1IdleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes connections idle for h1IdleTimeout and re-arms itself
// while connections remain.
func (p *h1Pool) sweep() {
	p.closeIdle(h1IdleTimeout)
	p.mu.Lock()
	p.timer = nil
	if len(p.idle) > 0 {
		p.timer = time.AfterFunc(h1IdleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// closeIdle closes the connections idle for at least age.
func (p *h1Pool) closeIdle(age time.Duration) {
	p.mu.Lock()
	kept := p.idle[:0]
	var stale []*h1Conn
	for _, c := range p.idle {
		if time.Since(c.idleFrom) >= age {
			stale = append(stale, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

// idleCount returns the number of idle connections.
func (p *h1Pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// dial opens a new connection to the pool's address before deadline.
func (p *h1Pool) dial(ctx context.Context, deadline time.Time) (*h1Conn, error) {
	d := net.Dialer{Deadline: deadline, KeepAlive: h1KeepAlive}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.addr, err)
	}
	cio := newH1IO(nc)
	return &h1Conn{nc: nc, io: cio, br: bufio.NewReaderSize(cio, h1ReadBufferSize)}, nil
}

// aLongTimeAgo is a deadline in the past: it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// roundTripH1 is roundTrip for a lean target: it waits for a slot until
// deadline (or ctx), sends the request and reads the capped answer.
func (w *Webhooks) roundTripH1(ctx context.Context, deadline time.Time, up *webhookUpstream, url, event string, body []byte) (WebhookResponse, error) {
	if err := up.acquireUntil(ctx, deadline); err != nil {
		return WebhookResponse{}, fmt.Errorf("webhook %s to %s: no free slot of %d: %w: %w",
			event, url, cap(up.sem), ErrUpstreamUnavailable, err)
	}
	defer up.release()
	if !validH1HeaderValue(event) {
		return WebhookResponse{}, fmt.Errorf("webhook %s: %w: invalid event name for a header", event, ErrUpstreamUnavailable)
	}
	t := up.h1
	var sig []byte
	if w.cfg.Secret != "" {
		s := w.signers.Get().(*webhookSigner)
		defer w.signers.Put(s)
		sig = appendWebhookSignature(s.buf[:0], s.mac, w.cfg.Now().Unix(), body)
	}

	c := t.pool.get()
	for attempt := 0; ; attempt++ {
		fresh := c == nil
		if fresh {
			var err error
			if c, err = t.pool.dial(ctx, deadline); err != nil {
				return WebhookResponse{}, fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, h1ContextError(ctx, deadline, err))
			}
		}
		resp, keep, retry, err := w.exchangeH1(ctx, deadline, c, t, url, event, sig, body)
		if keep {
			t.pool.put(c)
		} else {
			c.nc.Close()
		}
		if retry && !fresh && attempt == 0 && ctx.Err() == nil {
			c = nil // the pooled connection was stale: once more, fresh
			continue
		}
		return resp, err
	}
}

// exchangeH1 sends one request on c and reads its answer. keep says
// whether c can serve another request; retry that c failed before any
// byte of an answer arrived, as a stale keep-alive connection does.
func (w *Webhooks) exchangeH1(ctx context.Context, deadline time.Time, c *h1Conn, t *h1Target, url, event string, sig, body []byte) (resp WebhookResponse, keep, retry bool, err error) {
	// A read deadline already set within slack after deadline is kept:
	// moving the poller's timer on every call costs more than a timeout
	// firing at most Timeout/h1DeadlineSlackDiv late.
	if slack := w.cfg.Timeout / h1DeadlineSlackDiv; c.readDeadline.Before(deadline) || c.readDeadline.Sub(deadline) > slack {
		c.readDeadline = deadline.Add(slack)
		if err := c.nc.SetReadDeadline(c.readDeadline); err != nil {
			return resp, false, true, fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, err)
		}
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
		defer func() {
			if !stop() {
				keep = false // the deadline was moved: the connection is spent
			}
		}()
	}

	// The first read writes the request (see h1IO), then waits for the
	// first byte of the answer.
	c.wbuf = appendH1Request(c.wbuf[:0], t, event, sig, body)
	c.io.send(c.wbuf, deadline)
	if _, err := c.br.Peek(1); err != nil {
		return resp, false, h1Stale(err), fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, h1ContextError(ctx, deadline, err))
	}
	h, err := readH1Head(c.br)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return resp, false, false, fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, h1ContextError(ctx, deadline, err))
	}
	resp.Status = h.status
	r, declared, toEOF := h1Body(c.br, &h)
	if r != nil {
		resp.Body, err = readCappedBody(r, declared, w.cfg.MaxResponseBytes)
		if err != nil {
			return resp, false, false, fmt.Errorf("webhook %s to %s: status %d: %w: %w",
				event, url, h.status, ErrUpstreamUnavailable, h1ContextError(ctx, deadline, err))
		}
	}
	// Bytes past the answer mean the connection is out of step.
	return resp, !h.close && !toEOF && c.br.Buffered() == 0, false, nil
}

// appendH1Request appends the request head and body to dst.
func appendH1Request(dst []byte, t *h1Target, event string, sig, body []byte) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, t.uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, t.host...)
	dst = append(dst, "\r\nUser-Agent: caddy-channels\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nX-Channels-Event: "...)
	dst = append(dst, event...)
	if len(sig) > 0 {
		dst = append(dst, "\r\nX-Channels-Signature: "...)
		dst = append(dst, sig...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// h1Stale reports whether err is how a keep-alive connection closed by
// the server fails: the peer closed or reset it.
func h1Stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// h1ContextError returns err with the context's error, or
// context.DeadlineExceeded when the deadline passed, so that callers see
// the same errors as from net/http.
func h1ContextError(ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}
