package webhook

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
)

// socketWant is the "socket" object as encoding/json encodes it.
type socketWant struct {
	ID        *string        `json:"id"`
	Transport string         `json:"transport"`
	Vsn       string         `json:"vsn"`
	RemoteIP  string         `json:"remote_ip"`
	Assigns   map[string]any `json:"assigns"`
}

func socketWantOf(s *Socket, assigns map[string]any) socketWant {
	hs := socketWant{Transport: s.Transport, Vsn: s.Vsn, RemoteIP: s.RemoteIP, Assigns: assigns}
	if s.ID != "" {
		id := s.ID
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

// orNull is raw, or null when empty.
func orNull(raw []byte) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func TestBodiesMatchEncodingJSON(t *testing.T) {
	token := "tok\"en\u2028<&>"
	sockets := []*Socket{
		{Transport: "websocket", Vsn: "2.0.0", RemoteIP: "127.0.0.1"},
		{ID: "user:\"42\"\n\x01é\xff", Transport: "longpoll", Vsn: "1.0.0", RemoteIP: "::1",
			Params: map[string]any{"a": 1.5, "b": []any{"x", nil}}, AuthToken: &token},
	}
	assignsOf := []map[string]any{nil, {"user": "ana", "n": 3.0, "nested": map[string]any{"k": true}}}
	msgs := []*Message{
		{Topic: "room:lobby", Event: "new_msg", Payload: json.RawMessage(`{"body":"hi \"there\""}`),
			Ref: []byte(`"3"`), JoinRef: []byte(`"1"`)},
		{Topic: "room:\t\"x\"", Event: "bin\u00e9", Binary: []byte{0, 1, 2, 0xff}, IsBinary: true, Ref: []byte(`12`)},
		{Topic: "t", Event: "e", JoinRef: []byte("null")},
	}
	for i, s := range sockets {
		assigns := assignsOf[i]
		headers := map[string]string{"X-B": "2", "X-A": "1\"\n", "Cookie": "c=d"}
		got, err := AppendConnect(nil, s, headers)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, got, struct {
			Socket    socketWant        `json:"socket"`
			Params    map[string]any    `json:"params"`
			Headers   map[string]string `json:"headers"`
			AuthToken *string           `json:"auth_token"`
		}{socketWantOf(s, nil), s.Params, headers, s.AuthToken})

		for _, m := range msgs {
			payload := orNull(m.Payload)
			if m.IsBinary {
				payload = json.RawMessage("null")
			}
			got, err := AppendJoin([]byte("prefix"), s, assigns, m)
			if err != nil {
				t.Fatal(err)
			}
			sameJSON(t, got[len("prefix"):], struct {
				Socket  socketWant      `json:"socket"`
				Topic   string          `json:"topic"`
				Payload json.RawMessage `json:"payload"`
				JoinRef json.RawMessage `json:"join_ref"`
			}{socketWantOf(s, assigns), m.Topic, payload, orNull(m.JoinRef)})

			got, err = AppendHandleIn(nil, s, assigns, m)
			if err != nil {
				t.Fatal(err)
			}
			want := struct {
				Socket  socketWant      `json:"socket"`
				Topic   string          `json:"topic"`
				Event   string          `json:"event"`
				Payload json.RawMessage `json:"payload"`
				Binary  *string         `json:"binary,omitempty"`
				Ref     json.RawMessage `json:"ref"`
				JoinRef json.RawMessage `json:"join_ref"`
			}{socketWantOf(s, assigns), m.Topic, m.Event, payload, nil, orNull(m.Ref), orNull(m.JoinRef)}
			if m.IsBinary {
				b64 := base64.StdEncoding.EncodeToString(m.Binary)
				want.Binary = &b64
			}
			sameJSON(t, got, want)
		}

		got, err = AppendLeave(nil, s, assigns, "room:\"1\"", "timeout")
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, got, struct {
			Socket socketWant `json:"socket"`
			Topic  string     `json:"topic"`
			Reason string     `json:"reason"`
		}{socketWantOf(s, assigns), "room:\"1\"", "timeout"})
	}
}

func TestBodyUnencodableAssigns(t *testing.T) {
	s := &Socket{Transport: "websocket", Vsn: "2.0.0"}
	if _, err := AppendHandleIn(nil, s, map[string]any{"f": func() {}}, &Message{Topic: "t", Event: "e"}); err == nil {
		t.Fatal("assigns holding a func encoded without error")
	}
}

func BenchmarkHandleInBody(b *testing.B) {
	s := &Socket{ID: "user_socket:42", Transport: "websocket", Vsn: "2.0.0", RemoteIP: "127.0.0.1"}
	m := &Message{Topic: "room:lobby", Event: "new_msg", Payload: json.RawMessage(`{"body":"hello"}`),
		Ref: []byte(`"3"`), JoinRef: []byte(`"1"`)}
	b.ReportAllocs()
	for b.Loop() {
		buf := GetBody()
		out, err := AppendHandleIn(*buf, s, nil, m)
		if err != nil {
			b.Fatal(err)
		}
		*buf = out[:0]
		PutBody(buf)
	}
}

// handleInBodyJSON is the handle_in body as encoding/json would build it.
type handleInBodyJSON struct {
	Socket  socketWant      `json:"socket"`
	Topic   string          `json:"topic"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Binary  *string         `json:"binary,omitempty"`
	Ref     json.RawMessage `json:"ref"`
	JoinRef json.RawMessage `json:"join_ref"`
}

// FuzzHandleInBody checks the hand encoder of handle_in bodies against
// encoding/json for any strings in the socket and message.
func FuzzHandleInBody(f *testing.F) {
	f.Add("user:1", "websocket", "2.0.0", "127.0.0.1", "room:lobby", "new_msg", `{"a":1}`, false)
	f.Add("", "longpoll", "1.0.0", "::1", "t\"\n", "é\xff\u2028", ``, true)
	f.Fuzz(func(t *testing.T, id, transport, vsn, ip, topic, event, payload string, binary bool) {
		s := &Socket{ID: id, Transport: transport, Vsn: vsn, RemoteIP: ip}
		m := &Message{Topic: topic, Event: event, Ref: []byte(`"3"`)}
		if binary {
			m.Binary, m.IsBinary = []byte(payload), true
		} else if json.Valid([]byte(payload)) {
			m.Payload = json.RawMessage(payload) // the serializers hand over valid JSON only
		}
		got, err := AppendHandleIn(nil, s, nil, m)
		if err != nil {
			t.Fatal(err)
		}
		want := handleInBodyJSON{Socket: socketWantOf(s, nil), Topic: topic, Event: event,
			Payload: orNull(m.Payload), Ref: m.Ref, JoinRef: orNull(nil)}
		if binary {
			want.Payload = json.RawMessage("null")
			b64 := base64.StdEncoding.EncodeToString(m.Binary)
			want.Binary = &b64
		}
		sameJSON(t, got, want)
	})
}

// BenchmarkHandleInBodyEncodingJSON is BenchmarkHandleInBody with
// encoding/json: what the hand encoder saves.
func BenchmarkHandleInBodyEncodingJSON(b *testing.B) {
	id := "user_socket:42"
	body := handleInBodyJSON{Socket: socketWant{ID: &id, Transport: "websocket", Vsn: "2.0.0", RemoteIP: "127.0.0.1", Assigns: map[string]any{}},
		Topic: "room:lobby", Event: "new_msg", Payload: json.RawMessage(`{"body":"hello"}`),
		Ref: json.RawMessage(`"3"`), JoinRef: json.RawMessage(`"1"`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&body); err != nil {
			b.Fatal(err)
		}
	}
}
