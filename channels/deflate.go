package channels

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// Compression defaults and bounds (see CompressionConfig).
const (
	// DefaultCompressionThreshold is the smallest payload, in bytes, that a
	// socket with permessage-deflate sends compressed. Phoenix replies and
	// heartbeats (well under 200 bytes) stay plain: DEFLATE saves little on
	// them and costs a compression each.
	DefaultCompressionThreshold = 512
	// DefaultCompressionLevel is the DEFLATE level used when none is set.
	// Level 1 is the cheapest on 10 KB JSON (about 16 µs against 25 to
	// 30 µs at level 5) and within 3 to 9 % of level 5's size on 1 KB and
	// 10 KB chat messages and state diffs (BenchmarkDeflate). A broadcast
	// is compressed once for all its subscribers, but a topic with one
	// subscriber (a per-user topic) pays the whole compression for one
	// delivery; large fan-outs can afford a higher level.
	DefaultCompressionLevel = 1
	// MinCompressionLevel and MaxCompressionLevel bound
	// CompressionConfig.Level (DEFLATE's 1 fastest to 9 smallest).
	MinCompressionLevel = 1
	MaxCompressionLevel = 9
)

// CompressionConfig is the WebSocket transport's permessage-deflate
// (RFC 7692) setting. It is negotiated only with clients that offer it,
// always without context takeover in either direction, so that one
// compressed frame is valid for every subscriber and is built once per
// broadcast and serializer. Inbound compressed messages are inflated by
// gorilla/websocket and their decompressed size counts against
// MaxFrameSize. LongPoll is not affected. Like WriteTimeout, the setting
// is fixed for a socket when it connects.
type CompressionConfig struct {
	// Enabled negotiates permessage-deflate with clients that offer it.
	// Off (the default), the offer is ignored and nothing is compressed.
	Enabled bool
	// Threshold is the smallest payload in bytes sent compressed; smaller
	// messages go out plain (RSV1 clear). Default
	// DefaultCompressionThreshold.
	Threshold int
	// Level is the DEFLATE level, MinCompressionLevel to
	// MaxCompressionLevel. Default DefaultCompressionLevel.
	Level int
}

// withDefaults fills in zero fields and clamps the level.
func (c CompressionConfig) withDefaults() CompressionConfig {
	if c.Threshold <= 0 {
		c.Threshold = DefaultCompressionThreshold
	}
	if c.Level == 0 {
		c.Level = DefaultCompressionLevel
	}
	c.Level = min(max(c.Level, MinCompressionLevel), MaxCompressionLevel)
	return c
}

// ValidateCompressionLevel checks a CompressionConfig.Level: 1 to 9.
// Config itself clamps an out-of-range value.
func ValidateCompressionLevel(level int) error {
	if level < MinCompressionLevel || level > MaxCompressionLevel {
		return fmt.Errorf("compression level %d out of range: want %d to %d", level, MinCompressionLevel, MaxCompressionLevel)
	}
	return nil
}

// deflateCounters count the compressed frames a hub built.
type deflateCounters struct {
	frames atomic.Uint64 // compressed frames built (one per broadcast and serializer)
	saved  atomic.Uint64 // plain minus compressed bytes, summed over the frames built
}

// deflated returns f as a permessage-deflate frame: the payload
// compressed at level, RSV1 set. It is built on the first call and cached
// on f, so a broadcast queued on many subscribers is compressed once; when
// compression would not make the frame smaller, f itself is cached and
// returned. Concurrent first calls may both compress; one result is kept.
func (f *Frame) deflated(level int, st *deflateCounters) *Frame {
	if d := f.deflate.Load(); d != nil {
		return d
	}
	d := deflateFrame(f, level)
	if !f.deflate.CompareAndSwap(nil, d) {
		return f.deflate.Load()
	}
	if d != f && st != nil {
		st.frames.Add(1)
		st.saved.Add(uint64(f.Size() - d.Size()))
	}
	return d
}

// deflateFrame compresses f's payload (RFC 7692 §7.2.1: the DEFLATE data
// of the whole message, ended by a sync flush whose trailing 00 00 ff ff
// is removed) into a new single-frame message with RSV1 set. It returns f
// when the result would not be smaller.
func deflateFrame(f *Frame, level int) *Frame {
	d := getDeflater(level)
	defer putDeflater(d, level)
	out := d.compress(f.Payload())
	if n := len(out); headerLen(n)+n >= f.Size() {
		return f
	}
	buf := make([]byte, maxHeader, maxHeader+len(out))
	buf = append(buf, out...)
	op := byte(opText)
	if f.binary {
		op = opBinary
	}
	wire := frameHeaderInPlace(buf, op)
	wire[0] |= rsv1
	return &Frame{wire: wire, hdr: headerLen(len(out)), binary: f.binary}
}

// rsv1 is the RSV1 header bit, which marks a permessage-deflate message
// on its first frame (RFC 7692 §6).
const rsv1 = 0x40

// deflateTail is the end of a DEFLATE sync flush, which RFC 7692 removes
// from every compressed message.
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// deflater is a pooled DEFLATE writer and the buffer it writes into.
//
// It uses github.com/klauspost/compress/flate rather than compress/flate:
// compressing 1 KB and 10 KB JSON messages without context takeover (a
// Reset per message) at levels 1 to 5, it is 2 to 4 times faster for a
// size within 4 % of compress/flate's, whose Reset clears large hash
// tables; see BenchmarkDeflate.
type deflater struct {
	w   *flate.Writer
	buf appendWriter
}

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter struct{ b []byte }

// Write implements io.Writer.
func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// maxPooledDeflateBuf is the largest output buffer a pooled deflater keeps.
const maxPooledDeflateBuf = 256 << 10

// deflaterPools hold the deflaters of each level, index level-1.
var deflaterPools [MaxCompressionLevel - MinCompressionLevel + 1]sync.Pool

func getDeflater(level int) *deflater {
	if d, ok := deflaterPools[level-MinCompressionLevel].Get().(*deflater); ok {
		return d
	}
	d := &deflater{}
	// NewWriter fails only for a level out of range, which the caller
	// excludes (Config clamps it).
	d.w, _ = flate.NewWriter(&d.buf, level)
	return d
}

func putDeflater(d *deflater, level int) {
	if cap(d.buf.b) > maxPooledDeflateBuf {
		d.buf.b = nil
	}
	deflaterPools[level-MinCompressionLevel].Put(d)
}

// compress returns the RFC 7692 compressed form of p: valid until the
// deflater is used again.
func (d *deflater) compress(p []byte) []byte {
	d.buf.b = d.buf.b[:0]
	d.w.Reset(&d.buf)
	// Writes to appendWriter cannot fail.
	_, _ = d.w.Write(p)
	_ = d.w.Flush()
	out := d.buf.b
	if len(out) >= 4 && [4]byte(out[len(out)-4:]) == deflateTail {
		out = out[:len(out)-4]
	}
	return out
}
