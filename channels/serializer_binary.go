package channels

import (
	"fmt"
	"unicode/utf8"
)

// Kinds of V2 binary frames (byte 0 of the frame).
const (
	binaryKindPush      = 0
	binaryKindReply     = 1
	binaryKindBroadcast = 2
)

// Header sizes of the V2 binary frame layouts.
const (
	binaryClientPushHeader = 5 // kind, join_ref, ref, topic, event
	binaryServerPushHeader = 4 // kind, join_ref, topic, event
	binaryReplyHeader      = 5 // kind, join_ref, ref, topic, status
	binaryBroadcastHeader  = 3 // kind, topic, event
)

// maxBinaryField is the longest header field a binary frame can describe:
// every length is a single byte.
const maxBinaryField = 255

// decodeBinaryPush parses a client push (kind 0): a 5-byte header with the
// kind and the lengths of join_ref, ref, topic and event, then those fields,
// then the payload (the rest of the frame). Empty join_ref or ref strings
// become null refs (see StringRef). Every header field must be valid UTF-8.
// The payload is copied, so the message does not alias data.
func decodeBinaryPush(data []byte) (Message, error) {
	if len(data) == 0 {
		return Message{}, fmt.Errorf("%w: v2: empty binary frame", ErrInvalidMessage)
	}
	switch kind := data[0]; kind {
	case binaryKindPush:
	case binaryKindReply, binaryKindBroadcast:
		return Message{}, fmt.Errorf("%w: v2: binary frame kind %d is only sent by servers", ErrInvalidMessage, kind)
	default:
		return Message{}, fmt.Errorf("%w: v2: unknown binary frame kind %d", ErrInvalidMessage, kind)
	}
	if len(data) < binaryClientPushHeader {
		return Message{}, fmt.Errorf("%w: v2: binary push header needs %d bytes, got %d",
			ErrInvalidMessage, binaryClientPushHeader, len(data))
	}
	var fields [4][]byte // join_ref, ref, topic, event
	rest := data[binaryClientPushHeader:]
	for i := range fields {
		n := int(data[1+i])
		if n > len(rest) {
			return Message{}, fmt.Errorf("%w: v2: binary push %s length %d runs past the end of the frame",
				ErrInvalidMessage, binaryPushFieldNames[i], n)
		}
		fields[i], rest = rest[:n], rest[n:]
		if !utf8.Valid(fields[i]) {
			return Message{}, fmt.Errorf("%w: v2: binary push %s is not valid UTF-8",
				ErrInvalidMessage, binaryPushFieldNames[i])
		}
	}
	payload := make([]byte, len(rest))
	copy(payload, rest)
	return Message{
		JoinRef: StringRef(string(fields[0])),
		Ref:     StringRef(string(fields[1])),
		Topic:   string(fields[2]),
		Event:   string(fields[3]),
		Payload: BinaryPayload(payload),
	}, nil
}

// binaryPushFieldNames names the header fields of a client push, in order.
var binaryPushFieldNames = [4]string{"join_ref", "ref", "topic", "event"}

// encodeBinaryPush builds a server push (kind 0, 4-byte header, no ref):
// kind, len(join_ref), len(topic), len(event), the fields, the payload. A
// null join_ref is sent as the empty string.
func encodeBinaryPush(joinRef Ref, topic, event string, data []byte) (*Frame, error) {
	jr := joinRef.Text()
	if err := checkBinaryFields("push", "join_ref", jr, "topic", topic, "event", event); err != nil {
		return nil, err
	}
	buf := newFrameBuf(binaryServerPushHeader + len(jr) + len(topic) + len(event) + len(data))
	buf = append(buf, binaryKindPush, byte(len(jr)), byte(len(topic)), byte(len(event)))
	buf = append(buf, jr...)
	buf = append(buf, topic...)
	buf = append(buf, event...)
	buf = append(buf, data...)
	return finishFrame(buf, true), nil
}

// encodeBinaryReply builds a reply (kind 1): kind, len(join_ref), len(ref),
// len(topic), len(status), the fields, the response payload.
func encodeBinaryReply(joinRef, ref Ref, topic, status string, data []byte) (*Frame, error) {
	jr, r := joinRef.Text(), ref.Text()
	if err := checkBinaryFields("reply", "join_ref", jr, "ref", r, "topic", topic); err != nil {
		return nil, err
	}
	if err := checkBinaryField("reply", "status", status); err != nil {
		return nil, err
	}
	buf := newFrameBuf(binaryReplyHeader + len(jr) + len(r) + len(topic) + len(status) + len(data))
	buf = append(buf, binaryKindReply, byte(len(jr)), byte(len(r)), byte(len(topic)), byte(len(status)))
	buf = append(buf, jr...)
	buf = append(buf, r...)
	buf = append(buf, topic...)
	buf = append(buf, status...)
	buf = append(buf, data...)
	return finishFrame(buf, true), nil
}

// encodeBinaryBroadcast builds a broadcast (kind 2): kind, len(topic),
// len(event), the fields, the payload.
func encodeBinaryBroadcast(topic, event string, data []byte) (*Frame, error) {
	if err := checkBinaryField("broadcast", "topic", topic); err != nil {
		return nil, err
	}
	if err := checkBinaryField("broadcast", "event", event); err != nil {
		return nil, err
	}
	buf := newFrameBuf(binaryBroadcastHeader + len(topic) + len(event) + len(data))
	buf = append(buf, binaryKindBroadcast, byte(len(topic)), byte(len(event)))
	buf = append(buf, topic...)
	buf = append(buf, event...)
	buf = append(buf, data...)
	return finishFrame(buf, true), nil
}

// checkBinaryFields checks three named header fields with checkBinaryField.
func checkBinaryFields(kind, n1, v1, n2, v2, n3, v3 string) error {
	if err := checkBinaryField(kind, n1, v1); err != nil {
		return err
	}
	if err := checkBinaryField(kind, n2, v2); err != nil {
		return err
	}
	return checkBinaryField(kind, n3, v3)
}

// checkBinaryField returns ErrFieldTooLong when a header field does not fit
// its one-byte length.
func checkBinaryField(kind, name, v string) error {
	if len(v) > maxBinaryField {
		return fmt.Errorf("encode binary %s: %s is %d bytes: %w", kind, name, len(v), ErrFieldTooLong)
	}
	return nil
}
