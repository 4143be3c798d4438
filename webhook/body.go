package webhook

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// This file encodes the request bodies of the webhooks (docs/webhooks.md)
// by hand into pooled buffers: encoding/json of anonymous structs cost
// several allocations per handle_in call (BenchmarkHandleInBody). Raw
// JSON parts (payloads, refs) come from frames the serializers validated
// and are copied as they are. TestBodiesMatchEncodingJSON checks every
// body against encoding/json.

// Socket is what every webhook body says of the socket it is about.
type Socket struct {
	// ID is the socket id; empty is sent as null.
	ID string
	// Transport is "websocket" or "longpoll".
	Transport string
	// Vsn is the serializer version the client asked for.
	Vsn string
	// RemoteIP is the client's address.
	RemoteIP string
	// Params are the connect params (connect bodies only); nil is null.
	Params map[string]any
	// AuthToken is the phoenix.js authToken (connect bodies only); nil is
	// null.
	AuthToken *string
}

// Message is the client message a join or handle_in body carries. Its
// raw JSON parts are copied as they are.
type Message struct {
	// Topic and Event are the message's topic and event.
	Topic, Event string
	// Payload is the JSON payload; nil (or IsBinary) is sent as null.
	Payload json.RawMessage
	// Binary is a binary payload, sent base64 in "binary" when IsBinary.
	Binary []byte
	// IsBinary marks a binary payload.
	IsBinary bool
	// Ref and JoinRef are raw JSON values; nil is null.
	Ref, JoinRef []byte
}

// bodyMaxKept is the largest body buffer returned to the pool.
const bodyMaxKept = 64 << 10

// bodies pools body buffers (*[]byte).
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// GetBody returns an empty pooled buffer for a body; PutBody returns it.
func GetBody() *[]byte {
	b := bodies.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// PutBody returns a buffer taken with GetBody.
func PutBody(b *[]byte) {
	if cap(*b) <= bodyMaxKept {
		bodies.Put(b)
	}
}

// appendSocket appends the "socket" object of every webhook body:
// {"id","transport","vsn","remote_ip","assigns"}; nil or empty assigns
// encode as {}.
func appendSocket(b []byte, s *Socket, assigns map[string]any) ([]byte, error) {
	b = append(b, `{"id":`...)
	if s.ID != "" {
		b = jsonwire.AppendString(b, s.ID)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"transport":`...)
	b = jsonwire.AppendString(b, s.Transport)
	b = append(b, `,"vsn":`...)
	b = jsonwire.AppendString(b, s.Vsn)
	b = append(b, `,"remote_ip":`...)
	b = jsonwire.AppendString(b, s.RemoteIP)
	b = append(b, `,"assigns":`...)
	b, err := appendJSONValue(b, assigns)
	if err != nil {
		return b, fmt.Errorf("assigns: %w", err)
	}
	return append(b, '}'), nil
}

// appendJSONValue appends m encoded by encoding/json, or {} when empty.
func appendJSONValue[M ~map[string]V, V any](b []byte, m M) ([]byte, error) {
	if len(m) == 0 {
		return append(b, "{}"...), nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}

// AppendConnect appends the connect webhook body of s with the forwarded
// request headers.
func AppendConnect(b []byte, s *Socket, headers map[string]string) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := appendSocket(b, s, nil)
	if err != nil {
		return b, err
	}
	b = append(b, `,"params":`...)
	if s.Params == nil {
		b = append(b, "null"...)
	} else if b, err = appendJSONValue(b, s.Params); err != nil {
		return b, fmt.Errorf("params: %w", err)
	}
	b = append(b, `,"headers":{`...)
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonwire.AppendString(b, name)
		b = append(b, ':')
		b = jsonwire.AppendString(b, headers[name])
	}
	b = append(b, `},"auth_token":`...)
	if s.AuthToken != nil {
		b = jsonwire.AppendString(b, *s.AuthToken)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}'), nil
}

// AppendJoin appends the join webhook body of m, sent by s with the
// socket's assigns.
func AppendJoin(b []byte, s *Socket, assigns map[string]any, m *Message) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := appendSocket(b, s, assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = jsonwire.AppendString(b, m.Topic)
	b = append(b, `,"payload":`...)
	b = appendPayload(b, m)
	b = append(b, `,"join_ref":`...)
	b = appendRaw(b, m.JoinRef)
	return append(b, '}'), nil
}

// AppendHandleIn appends the handle_in webhook body of m, sent by s on a
// channel with assigns; a binary payload goes base64 in "binary".
func AppendHandleIn(b []byte, s *Socket, assigns map[string]any, m *Message) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := appendSocket(b, s, assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = jsonwire.AppendString(b, m.Topic)
	b = append(b, `,"event":`...)
	b = jsonwire.AppendString(b, m.Event)
	b = append(b, `,"payload":`...)
	b = appendPayload(b, m)
	if m.IsBinary {
		b = append(b, `,"binary":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Binary)
		b = append(b, '"')
	}
	b = append(b, `,"ref":`...)
	b = appendRaw(b, m.Ref)
	b = append(b, `,"join_ref":`...)
	b = appendRaw(b, m.JoinRef)
	return append(b, '}'), nil
}

// AppendLeave appends the leave webhook body of a channel of s with
// assigns.
func AppendLeave(b []byte, s *Socket, assigns map[string]any, topic, reason string) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := appendSocket(b, s, assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = jsonwire.AppendString(b, topic)
	b = append(b, `,"reason":`...)
	b = jsonwire.AppendString(b, reason)
	return append(b, '}'), nil
}

// appendPayload appends m's JSON payload, or null for binary and empty
// payloads.
func appendPayload(b []byte, m *Message) []byte {
	if m.IsBinary || len(m.Payload) == 0 {
		return append(b, "null"...)
	}
	return append(b, m.Payload...)
}

// appendRaw appends raw, a JSON value, or null when empty.
func appendRaw(b, raw []byte) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}
