package channels

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
)

// hookSocketWant is the "socket" object as encoding/json encodes it.
type hookSocketWant struct {
	ID        *string        `json:"id"`
	Transport string         `json:"transport"`
	Vsn       string         `json:"vsn"`
	RemoteIP  string         `json:"remote_ip"`
	Assigns   map[string]any `json:"assigns"`
}

func hookSocketOf(s *Socket, assigns map[string]any) hookSocketWant {
	hs := hookSocketWant{Transport: s.transport, Vsn: s.vsn, RemoteIP: s.remoteIP, Assigns: assigns}
	if s.id != "" {
		id := s.id
		hs.ID = &id
	}
	if hs.Assigns == nil {
		hs.Assigns = map[string]any{}
	}
	return hs
}

// sameJSON fails unless got is valid JSON equal in value to want encoded
// by encoding/json.
func sameJSON(t *testing.T, got []byte, want any) {
	t.Helper()
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Fatalf("body is not valid JSON: %s", got)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body = %s\nwant  %s", got, raw)
	}
}

func TestHookBodiesMatchEncodingJSON(t *testing.T) {
	token := "tok\"en\u2028<&>"
	sockets := []*Socket{
		{transport: "websocket", vsn: "2.0.0", remoteIP: "127.0.0.1"},
		{id: "user:\"42\"\n\x01é\xff", transport: "longpoll", vsn: "1.0.0", remoteIP: "::1",
			params: map[string]any{"a": 1.5, "b": []any{"x", nil}}, authToken: &token,
			assigns: map[string]any{"user": "ana", "n": 3.0, "nested": map[string]any{"k": true}}},
	}
	msgs := []*Message{
		{Topic: "room:lobby", Event: "new_msg", Payload: JSONPayload([]byte(`{"body":"hi \"there\""}`)),
			Ref: Ref(`"3"`), JoinRef: Ref(`"1"`)},
		{Topic: "room:\t\"x\"", Event: "bin\u00e9", Payload: BinaryPayload([]byte{0, 1, 2, 0xff}), Ref: Ref(`12`)},
		{Topic: "t", Event: "e"},
	}
	for _, s := range sockets {
		headers := map[string]string{"X-B": "2", "X-A": "1\"\n", "Cookie": "c=d"}
		got, err := s.appendConnectBody(nil, headers)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, got, struct {
			Socket    hookSocketWant    `json:"socket"`
			Params    map[string]any    `json:"params"`
			Headers   map[string]string `json:"headers"`
			AuthToken *string           `json:"auth_token"`
		}{hookSocketOf(s, nil), s.params, headers, s.authToken})

		for _, m := range msgs {
			refOrNull := func(r Ref) json.RawMessage { return r.appendJSON(nil) }
			got, err := s.appendJoinBody([]byte("prefix"), m)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, got[len("prefix"):], struct {
				Socket  hookSocketWant  `json:"socket"`
				Topic   string          `json:"topic"`
				Payload json.RawMessage `json:"payload"`
				JoinRef json.RawMessage `json:"join_ref"`
			}{hookSocketOf(s, s.assigns), m.Topic, jsonOrNull(m.Payload), refOrNull(m.JoinRef)})

			got, err = s.appendHandleInBody(nil, s.assigns, m)
			if err != nil {
				t.Fatal(err)
			}
			want := struct {
				Socket  hookSocketWant  `json:"socket"`
				Topic   string          `json:"topic"`
				Event   string          `json:"event"`
				Payload json.RawMessage `json:"payload"`
				Binary  *string         `json:"binary,omitempty"`
				Ref     json.RawMessage `json:"ref"`
				JoinRef json.RawMessage `json:"join_ref"`
			}{hookSocketOf(s, s.assigns), m.Topic, m.Event, jsonOrNull(m.Payload), nil, refOrNull(m.Ref), refOrNull(m.JoinRef)}
			if m.Payload.Binary {
				b64 := base64.StdEncoding.EncodeToString(m.Payload.Data)
				want.Binary = &b64
			}
			sameJSON(t, got, want)
		}

		got, err = s.appendLeaveBody(nil, s.assigns, "room:\"1\"", LeaveReasonTimeout)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, got, struct {
			Socket hookSocketWant `json:"socket"`
			Topic  string         `json:"topic"`
			Reason string         `json:"reason"`
		}{hookSocketOf(s, s.assigns), "room:\"1\"", LeaveReasonTimeout})
	}
}

func TestHookBodyUnencodableAssigns(t *testing.T) {
	s := &Socket{transport: "websocket", vsn: "2.0.0"}
	if _, err := s.appendHandleInBody(nil, map[string]any{"f": func() {}}, &Message{Topic: "t", Event: "e"}); err == nil {
		t.Fatal("assigns holding a func encoded without error")
	}
}

func BenchmarkHookHandleInBody(b *testing.B) {
	s := &Socket{id: "user_socket:42", transport: "websocket", vsn: "2.0.0", remoteIP: "127.0.0.1"}
	m := &Message{Topic: "room:lobby", Event: "new_msg", Payload: JSONPayload([]byte(`{"body":"hello"}`)),
		Ref: Ref(`"3"`), JoinRef: Ref(`"1"`)}
	b.ReportAllocs()
	for b.Loop() {
		buf := getHookBody()
		out, err := s.appendHandleInBody(*buf, nil, m)
		if err != nil {
			b.Fatal(err)
		}
		*buf = out[:0]
		putHookBody(buf)
	}
}
