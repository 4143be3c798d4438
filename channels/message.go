package channels

import (
	"bytes"
	"encoding/json"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// Control events of the Phoenix Channels protocol.
const (
	EventJoin      = "phx_join"
	EventLeave     = "phx_leave"
	EventReply     = "phx_reply"
	EventClose     = "phx_close"
	EventError     = "phx_error"
	EventHeartbeat = "heartbeat"

	// TopicPhoenix is the reserved topic of socket-level heartbeats.
	TopicPhoenix = "phoenix"
)

// Ref is a join_ref or ref exactly as the client sent it: a raw JSON value
// (usually a string such as "3", sometimes a number). A nil Ref is JSON null.
// Refs are echoed byte for byte and compared by value and type, as Phoenix
// compares them with ===.
type Ref []byte

// StringRef returns the Ref of the JSON string s. Binary frames carry refs as
// strings; an empty string in a binary frame stands for null, because the
// binary layout cannot express null.
func StringRef(s string) Ref {
	if s == "" {
		return nil
	}
	return Ref(jsonwire.AppendString(nil, s))
}

// IsNull reports whether r is JSON null.
func (r Ref) IsNull() bool {
	return len(r) == 0 || string(r) == "null"
}

// Equal reports whether r and o are the same JSON value of the same type.
func (r Ref) Equal(o Ref) bool {
	if r.IsNull() || o.IsNull() {
		return r.IsNull() == o.IsNull()
	}
	if bytes.Equal(r, o) {
		return true
	}
	if r[0] == '"' && o[0] == '"' {
		var a, b string
		if json.Unmarshal(r, &a) == nil && json.Unmarshal(o, &b) == nil {
			return a == b
		}
	}
	return false
}

// Text returns the ref as the string a binary frame carries: the unquoted
// value of a JSON string, the literal text of any other value, and "" for
// null.
func (r Ref) Text() string {
	if r.IsNull() {
		return ""
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	}
	return string(r)
}

// String returns the ref's JSON text, for logs.
func (r Ref) String() string {
	if r.IsNull() {
		return "null"
	}
	return string(r)
}

// appendJSON appends the ref's JSON text to b.
func (r Ref) appendJSON(b []byte) []byte {
	if r.IsNull() {
		return append(b, "null"...)
	}
	return append(b, r...)
}

// Payload is a message body: JSON, or binary data (V2 binary frames only).
type Payload struct {
	// JSON is the raw JSON value when Binary is false.
	JSON json.RawMessage
	// Data holds the bytes of a binary payload when Binary is true.
	Data []byte
	// Binary marks a binary payload.
	Binary bool
}

// JSONPayload returns a JSON payload from raw JSON text.
func JSONPayload(raw []byte) Payload { return Payload{JSON: raw} }

// BinaryPayload returns a binary payload.
func BinaryPayload(data []byte) Payload { return Payload{Data: data, Binary: true} }

// emptyObject is the JSON payload {}.
var emptyObject = json.RawMessage(`{}`)

// IsObject reports whether p is a JSON object.
func (p Payload) IsObject() bool {
	if p.Binary {
		return false
	}
	v := bytes.TrimLeft(p.JSON, " \t\r\n")
	return len(v) > 0 && v[0] == '{'
}

// Message is one decoded inbound frame.
type Message struct {
	JoinRef Ref
	Ref     Ref
	Topic   string
	Event   string
	Payload Payload
}
