package channels

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// This file encodes the request bodies of the webhooks (docs/webhooks.md)
// by hand into pooled buffers: encoding/json of anonymous structs cost
// several allocations per handle_in call. Raw JSON parts (payloads, refs)
// come from frames the serializers validated and are copied as they are.

// hookBodyMaxKept is the largest body buffer returned to the pool.
const hookBodyMaxKept = 64 << 10

// hookBodies pools body buffers (*[]byte).
var hookBodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// getHookBody returns an empty pooled buffer.
func getHookBody() *[]byte {
	b := hookBodies.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// putHookBody returns a buffer taken with getHookBody.
func putHookBody(b *[]byte) {
	if cap(*b) <= hookBodyMaxKept {
		hookBodies.Put(b)
	}
}

// appendHookSocket appends the "socket" object of every webhook body:
// {"id","transport","vsn","remote_ip","assigns"}; nil or empty assigns
// encode as {}.
func (s *Socket) appendHookSocket(b []byte, assigns map[string]any) ([]byte, error) {
	b = append(b, `{"id":`...)
	if s.id != "" {
		b = appendJSONString(b, s.id)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"transport":`...)
	b = appendJSONString(b, s.transport)
	b = append(b, `,"vsn":`...)
	b = appendJSONString(b, s.vsn)
	b = append(b, `,"remote_ip":`...)
	b = appendJSONString(b, s.remoteIP)
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

// appendConnectBody appends the connect webhook body.
func (s *Socket) appendConnectBody(b []byte, headers map[string]string) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := s.appendHookSocket(b, nil)
	if err != nil {
		return b, err
	}
	b = append(b, `,"params":`...)
	if s.params == nil {
		b = append(b, "null"...)
	} else if b, err = appendJSONValue(b, s.params); err != nil {
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
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = appendJSONString(b, headers[name])
	}
	b = append(b, `},"auth_token":`...)
	if s.authToken != nil {
		b = appendJSONString(b, *s.authToken)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}'), nil
}

// appendJoinBody appends the join webhook body of m.
func (s *Socket) appendJoinBody(b []byte, m *Message) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := s.appendHookSocket(b, s.assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, m.Topic)
	b = append(b, `,"payload":`...)
	b = append(b, jsonOrNull(m.Payload)...)
	b = append(b, `,"join_ref":`...)
	b = m.JoinRef.appendJSON(b)
	return append(b, '}'), nil
}

// appendHandleInBody appends the handle_in webhook body of m, sent on a
// channel with assigns; a binary payload goes base64 in "binary".
func (s *Socket) appendHandleInBody(b []byte, assigns map[string]any, m *Message) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := s.appendHookSocket(b, assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, m.Topic)
	b = append(b, `,"event":`...)
	b = appendJSONString(b, m.Event)
	b = append(b, `,"payload":`...)
	b = append(b, jsonOrNull(m.Payload)...)
	if m.Payload.Binary {
		b = append(b, `,"binary":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Payload.Data)
		b = append(b, '"')
	}
	b = append(b, `,"ref":`...)
	b = m.Ref.appendJSON(b)
	b = append(b, `,"join_ref":`...)
	b = m.JoinRef.appendJSON(b)
	return append(b, '}'), nil
}

// appendLeaveBody appends the leave webhook body of a channel.
func (s *Socket) appendLeaveBody(b []byte, assigns map[string]any, topic, reason string) ([]byte, error) {
	b = append(b, `{"socket":`...)
	b, err := s.appendHookSocket(b, assigns)
	if err != nil {
		return b, err
	}
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, topic)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, reason)
	return append(b, '}'), nil
}
