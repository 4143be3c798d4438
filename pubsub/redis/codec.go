package redisbroker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Wire formats. A message is encoded once per Publish into an envelope; the
// same bytes are stored in the history stream and, with the position the
// Lua script appends, published to the topic's channel:
//
//	envelope  = version:0xC1 flags topic event node exclude payload position
//	flags     = one byte; bit 0 set: Payload is binary. Other bits are 0.
//	topic, event, node, payload = uvarint length, then that many bytes
//	exclude   = uvarint
//	position  = the rest: "" (no history) or "<epoch>:<seq>" as
//	            pubsub.ParsePosition reads it
//
// A presence entry is stored as
//
//	entry = version:0xD1 key meta node   (uvarint length + bytes each)
//
// Every uvarint is minimally encoded, so that each value has exactly one
// encoding and decoding then re-encoding gives back the same bytes.
const (
	envelopeVersion = 0xC1
	entryVersion    = 0xD1
	flagBinary      = 1 << 0
)

// errMalformed is wrapped by decoding errors.
var errMalformed = errors.New("redisbroker: malformed data")

// appendEnvelope encodes m without its position.
func appendEnvelope(dst []byte, m *pubsub.Message) []byte {
	var flags byte
	if m.Binary {
		flags |= flagBinary
	}
	dst = append(dst, envelopeVersion, flags)
	dst = appendString(dst, m.Topic)
	dst = appendString(dst, m.Event)
	dst = appendString(dst, m.Node)
	dst = binary.AppendUvarint(dst, m.Exclude)
	dst = binary.AppendUvarint(dst, uint64(len(m.Payload)))
	return append(dst, m.Payload...)
}

// envelopeSize is the encoded size of m without its position.
func envelopeSize(m *pubsub.Message) int {
	return 2 + stringSize(m.Topic) + stringSize(m.Event) + stringSize(m.Node) +
		uvarintSize(m.Exclude) + uvarintSize(uint64(len(m.Payload))) + len(m.Payload)
}

// decodeEnvelope decodes an envelope. Topic, Event and Node share memory
// with s; Payload is a copy.
func decodeEnvelope(s string) (*pubsub.Message, error) {
	if len(s) < 2 || s[0] != envelopeVersion {
		return nil, fmt.Errorf("decode envelope: bad version: %w", errMalformed)
	}
	flags := s[1]
	if flags&^flagBinary != 0 {
		return nil, fmt.Errorf("decode envelope: unknown flags %#x: %w", flags, errMalformed)
	}
	d := decoder{s: s, i: 2}
	m := &pubsub.Message{Binary: flags&flagBinary != 0}
	m.Topic = d.string()
	m.Event = d.string()
	m.Node = d.string()
	m.Exclude = d.uvarint()
	payload := d.string()
	if d.err != nil {
		return nil, fmt.Errorf("decode envelope: %w", d.err)
	}
	if payload != "" {
		m.Payload = []byte(payload)
	}
	if rest := s[d.i:]; rest != "" {
		pos, err := pubsub.ParsePosition(rest)
		if err != nil {
			return nil, fmt.Errorf("decode envelope: %w: %w", errMalformed, err)
		}
		m.Position = pos
	}
	return m, nil
}

// appendEntry encodes a presence entry without its id.
func appendEntry(dst []byte, e pubsub.PresenceEntry) []byte {
	dst = append(dst, entryVersion)
	dst = appendString(dst, e.Key)
	dst = binary.AppendUvarint(dst, uint64(len(e.Meta)))
	dst = append(dst, e.Meta...)
	return appendString(dst, e.Node)
}

// decodeEntry decodes a presence entry stored under id. Meta is a copy.
func decodeEntry(id, s string) (pubsub.PresenceEntry, error) {
	if s == "" || s[0] != entryVersion {
		return pubsub.PresenceEntry{}, fmt.Errorf("decode presence entry %q: bad version: %w", id, errMalformed)
	}
	d := decoder{s: s, i: 1}
	e := pubsub.PresenceEntry{ID: id}
	e.Key = d.string()
	meta := d.string()
	e.Node = d.string()
	if d.err == nil && d.i != len(s) {
		d.err = fmt.Errorf("%d trailing bytes: %w", len(s)-d.i, errMalformed)
	}
	if d.err != nil {
		return pubsub.PresenceEntry{}, fmt.Errorf("decode presence entry %q: %w", id, d.err)
	}
	if meta != "" {
		e.Meta = []byte(meta)
	}
	return e, nil
}

// appendString appends a uvarint length and s.
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// stringSize is the encoded size of s.
func stringSize(s string) int {
	return uvarintSize(uint64(len(s))) + len(s)
}

// uvarintSize is the encoded size of v.
func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// decoder reads fields from s; the first error sticks.
type decoder struct {
	s   string
	i   int
	err error
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for k := 0; k < binary.MaxVarintLen64 && d.i+k < len(d.s); k++ {
		c := d.s[d.i+k]
		if k == binary.MaxVarintLen64-1 && c > 1 {
			break // more than 64 bits
		}
		v |= uint64(c&0x7f) << (7 * k)
		if c < 0x80 {
			if k+1 != uvarintSize(v) {
				d.err = fmt.Errorf("non-minimal varint at byte %d: %w", d.i, errMalformed)
				return 0
			}
			d.i += k + 1
			return v
		}
	}
	d.err = fmt.Errorf("bad varint at byte %d: %w", d.i, errMalformed)
	return 0
}

// string reads a length-prefixed string, sharing memory with d.s.
func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.err = fmt.Errorf("length %d beyond the end: %w", n, errMalformed)
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}
