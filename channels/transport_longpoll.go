package channels

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// The LongPoll transport (protocol §5): {path}/longpoll. A GET without a
// session token opens a session (the same handshake as a WebSocket); a GET
// with one waits up to the window for the session's frames; a POST carries
// the client's messages; OPTIONS answers a CORS preflight. Every answer but
// 400 is HTTP 200 with a JSON body whose "status" phoenix.js reads.

// LongPoll defaults.
const (
	// DefaultLongPollWindow is how long a GET waits for frames (Phoenix's
	// window_ms); a session with no request (GET or POST) for 1.5 windows
	// expires.
	DefaultLongPollWindow = 10 * time.Second
	// DefaultLongPollMaxSessions caps the open LongPoll sessions of a node.
	DefaultLongPollMaxSessions = 100000
)

// LongPollConfig shapes the LongPoll transport.
type LongPollConfig struct {
	// Off disables {path}/longpoll: ServeLongPoll answers 404.
	Off bool
	// Window is how long a GET is held open waiting for frames; a session
	// that sees no request for 1.5 × Window is closed (leave reason
	// timeout); a GET or POST being served holds it open.
	Window time.Duration
	// Secret signs session tokens. Nodes that share sessions must share
	// it; empty means a random key per hub (one node).
	Secret []byte
	// MaxSessions caps the open sessions of the hub; a new session beyond
	// it is refused (HTTP 503, status 500: phoenix.js retries with backoff).
	MaxSessions int
	// MaxBodySize caps a POST body in bytes; 0 means MaxFrameSize ×
	// MaxBatchLines. A larger body answers HTTP 413.
	MaxBodySize int64
}

// withDefaults fills the zero fields of c.
func (c LongPollConfig) withDefaults(maxFrame int64) LongPollConfig {
	if c.Window <= 0 {
		c.Window = DefaultLongPollWindow
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultLongPollMaxSessions
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = maxFrame * MaxBatchLines
	}
	return c
}

// lpTable is a hub's LongPoll sessions, by session id, and the requests
// it forwarded to other nodes, by request id.
type lpTable struct {
	key      []byte // signs tokens when no secret is configured
	mu       sync.Mutex
	sessions map[string]*lpSession
	waiting  map[string]chan lpReply
}

// count returns the number of sessions.
func (t *lpTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// get returns the session id, or nil.
func (t *lpTable) get(id string) *lpSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sessions[id]
}

// remove drops ss from the table.
func (t *lpTable) remove(ss *lpSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions[ss.id] == ss {
		delete(t.sessions, ss.id)
	}
}

// tokenKey is the key that signs and verifies session tokens now.
func (h *Hub) tokenKey(cfg *Config) []byte {
	if len(cfg.LongPoll.Secret) > 0 {
		return cfg.LongPoll.Secret
	}
	return h.lp.key
}

// ServeLongPoll serves one request to {path}/longpoll. It writes every
// answer itself, refusals included, as phoenix.js expects them.
func (h *Hub) ServeLongPoll(w http.ResponseWriter, r *http.Request) {
	cfg := h.Config()
	if cfg.LongPoll.Off {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		h.lpPreflight(cfg, w, r)
	case http.MethodGet:
		ss, remote, status := h.lpSessionOf(cfg, r)
		switch {
		case ss != nil:
			h.lpPoll(w, r, ss)
		case remote.node != "":
			code, answer := h.forward(r.Context(), remote.node, lpEnvelope{Op: "poll", Token: remote.token}, nil, cfg.LongPoll.Window+lpLookupTimeout)
			lpWrite(w, code, answer)
		case status == http.StatusGone:
			lpStatus(w, http.StatusOK, 410, "")
		default:
			h.lpOpen(cfg, w, r)
		}
	case http.MethodPost:
		ss, remote, _ := h.lpSessionOf(cfg, r)
		switch {
		case ss != nil:
			h.lpPublish(cfg, w, r, ss)
		case remote.node != "":
			body, code, answer := readLPBody(cfg, w, r)
			if answer == nil {
				code, answer = h.forward(r.Context(), remote.node, lpEnvelope{Op: "post", Token: remote.token, NDJSON: isNDJSON(r)}, body, cfg.LongPoll.Window+lpLookupTimeout)
			}
			lpWrite(w, code, answer)
		default:
			lpStatus(w, http.StatusOK, 410, "")
		}
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		w.WriteHeader(http.StatusBadRequest)
	}
}

// lpRemote names a session held by another node.
type lpRemote struct {
	node, token string
}

// lpSessionOf finds the session named by the request's token: a live
// session of this node, or the node that holds it (remote). It returns
// 410 when a token of ours names a session that is gone, and nothing
// when the request carries no token of ours (none, or an app's own "token"
// connect param): a GET then opens a session. A token in the
// X-Phoenix-Longpoll-Token header wins over the query; in the query, the
// last "token" wins, as Plug parses it. Another node's token is verified
// here only when a shared secret is configured; otherwise its node does.
func (h *Hub) lpSessionOf(cfg *Config, r *http.Request) (*lpSession, lpRemote, int) {
	tok, fromHeader := r.Header.Get("X-Phoenix-Longpoll-Token"), true
	if tok == "" {
		tok, fromHeader = lastQueryValue(r.URL.RawQuery, "token"), false
	}
	if tok == "" {
		return nil, lpRemote{}, 0
	}
	notOurs := 0
	if fromHeader {
		notOurs = http.StatusGone // only session tokens travel there
	}
	node, id, ok := splitToken(tok)
	if !ok {
		return nil, lpRemote{}, notOurs
	}
	if node == h.node {
		// A live session's token is the one it was given: comparing it
		// costs less than recomputing the signature on every request.
		if ss := h.lp.get(id); ss != nil && subtle.ConstantTimeCompare([]byte(tok), []byte(ss.token)) == 1 {
			if ss.gone() {
				return nil, lpRemote{}, http.StatusGone
			}
			return ss, lpRemote{}, http.StatusOK
		}
	} else if len(cfg.LongPoll.Secret) == 0 {
		return nil, lpRemote{node: node, token: tok}, 0
	}
	if _, _, err := verifyToken(h.tokenKey(cfg), tok); err != nil {
		return nil, lpRemote{}, notOurs
	}
	if node != h.node {
		return nil, lpRemote{node: node, token: tok}, 0
	}
	return nil, lpRemote{}, http.StatusGone // ours, but no such live session
}

// lpOpen runs the handshake and opens a session: {"messages":[],
// "status":410,"token":…} (410 is how Phoenix says "here is your session").
func (h *Hub) lpOpen(cfg *Config, w http.ResponseWriter, r *http.Request) {
	s, err := h.accept(cfg, r, "longpoll", func() (*string, error) {
		if v := r.Header.Values("X-Phoenix-AuthToken"); len(v) > 0 {
			token := v[0]
			return &token, nil
		}
		return nil, nil
	})
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusForbidden {
			lpStatus(w, http.StatusOK, 403, "")
			return
		}
		status := http.StatusServiceUnavailable
		if errors.As(err, &he) {
			status = he.Status
		}
		cfg.Logger.Debug("longpoll session refused", zap.Int("status", status), zap.Error(err))
		lpStatus(w, status, 500, "") // phoenix.js retries a 500 with backoff
		return
	}
	lp := cfg.LongPoll
	ss := &lpSession{id: newSessionID(), sock: s, window: lp.Window, limit: cfg.MaxQueueSize, lastSeen: time.Now(), onEnd: h.lp.remove}
	ss.token = signToken(h.tokenKey(cfg), h.node, ss.id) // signed once: every answer carries it
	h.lp.mu.Lock()
	if len(h.lp.sessions) >= lp.MaxSessions {
		h.lp.mu.Unlock()
		cfg.Logger.Warn("longpoll session refused: max_sessions reached", zap.Int("max_sessions", lp.MaxSessions))
		lpStatus(w, http.StatusServiceUnavailable, 500, "")
		return
	}
	h.lp.sessions[ss.id] = ss
	h.lp.mu.Unlock()
	if err := h.admit(cfg, s); err != nil {
		h.lp.remove(ss)
		status := http.StatusServiceUnavailable
		if he := (*HTTPError)(nil); errors.As(err, &he) {
			status = he.Status
		}
		lpStatus(w, status, 500, "") // phoenix.js retries a 500 with backoff
		return
	}
	h.subscribeID(s)
	// Under ss.mu: the timer may fire before AfterFunc returns, and
	// checkExpiry reads ss.expiry under the same lock.
	ss.mu.Lock()
	ss.expiry = time.AfterFunc(lp.Window*3/2, ss.checkExpiry)
	ss.mu.Unlock()
	h.open(s, ss)
	h.stats.longpollConnects.Add(1)
	h.stats.longpollLive.Add(1)
	if c := cfg.Logger.Check(zap.DebugLevel, "socket connected"); c != nil {
		c.Write(zap.String("socket_id", s.id), zap.String("remote", s.remoteAddr), zap.String("vsn", s.vsn), zap.String("transport", "longpoll"))
	}
	lpWrite(w, http.StatusOK, appendLPMessages(nil, nil, 410, ss.token))
}

// lpPoll answers a GET on a live session of this node.
func (h *Hub) lpPoll(w http.ResponseWriter, r *http.Request, ss *lpSession) {
	lpWrite(w, http.StatusOK, h.pollAnswer(r.Context(), ss))
}

// pollAnswer waits for a session's frames (see lpSession.poll) and returns
// the answer: its frames, 204 after the window, or 410 once it is gone.
func (h *Hub) pollAnswer(ctx context.Context, ss *lpSession) []byte {
	frames, status := ss.poll(ctx)
	if status == 410 {
		return lpStatusBody(410, "")
	}
	b := appendLPMessages(nil, frames, status, ss.token)
	clear(frames)
	ss.release() // the last frames of an ended session are out
	return b
}

// lpPublish handles a POST on a live session of this node.
func (h *Hub) lpPublish(cfg *Config, w http.ResponseWriter, r *http.Request, ss *lpSession) {
	body, status, answer := readLPBody(cfg, w, r)
	if answer == nil {
		status, answer = h.publishAnswer(cfg, ss, body, isNDJSON(r))
	}
	lpWrite(w, status, answer)
}

// readLPBody reads a POST body within the cap. When it cannot, it returns
// the HTTP status and answer to send.
func readLPBody(cfg *Config, w http.ResponseWriter, r *http.Request) ([]byte, int, []byte) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.LongPoll.MaxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, lpStatusBody(413, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
		}
		return nil, http.StatusBadRequest, lpStatusBody(400, "reading body: "+err.Error())
	}
	return body, 0, nil
}

// isNDJSON reports whether a POST is an ndjson batch.
func isNDJSON(r *http.Request) bool {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType == "application/x-ndjson"
}

// publishAnswer handles a POST's messages, in order, as the socket's read
// loop would, and returns the answer: {"status":200} once all are handled,
// {"status":408} when the window passed before the last (the rest are not
// handled), {"status":410} when the session ended meanwhile, HTTP 400 for
// a batch with an invalid message (none is handled).
func (h *Hub) publishAnswer(cfg *Config, ss *lpSession, body []byte, ndjson bool) (int, []byte) {
	lines, ignored, err := decodeBatch(body, ndjson, MaxBatchLines, cfg.MaxFrameSize)
	if err != nil {
		h.stats.invalidFrames.Add(1)
		return http.StatusBadRequest, lpStatusBody(400, err.Error())
	}
	s := ss.sock
	msgs := make([]Message, len(lines))
	for i, l := range lines {
		if !l.binary && !utf8.Valid(l.data) {
			h.stats.invalidFrames.Add(1)
			return http.StatusBadRequest, lpStatusBody(400, fmt.Sprintf("message %d is not valid UTF-8", i+1))
		}
		if msgs[i], err = s.ser.Decode(l.data, l.binary); err != nil {
			h.stats.invalidFrames.Add(1)
			return http.StatusBadRequest, lpStatusBody(400, fmt.Sprintf("message %d: %v", i+1, err))
		}
	}
	if ignored > 0 {
		cfg.Logger.Info("longpoll batch: lines after the first 100 ignored", zap.String("socket_id", s.id), zap.Int("ignored", ignored))
	}
	deadline := time.Now().Add(ss.window)
	ss.posting(true)
	defer ss.posting(false)
	ss.in.Lock()
	defer ss.in.Unlock()
	for i := range msgs {
		if ss.ended.Load() {
			return http.StatusOK, lpStatusBody(410, "")
		}
		if i > 0 && time.Now().After(deadline) {
			return http.StatusOK, lpStatusBody(408, "")
		}
		h.stats.messagesIn.Add(1)
		s.handle(&msgs[i])
	}
	return http.StatusOK, lpStatusBody(200, "")
}

// lpPreflight answers a CORS preflight (after check_origin).
func (h *Hub) lpPreflight(cfg *Config, w http.ResponseWriter, r *http.Request) {
	if origin := requestOrigin(r); !cfg.Origins.Check(origin, requestScheme(r), r.Host) {
		lpStatus(w, http.StatusOK, 403, "")
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
	hd.Set("Access-Control-Allow-Methods", "get, post, options")
	hd.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusOK)
}

// lpStatus writes {"status":status} (with "reason" when not empty).
func lpStatus(w http.ResponseWriter, httpStatus, status int, reason string) {
	lpWrite(w, httpStatus, lpStatusBody(status, reason))
}

// lpStatusBody is {"status":status}, with "reason" when not empty.
func lpStatusBody(status int, reason string) []byte {
	b := append([]byte(`{"status":`), strconv.Itoa(status)...)
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonwire.AppendString(b, reason)
	}
	return append(b, '}')
}

// lpWrite writes a LongPoll JSON answer with the headers Phoenix sends.
func lpWrite(w http.ResponseWriter, httpStatus int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(httpStatus)
	w.Write(body)
}

// appendLPMessages appends {"messages":[…],"status":…,"token":…}: each
// frame's payload as a JSON string, oldest first.
func appendLPMessages(b []byte, frames []*Frame, status int, token string) []byte {
	size := 48 + len(token)
	for _, f := range frames {
		size += len(f.Payload()) + len(f.Payload())/8 + 3
	}
	if cap(b)-len(b) < size {
		b = append(make([]byte, 0, len(b)+size), b...)
	}
	b = append(b, `{"messages":[`...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonwire.AppendString(b, f.Payload())
	}
	b = append(b, `],"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"token":`...)
	b = jsonwire.AppendString(b, token)
	return append(b, '}')
}

// lastQueryValue returns the last value of key in a raw query, unescaped,
// or "".
func lastQueryValue(rawQuery, key string) string {
	var last string
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			continue
		}
		if u, err := decodeFormComponent(v); err == nil {
			last = u
		}
	}
	return last
}
