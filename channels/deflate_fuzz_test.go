package channels

import (
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDeflateOffer: any Sec-WebSocket-Extensions value is parsed without
// panicking, and only a value with a permessage-deflate offer is accepted.
func FuzzDeflateOffer(f *testing.F) {
	for _, s := range []string{"permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=10",
		"x, permessage-deflate;client_max_window_bits=\"9\"", "permessage-deflate;;", "PerMessage-Deflate ; Client_No_Context_Takeover"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ok := acceptDeflateOffer(http.Header{"Sec-Websocket-Extensions": {v}})
		if ok && !strings.Contains(strings.ToLower(v), "permessage-deflate") {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzDeflateFrame: a frame's deflated form is a single RFC 7692 message
// (FIN and RSV1, the same opcode, a correct length) that inflates back to
// the payload, or the frame itself when compression does not shrink it.
func FuzzDeflateFrame(f *testing.F) {
	f.Add([]byte(`{"text":"hello hello hello hello hello hello"}`), false, uint8(1))
	f.Add(bytes.Repeat([]byte{0}, 70000), true, uint8(9))
	f.Add([]byte{0xde, 0xad, 0xbe, 0xef}, true, uint8(5))
	f.Fuzz(func(t *testing.T, payload []byte, binaryFrame bool, level uint8) {
		lvl := MinCompressionLevel + int(level)%MaxCompressionLevel
		fr := finishFrame(append(newFrameBuf(len(payload)), payload...), binaryFrame)
		d := fr.deflated(lvl, nil)
		if d == fr {
			return
		}
		if d.Size() >= fr.Size() || d.IsBinary() != binaryFrame {
			t.Fatalf("deflated frame of %d bytes for %d, binary %v", d.Size(), fr.Size(), d.IsBinary())
		}
		w := d.Wire()
		if w[0]&0xf0 != 0x80|rsv1 || w[0]&0x0f != fr.Wire()[0]&0x0f || headerLen(len(d.Payload())) != len(w)-len(d.Payload()) {
			t.Fatalf("bad header % x for %d payload bytes", w[:min(len(w), 10)], len(d.Payload()))
		}
		r := flate.NewReader(io.MultiReader(bytes.NewReader(d.Payload()), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("inflated %d bytes (%v), want the %d of the payload", len(got), err, len(payload))
		}
	})
}
