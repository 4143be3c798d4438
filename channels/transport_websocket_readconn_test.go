package channels

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientFrame encodes a masked client frame (mask key 0, so the payload
// is sent as is).
func clientFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

func heartbeat(ref int) []byte {
	return clientFrame(websocket.TextMessage, fmt.Appendf(nil, `[null,"%d","phoenix","heartbeat",{}]`, ref))
}

// dialRaw opens a socket and also returns its TCP connection, to write
// frames byte by byte or several in one write.
func dialRaw(t *testing.T, url string) (*websocket.Conn, net.Conn) {
	t.Helper()
	var raw net.Conn
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		raw = c
		return c, err
	}}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, raw
}

func expectReply(t *testing.T, c *websocket.Conn, ref int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil || !strings.Contains(string(b), fmt.Sprintf(`,"%d","phoenix","phx_reply"`, ref)) {
		t.Fatalf("want the reply to heartbeat %d, got %s %v", ref, b, err)
	}
}

// Frames that arrive together (pipelined), split at every byte, or with
// a ping between them are all read and answered in order: the read loop
// only parks when the read buffer is empty.
func TestReadLoopPipelinedAndSplitFrames(t *testing.T) {
	h := newTestHub(t)
	c, raw := dialRaw(t, serveHub(t, h)+"/websocket?vsn=2.0.0")

	var burst []byte
	for ref := 1; ref <= 20; ref++ {
		burst = append(burst, heartbeat(ref)...)
	}
	if _, err := raw.Write(burst); err != nil {
		t.Fatal(err)
	}
	for ref := 1; ref <= 20; ref++ {
		expectReply(t, c, ref)
	}

	for _, b := range heartbeat(21) {
		if _, err := raw.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	expectReply(t, c, 21)

	pongs := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pongs <- data; return nil })
	mixed := append(heartbeat(22), clientFrame(websocket.PingMessage, []byte("p"))...)
	mixed = append(mixed, heartbeat(23)...)
	if _, err := raw.Write(mixed); err != nil {
		t.Fatal(err)
	}
	expectReply(t, c, 22)
	expectReply(t, c, 23)
	if got := <-pongs; got != "p" {
		t.Fatalf("pong %q, want %q", got, "p")
	}

	// A large frame is read in several reads of the 512-byte buffer.
	big := fmt.Appendf(nil, `[null,"24","phoenix","heartbeat",{"pad":"%s"}]`, strings.Repeat("x", 3000))
	if _, err := raw.Write(clientFrame(websocket.TextMessage, big)); err != nil {
		t.Fatal(err)
	}
	expectReply(t, c, 24)
}

func TestChannelList(t *testing.T) {
	var l channelList
	a, b, c := &subscription{topic: "a"}, &subscription{topic: "b"}, &subscription{topic: "c"}
	l.put(a)
	l.put(b)
	l.put(c)
	if l.get("b") != b || l.get("x") != nil || len(l) != 3 {
		t.Fatalf("get: %v", l)
	}
	b2 := &subscription{topic: "b"}
	l.put(b2)
	if l.get("b") != b2 || len(l) != 3 {
		t.Fatal("put did not replace")
	}
	l.remove("a")
	l.remove("x")
	if l.get("a") != nil || l.get("c") != c || l.get("b") != b2 || len(l) != 2 {
		t.Fatalf("remove: %v", l)
	}
	l.remove("b")
	l.remove("c")
	if l != nil {
		t.Fatalf("empty list keeps its array: %v", l)
	}
}

// readConn hands what wait read to the next Reads, in pieces if they are
// small, and then the error wait met, as the connection would have.
func TestReadConnHandsOverWaitedInput(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	rc := &readConn{Conn: server}
	go func() {
		client.Write([]byte("hello"))
		client.Close()
	}()
	rc.wait()
	if rc.r != 0 || rc.w != 5 || rc.err != nil {
		t.Fatalf("after wait: r=%d w=%d err=%v", rc.r, rc.w, rc.err)
	}
	p := make([]byte, 3)
	if n, err := rc.Read(p); n != 3 || err != nil || string(p) != "hel" {
		t.Fatalf("first read: %d %v %q", n, err, p[:n])
	}
	if n, err := rc.Read(p); n != 2 || err != nil || string(p[:2]) != "lo" {
		t.Fatalf("second read: %d %v %q", n, err, p[:n])
	}
	rc.wait() // the peer closed: wait meets EOF and keeps it
	if n, err := rc.Read(p); n != 0 || err == nil {
		t.Fatalf("read after close: %d %v, want an error", n, err)
	}
	if n, err := rc.Read(p[:0]); n != 0 || err != nil {
		t.Fatalf("empty read: %d %v", n, err)
	}
}
