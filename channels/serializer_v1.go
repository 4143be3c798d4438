package channels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// V1 is the serializer of the V1 JSON wire format (vsn 1.x): one JSON object
// per text frame with the keys topic, event, payload and ref. Outgoing frames
// never carry join_ref, and V1 has no binary payloads.
var V1 Serializer = v1Serializer{}

// v1Serializer implements Serializer for vsn 1.x.
type v1Serializer struct{}

// v1Overhead is the fixed text of an encoded V1 frame. Keys are written in
// sorted order, as Phoenix emits them.
const v1Overhead = len(`{"event":,"payload":,"ref":,"topic":}`)

// v1ReplyOverhead is the fixed text a reply adds inside the payload.
const v1ReplyOverhead = len(`"phx_reply"{"response":,"status":}`)

// v1RequiredKeys are the keys every inbound V1 object must carry.
var v1RequiredKeys = [...]string{"topic", "event", "payload", "ref"}

// Version returns "1.0.0".
func (v1Serializer) Version() string { return "1.0.0" }

// Index returns 0.
func (v1Serializer) Index() int { return 0 }

// Decode parses one V1 text frame: a JSON object with the required keys
// topic, event, payload and ref, and an optional join_ref (absent means
// null). Binary frames are rejected.
func (v1Serializer) Decode(data []byte, binaryFrame bool) (Message, error) {
	if binaryFrame {
		return Message{}, fmt.Errorf("%w: v1: binary frames are not supported", ErrInvalidMessage)
	}
	if c := firstByte(data); c != '{' {
		return Message{}, fmt.Errorf("%w: v1: expected a JSON object, got %s", ErrInvalidMessage, jsonKind(c))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Message{}, fmt.Errorf("%w: v1: %w", ErrInvalidMessage, err)
	}
	for _, k := range v1RequiredKeys {
		if _, ok := obj[k]; !ok {
			return Message{}, fmt.Errorf("%w: v1: missing key %q", ErrInvalidMessage, k)
		}
	}
	var (
		m   Message
		err error
	)
	if m.Topic, err = decodeJSONString(obj["topic"], "topic"); err != nil {
		return Message{}, fmt.Errorf("%w: v1: %w", ErrInvalidMessage, err)
	}
	if m.Event, err = decodeJSONString(obj["event"], "event"); err != nil {
		return Message{}, fmt.Errorf("%w: v1: %w", ErrInvalidMessage, err)
	}
	if m.Ref, err = decodeRef(obj["ref"], "ref"); err != nil {
		return Message{}, fmt.Errorf("%w: v1: %w", ErrInvalidMessage, err)
	}
	if jr, ok := obj["join_ref"]; ok {
		if m.JoinRef, err = decodeRef(jr, "join_ref"); err != nil {
			return Message{}, fmt.Errorf("%w: v1: %w", ErrInvalidMessage, err)
		}
	}
	m.Payload = JSONPayload(obj["payload"])
	return m, nil
}

// EncodeMessage encodes {"event":E,"payload":P,"ref":R,"topic":T}. joinRef
// is dropped: V1 frames never carry it. Any JSON payload is accepted.
func (v1Serializer) EncodeMessage(_, ref Ref, topic, event string, p Payload) (*Frame, error) {
	if p.Binary {
		return nil, fmt.Errorf("encode %q on %q: %w", event, topic, ErrBinaryUnsupported)
	}
	return encodeV1(ref, topic, event, payloadJSON(p)), nil
}

// EncodeReply encodes {"event":"phx_reply","payload":{"response":R,
// "status":S},"ref":REF,"topic":T}. An empty status encodes as null.
func (v1Serializer) EncodeReply(_, ref Ref, topic, status string, response Payload) (*Frame, error) {
	if response.Binary {
		return nil, fmt.Errorf("encode reply on %q: %w", topic, ErrBinaryUnsupported)
	}
	resp := payloadJSON(response)
	buf := newFrameBuf(v1Overhead + v1ReplyOverhead + refJSONLen(ref) +
		jsonStringLen(topic) + statusJSONLen(status) + len(resp))
	buf = append(buf, `{"event":"phx_reply","payload":{"response":`...)
	buf = append(buf, resp...)
	buf = append(buf, `,"status":`...)
	buf = appendStatus(buf, status)
	buf = append(buf, `},"ref":`...)
	buf = ref.appendJSON(buf)
	buf = append(buf, `,"topic":`...)
	buf = jsonwire.AppendString(buf, topic)
	buf = append(buf, '}')
	return finishFrame(buf, false), nil
}

// EncodeBroadcast encodes a broadcast as a message with a null ref.
func (v1Serializer) EncodeBroadcast(topic, event string, p Payload) (*Frame, error) {
	if p.Binary {
		return nil, fmt.Errorf("encode broadcast %q on %q: %w", event, topic, ErrBinaryUnsupported)
	}
	return encodeV1(nil, topic, event, payloadJSON(p)), nil
}

// encodeV1 builds a V1 message frame.
func encodeV1(ref Ref, topic, event string, payload []byte) *Frame {
	buf := newFrameBuf(v1Overhead + refJSONLen(ref) + jsonStringLen(topic) +
		jsonStringLen(event) + len(payload))
	buf = append(buf, `{"event":`...)
	buf = jsonwire.AppendString(buf, event)
	buf = append(buf, `,"payload":`...)
	buf = append(buf, payload...)
	buf = append(buf, `,"ref":`...)
	buf = ref.appendJSON(buf)
	buf = append(buf, `,"topic":`...)
	buf = jsonwire.AppendString(buf, topic)
	buf = append(buf, '}')
	return finishFrame(buf, false)
}

// The helpers below are shared by the V1 and V2 JSON encoders and decoders.

// payloadJSON returns the JSON text of a non-binary payload. An empty
// payload stands for the empty object {}, in every frame kind.
func payloadJSON(p Payload) []byte {
	if len(p.JSON) == 0 {
		return emptyObject
	}
	return p.JSON
}

// appendStatus appends a reply status as a JSON string; the empty status is
// written as null (a reply without a status, as Phoenix encodes it).
func appendStatus(b []byte, status string) []byte {
	if status == "" {
		return append(b, "null"...)
	}
	return jsonwire.AppendString(b, status)
}

// statusJSONLen is the number of bytes appendStatus writes.
func statusJSONLen(status string) int {
	if status == "" {
		return len("null")
	}
	return jsonStringLen(status)
}

// refJSONLen is the number of bytes Ref.appendJSON writes.
func refJSONLen(r Ref) int {
	if r.IsNull() {
		return len("null")
	}
	return len(r)
}

// jsonStringLen returns exactly the number of bytes jsonwire.AppendString(nil, s)
// produces, so encoders can size their buffer once.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// firstByte returns the first byte of data after JSON whitespace, or 0.
func firstByte(data []byte) byte {
	v := bytes.TrimLeft(data, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

// jsonKind names the JSON type that starts with c, for error messages.
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == 0:
		return "nothing"
	default:
		return "invalid JSON"
	}
}

// decodeJSONString decodes a raw JSON value that must be a string.
func decodeJSONString(raw json.RawMessage, field string) (string, error) {
	if c := firstByte(raw); c != '"' {
		return "", fmt.Errorf("%s must be a string, got %s", field, jsonKind(c))
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), nil // no escapes: the bytes are the string
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return s, nil
}

// decodeRef validates a raw join_ref or ref: a JSON string, number or null.
// Null becomes the nil Ref; other values are kept byte for byte.
func decodeRef(raw json.RawMessage, field string) (Ref, error) {
	raw = bytes.TrimSpace(raw)
	switch c := firstByte(raw); {
	case c == '"' || c == '-' || (c >= '0' && c <= '9'):
		return Ref(raw), nil
	case string(raw) == "null":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s must be a string, number or null, got %s", field, jsonKind(c))
	}
}
