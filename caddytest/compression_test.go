package integration

// permessage-deflate through a real Caddy: the `compression` directive,
// negotiation with gorilla's client and with ws (phoenix.js), compressed
// broadcasts and pushes, the zip bomb answer (close 1009) and the metric.

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// compressionAPIKey is the api_key of the /socket mount.
const compressionAPIKey = "compression-key"

// compressionChannels compresses on /socket (threshold 256 bytes, level 5)
// and not on /plain.
const compressionChannels = `	channels {
		path /socket
		api_key ` + compressionAPIKey + `
		compression {
			threshold 256
			level 5
		}
		channel room:* {
			join allow
			handle_in new_msg broadcast
			handle_in echo reply
		}
	}
	channels {
		path /plain
		channel room:* {
			join allow
		}
	}`

// deflateAnswer is the server's answer to an accepted offer.
const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// wireTap records the bytes a client reads, to check frame headers.
type wireTap struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *wireTap) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// rsv1Frames returns, for each complete server frame read so far, whether
// RSV1 was set.
func (c *wireTap) rsv1Frames() []bool {
	c.mu.Lock()
	b := bytes.Clone(c.buf.Bytes())
	c.mu.Unlock()
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[i+4:]
	}
	var out []bool
	for len(b) >= 2 {
		n, h := int(b[1]&0x7f), 2
		switch {
		case n == 126 && len(b) >= 4:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case n == 127 && len(b) >= 10:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		case n >= 126:
			return out
		}
		if len(b) < h+n {
			return out
		}
		out = append(out, b[0]&0x40 != 0)
		b = b[h+n:]
	}
	return out
}

// dialDeflate dials path offering permessage-deflate and returns the
// client, its tap, its raw connection and the extension answer.
func dialDeflate(t *testing.T, path string) (*client, *wireTap, string) {
	t.Helper()
	var tap *wireTap
	d := websocket.Dialer{
		HandshakeTimeout:  recvTimeout,
		EnableCompression: true,
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, "tcp4", addr)
			if err != nil {
				return nil, err
			}
			tap = &wireTap{Conn: c}
			return tap, nil
		},
	}
	conn, resp, err := d.Dial(wsBase+path+"/websocket?vsn=2.0.0", nil)
	for try := 0; err != nil && retriableAfterReload(err) && try < 5; try++ {
		time.Sleep(20 * time.Millisecond)
		conn, resp, err = d.Dial(wsBase+path+"/websocket?vsn=2.0.0", nil)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, resp: resp}, tap, resp.Header.Get("Sec-WebSocket-Extensions")
}

// chatPayload is about n bytes of chat messages as JSON.
func chatPayload(n int) string {
	var b strings.Builder
	b.WriteString(`{"messages":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"msg_%d","user":{"id":%d,"name":"user%d"},"text":"the release notes look good, please merge the branch %d"}`, i, i%9, i%9, i*17)
	}
	b.WriteString("]}")
	return b.String()
}

func TestCompression(t *testing.T) {
	loadCaddyfile(t, site(compressionChannels))

	c, tap, ext := dialDeflate(t, "/socket")
	if ext != deflateAnswer {
		t.Fatalf("Sec-WebSocket-Extensions = %q, want %q", ext, deflateAnswer)
	}
	c.join("1", "1", "room:z")
	big := chatPayload(4000)
	for _, p := range []string{big, `{"text":"hi"}`} {
		body := fmt.Sprintf(`{"topic":"room:z","event":"news","payload":%s}`, p)
		if code, resp := httpDo(t, "POST", "/socket/api/broadcast", http.Header{"Authorization": {"Bearer " + compressionAPIKey}, "Content-Type": {"application/json"}}, body); code != http.StatusAccepted {
			t.Fatalf("publish: %d %s", code, resp)
		}
		c.expect(fmt.Sprintf(`[null,null,"room:z","news",%s]`, p))
	}
	// gorilla's client compresses what it sends: the push is inflated,
	// broadcast (compressed) and replied to; the echo reply of 4 KB is
	// compressed too.
	c.send(fmt.Sprintf(`["1","2","room:z","new_msg",%s]`, big))
	c.expect(fmt.Sprintf(`[null,null,"room:z","new_msg",%s]`, big))
	c.expect(`["1","2","room:z","phx_reply",{"status":"ok","response":{}}]`)
	c.send(fmt.Sprintf(`["1","3","room:z","echo",%s]`, big))
	c.expect(fmt.Sprintf(`["1","3","room:z","phx_reply",{"status":"ok","response":%s}]`, big))
	want := []bool{false, true, false, true, false, true} // join reply, big, small, broadcast, push reply, echo reply
	if got := tap.rsv1Frames(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RSV1 of the frames read: %v, want %v", got, want)
	}
	if m := metricsText(t); !strings.Contains(m, `caddy_channels_deflate_frames_total{path="/socket"} 3`) {
		t.Errorf("metrics lack deflate_frames_total 3 for /socket:\n%s", grepLines(m, "deflate"))
	}

	// The /plain mount ignores the offer.
	p, ptap, pext := dialDeflate(t, "/plain")
	if pext != "" {
		t.Fatalf("/plain answered the offer with %q", pext)
	}
	p.join("1", "1", "room:z")
	for _, rsv1 := range ptap.rsv1Frames() {
		if rsv1 {
			t.Fatal("/plain sent a compressed frame")
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A zip bomb (100 MiB of zeros in about 100 KB of DEFLATE) is closed with
// 1009 once it inflates past max_frame_size; a neighbour is untouched.
func TestCompressionZipBomb(t *testing.T) {
	loadCaddyfile(t, site(compressionChannels))
	other, _, _ := dialDeflate(t, "/socket")
	other.join("1", "1", "room:bomb")

	var one bytes.Buffer
	fw, _ := flate.NewWriter(&one, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	bomb := bytes.TrimSuffix(bytes.Repeat(one.Bytes(), 100), []byte{0, 0, 0xff, 0xff})

	c, tap, _ := dialDeflate(t, "/socket")
	wrote := make(chan error, 1)
	go func() {
		// One compressed text message (RSV1) in masked frames of 16 KB,
		// written on the raw connection.
		var err error
		for first, rest := true, bomb; len(rest) > 0 && err == nil; first = false {
			n := min(16<<10, len(rest))
			b0 := byte(0)
			if first {
				b0 = 0x40 | websocket.TextMessage
			}
			if n == len(rest) {
				b0 |= 0x80
			}
			hdr := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
			_, err = tap.Conn.Write(append(append(hdr, 0, 0, 0, 0), rest[:n]...))
			rest = rest[n:]
		}
		wrote <- err
	}()
	c.expectClose(websocket.CloseMessageTooBig)
	<-wrote
	other.send(`[null,"9","phoenix","heartbeat",{}]`)
	other.expect(`[null,"9","phoenix","phx_reply",{"status":"ok","response":{}}]`)
}

// TestCompressionPhoenixJS runs js/compression.test.mjs: phoenix.js over
// ws, which offers permessage-deflate by default. Like TestPhoenixJS, it is
// skipped when node is missing, unless the CI environment variable is set.
func TestCompressionPhoenixJS(t *testing.T) {
	node := requireNode(t)
	loadCaddyfile(t, site(compressionChannels))
	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "compression.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_PLAIN_URL="+wsBase+"/plain",
		"CHANNELS_API_KEY="+compressionAPIKey,
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)
}
