// Command bench-ceiling is the server ceiling of the load tests: the
// smallest Go program that serves the same scenarios as the channels
// handler while doing only the work that cannot be avoided. Measured on the
// same machine with the same client, it shows what any Go server must spend
// per delivery, per reply and per idle socket, so that the figures of the
// real server can be read next to it (see BENCHMARKS.md).
//
// It speaks the Phoenix V2 JSON protocol on /socket/websocket (vsn 2.x):
//
//   - phx_join: ok reply {} and subscribe (the reply is queued before any
//     broadcast of the topic); joining a joined topic replaces the join.
//   - phx_leave: ok reply, then phx_close; heartbeat on "phoenix": ok reply.
//   - "echo": ok reply whose response is the pushed payload.
//   - "msg": broadcast to every subscriber of the topic (the sender
//     included), then ok reply {}.
//
// POST /socket/api/broadcast (header "Authorization: Bearer bench", body
// {"topic","event","payload"} or an array of them) broadcasts too. Every
// broadcast is encoded once into a complete WebSocket frame and that same
// byte slice is queued on each subscriber. Each socket has a queue and a
// writer goroutine, running only while frames are pending, that writes all
// queued frames with one writev. No lock is held while writing.
//
// There are no rules, no CEL, no Caddy, no idle timeout and no stale
// join_ref checks. Clients are trusted: frames must be compact JSON (as
// JSON.stringify writes it) and payloads are passed on unchecked; anything
// else closes the socket. /debug/pprof is served for profiling.
//
// With -naive each frame is written with its own write syscall instead of
// one writev per batch: the cost of a server that does not coalesce, which
// the coalescing of the real server is measured against (BENCHMARKS.md).
//
// Usage: bench-ceiling [-listen 127.0.0.1:8092] [-naive] [-tls-self-signed | -tls-cert F -tls-key K]
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	apiKey       = "bench"
	maxQueue     = 8 << 20 // bytes queued on a socket before it is dropped
	writeTimeout = 10 * time.Second
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8092", "address to listen on")
	naive := flag.Bool("naive", false, "write each frame with its own syscall (no writev batching)")
	flag.Parse()
	s := newServer()
	s.naive = *naive
	http.HandleFunc("/socket/websocket", s.serveWS)
	http.HandleFunc("/socket/api/broadcast", s.serveBroadcast)
	log.Printf("bench-ceiling listening on %s (naive writes: %v)", *listen, *naive)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(serve(srv)) // TLS with -tls-cert/-tls-key or -tls-self-signed (tls.go)
}

// server is the topic table: the subscribers of each topic.
type server struct {
	naive  bool // one write syscall per frame; set before serving
	mu     sync.RWMutex
	topics map[string][]*member
}

func newServer() *server { return &server{topics: make(map[string][]*member)} }

// member is one joined topic of a client; slot is its index in the topic.
type member struct {
	c       *client
	topic   string
	joinRef []byte
	slot    int
}

// client is one socket: its joined topics (read loop only) and its queue.
type client struct {
	nc     net.Conn
	naive  bool // one write per frame instead of one writev per batch
	joined map[string]*member

	mu      sync.Mutex
	pending [][]byte
	spare   [][]byte // writer only
	bytes   int
	writing bool
	closing bool
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferPool: &sync.Pool{}, // frames bypass gorilla's writer
	Subprotocols:    []string{"phoenix"},
	CheckOrigin:     func(*http.Request) bool { return true },
}

// readBufs holds a message while it is handled.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Query().Get("vsn"), "2.") {
		http.Error(w, "vsn=2.0.0 required", http.StatusForbidden)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{nc: conn.NetConn(), naive: s.naive, joined: make(map[string]*member)}
	conn.SetReadLimit(1 << 20)
	conn.SetPingHandler(func(p string) error { c.send(frame(0xA, []byte(p))); return nil })
	conn.SetCloseHandler(func(int, string) error { return nil }) // answered by c.close
	go s.readLoop(conn, c)                                       // frees the HTTP goroutine's stack
}

// readLoop handles frames until the connection ends, then leaves every
// topic and closes the socket.
func (s *server) readLoop(conn *websocket.Conn, c *client) {
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			break
		}
		buf := readBufs.Get().(*bytes.Buffer)
		buf.Reset()
		if _, err = buf.ReadFrom(r); err == nil && mt == websocket.TextMessage {
			err = s.handle(c, buf.Bytes())
		}
		readBufs.Put(buf)
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	for _, m := range c.joined {
		s.removeLocked(m)
	}
	s.mu.Unlock()
	c.close()
}

// Fixed parts of the frames.
var (
	null, comma, bracket = []byte("null"), []byte(","), []byte("[")
	nullNull, end        = []byte("[null,null,"), []byte("]")
	replyMid, statusMid  = []byte(`,"phx_reply",{"response":`), []byte(`,"status":`)
	replyEnd, closeEnd   = []byte("}]"), []byte(`,"phx_close",{}]`)
	ok, errStatus, empty = []byte(`"ok"`), []byte(`"error"`), []byte("{}")
	unmatched, unhandled = []byte(`{"reason":"unmatched topic"}`), []byte(`{"reason":"unhandled event"}`)
	closeFrame           = []byte{0x88, 2, 0x03, 0xE8} // close 1000
)

// handle answers one V2 frame [join_ref, ref, topic, event, payload].
func (s *server) handle(c *client, b []byte) error {
	el, payload, valid := splitV2(b)
	if !valid {
		return errors.New("invalid frame")
	}
	jr, ref, rawTopic, event := el[0], el[1], el[2], el[3]
	topic, err := unquote(rawTopic)
	if err != nil {
		return err
	}
	m := c.joined[string(topic)]
	switch string(event) {
	case `"phx_join"`:
		n := &member{c: c, topic: string(topic), joinRef: bytes.Clone(jr)}
		s.mu.Lock()
		if m != nil {
			s.removeLocked(m)
		}
		n.slot = len(s.topics[n.topic])
		s.topics[n.topic] = append(s.topics[n.topic], n)
		c.send(reply(jr, ref, rawTopic, ok, empty)) // before any broadcast
		s.mu.Unlock()
		c.joined[n.topic] = n
		if m != nil {
			c.send(frame(1, bracket, orNull(m.joinRef), comma, orNull(m.joinRef), comma, rawTopic, closeEnd))
		}
	case `"phx_leave"`:
		if m == nil {
			c.send(reply(jr, ref, rawTopic, ok, empty))
			break
		}
		s.mu.Lock()
		s.removeLocked(m)
		s.mu.Unlock()
		delete(c.joined, m.topic)
		c.send(reply(m.joinRef, ref, rawTopic, ok, empty))
		c.send(frame(1, bracket, orNull(m.joinRef), comma, orNull(m.joinRef), comma, rawTopic, closeEnd))
	case `"heartbeat"`:
		if string(topic) == "phoenix" {
			c.send(reply(nil, ref, rawTopic, ok, empty))
			break
		}
		fallthrough
	default:
		switch {
		case m == nil:
			c.send(reply(nil, ref, rawTopic, errStatus, unmatched))
		case string(event) == `"echo"`:
			c.send(reply(m.joinRef, ref, rawTopic, ok, payload))
		case string(event) == `"msg"`:
			s.broadcast(topic, frame(1, nullNull, rawTopic, comma, event, comma, payload, end))
			c.send(reply(m.joinRef, ref, rawTopic, ok, empty))
		default:
			c.send(reply(m.joinRef, ref, rawTopic, errStatus, unhandled))
		}
	}
	return nil
}

// removeLocked takes m out of its topic in O(1). s.mu must be held.
func (s *server) removeLocked(m *member) {
	subs := s.topics[m.topic]
	if m.slot >= len(subs) || subs[m.slot] != m {
		return
	}
	last := subs[len(subs)-1]
	subs[m.slot], last.slot = last, m.slot
	subs[len(subs)-1] = nil
	if subs = subs[:len(subs)-1]; len(subs) == 0 {
		delete(s.topics, m.topic)
	} else {
		s.topics[m.topic] = subs
	}
}

// broadcast queues the same frame on every subscriber of topic.
func (s *server) broadcast(topic, f []byte) {
	s.mu.RLock()
	for _, m := range s.topics[string(topic)] {
		m.c.send(f)
	}
	s.mu.RUnlock()
}

// serveBroadcast answers POST /socket/api/broadcast. Items are broadcast
// in order up to the first invalid one.
func (s *server) serveBroadcast(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+apiKey {
		http.Error(w, "POST with Authorization: Bearer "+apiKey, http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if body = bytes.TrimSpace(body); len(body) > 0 && body[0] != '[' {
		body = slices.Concat([]byte("["), body, []byte("]"))
	}
	var items []struct{ Topic, Event, Payload json.RawMessage }
	if err == nil {
		err = json.Unmarshal(body, &items)
	}
	for i := 0; i < len(items) && err == nil; i++ {
		it := items[i]
		topic, terr := unquote(it.Topic)
		if terr != nil || len(it.Event) < 3 || it.Event[0] != '"' || len(it.Payload) == 0 || it.Payload[0] != '{' {
			err = fmt.Errorf(`item %d: want {"topic":string,"event":string,"payload":object}`, i)
			break
		}
		s.broadcast(topic, frame(1, nullNull, it.Topic, comma, it.Event, comma, it.Payload, end))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d}`+"\n", len(items))
}

// send queues a frame without blocking; a socket whose queue exceeds
// maxQueue is dropped.
func (c *client) send(f []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if c.bytes+len(f) > maxQueue {
		c.closing, c.pending = true, nil
		c.nc.Close()
		return
	}
	c.pending = append(c.pending, f)
	c.bytes += len(f)
	c.startLocked()
}

// close queues a close frame after the pending frames; the writer closes
// the connection once it is written.
func (c *client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.closing = true
		c.pending = append(c.pending, closeFrame)
		c.startLocked()
	}
}

func (c *client) startLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop writes all queued frames with one writev until the queue is
// empty, then exits. After the close frame, or a failed write, it closes
// the connection.
func (c *client) writeLoop() {
	var err error
	for {
		c.mu.Lock()
		if len(c.pending) == 0 || err != nil {
			c.writing, c.pending = false, c.pending[:0]
			c.closing = c.closing || err != nil
			done := c.closing
			c.mu.Unlock()
			if done {
				c.nc.Close()
			}
			return
		}
		batch := c.pending
		c.pending, c.bytes = c.spare[:0], 0
		c.mu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if c.naive {
			err = writeEach(c.nc, batch)
		} else {
			bufs := net.Buffers(batch) // WriteTo consumes bufs, not batch
			_, err = writeBatch(c.nc, &bufs)
		}
		clear(batch)
		c.spare = batch[:0]
	}
}

// writeEach writes the frames of batch in order with one Write (one
// syscall, or one TLS record) per frame: the -naive mode.
func writeEach(nc net.Conn, batch [][]byte) error {
	for _, f := range batch {
		if _, err := nc.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// reply builds [jr, ref, topic, "phx_reply", {"response":resp,"status":status}].
func reply(jr, ref, topic, status, resp []byte) []byte {
	return frame(1, bracket, orNull(jr), comma, orNull(ref), comma, topic, replyMid, resp, statusMid, status, replyEnd)
}

func orNull(ref []byte) []byte {
	if ref == nil {
		return null
	}
	return ref
}

// frame builds an unmasked, final WebSocket frame with opcode op whose
// payload is the concatenation of parts.
func frame(op byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 10, 10+n)
	for _, p := range parts {
		b = append(b, p...)
	}
	switch {
	case n <= 125:
		b[8], b[9] = 0x80|op, byte(n)
		return b[8:]
	case n <= 0xFFFF:
		b[6], b[7] = 0x80|op, 126
		binary.BigEndian.PutUint16(b[8:], uint16(n))
		return b[6:]
	}
	b[0], b[1] = 0x80|op, 127
	binary.BigEndian.PutUint64(b[2:], uint64(n))
	return b
}

// splitV2 splits a compact V2 frame into its first four elements (raw
// JSON strings or numbers; null becomes nil) and the raw payload.
func splitV2(b []byte) (el [4][]byte, payload []byte, valid bool) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return el, nil, false
	}
	i := 1
	for k := range el {
		start := i
		if i < len(b) && b[i] == '"' {
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			i++
		}
		for i < len(b) && b[i] != ',' {
			i++
		}
		if i >= len(b) || start == i {
			return el, nil, false
		}
		if el[k] = b[start:i]; string(el[k]) == "null" {
			el[k] = nil
		}
		i++
	}
	payload = b[i : len(b)-1]
	return el, payload, len(payload) > 0 && el[2] != nil && el[3] != nil
}

// unquote returns the value of a raw JSON string: a subslice of raw unless
// it has escapes.
func unquote(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, errors.New("topic must be a JSON string")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("topic: %w", err)
	}
	return []byte(s), nil
}
