package webhook

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// This file decodes handle_in answers. The common answer, a reply with a
// status and a response, is decoded by hand; every other member is
// handed to encoding/json, and any answer the fast path does not fully
// understand is decoded by encoding/json from scratch, so the outcome is
// always that of json.Unmarshal (FuzzHandleInAnswer checks it).

// Item is a broadcast, broadcast_from or push item of a handle_in answer.
type Item struct {
	// Event is the item's event.
	Event string `json:"event"`
	// Payload is its JSON payload (missing or null: {}).
	Payload json.RawMessage `json:"payload"`
	// Binary, when set, is a binary payload in base64 instead.
	Binary *string `json:"binary"`
}

// Reply is the reply member of a handle_in answer.
type Reply struct {
	// Status is the reply status; empty means "ok".
	Status string `json:"status"`
	// Response is the JSON response (missing or null: {}).
	Response json.RawMessage `json:"response"`
	// Binary, when set, is a binary response in base64 instead.
	Binary *string `json:"binary"`
}

// Presence is the presence member of a join or handle_in answer: the
// socket's presence in the channel, tracked (join) or updated (handle_in).
type Presence struct {
	// Key is the presence key; nil is the socket id.
	Key *string `json:"key"`
	// Meta is the presence meta object.
	Meta json.RawMessage `json:"meta"`
}

// Stop is the stop member of a handle_in answer.
type Stop struct {
	// Reason is a reason for the logs.
	Reason string `json:"reason"`
}

// HandleInAnswer is the body of a handle_in webhook answer.
type HandleInAnswer struct {
	Reply         *Reply         `json:"reply"`
	Broadcast     []Item         `json:"broadcast"`
	BroadcastFrom []Item         `json:"broadcast_from"`
	Push          []Item         `json:"push"`
	Assigns       map[string]any `json:"assigns"`
	Presence      *Presence      `json:"presence"`
	Stop          *Stop          `json:"stop"`
}

// ConnectAnswer is the body of a connect webhook answer.
type ConnectAnswer struct {
	// Status other than "" or "ok" refuses the connection.
	Status string `json:"status"`
	// ID, when set, is the socket id.
	ID *string `json:"id"`
	// Assigns are the socket's assigns.
	Assigns map[string]any `json:"assigns"`
}

// JoinAnswer is the body of a join webhook answer.
type JoinAnswer struct {
	// Status is the join reply status; empty means "ok".
	Status string `json:"status"`
	// Response is the join reply's response (missing or null: {}).
	Response json.RawMessage `json:"response"`
	// Assigns are merged over the socket's for this channel.
	Assigns map[string]any `json:"assigns"`
	// Presence, when set, tracks the socket in the channel.
	Presence *Presence `json:"presence"`
}

// Decoder is an answer with a decoder of its own, used instead of
// json.Unmarshal (with the same outcome).
type Decoder interface {
	DecodeAnswer(data []byte) error
}

// Decode decodes an answer body into out: with its own decoder when it
// has one, with encoding/json otherwise.
func Decode(data []byte, out any) error {
	if d, ok := out.(Decoder); ok {
		return d.DecodeAnswer(data)
	}
	return json.Unmarshal(data, out)
}

// DecodeAnswer implements Decoder: it decodes a handle_in answer exactly
// as json.Unmarshal would, faster for the usual shapes.
func (a *HandleInAnswer) DecodeAnswer(data []byte) error {
	if !json.Valid(data) {
		return json.Unmarshal(data, a) // its syntax error
	}
	if a.decodeFast(data) {
		return nil
	}
	*a = HandleInAnswer{}
	return json.Unmarshal(data, a)
}

// decodeFast decodes data, valid JSON, into a, reporting false when the slow path must
// decode it instead (a may then be partly filled).
func (a *HandleInAnswer) decodeFast(data []byte) bool {
	i := jsonwire.ObjectStart(data)
	if i < 0 {
		return false
	}
	for {
		raw, keyLen, next, more := jsonwire.NextMember(data, i)
		if !more {
			return true
		}
		i = next
		key, ok := plainJSONKey(raw[:keyLen])
		if !ok {
			return false
		}
		value := memberValue(raw, keyLen)
		var err error
		switch {
		case asciiEqualFold(key, "reply"):
			ok = decodeReplyFast(value, &a.Reply)
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
}

// memberValue returns the value of a raw member `"key":value`.
func memberValue(raw []byte, keyLen int) []byte {
	return raw[jsonwire.SkipSpace(raw, jsonwire.SkipSpace(raw, keyLen)+1):]
}

// decodeReplyFast decodes the reply member: null, or an object of
// strings and a raw response.
func decodeReplyFast(value []byte, dst **Reply) bool {
	if string(value) == "null" {
		*dst = nil
		return true
	}
	if value[0] != '{' {
		return false
	}
	if *dst == nil {
		*dst = new(Reply)
	}
	r := *dst
	for i := 1; ; {
		raw, keyLen, next, more := jsonwire.NextMember(value, i)
		if !more {
			return true
		}
		i = next
		key, ok := plainJSONKey(raw[:keyLen])
		if !ok {
			return false
		}
		v := memberValue(raw, keyLen)
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

// asciiEqualFold reports whether b equals the lower-case ASCII lower,
// ignoring ASCII case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
