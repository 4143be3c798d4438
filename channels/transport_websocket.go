package channels

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// writeBufferPool lets gorilla borrow a write buffer only while it writes a
// control frame of its own; the socket's frames bypass gorilla's writer.
var writeBufferPool = &sync.Pool{}

// readBufferSize is the read buffer of a socket that is reading. Phoenix
// frames are small; larger frames are read in several reads. A socket
// borrows the buffer from a pool only while input is at hand (see
// transport_websocket_readconn.go), so idle sockets hold none.
const readBufferSize = 512

// ServeWebSocket runs the Phoenix WebSocket transport for one request to
// {path}/websocket: it checks the handshake (vsn, origin, auth token,
// connect rules), upgrades, and hands the socket to its own read loop. It
// returns an *HTTPError when the request is refused before the upgrade and
// nil once the socket is upgraded; the request's context ends then, while
// the socket lives on.
func (h *Hub) ServeWebSocket(w http.ResponseWriter, r *http.Request) error {
	cfg := h.Config()
	if r.Method != http.MethodGet {
		return httpErrorf(http.StatusBadRequest, "websocket transport expects GET, got %s", r.Method)
	}
	s, err := h.accept(cfg, r, "websocket", func() (*string, error) {
		offered := websocket.Subprotocols(r)
		token, hasToken, err := ExtractAuthToken(offered)
		if err != nil {
			return nil, &HTTPError{Status: http.StatusForbidden, Err: err}
		}
		if others := nonTokenProtocols(offered); len(others) > 0 && !slices.Contains(others, "phoenix") {
			return nil, httpErrorf(http.StatusForbidden, "no supported subprotocol in %q (want phoenix)", others)
		}
		if !hasToken {
			return nil, nil
		}
		return &token, nil
	})
	if err != nil {
		return err
	}
	// The socket is registered under its id, and the id's broker
	// subscription is in place, before the handshake answers 101: a
	// disconnect by id published on any node once the client sees the
	// socket open reaches it (and is carried out by open if it comes
	// before the socket can send). Every failure below undoes both.
	if err := h.admit(cfg, s); err != nil {
		return err
	}
	h.subscribeID(s)

	var upgradeErr *HTTPError
	deflate := cfg.Compression.Enabled && acceptDeflateOffer(r.Header)
	up := websocket.Upgrader{
		Subprotocols: []string{"phoenix"},
		CheckOrigin:  func(*http.Request) bool { return true }, // checked above
		// ReadBufferSize 0: gorilla reuses the hijacked reader, which
		// readHijacker makes readBufferSize bytes (see transport_websocket_readconn.go).
		WriteBufferPool:   writeBufferPool,
		EnableCompression: deflate, // offered by the client, accepted, and on (see transport_websocket_deflate.go)
		Error: func(_ http.ResponseWriter, _ *http.Request, status int, reason error) {
			upgradeErr = &HTTPError{Status: status, Err: reason}
		},
	}
	hj := newReadHijacker(w)
	var uw http.ResponseWriter = w
	if hj != nil {
		uw = hj
	}
	ur := r
	if deflate {
		ur = withDeflateOffer(r)
	}
	conn, err := up.Upgrade(uw, ur, nil)
	if err != nil {
		h.unregister(s)
		if upgradeErr != nil {
			return upgradeErr
		}
		return &HTTPError{Status: http.StatusBadRequest, Err: err}
	}
	if hj == nil || hj.rc == nil {
		// Upgrade succeeds only after a hijack, which sets rc.
		h.unregister(s)
		conn.Close()
		return &HTTPError{Status: http.StatusInternalServerError, Err: errors.New("websocket upgrade without hijack")}
	}
	// The send queue writes to the connection itself: writev needs the
	// *net.TCPConn, not the readConn wrapper.
	q := newSendQueue(hj.rc.Conn, cfg.WriteTimeout, cfg.MaxQueueSize)
	q.setWriteDelay(cfg.WriteDelay)
	var t Transport = q
	if deflate {
		t = newDeflateTransport(q, cfg.Compression, &h.stats.deflate)
	}
	h.open(s, t)
	// The read loop runs on its own goroutine and ServeHTTP returns: the
	// HTTP server's goroutine, its deep stack (the middleware chain), the
	// request and the connection's buffered writer are released, so an idle
	// socket costs only its reader goroutine (parked with a small stack, see
	// transport_websocket_readconn.go) and state.
	go (&wsSocket{Socket: s, q: q, deflate: deflate}).readLoop(conn, hj.rc, hj.br, hj.lent)
	return nil
}

// wsSocket is a socket served over WebSocket, as its read loop sees it:
// the engine's Socket and the send queue that is its Transport.
type wsSocket struct {
	*Socket
	q        *sendQueue
	deflate  bool  // permessage-deflate was negotiated
	maxFrame int64 // max_frame_size at connect: the largest message content
}

// readLoop reads and handles frames until the socket ends, then releases
// everything the socket holds. While no input is at hand it parks in
// rc.wait, called from this shallow frame, so that the parked goroutine's
// stack shrinks, and without a read buffer (see transport_websocket_readconn.go); frames are
// read and handled in readFrames and the end in endReading, deeper, only
// while there is input. br reads with lent's buffer on entry.
func (s *wsSocket) readLoop(conn *websocket.Conn, rc *readConn, br, lent *bufio.Reader) {
	idle := s.startReading(conn)
	var endErr error
	for endErr == nil {
		if !rc.pending(br) {
			returnBuffer(br, lent)
			s.q.extendRead(idle)
			rc.wait()
			lent = lendBuffer(br, rc)
		}
		endErr = s.readFrames(conn, rc, br, idle)
	}
	returnBuffer(br, lent)
	s.endReading(endErr, idle)
}

// startReading installs the control frame handlers and returns the idle
// timeout.
//
//go:noinline
func (s *wsSocket) startReading(conn *websocket.Conn) time.Duration {
	cfg := s.hub.Config()
	idle := cfg.IdleTimeout
	s.maxFrame = cfg.MaxFrameSize
	conn.SetReadLimit(wireReadLimit(cfg.MaxFrameSize, s.deflate))
	conn.SetPingHandler(func(data string) error {
		s.q.extendRead(idle)
		s.q.sendControl(controlFrame(opPong, []byte(data)))
		return nil
	})
	conn.SetPongHandler(func(string) error {
		s.q.extendRead(idle)
		return nil
	})
	conn.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			s.q.Close(1000, "")
		} else {
			s.q.Close(code, "")
		}
		return nil
	})
	if c := cfg.Logger.Check(zap.DebugLevel, "socket connected"); c != nil {
		c.Write(zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.String("vsn", s.vsn))
	}
	return idle
}

// readFrames reads and handles messages until no input is left at hand
// (it returns nil) or reading fails (it returns the error).
//
//go:noinline
func (s *wsSocket) readFrames(conn *websocket.Conn, rc *readConn, br *bufio.Reader, idle time.Duration) error {
	log := s.hub.logger()
	for {
		s.q.extendRead(idle)
		closing := s.q.isClosing()
		mt, data, err := readMessage(conn, s.maxFrame, closing)
		if errors.Is(err, errInflatedTooBig) {
			s.hub.stats.invalidFrames.Add(1)
			log.Info("closing socket: message larger than max_frame_size once inflated", zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.Int64("max_frame_size", s.maxFrame))
			s.q.Close(CloseMessageTooBig, "message too big")
		} else if err != nil {
			return err
		}
		if closing || s.q.isClosing() {
			// a close frame is queued: drain until the peer answers;
			// NextReader skips what is left of an oversized message
			// without inflating it
		} else {
			s.hub.stats.messagesIn.Add(1)
			switch {
			case mt == websocket.TextMessage && !utf8.Valid(data):
				s.hub.stats.invalidFrames.Add(1)
				log.Info("closing socket: text frame is not valid UTF-8", zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr))
				s.q.Close(CloseInvalidPayload, "invalid utf-8")
			default:
				msg, err := s.ser.Decode(data, mt == websocket.BinaryMessage)
				if err != nil {
					s.hub.stats.invalidFrames.Add(1)
					log.Info("closing socket: invalid message", zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.Error(err))
					s.q.Close(CloseInternalError, "invalid message")
				} else {
					s.handle(&msg)
				}
			}
		}
		if !rc.pending(br) {
			return nil
		}
	}
}

// endReading ends the socket after reading failed with endErr.
//
//go:noinline
func (s *wsSocket) endReading(endErr error, idle time.Duration) {
	cfg := s.hub.Config()
	log := cfg.Logger
	switch {
	case errors.Is(endErr, websocket.ErrReadLimit):
		s.hub.stats.invalidFrames.Add(1)
		log.Info("socket closed: frame larger than max_frame_size", zap.String("socket_id", s.id), zap.Int64("max_frame_size", cfg.MaxFrameSize))
		// gorilla already wrote the 1009 close frame: send no second one,
		// and read off the rest of the oversized frame before closing.
		s.q.drainAndAbort(max(4*cfg.MaxFrameSize, 8<<20))
	case isTimeout(endErr) && !s.q.isClosing():
		if c := log.Check(zap.DebugLevel, "socket idle timeout"); c != nil {
			c.Write(zap.String("socket_id", s.id), zap.Duration("idle_timeout", idle))
		}
		s.closeFor(LeaveReasonTimeout, CloseGoingAway, "idle timeout")
	default:
		s.q.Close(CloseGoingAway, "")
	}
	s.q.waitFlushed(closeGrace)
	s.q.Abort()
	if s.q.Slow() {
		s.hub.stats.slowConsumers.Add(1)
		log.Warn("slow consumer disconnected: outbound queue exceeded max_queue_size",
			zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.Int("max_queue_size", cfg.MaxQueueSize))
	}
	s.terminate()
	s.hub.unregister(s.Socket)
	if c := log.Check(zap.DebugLevel, "socket closed"); c != nil {
		c.Write(zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.Error(endErr))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// nonTokenProtocols returns the offered subprotocols minus the auth token.
func nonTokenProtocols(offered []string) []string {
	var out []string
	for _, p := range offered {
		if !strings.HasPrefix(p, AuthTokenProtocolPrefix) {
			out = append(out, p)
		}
	}
	return out
}

// lowerHeaders flattens request headers for rules: lower-case names,
// multiple values joined with ", ".
func lowerHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = joinHeader(v)
	}
	return out
}

// joinHeader joins the values of a repeated header.
func joinHeader(v []string) string { return strings.Join(v, ", ") }

// requestOrigin returns the Origin header; a header that is present but
// empty becomes "null" so that it is rejected like any host-less origin
// (only a missing header passes every policy).
func requestOrigin(r *http.Request) string {
	v := r.Header.Values("Origin")
	if len(v) == 0 {
		return ""
	}
	if v[0] == "" {
		return "null"
	}
	return v[0]
}

// requestScheme is "https" for TLS requests and "http" otherwise.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
