package channels

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// deflateAnswer is gorilla's (and so the server's) answer to an accepted
// permessage-deflate offer.
const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// deflateHub serves a hub with compression set to comp and
// channel room:* { join allow; handle_in msg broadcast; handle_in echo reply }.
func deflateHub(t *testing.T, comp CompressionConfig) (*Hub, string) {
	t.Helper()
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"}, HandleIn: []HandleInSpec{
		{Event: "msg", Action: "broadcast"},
		{Event: "echo", Action: "reply"},
	}}}})
	h, err := NewHub(Config{Rules: rules, Compression: comp}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, serveHub(t, h)
}

// tapConn records every byte the client reads, to check the server's
// frame headers (gorilla hides RSV1).
type tapConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// serverFrame is one frame as the server sent it.
type serverFrame struct {
	rsv1    bool
	op      byte
	payload []byte
}

// frames parses the complete server frames read so far (after the
// handshake response).
func (c *tapConn) frames(t *testing.T) []serverFrame {
	t.Helper()
	c.mu.Lock()
	b := bytes.Clone(c.buf.Bytes())
	c.mu.Unlock()
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no handshake response read")
	}
	b = b[i+4:]
	var out []serverFrame
	for len(b) >= 2 {
		n, h := int(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out
			}
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return out
			}
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < h+n {
			return out
		}
		out = append(out, serverFrame{rsv1: b[0]&0x40 != 0, op: b[0] & 0x0f, payload: b[h : h+n]})
		b = b[h+n:]
	}
	return out
}

// dialTap dials url, offering permessage-deflate when offer is set, and
// returns the socket, its tap and the handshake's extension answer.
func dialTap(t *testing.T, url string, offer bool) (*websocket.Conn, *tapConn, string) {
	t.Helper()
	var tap *tapConn
	d := websocket.Dialer{EnableCompression: offer, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tap = &tapConn{Conn: c}
		return tap, nil
	}}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, tap, resp.Header.Get("Sec-WebSocket-Extensions")
}

// chatJSON is a broadcast payload of about n bytes of chat-like JSON.
func chatJSON(n int) []byte {
	b := []byte(`{"messages":[`)
	for i := 0; len(b) < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":%d,"user":"user%d","text":"the deploy of build %d finished, please review"}`, i, i%7, i*31)
	}
	return append(b, "]}"...)
}

// readText reads one message and checks that it contains want.
func readText(t *testing.T, c *websocket.Conn, want string) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil || !bytes.Contains(b, []byte(want)) {
		t.Fatalf("want a message with %.60q, got %.200q %v", want, b, err)
	}
	return b
}

// A client that offers permessage-deflate gets it, without context
// takeover either way: broadcasts at or above the threshold arrive
// compressed (RSV1), smaller ones and replies plain, and both read back
// as sent.
func TestDeflateBroadcastsAboveAndBelowThreshold(t *testing.T) {
	h, base := deflateHub(t, CompressionConfig{Enabled: true, Threshold: 512})
	c, tap, ext := dialTap(t, base+"/?vsn=2.0.0", true)
	if ext != deflateAnswer {
		t.Fatalf("Sec-WebSocket-Extensions = %q, want %q", ext, deflateAnswer)
	}
	wsJoin(t, c, "room:1")

	big := chatJSON(2000)
	small := []byte(`{"text":"hi"}`)
	for _, p := range [][]byte{big, small} {
		if err := h.Broadcast(t.Context(), "room:1", "new", JSONPayload(p), 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := readText(t, c, `"new"`); !bytes.Contains(got, big) {
		t.Fatalf("big broadcast did not read back: %.100q", got)
	}
	readText(t, c, `{"text":"hi"}`)
	if err := h.Broadcast(t.Context(), "room:1", "bin", BinaryPayload(big), 0); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if mt, b, err := c.ReadMessage(); err != nil || mt != websocket.BinaryMessage || !bytes.HasSuffix(b, big) {
		t.Fatalf("binary broadcast: type %d, %.60q, %v", mt, b, err)
	}

	fr := tap.frames(t)
	if len(fr) != 4 {
		t.Fatalf("read %d frames, want 4 (join reply, big, small, binary)", len(fr))
	}
	want := []struct {
		rsv1 bool
		op   byte
	}{{false, opText}, {true, opText}, {false, opText}, {true, opBinary}}
	for i, w := range want {
		if fr[i].rsv1 != w.rsv1 || fr[i].op != w.op {
			t.Errorf("frame %d: rsv1 %v op %d, want rsv1 %v op %d", i, fr[i].rsv1, fr[i].op, w.rsv1, w.op)
		}
	}
	if n := len(fr[1].payload); n >= len(big)/2 {
		t.Errorf("compressed broadcast is %d bytes on the wire for %d bytes of JSON", n, len(big))
	}
	if st := h.Stats(); st.DeflateFrames != 2 || st.DeflateSavedBytes == 0 {
		t.Errorf("DeflateFrames %d, DeflateSavedBytes %d: want 2 frames built and bytes saved", st.DeflateFrames, st.DeflateSavedBytes)
	}
}

// A broadcast is compressed once per serializer, however many subscribers
// negotiated deflate; subscribers without it get the plain frame.
func TestDeflateOncePerBroadcastAndSerializer(t *testing.T) {
	h, base := deflateHub(t, CompressionConfig{Enabled: true})
	type sub struct {
		c       *websocket.Conn
		tap     *tapConn
		deflate bool
	}
	var subs []sub
	for i := 0; i < 12; i++ {
		vsn := "2.0.0"
		if i%4 == 3 {
			vsn = "1.0.0"
		}
		offer := i%6 != 5
		c, tap, _ := dialTap(t, base+"/?vsn="+vsn, offer)
		if vsn == "1.0.0" {
			c.WriteMessage(websocket.TextMessage, []byte(`{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}`))
			readText(t, c, `"ok"`)
		} else {
			wsJoin(t, c, "room:1")
		}
		subs = append(subs, sub{c, tap, offer})
	}
	p := chatJSON(4000)
	if err := h.Broadcast(t.Context(), "room:1", "new", JSONPayload(p), 0); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if got := readText(t, s.c, `"new"`); !bytes.Contains(got, p) {
			t.Fatalf("subscriber %d: broadcast did not read back", i)
		}
		fr := s.tap.frames(t)
		if last := fr[len(fr)-1]; last.rsv1 != s.deflate {
			t.Errorf("subscriber %d (deflate %v): broadcast frame rsv1 %v", i, s.deflate, last.rsv1)
		}
	}
	if st := h.Stats(); st.DeflateFrames != 2 {
		t.Fatalf("DeflateFrames = %d, want 2 (one for V1, one for V2)", st.DeflateFrames)
	}
}

// Compressed client messages are inflated: a compressed push is
// broadcast and replied to like a plain one.
func TestDeflateCompressedPushes(t *testing.T) {
	_, base := deflateHub(t, CompressionConfig{Enabled: true})
	c, tap, ext := dialTap(t, base+"/?vsn=2.0.0", true)
	if ext != deflateAnswer {
		t.Fatalf("not negotiated: %q", ext)
	}
	wsJoin(t, c, "room:1") // gorilla's client compresses every message it sends
	p := chatJSON(3000)
	c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","2","room:1","msg",%s]`, p))
	if got := readText(t, c, `"msg"`); !bytes.Contains(got, p) {
		t.Fatalf("broadcast of the compressed push: %.100q", got)
	}
	readText(t, c, `"2","room:1","phx_reply"`)
	c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `["1","3","room:1","echo",%s]`, p))
	if got := readText(t, c, `"3","room:1","phx_reply"`); !bytes.Contains(got, p) {
		t.Fatalf("reply to the compressed echo: %.100q", got)
	}
	fr := tap.frames(t)
	if last := fr[len(fr)-1]; !last.rsv1 {
		t.Error("the echo reply (3 KB) was not compressed")
	}
}

// bombStream returns a DEFLATE stream (RFC 7692 form, no trailing
// 00 00 ff ff) that inflates to mib MiB of zeros: the sync-flushed
// compression of 1 MiB of zeros repeated, which is valid because its
// back-references only reach zeros.
func bombStream(t *testing.T, mib int) []byte {
	t.Helper()
	var one bytes.Buffer
	w, err := flate.NewWriter(&one, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 1<<20))
	w.Flush()
	return bytes.TrimSuffix(bytes.Repeat(one.Bytes(), mib), []byte{0, 0, 0xff, 0xff})
}

// writeCompressedMessage writes stream as one compressed text message in
// masked frames of at most chunk bytes (mask key 0), RSV1 on the first.
func writeCompressedMessage(w io.Writer, stream []byte, chunk int) error {
	for first := true; len(stream) > 0; first = false {
		n := min(chunk, len(stream))
		b0 := byte(0)
		if first {
			b0 = 0x40 | websocket.TextMessage
		}
		if n == len(stream) {
			b0 |= 0x80
		}
		hdr := []byte{b0, 0x80 | 127}
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
		hdr = append(hdr, 0, 0, 0, 0)
		if _, err := w.Write(append(hdr, stream[:n]...)); err != nil {
			return err
		}
		stream = stream[n:]
	}
	return nil
}

// A zip bomb (100 MiB of zeros in about 100 KB) is closed with 1009 after
// inflating at most max_frame_size; the server does not inflate it in
// full, and another socket is not disturbed.
func TestDeflateZipBombClosed1009(t *testing.T) {
	h, base := deflateHub(t, CompressionConfig{Enabled: true})
	other, _, _ := dialTap(t, base+"/?vsn=2.0.0", true)
	wsJoin(t, other, "room:1")
	bomb := bombStream(t, 100)
	if len(bomb) > DefaultMaxFrameSize/4 {
		t.Fatalf("bomb is %d bytes compressed: not a bomb", len(bomb))
	}

	var raw net.Conn
	d := websocket.Dialer{EnableCompression: true, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		raw = c
		return c, err
	}}
	c, resp, err := d.Dial(base+"/?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.Header.Get("Sec-WebSocket-Extensions") == "" {
		t.Fatal("deflate not negotiated")
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wrote := make(chan error, 1)
	go func() { wrote <- writeCompressedMessage(raw, bomb, 16<<10) }()
	if _, code := readUntilClose(t, c); code != CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, CloseMessageTooBig)
	}
	<-wrote // the server may have closed before it read everything
	waitFor(t, "the bomb's socket to end", func() bool { return h.Sockets() == 1 })
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("%d MiB allocated while reading the bomb: it was inflated too far", alloc>>20)
	}
	if st := h.Stats(); st.InvalidFrames != 1 {
		t.Errorf("InvalidFrames = %d, want 1", st.InvalidFrames)
	}
	other.WriteMessage(websocket.TextMessage, []byte(`[null,"9","phoenix","heartbeat",{}]`))
	readText(t, other, `"9","phoenix","phx_reply"`)
}

// A compressed message that inflates to just max_frame_size is accepted,
// one byte more is closed with 1009.
func TestDeflateLimitIsInflatedSize(t *testing.T) {
	rules := testRules(t, RulesSpec{Channels: []ChannelSpec{{Pattern: "room:*", Join: &GateSpec{Action: "allow"}, HandleIn: []HandleInSpec{{Event: "echo", Action: "reply"}}}}})
	h, err := NewHub(Config{Rules: rules, MaxFrameSize: 4096, Compression: CompressionConfig{Enabled: true}}, pubsub.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	base := serveHub(t, h)
	push := func(size int) []byte {
		head := `["1","2","room:1","echo",{"p":"`
		return fmt.Appendf(nil, `%s%s"}]`, head, strings.Repeat("a", size-len(head)-3))
	}
	c, _, _ := dialTap(t, base+"/?vsn=2.0.0", true)
	wsJoin(t, c, "room:1")
	c.WriteMessage(websocket.TextMessage, push(4096))
	readText(t, c, `"2","room:1","phx_reply"`)
	c.WriteMessage(websocket.TextMessage, push(4097))
	if _, code := readUntilClose(t, c); code != CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, CloseMessageTooBig)
	}
}

// Without an offer, or with compression off, nothing is negotiated and
// every frame is plain.
func TestDeflateNotNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    bool
		offer bool
	}{{"client does not offer", true, false}, {"compression off", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h, base := deflateHub(t, CompressionConfig{Enabled: tc.on})
			c, tap, ext := dialTap(t, base+"/?vsn=2.0.0", tc.offer)
			if ext != "" {
				t.Fatalf("Sec-WebSocket-Extensions = %q, want none", ext)
			}
			wsJoin(t, c, "room:1")
			p := chatJSON(2000)
			if err := h.Broadcast(t.Context(), "room:1", "new", JSONPayload(p), 0); err != nil {
				t.Fatal(err)
			}
			readText(t, c, `"new"`)
			for i, f := range tap.frames(t) {
				if f.rsv1 {
					t.Errorf("frame %d has RSV1", i)
				}
			}
			if st := h.Stats(); st.DeflateFrames != 0 {
				t.Errorf("DeflateFrames = %d", st.DeflateFrames)
			}
		})
	}
}

// An offer the server cannot honour (server_max_window_bits, unknown
// parameters) is declined; a browser's offer is accepted, and gorilla
// answers it whatever else the header holds.
func TestDeflateOffers(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"permessage-deflate", true},
		{"permessage-deflate; client_max_window_bits", true},                                  // browsers
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},  // gorilla
		{"permessage-deflate; client_max_window_bits=\"12\"", true},                           // quoted value
		{"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=15", true},       // second offer
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true},           // fallback offer
		{"permessage-deflate; server_max_window_bits=10", false},                              // needs a smaller window
		{"permessage-deflate; server_max_window_bits=15", false},                              // needs the parameter in the answer
		{"permessage-deflate; client_max_window_bits=7", false},                               // out of range
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false}, // duplicate
		{"permessage-deflate; server_no_context_takeover=1", false},                           // value on a flag
		{"permessage-deflate; unknown_param", false},                                          // unknown
		{"permessage-deflate;", false},                                                        // empty parameter
		{"x-webkit-deflate-frame", false},                                                     // another extension
		{"", false},
	} {
		hdr := http.Header{}
		if tc.header != "" {
			hdr.Set("Sec-WebSocket-Extensions", tc.header)
		}
		if got := acceptDeflateOffer(hdr); got != tc.want {
			t.Errorf("acceptDeflateOffer(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}

	_, base := deflateHub(t, CompressionConfig{Enabled: true})
	for header, want := range map[string]string{
		"foo; =bar, permessage-deflate; client_max_window_bits": deflateAnswer, // gorilla alone would stop at the bad offer
		"permessage-deflate; server_max_window_bits=10":         "",
	} {
		hdr := http.Header{"Sec-WebSocket-Extensions": {header}}
		c, resp, err := websocket.DefaultDialer.Dial(base+"/?vsn=2.0.0", hdr)
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		c.Close()
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
			t.Errorf("offer %q answered %q, want %q", header, got, want)
		}
	}
}

// deflated caches its result, returns the frame itself when compression
// does not help, and never compresses control frames on a deflate socket.
func TestDeflatedFrame(t *testing.T) {
	var st deflateCounters
	f := encodeV2(nil, nil, "room:1", "e", chatJSON(1000))
	d := f.deflated(1, &st)
	if d == f || d.wire[0] != 0x80|rsv1|opText || f.deflated(1, &st) != d || st.frames.Load() != 1 {
		t.Fatalf("deflated: %x, cached %v, %d built", d.wire[:2], f.deflated(1, &st) == d, st.frames.Load())
	}
	got, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(d.Payload()), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff"))))
	if err != nil || !bytes.Equal(got, f.Payload()) {
		t.Fatalf("inflate: %v, equal %v", err, bytes.Equal(got, f.Payload()))
	}
	random := make([]byte, 2000)
	for i := range random {
		random[i] = byte(i*7919>>3) ^ byte(i*31)
	}
	b := finishFrame(append(newFrameBuf(len(random)), random...), true)
	if b.deflated(1, &st) != b && b.deflated(1, &st).Size() >= b.Size() {
		t.Fatal("a compressed frame that is not smaller was kept")
	}
	tr := &deflateTransport{threshold: 1, level: 1, st: &st}
	if pong := controlFrame(opPong, bytes.Repeat([]byte("a"), 100)); tr.form(pong) != pong {
		t.Fatal("a control frame was compressed")
	}
}
