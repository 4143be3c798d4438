package integration

// The chaos suite's client: a V2 JSON socket on one history-backed topic
// that accepts broadcasts strictly in position order and catches up with
// _since on a gap or after its socket ended.

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// chaosClient is one subscriber. Its reader goroutine owns the
// connection; the scenario asks it to reconnect or expects a disconnect
// through the methods below.
type chaosClient struct {
	id    int
	url   string // ws://…/socket of the node it uses
	topic string
	user  string // socket id "user:<user>" for disconnects by id

	mu        sync.Mutex
	conn      *websocket.Conn
	epoch     string
	seq       int
	accepted  []int // payload numbers, in the order accepted
	dups      int   // broadcasts at or before the accepted position
	dupInfo   []string
	sinceJoin int
	catchUps  int // rejoins after a gap
	closes    []string
	expectEnd string // "disconnect" while a disconnect by id is expected
	joinRef   int
	waiting   string // the ref of the join whose reply is awaited; broadcasts are ignored meanwhile
	rejoinErr error
	changed   chan struct{}
}

// chaosDialer dials over IPv4 loopback.
var chaosDialer = websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	NetDial:          func(_, addr string) (net.Conn, error) { return net.DialTimeout("tcp4", addr, 10*time.Second) },
}

// connect dials and joins (with _since once a position is known) and
// starts the reader. The caller must not hold mu.
func (c *chaosClient) connect() error {
	conn, _, err := chaosDialer.Dial(c.url+"/websocket?vsn=2.0.0&user="+c.user, nil)
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", c.id, err)
	}
	c.mu.Lock()
	c.conn = conn
	err = c.joinLocked()
	c.mu.Unlock()
	if err != nil {
		conn.Close()
		return err
	}
	go c.read(conn)
	return nil
}

// joinLocked sends a join of the topic, with _since when a position is
// known; broadcasts are ignored until its reply.
func (c *chaosClient) joinLocked() error {
	c.joinRef++
	ref := strconv.Itoa(c.joinRef)
	payload := "{}"
	if c.epoch != "" {
		payload = fmt.Sprintf(`{"_since":"%s:%d"}`, c.epoch, c.seq)
	}
	c.waiting = ref
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `[%q,%q,%q,"phx_join",%s]`, ref, ref, c.topic, payload)); err != nil {
		return fmt.Errorf("client %d: join: %w", c.id, err)
	}
	return nil
}

// read handles frames until the connection ends.
func (c *chaosClient) read(conn *websocket.Conn) {
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			c.ended(conn, err)
			return
		}
		var f []json.RawMessage
		if json.Unmarshal(b, &f) != nil || len(f) != 5 {
			c.fail(fmt.Errorf("undecodable frame %s", b))
			continue
		}
		var ref, event string
		json.Unmarshal(f[1], &ref)
		json.Unmarshal(f[3], &event)
		c.mu.Lock()
		if c.conn != conn {
			c.mu.Unlock()
			return // a frame read off a socket the test has closed
		}
		switch event {
		case "phx_reply":
			if ref == c.waiting {
				c.joined(f[4])
			}
		case "tick":
			c.tick(ref, f[4])
		}
		c.mu.Unlock()
		c.signal()
	}
}

// joined handles the reply of the awaited join. mu is held.
func (c *chaosClient) joined(reply json.RawMessage) {
	var r struct {
		Status   string `json:"status"`
		Response struct {
			Position  string `json:"_position"`
			Recovered *bool  `json:"_recovered"`
		} `json:"response"`
	}
	if err := json.Unmarshal(reply, &r); err != nil || r.Status != "ok" {
		c.rejoinErr = fmt.Errorf("client %d: join refused: %s", c.id, reply)
		return
	}
	c.waiting = ""
	c.sinceJoin = 0
	if c.epoch == "" {
		c.epoch, c.seq = splitPosition(r.Response.Position)
		return
	}
	if r.Response.Recovered == nil || !*r.Response.Recovered {
		c.rejoinErr = fmt.Errorf("client %d: catch-up from %s:%d not recovered: %s", c.id, c.epoch, c.seq, reply)
	}
}

// tick accepts a broadcast in position order. mu is held.
func (c *chaosClient) tick(ref string, payload json.RawMessage) {
	if c.waiting != "" {
		return // a catch-up is under way: the replay brings it
	}
	epoch, seq := splitPosition(ref)
	switch {
	case epoch != c.epoch:
		c.rejoinErr = fmt.Errorf("client %d: epoch changed from %s to %s", c.id, c.epoch, epoch)
	case seq == c.seq+1:
		var p struct {
			N int `json:"n"`
		}
		json.Unmarshal(payload, &p)
		c.seq = seq
		c.sinceJoin++
		c.accepted = append(c.accepted, p.N)
	case seq <= c.seq:
		c.dups++
		c.dupInfo = append(c.dupInfo, fmt.Sprintf("seq %d at %d (accepted since join %d)", seq, c.seq, c.sinceJoin))
	default: // a gap: catch up from the last accepted position
		c.catchUps++
		if err := c.joinLocked(); err != nil {
			c.rejoinErr = err
		}
	}
}

// ended records how the connection ended and reconnects, with _since,
// unless the test closed it itself.
func (c *chaosClient) ended(conn *websocket.Conn, err error) {
	c.mu.Lock()
	if c.conn != conn {
		c.mu.Unlock()
		return
	}
	why := c.expectEnd
	c.expectEnd = ""
	code := "no close frame: " + err.Error()
	if ce, ok := err.(*websocket.CloseError); ok {
		code = strconv.Itoa(ce.Code)
	}
	switch why {
	case "disconnect":
		c.closes = append(c.closes, "disconnect:"+code)
	default:
		c.closes = append(c.closes, "unexpected:"+code)
	}
	c.mu.Unlock()
	conn.Close()
	c.signal()
	if err := c.connect(); err != nil {
		c.fail(err)
	}
}

// closeAndReconnect closes the socket from the client side and connects
// again; the old socket's reader ignores what it still reads.
func (c *chaosClient) closeAndReconnect() error {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	conn.Close()
	return c.connect()
}

// expectDisconnect marks the next end of the socket as a disconnect by id.
func (c *chaosClient) expectDisconnect() {
	c.mu.Lock()
	c.expectEnd = "disconnect"
	c.mu.Unlock()
}

// stop closes the socket for good.
func (c *chaosClient) stop() {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

func (c *chaosClient) fail(err error) {
	c.mu.Lock()
	if c.rejoinErr == nil {
		c.rejoinErr = err
	}
	c.mu.Unlock()
	c.signal()
}

func (c *chaosClient) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// hasAtLeast reports whether the client accepted n or a later number
// (numbers grow with every publish) and is not catching up.
func (c *chaosClient) hasAtLeast(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting == "" && len(c.accepted) > 0 && c.accepted[len(c.accepted)-1] >= n
}

// splitPosition parses "<epoch>:<seq>"; a malformed one gives seq -1.
func splitPosition(p string) (string, int) {
	i := strings.LastIndexByte(p, ':')
	if i <= 0 {
		return "", -1
	}
	n, err := strconv.Atoi(p[i+1:])
	if err != nil {
		return "", -1
	}
	return p[:i], n
}
