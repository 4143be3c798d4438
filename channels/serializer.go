package channels

import (
	"errors"
	"fmt"
	"strings"
)

// Serializer encodes and decodes frames of one Phoenix wire-format version.
// Implementations are stateless and safe for concurrent use.
type Serializer interface {
	// Version is the wire-format version family, "1.0.0" or "2.0.0".
	Version() string
	// Index is a small, stable number used to cache one encoding per
	// serializer when a broadcast is fanned out.
	Index() int
	// Decode parses one inbound WebSocket message. binaryFrame is true for
	// opcode 2 frames. Errors wrap ErrInvalidMessage.
	Decode(data []byte, binaryFrame bool) (Message, error)
	// EncodeMessage encodes a push from a channel to its client, such as
	// an application push, phx_close or phx_error:
	// V2 [join_ref, ref, topic, event, payload].
	EncodeMessage(joinRef, ref Ref, topic, event string, p Payload) (*Frame, error)
	// EncodeReply encodes a phx_reply answering ref:
	// V2 [join_ref, ref, topic, "phx_reply", {"status":…, "response":…}].
	EncodeReply(joinRef, ref Ref, topic, status string, response Payload) (*Frame, error)
	// EncodeBroadcast encodes a broadcast: V2 [null, null, topic, event,
	// payload]. The result is identical for every subscriber.
	EncodeBroadcast(topic, event string, p Payload) (*Frame, error)
}

// Errors returned by serializers.
var (
	// ErrInvalidMessage is wrapped by every decoding error: the frame is
	// not a valid message of the negotiated protocol version.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrBinaryUnsupported is returned when a binary payload must be sent
	// to a V1 client, which has no binary encoding.
	ErrBinaryUnsupported = errors.New("binary payloads need the V2 serializer")
	// ErrPayloadNotObject is returned when a push or broadcast payload is
	// not a JSON object (Phoenix's V2 serializer refuses those).
	ErrPayloadNotObject = errors.New("payload must be a JSON object")
	// ErrFieldTooLong is returned when a binary frame header field
	// (join_ref, ref, topic, event or status) exceeds 255 bytes.
	ErrFieldTooLong = errors.New("binary frame field longer than 255 bytes")
)

// numSerializers is the number of distinct serializer indexes.
const numSerializers = 2

// NegotiateSerializer picks the serializer for the client's vsn query
// parameter: absent or 1.0.x selects V1, 2.0.x selects V2; anything else is
// an error (the handshake is refused with 403, as Phoenix does).
func NegotiateSerializer(vsn string, present bool) (Serializer, error) {
	if !present {
		return V1, nil
	}
	major, minor, ok := parseSemverPrefix(vsn)
	switch {
	case ok && major == 1 && minor == 0:
		return V1, nil
	case ok && major == 2 && minor == 0:
		return V2, nil
	}
	return nil, fmt.Errorf("unsupported protocol version %q: want 1.0.x or 2.0.x", vsn)
}

// parseSemverPrefix parses "MAJOR.MINOR.PATCH[-pre][+build]" and returns the
// major and minor numbers.
func parseSemverPrefix(v string) (major, minor int, ok bool) {
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	nums := [3]int{}
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return 0, 0, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			nums[i] = nums[i]*10 + int(c-'0')
		}
	}
	return nums[0], nums[1], true
}
