package channels

import (
	"encoding/json"
	"fmt"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// V2 is the serializer of the V2 wire format (vsn 2.x): text frames hold
// the JSON array [join_ref, ref, topic, event, payload]; binary payloads use
// the V2 binary frame layout.
//
// Push and broadcast payloads must be JSON objects (or binary); a reply
// response may be any JSON value. An empty JSON payload or response is
// encoded as {}.
var V2 Serializer = v2Serializer{}

// v2Serializer implements Serializer for vsn 2.x.
type v2Serializer struct{}

// v2Overhead is the fixed text of an encoded V2 push or broadcast: the
// brackets and commas around the five elements.
const v2Overhead = len(`[,,,,]`)

// v2ReplyOverhead is the fixed text of an encoded V2 reply. Payload keys
// are written in sorted order, as Phoenix emits them.
const v2ReplyOverhead = len(`[,,,"phx_reply",{"response":,"status":}]`)

// Version returns "2.0.0".
func (v2Serializer) Version() string { return "2.0.0" }

// Index returns 1.
func (v2Serializer) Index() int { return 1 }

// Decode parses one V2 frame. A text frame is a JSON array of at least five
// elements [join_ref, ref, topic, event, payload] (extra elements are
// ignored); join_ref and ref must be strings, numbers or null and are kept
// as raw JSON, topic and event must be strings. A binary frame must be a
// client push (kind 0).
func (v2Serializer) Decode(data []byte, binaryFrame bool) (Message, error) {
	if binaryFrame {
		return decodeBinaryPush(data)
	}
	if c := firstByte(data); c != '[' {
		return Message{}, fmt.Errorf("%w: v2: expected a JSON array, got %s", ErrInvalidMessage, jsonKind(c))
	}
	// Validate once without allocating, then split the array by hand:
	// decoding into []json.RawMessage cost ~1.5 µs and 19 allocations per
	// inbound frame.
	if !json.Valid(data) {
		return Message{}, fmt.Errorf("%w: v2: invalid JSON", ErrInvalidMessage)
	}
	elems, n := splitJSONArray(data)
	if n < 5 {
		return Message{}, fmt.Errorf("%w: v2: expected 5 array elements, got %d", ErrInvalidMessage, n)
	}
	var (
		m   Message
		err error
	)
	if m.JoinRef, err = decodeRef(elems[0], "join_ref"); err != nil {
		return Message{}, fmt.Errorf("%w: v2: %w", ErrInvalidMessage, err)
	}
	if m.Ref, err = decodeRef(elems[1], "ref"); err != nil {
		return Message{}, fmt.Errorf("%w: v2: %w", ErrInvalidMessage, err)
	}
	if m.Topic, err = decodeJSONString(elems[2], "topic"); err != nil {
		return Message{}, fmt.Errorf("%w: v2: %w", ErrInvalidMessage, err)
	}
	if m.Event, err = decodeJSONString(elems[3], "event"); err != nil {
		return Message{}, fmt.Errorf("%w: v2: %w", ErrInvalidMessage, err)
	}
	m.Payload = JSONPayload(elems[4])
	return m, nil
}

// EncodeMessage encodes [join_ref, ref, topic, event, payload]. A JSON
// payload must be an object (ErrPayloadNotObject otherwise). A binary
// payload is sent as a kind 0 binary frame, which carries no ref.
func (v2Serializer) EncodeMessage(joinRef, ref Ref, topic, event string, p Payload) (*Frame, error) {
	if p.Binary {
		return encodeBinaryPush(joinRef, topic, event, p.Data)
	}
	payload := payloadJSON(p)
	if !isJSONObject(payload) {
		return nil, fmt.Errorf("encode %q on %q: %w", event, topic, ErrPayloadNotObject)
	}
	return encodeV2(joinRef, ref, topic, event, payload), nil
}

// EncodeReply encodes [join_ref, ref, topic, "phx_reply", {"response":R,
// "status":S}]. The response may be any JSON value; an empty status encodes
// as null. A binary response is sent as a kind 1 binary frame.
func (v2Serializer) EncodeReply(joinRef, ref Ref, topic, status string, response Payload) (*Frame, error) {
	if response.Binary {
		return encodeBinaryReply(joinRef, ref, topic, status, response.Data)
	}
	resp := payloadJSON(response)
	buf := newFrameBuf(v2ReplyOverhead + refJSONLen(joinRef) + refJSONLen(ref) +
		jsonStringLen(topic) + statusJSONLen(status) + len(resp))
	buf = append(buf, '[')
	buf = joinRef.appendJSON(buf)
	buf = append(buf, ',')
	buf = ref.appendJSON(buf)
	buf = append(buf, ',')
	buf = jsonwire.AppendString(buf, topic)
	buf = append(buf, `,"phx_reply",{"response":`...)
	buf = append(buf, resp...)
	buf = append(buf, `,"status":`...)
	buf = appendStatus(buf, status)
	buf = append(buf, "}]"...)
	return finishFrame(buf, false), nil
}

// EncodeBroadcast encodes [null, null, topic, event, payload]. A JSON
// payload must be an object (ErrPayloadNotObject otherwise). A binary
// payload is sent as a kind 2 binary frame.
func (v2Serializer) EncodeBroadcast(topic, event string, p Payload) (*Frame, error) {
	if p.Binary {
		return encodeBinaryBroadcast(topic, event, p.Data)
	}
	payload := payloadJSON(p)
	if !isJSONObject(payload) {
		return nil, fmt.Errorf("encode broadcast %q on %q: %w", event, topic, ErrPayloadNotObject)
	}
	return encodeV2(nil, nil, topic, event, payload), nil
}

// encodeV2 builds the text frame [join_ref, ref, topic, event, payload].
func encodeV2(joinRef, ref Ref, topic, event string, payload []byte) *Frame {
	buf := newFrameBuf(v2Overhead + refJSONLen(joinRef) + refJSONLen(ref) +
		jsonStringLen(topic) + jsonStringLen(event) + len(payload))
	buf = append(buf, '[')
	buf = joinRef.appendJSON(buf)
	buf = append(buf, ',')
	buf = ref.appendJSON(buf)
	buf = append(buf, ',')
	buf = jsonwire.AppendString(buf, topic)
	buf = append(buf, ',')
	buf = jsonwire.AppendString(buf, event)
	buf = append(buf, ',')
	buf = append(buf, payload...)
	buf = append(buf, ']')
	return finishFrame(buf, false)
}

// isJSONObject reports whether the raw JSON value is an object.
func isJSONObject(raw []byte) bool {
	return firstByte(raw) == '{'
}

// splitJSONArray returns the first five elements of the JSON array data,
// which must be valid JSON, as raw slices of data, and how many there are
// (at most five).
func splitJSONArray(data []byte) (elems [5][]byte, n int) {
	i := jsonwire.SkipSpace(data, 0) + 1 // past '['
	for n < len(elems) {
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) || data[i] == ']' {
			break
		}
		start := i
		i = jsonwire.SkipValue(data, i)
		elems[n] = data[start:i]
		n++
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			break
		}
		i++
	}
	return elems, n
}
