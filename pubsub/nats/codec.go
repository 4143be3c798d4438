package natsbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Record kinds: what a message on a broker subject carries.
const (
	// kindBroadcast is a message published without history.
	kindBroadcast byte = 0
	// kindData is a message stored in its topic's history.
	kindData byte = 1
	// kindMarker records the state of a topic's history (a new empty
	// stream, or a longer life) without a message. Receivers skip it.
	kindMarker byte = 2
)

const (
	// envelopeVersion is the first byte of every record.
	envelopeVersion = 1
	// flagBinary marks a binary payload.
	flagBinary = 1
	// maxEpochLen is the longest epoch a record may carry.
	maxEpochLen = pubsub.MaxEpochLen
)

// errRecord is wrapped by every decoding error.
var errRecord = errors.New("invalid record")

// histMeta is the history part of a data or marker record.
type histMeta struct {
	// epoch and seq are the position of the record: the message's for a
	// data record, the newest message's (0 if none) for a marker.
	epoch string
	seq   uint64
	// keptFrom is the seq of the oldest message the stream still keeps
	// (before message expiry): seqs below it were dropped by the
	// HistorySize of some publish.
	keptFrom uint64
	// expireAt is when the message (data) and the stream expire, in unix
	// milliseconds; 0 means never.
	expireAt int64
	// prev is the stream sequence of the previous record of the topic, 0
	// if there is none: records form a chain that history reads walk back.
	prev uint64
	// markSeq and markStream name an earlier message of the stream (its
	// seq and stream sequence) at most markSpan+1 seqs back, 0 and 0 if
	// none: long history reads jump back along marks, markSpan seqs at a
	// time, and scan from there.
	markSeq, markStream uint64
}

// encodeRecord returns the wire form of a record: one version byte, the
// kind, flags, then topic, event and node (each a uvarint length and the
// bytes), exclude (uvarint), for data and marker records the epoch (length
// and bytes), seq, keptFrom, expireAt, prev, markSeq and markStream
// (uvarints), and finally the
// payload, up to the end. A marker carries only topic and history fields.
func encodeRecord(kind byte, m *pubsub.Message, h *histMeta) []byte {
	n := 3 + 4*binary.MaxVarintLen64 + len(m.Topic) + len(m.Event) + len(m.Node) + len(m.Payload)
	if kind != kindBroadcast {
		n += len(h.epoch) + 7*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	var flags byte
	if m.Binary && kind != kindMarker {
		flags |= flagBinary
	}
	b = append(b, envelopeVersion, kind, flags)
	b = appendString(b, m.Topic)
	if kind == kindMarker {
		b = appendString(b, "")
		b = appendString(b, "")
		b = binary.AppendUvarint(b, 0)
	} else {
		b = appendString(b, m.Event)
		b = appendString(b, m.Node)
		b = binary.AppendUvarint(b, m.Exclude)
	}
	if kind != kindBroadcast {
		b = appendString(b, h.epoch)
		b = binary.AppendUvarint(b, h.seq)
		b = binary.AppendUvarint(b, h.keptFrom)
		b = binary.AppendUvarint(b, uint64(max(h.expireAt, 0)))
		b = binary.AppendUvarint(b, h.prev)
		b = binary.AppendUvarint(b, h.markSeq)
		b = binary.AppendUvarint(b, h.markStream)
	}
	if kind != kindMarker {
		b = append(b, m.Payload...)
	}
	return b
}

// decodeRecord parses a record. The returned message's Payload aliases b;
// data records get their Position. Only the canonical form encodeRecord
// produces is accepted.
func decodeRecord(b []byte) (kind byte, m *pubsub.Message, h histMeta, err error) {
	d := decoder{b: b}
	version, kind, flags := d.byte(), d.byte(), d.byte()
	if d.err != nil {
		return 0, nil, h, d.err
	}
	if version != envelopeVersion {
		return 0, nil, h, fmt.Errorf("version %d: %w", version, errRecord)
	}
	if kind > kindMarker {
		return 0, nil, h, fmt.Errorf("kind %d: %w", kind, errRecord)
	}
	if flags&^flagBinary != 0 || kind == kindMarker && flags != 0 {
		return 0, nil, h, fmt.Errorf("flags %#x: %w", flags, errRecord)
	}
	m = &pubsub.Message{Binary: flags&flagBinary != 0}
	m.Topic = d.string()
	m.Event = d.string()
	m.Node = d.string()
	m.Exclude = d.uvarint()
	if d.err == nil && m.Topic == "" {
		d.fail("empty topic")
	}
	if d.err == nil && kind == kindMarker && (m.Event != "" || m.Node != "" || m.Exclude != 0) {
		d.fail("marker with message fields")
	}
	if kind != kindBroadcast {
		h.epoch = d.string()
		h.seq = d.uvarint()
		h.keptFrom = d.uvarint()
		exp := d.uvarint()
		h.prev = d.uvarint()
		h.markSeq = d.uvarint()
		h.markStream = d.uvarint()
		if d.err == nil {
			d.checkHistory(kind, &h, exp)
		}
		h.expireAt = int64(exp)
	}
	if d.err != nil {
		return 0, nil, histMeta{}, d.err
	}
	if rest := d.b[d.off:]; len(rest) > 0 {
		if kind == kindMarker {
			return 0, nil, histMeta{}, fmt.Errorf("marker with payload: %w", errRecord)
		}
		m.Payload = rest
	}
	if kind == kindData {
		m.Position = pubsub.Position{Epoch: h.epoch, Seq: h.seq}
	}
	return kind, m, h, nil
}

// checkHistory validates the history fields of a record.
func (d *decoder) checkHistory(kind byte, h *histMeta, exp uint64) {
	switch {
	case !validEpoch(h.epoch):
		d.fail("invalid epoch")
	case kind == kindData && h.seq == 0:
		d.fail("data record with seq 0")
	case h.keptFrom == 0 || h.keptFrom-1 > h.seq || kind == kindData && h.keptFrom > h.seq:
		d.fail("keptFrom out of range")
	case exp > math.MaxInt64:
		d.fail("expiry out of range")
	case h.markSeq == 0 && h.markStream != 0,
		h.markSeq != 0 && (h.markSeq >= h.seq || h.markStream == 0 || h.markStream > h.prev):
		d.fail("mark out of range")
	}
}

// validEpoch reports whether e is 1 to maxEpochLen bytes of [A-Za-z0-9_-].
func validEpoch(e string) bool {
	if e == "" || len(e) > maxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// appendString appends s with its uvarint length.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a record, keeping the first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d: %w", what, d.off, errRecord)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n > 1 && d.b[d.off+n-1] == 0 {
		d.fail("overlong varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("string past the end")
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}
