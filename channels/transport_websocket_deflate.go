package channels

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/websocket"
)

// permessage-deflate on the WebSocket transport (RFC 7692).
//
// gorilla/websocket negotiates the extension (Upgrader.EnableCompression):
// it answers any offer with "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover" and then inflates inbound messages with RSV1
// set. It does not look at the offer's parameters, so the handshake only
// enables it for an offer acceptDeflateOffer accepts, and hands gorilla
// that offer alone. Outbound frames bypass gorilla's writer: a socket that
// negotiated deflate sends each data frame at or above the threshold as
// Frame.deflated, compressed once per frame and shared by every subscriber,
// which no context takeover makes valid on any connection. Control frames
// (gorilla's close and our close, ping and pong) are never compressed.

// extensionsHeader is the handshake header of WebSocket extensions.
const extensionsHeader = "Sec-WebSocket-Extensions"

// acceptDeflateOffer reports whether the client's extension offers
// include a permessage-deflate offer the server can accept with gorilla's
// fixed answer: its parameters, if any, are server_no_context_takeover,
// client_no_context_takeover and client_max_window_bits (with no value or
// 8 to 15), each at most once. An offer with server_max_window_bits is
// declined: accepting it needs the parameter in the answer, and the
// compressor uses the full 32 KiB window. Offers are separated by commas,
// parameters by semicolons (RFC 7692 §5, RFC 6455 §9.1).
func acceptDeflateOffer(h http.Header) bool {
	for _, v := range h.Values(extensionsHeader) {
		for offer := range strings.SplitSeq(v, ",") {
			if deflateOfferOK(offer) {
				return true
			}
		}
	}
	return false
}

// deflateOfferOK checks one extension offer (see acceptDeflateOffer).
func deflateOfferOK(offer string) bool {
	name, params, hasParams := strings.Cut(offer, ";")
	if !strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
		return false
	}
	if !hasParams {
		return true
	}
	seen := map[string]bool{}
	for p := range strings.SplitSeq(params, ";") {
		k, v, hasValue := strings.Cut(p, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if seen[k] {
			return false
		}
		seen[k] = true
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "client_max_window_bits":
			if hasValue && !windowBitsOK(v) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// windowBitsOK reports whether v is a window size of 8 to 15, bare or
// quoted.
func windowBitsOK(v string) bool {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && v[0] != '+'
}

// withDeflateOffer returns a shallow copy of r whose only extension offer
// is a bare permessage-deflate, so that gorilla's negotiation agrees with
// acceptDeflateOffer whatever else the client offered.
func withDeflateOffer(r *http.Request) *http.Request {
	r2 := *r
	r2.Header = r.Header.Clone()
	r2.Header.Set(extensionsHeader, "permessage-deflate")
	return &r2
}

// deflateTransport is the Transport of a socket that negotiated
// permessage-deflate: the send queue, fed compressed frames. Frames whose
// payload is below the threshold, and frames that do not shrink, are
// queued plain.
type deflateTransport struct {
	*sendQueue
	level     int
	threshold int
	st        *deflateCounters
}

// newDeflateTransport wraps q for a socket that negotiated deflate.
func newDeflateTransport(q *sendQueue, c CompressionConfig, st *deflateCounters) *deflateTransport {
	return &deflateTransport{sendQueue: q, level: c.Level, threshold: c.Threshold, st: st}
}

// Send implements Transport.
func (t *deflateTransport) Send(f *Frame) bool { return t.sendQueue.Send(t.form(f)) }

// SendNow implements Transport.
func (t *deflateTransport) SendNow(f *Frame) bool { return t.sendQueue.SendNow(t.form(f)) }

// form returns the frame to queue for f: its deflated form, or f.
func (t *deflateTransport) form(f *Frame) *Frame {
	if len(f.Payload()) < t.threshold {
		return f
	}
	if op := f.wire[0] & 0x0f; op != opText && op != opBinary {
		return f
	}
	return f.deflated(t.level, t.st)
}

var _ Transport = (*deflateTransport)(nil)

// errInflatedTooBig is readMessage's answer to a message whose content is
// larger than max_frame_size.
var errInflatedTooBig = errors.New("message larger than max_frame_size")

// readMessage reads the next data message, inflating it if it is
// compressed, and reads at most limit+1 bytes of its content: a message
// that inflates beyond limit (a zip bomb) returns errInflatedTooBig after
// that much work, never inflated in full. gorilla's read limit, set on the
// connection, bounds the compressed (wire) bytes only. With discard, the
// content is not read (NextReader skips it on the next call) and data is
// nil: a closing socket ignores what it receives.
func readMessage(conn *websocket.Conn, limit int64, discard bool) (mt int, data []byte, err error) {
	mt, r, err := conn.NextReader()
	if err != nil || discard {
		return mt, nil, err
	}
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return mt, nil, err
	}
	if int64(len(data)) > limit {
		return mt, nil, fmt.Errorf("%w (%d): more than %d bytes", errInflatedTooBig, limit, limit)
	}
	return mt, data, nil
}

// wireReadLimit is the read limit set on a connection: the largest message
// on the wire. A compressed message may be slightly larger than its
// content when that does not compress (DEFLATE stored blocks add 5 bytes
// per 64 KiB), so a socket with deflate allows that much more; its content
// is still bounded by maxFrame (readMessage).
func wireReadLimit(maxFrame int64, deflate bool) int64 {
	if !deflate {
		return maxFrame
	}
	return maxFrame + maxFrame>>10 + 64
}
