package channels

import (
	"encoding/binary"
	"sync/atomic"
)

// WebSocket opcodes used by outbound frames (RFC 6455 §5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maxHeader is the largest unmasked server frame header: 2 bytes plus a
// 64-bit extended length (RFC 6455 §5.2).
const maxHeader = 10

// Frame is an outbound message encoded once and shared by every socket it
// is queued on. It holds the complete WebSocket frame (header and payload),
// so a writer sends it without copying or re-encoding. A Frame is immutable
// after it is built, but for deflate: its permessage-deflate form, built on
// first use by a socket that negotiated compression (see deflate.go).
type Frame struct {
	wire    []byte
	hdr     int
	binary  bool
	deflate atomic.Pointer[Frame]
}

// Payload returns the encoded message without the WebSocket header: the
// text or binary data of the Phoenix frame.
func (f *Frame) Payload() []byte { return f.wire[f.hdr:] }

// Wire returns the complete WebSocket frame.
func (f *Frame) Wire() []byte { return f.wire }

// IsBinary reports whether the frame is a binary (opcode 2) frame.
func (f *Frame) IsBinary() bool { return f.binary }

// Size is the number of bytes the frame occupies on the wire.
func (f *Frame) Size() int { return len(f.wire) }

// newFrameBuf returns a buffer with room for a WebSocket header in front;
// serializers append the payload to it and call finishFrame.
func newFrameBuf(sizeHint int) []byte {
	b := make([]byte, maxHeader, maxHeader+sizeHint)
	return b
}

// finishFrame writes the header of a final, unmasked frame in front of the
// payload that was appended to buf (created by newFrameBuf).
func finishFrame(buf []byte, binaryFrame bool) *Frame {
	op := byte(opText)
	if binaryFrame {
		op = opBinary
	}
	return &Frame{wire: frameHeaderInPlace(buf, op), hdr: headerLen(len(buf) - maxHeader), binary: binaryFrame}
}

// headerLen returns the header size of an unmasked frame with n payload bytes.
func headerLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// frameHeaderInPlace writes the header right before buf[maxHeader:] and
// returns the slice that starts at the header.
func frameHeaderInPlace(buf []byte, op byte) []byte {
	n := len(buf) - maxHeader
	h := headerLen(n)
	start := maxHeader - h
	buf[start] = 0x80 | op // FIN + opcode
	switch h {
	case 2:
		buf[start+1] = byte(n)
	case 4:
		buf[start+1] = 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(n))
	default:
		buf[start+1] = 127
		binary.BigEndian.PutUint64(buf[start+2:], uint64(n))
	}
	return buf[start:]
}

// controlFrame builds a control frame (close, ping, pong). Control payloads
// are at most 125 bytes (RFC 6455 §5.5); longer ones are truncated.
func controlFrame(op byte, payload []byte) *Frame {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	buf := newFrameBuf(len(payload))
	buf = append(buf, payload...)
	return &Frame{wire: frameHeaderInPlace(buf, op), hdr: 2}
}

// closeFrame builds a close frame with a status code and reason
// (RFC 6455 §5.5.1). The reason is truncated to fit a control frame.
func closeFrame(code int, reason string) *Frame {
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	p = append(p, reason...)
	return controlFrame(opClose, p)
}
