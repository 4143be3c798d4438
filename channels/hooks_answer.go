package channels

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// This file decodes handle_in answers. The common answer, a reply with a
// status and a response, is decoded by hand; every other member is
// handed to encoding/json, and any answer the fast path does not fully
// understand is decoded by encoding/json from scratch, so the outcome is
// always that of json.Unmarshal (FuzzHandleInAnswer checks it).

// handleInAnswer is the body of a handle_in webhook answer.
type handleInAnswer struct {
	Reply         *hookReply     `json:"reply"`
	Broadcast     []hookMessage  `json:"broadcast"`
	BroadcastFrom []hookMessage  `json:"broadcast_from"`
	Push          []hookMessage  `json:"push"`
	Assigns       map[string]any `json:"assigns"`
	Presence      *hookPresence  `json:"presence"`
	Stop          *hookStop      `json:"stop"`
}

// hookStop is the stop member of a handle_in answer.
type hookStop struct {
	Reason string `json:"reason"`
}

// hookAnswerDecoder is an answer with its own decoder; callHook uses it
// instead of json.Unmarshal.
type hookAnswerDecoder interface {
	decodeAnswer(data []byte) error
}

// decodeAnswer decodes a handle_in answer exactly as json.Unmarshal
// would, faster for the usual shapes.
func (a *handleInAnswer) decodeAnswer(data []byte) error {
	if !json.Valid(data) {
		return json.Unmarshal(data, a) // its syntax error
	}
	if a.decodeFast(data) {
		return nil
	}
	*a = handleInAnswer{}
	return json.Unmarshal(data, a)
}

// decodeFast decodes data, valid JSON, into a, reporting false when the slow path must
// decode it instead (a may then be partly filled).
func (a *handleInAnswer) decodeFast(data []byte) bool {
	i := skipJSONSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	var members [8]objectMember
	for _, m := range splitObject(data[i:], nil, members[:0]) {
		key, ok := plainJSONKey(m.raw[:m.keyLen])
		if !ok {
			return false
		}
		value := m.raw[skipJSONSpace(m.raw, skipJSONSpace(m.raw, m.keyLen)+1):]
		var err error
		switch {
		case asciiEqualFold(key, "reply"):
			ok = decodeHookReplyFast(value, &a.Reply)
		case asciiEqualFold(key, "broadcast"):
			err = json.Unmarshal(value, &a.Broadcast)
		case asciiEqualFold(key, "broadcast_from"):
			err = json.Unmarshal(value, &a.BroadcastFrom)
		case asciiEqualFold(key, "push"):
			err = json.Unmarshal(value, &a.Push)
		case asciiEqualFold(key, "assigns"):
			err = json.Unmarshal(value, &a.Assigns)
		case asciiEqualFold(key, "presence"):
			err = json.Unmarshal(value, &a.Presence)
		case asciiEqualFold(key, "stop"):
			err = json.Unmarshal(value, &a.Stop)
		}
		if !ok || err != nil {
			return false
		}
	}
	return true
}

// decodeHookReplyFast decodes the reply member: null, or an object of
// strings and a raw response.
func decodeHookReplyFast(value []byte, dst **hookReply) bool {
	if string(value) == "null" {
		*dst = nil
		return true
	}
	if value[0] != '{' {
		return false
	}
	if *dst == nil {
		*dst = new(hookReply)
	}
	r := *dst
	var members [4]objectMember
	for _, m := range splitObject(value, nil, members[:0]) {
		key, ok := plainJSONKey(m.raw[:m.keyLen])
		if !ok {
			return false
		}
		v := m.raw[skipJSONSpace(m.raw, skipJSONSpace(m.raw, m.keyLen)+1):]
		switch {
		case asciiEqualFold(key, "status"):
			if string(v) == "null" {
				continue // null leaves a string as it is
			}
			s, ok := plainJSONString(v)
			if !ok {
				return false
			}
			r.Status = s
		case asciiEqualFold(key, "response"):
			r.Response = json.RawMessage(v)
		case asciiEqualFold(key, "binary"):
			if string(v) == "null" {
				r.Binary = nil
				continue
			}
			s, ok := plainJSONString(v)
			if !ok {
				return false
			}
			r.Binary = &s
		}
	}
	return true
}

// plainJSONKey returns the inside of a raw JSON key when it is printable
// ASCII without escapes (matched by ASCII case folding, as encoding/json
// does for such keys).
func plainJSONKey(raw []byte) ([]byte, bool) {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return nil, false
		}
	}
	return inner, true
}

// plainJSONString returns a raw JSON string without escapes as a string.
func plainJSONString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}
