package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// portsPerIP is how many sockets are dialed from one loopback source
// address before the next one is used; Linux's default ephemeral range
// holds about 28,000 ports.
const portsPerIP = 25000

// dialer opens V2 WebSocket connections to the server, spreading source
// addresses over 127.0.0.1..127.0.0.n when the target is loopback and more
// sockets are needed than one source address has ports.
type dialer struct {
	ws websocket.Dialer
	// longpoll dials LongPoll sessions at lpURL instead of WebSockets.
	longpoll    bool
	lpURL       string
	lpTransport *http.Transport
	proto       protocol
	url         string
	sources     []net.IP
	next        atomic.Uint64
	timeout     time.Duration
	tls         *tls.Config // wss:// and https:// (nil: Go's defaults)
}

// newDialer prepares dials to the socket endpoint base (e.g.
// ws://127.0.0.1:8091/socket for Phoenix, the full WebSocket URL for
// Centrifugo). localIPs is the number of loopback source addresses (0:
// enough for sockets connections at once).
func newDialer(base string, proto protocol, sockets, localIPs int, timeout time.Duration) (*dialer, error) {
	u, err := proto.wsURL(base)
	if err != nil {
		return nil, err
	}
	d := &dialer{url: u.String(), proto: proto, timeout: timeout}
	d.ws = websocket.Dialer{
		HandshakeTimeout: timeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
	}
	if localIPs == 0 {
		localIPs = (sockets + portsPerIP - 1) / portsPerIP
	}
	if localIPs > 1 {
		if !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("-local-ips %d needs a loopback server address, not %q", localIPs, u.Hostname())
		}
		if localIPs > 254 {
			return nil, fmt.Errorf("-local-ips %d: at most 254 loopback addresses", localIPs)
		}
		for i := 1; i <= localIPs; i++ {
			d.sources = append(d.sources, net.IPv4(127, 0, 0, byte(i)))
		}
		d.ws.NetDialContext = d.dialFrom
	}
	return d, nil
}

// wsURL turns the socket endpoint into its WebSocket transport URL: http(s)
// becomes ws(s); for Phoenix, "/websocket" is appended unless the path
// already ends with it, and vsn=2.0.0 is added.
func (p protocol) wsURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse -url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("-url %q: scheme must be ws or wss", base)
	}
	if p == centrifugoJSON {
		return u, nil
	}
	if !strings.HasSuffix(u.Path, "/websocket") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/websocket"
	}
	q := u.Query()
	q.Set("vsn", "2.0.0")
	u.RawQuery = q.Encode()
	return u, nil
}

// useTLS sets the TLS configuration of wss:// dials (and, through
// newLPTransport, of https:// LongPoll sessions); nil keeps Go's defaults.
// The handshake runs over the connection dialFrom opens, so -local-ips
// works with wss:// too.
func (d *dialer) useTLS(conf *tls.Config) {
	d.tls = conf
	d.ws.TLSClientConfig = conf
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dialFrom dials from the next loopback source address in turn.
func (d *dialer) dialFrom(ctx context.Context, network, addr string) (net.Conn, error) {
	src := d.sources[d.next.Add(1)%uint64(len(d.sources))]
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: d.timeout}
	return nd.DialContext(ctx, network, addr)
}

// dial opens one connection; for Centrifugo it also sends the connect
// command and waits for its reply.
func (d *dialer) dial(ctx context.Context) (*client, error) {
	if d.longpoll {
		return d.dialLongPoll(ctx)
	}
	ws, resp, err := d.ws.DialContext(ctx, d.url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{ws: ws, proto: d.proto, timeout: d.timeout}
	if d.proto == centrifugoJSON {
		if err := c.connect(); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// client is one Phoenix V2 (or Centrifugo JSON) socket. One goroutine reads
// (readFrame); writes are serialized by wmu so a heartbeat or pong can
// interleave with other writers.
type client struct {
	ws      *websocket.Conn
	lp      *lpConn // set instead of ws for a LongPoll client
	proto   protocol
	wmu     sync.Mutex
	buf     []byte
	wbuf    []byte // heartbeat frame, guarded by wmu
	hbRef   uint64 // guarded by wmu
	ref     uint64
	joinRef string
	timeout time.Duration
}

// readFrame reads the next data frame into the socket's reused buffer and
// returns it; the slice is valid until the next call.
func (c *client) readFrame() ([]byte, error) {
	if c.lp != nil {
		b, err := c.lp.poll(c.buf[:0])
		if err == nil {
			c.buf = b
		}
		return b, err
	}
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if c.buf == nil {
		c.buf = make([]byte, 512)
	}
	n := 0
	for {
		if n == len(c.buf) {
			nb := make([]byte, 2*len(c.buf))
			copy(nb, c.buf)
			c.buf = nb
		}
		m, err := r.Read(c.buf[n:])
		n += m
		if err == io.EOF {
			return c.buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// write sends one text frame.
func (c *client) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(frame)
}

// writeLocked sends one text frame; the caller holds wmu.
func (c *client) writeLocked(frame []byte) error {
	if c.lp != nil {
		ctx, cancel := context.WithTimeout(c.lp.ctx, c.timeout)
		defer cancel()
		return c.lp.post(ctx, frame)
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// nextRef returns a new message ref. Only the goroutine that owns the
// socket's requests calls it.
func (c *client) nextRef() uint64 {
	c.ref++
	return c.ref
}

// heartbeat sends [null,"hbN","phoenix","heartbeat",{}]; the reply is read
// (and ignored) by whoever reads the socket. Safe alongside one reader and
// other writers. A Centrifugo client sends nothing: the server pings and
// the reader answers (see nextMessage).
func (c *client) heartbeat() error {
	if c.proto == centrifugoJSON {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hbRef++
	f := append(c.wbuf[:0], `[null,"hb`...)
	f = strconv.AppendUint(f, c.hbRef, 10)
	f = append(f, `","phoenix","heartbeat",{}]`...)
	c.wbuf = f
	return c.writeLocked(f)
}

// join joins topic (Centrifugo: subscribes to the channel) and waits for an
// ok reply, reading (and discarding) any frame before it. It must run before
// the socket's read loop starts.
func (c *client) join(topic string) error {
	if c.proto == centrifugoJSON {
		return c.centrifugoCommand("subscribe", topic)
	}
	ref := c.nextRef()
	c.joinRef = strconv.FormatUint(ref, 10)
	f := fmt.Appendf(nil, `[%q,%q,%s,"phx_join",{}]`, c.joinRef, c.joinRef, jsonString(topic))
	if err := c.request(f, c.joinRef); err != nil {
		return fmt.Errorf("join %s: %w", topic, err)
	}
	return nil
}

// leave leaves topic (Centrifugo: unsubscribes) and waits for its ok reply.
func (c *client) leave(topic string) error {
	if c.proto == centrifugoJSON {
		return c.centrifugoCommand("unsubscribe", topic)
	}
	ref := strconv.FormatUint(c.nextRef(), 10)
	f := fmt.Appendf(nil, `[%q,%q,%s,"phx_leave",{}]`, c.joinRef, ref, jsonString(topic))
	if err := c.request(f, ref); err != nil {
		return fmt.Errorf("leave %s: %w", topic, err)
	}
	return nil
}

// request sends f and reads frames until the reply with ref (Phoenix: the
// phx_reply with status ok; Centrifugo: the reply with that id and no
// error). It is bounded by the client timeout.
func (c *client) request(f []byte, ref string) error {
	if err := c.write(f); err != nil {
		return err
	}
	if c.ws != nil {
		if err := c.ws.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
			return err
		}
		defer c.ws.SetReadDeadline(time.Time{})
	}
	for {
		b, err := c.readFrame()
		if err != nil {
			return err
		}
		for len(b) > 0 {
			var msg []byte
			if msg, b = c.nextMessage(b); msg == nil {
				continue
			}
			var ok, match bool
			var err error
			if c.proto == centrifugoJSON {
				ok, match, err = centrifugoReplyStatus(msg, ref)
			} else {
				ok, match, err = replyStatus(msg, ref)
			}
			if err != nil {
				return err
			}
			if match {
				if !ok {
					return fmt.Errorf("refused: %s", msg)
				}
				return nil
			}
		}
	}
}

// nextMessage splits the next message off a frame: a Phoenix frame is one
// message, a Centrifugo frame holds one or more separated by newlines. A
// Centrifugo ping ({}) is answered here and returned as a nil message, so
// every reader keeps the connection alive.
func (c *client) nextMessage(b []byte) (msg, rest []byte) {
	if c.lp != nil {
		return splitLine(b) // a poll answer's messages, one per line
	}
	if c.proto != centrifugoJSON {
		return b, nil
	}
	msg, rest = splitLine(b)
	if isCentrifugoPing(msg) {
		_ = c.write(centrifugoPong) // a dead socket shows up in its reader
		return nil, rest
	}
	if len(msg) == 0 {
		return nil, rest
	}
	return msg, rest
}

// replyStatus decodes a V2 frame and reports whether it is the phx_reply
// with ref (match) and whether its status is ok.
func replyStatus(b []byte, ref string) (ok, match bool, err error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		return false, false, fmt.Errorf("frame %.100q: %w", b, err)
	}
	if len(arr) < 5 {
		return false, false, fmt.Errorf("frame %.100q: want 5 elements", b)
	}
	var r, event string
	if json.Unmarshal(arr[1], &r) != nil || r != ref {
		return false, false, nil
	}
	if json.Unmarshal(arr[3], &event) != nil || event != "phx_reply" {
		return false, false, nil
	}
	var p struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(arr[4], &p); err != nil {
		return false, true, fmt.Errorf("reply %.100q: %w", b, err)
	}
	return p.Status == "ok", true, nil
}

// closeGracefully sends a close frame (1000) and closes the connection.
func (c *client) closeGracefully() {
	if c.lp != nil {
		c.lp.cancel() // the session expires on the server
		return
	}
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

// close closes the TCP connection at once.
func (c *client) close() {
	if c.lp != nil {
		c.lp.cancel()
		return
	}
	_ = c.ws.Close()
}

// closeReason describes why a read loop ended: the close code sent by the
// server, or the error.
func closeReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return "close " + strconv.Itoa(ce.Code)
	}
	return err.Error()
}

// isStatusOK reports whether a reply frame carries "status":"ok"; used on
// push replies without decoding them.
func isStatusOK(b []byte) bool {
	return bytes.Contains(b, []byte(`"status":"ok"`))
}
