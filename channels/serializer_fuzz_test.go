package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzV1Decode checks V1 decoding never panics and that a decoded message
// re-encodes (as a message, reply and broadcast) into a frame that decodes
// back to the same fields.
func FuzzV1Decode(f *testing.F) {
	for _, s := range []string{
		`{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}`,
		`{"topic":"t","event":"e","payload":{"m":1},"ref":"2","join_ref":"1"}`,
		`{"join_ref":null,"ref":5,"topic":"t","event":"e","payload":"m"}`,
		`[null,null,"t","e",{"m":1}]`,
		`{"topic":"t","event":"e","payload":{}}`,
		`{"topic":"caf\u00e9","event":"\u2028","payload":[1,"x"],"ref":-1e3}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V1.Decode(data, false)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error does not wrap ErrInvalidMessage: %v", err)
			}
			return
		}
		msg, err := V1.EncodeMessage(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
		if err != nil {
			t.Fatalf("encode message: %v", err)
		}
		back := decodeOrFail(t, V1, msg)
		if back.Topic != m.Topic || back.Event != m.Event || !back.Ref.Equal(m.Ref) ||
			!back.JoinRef.IsNull() || !bytes.Equal(back.Payload.JSON, m.Payload.JSON) {
			t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", back, m)
		}
		checkV1Keys(t, msg.Payload())
		checkExactHint(t, msg)

		bc, err := V1.EncodeBroadcast(m.Topic, m.Event, m.Payload)
		if err != nil {
			t.Fatalf("encode broadcast: %v", err)
		}
		back = decodeOrFail(t, V1, bc)
		if back.Topic != m.Topic || !back.Ref.IsNull() || !bytes.Equal(back.Payload.JSON, m.Payload.JSON) {
			t.Fatalf("broadcast round trip: got %+v", back)
		}

		reply, err := V1.EncodeReply(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
		if err != nil {
			t.Fatalf("encode reply: %v", err)
		}
		back = decodeOrFail(t, V1, reply)
		if back.Event != EventReply || !back.Ref.Equal(m.Ref) || !json.Valid(back.Payload.JSON) {
			t.Fatalf("reply round trip: got %+v", back)
		}
		checkExactHint(t, reply)
	})
}

// FuzzV2DecodeText checks V2 text decoding never panics and that a decoded
// message re-encodes into frames that decode back to the same fields.
func FuzzV2DecodeText(f *testing.F) {
	for _, s := range []string{
		`[null,null,"t","e",{"m":1}]`,
		`["0","1","t","e",{"foo":1}]`,
		`[null,"1","phoenix","heartbeat",{}]`,
		`["1","2","t","e",{},"x"]`,
		`[11,-2.0e1,"t","e",[1,2]]`,
		`[null,null,"t","e"]`,
		`{"topic":"t"}`,
		`["\u0031",null,"room:caf\u00e9","a\"b",null]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V2.Decode(data, false)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error does not wrap ErrInvalidMessage: %v", err)
			}
			return
		}
		if m.Payload.Binary {
			t.Fatal("text frame decoded to a binary payload")
		}
		msg, err := V2.EncodeMessage(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
		if err != nil {
			if !errors.Is(err, ErrPayloadNotObject) || m.Payload.IsObject() {
				t.Fatalf("encode message: %v", err)
			}
		} else {
			back := decodeOrFail(t, V2, msg)
			if back.Topic != m.Topic || back.Event != m.Event || !back.Ref.Equal(m.Ref) ||
				!back.JoinRef.Equal(m.JoinRef) || !bytes.Equal(back.Payload.JSON, m.Payload.JSON) {
				t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", back, m)
			}
			checkExactHint(t, msg)
		}

		if bc, err := V2.EncodeBroadcast(m.Topic, m.Event, m.Payload); err == nil {
			back := decodeOrFail(t, V2, bc)
			if back.Topic != m.Topic || back.Event != m.Event || !back.Ref.IsNull() || !back.JoinRef.IsNull() {
				t.Fatalf("broadcast round trip: got %+v", back)
			}
		} else if !errors.Is(err, ErrPayloadNotObject) {
			t.Fatalf("encode broadcast: %v", err)
		}

		reply, err := V2.EncodeReply(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
		if err != nil {
			t.Fatalf("encode reply: %v", err)
		}
		back := decodeOrFail(t, V2, reply)
		if back.Event != EventReply || !back.Ref.Equal(m.Ref) || !back.JoinRef.Equal(m.JoinRef) ||
			!json.Valid(back.Payload.JSON) {
			t.Fatalf("reply round trip: got %+v", back)
		}
		checkExactHint(t, reply)
	})
}

// FuzzV2DecodeBinary checks binary decoding never panics and that a decoded
// client push round-trips its fields through the server encoders.
func FuzzV2DecodeBinary(f *testing.F) {
	for _, b := range [][]byte{
		{0x00, 0x02, 0x03, 0x05, 0x05, '1', '2', '1', '2', '3', 't', 'o', 'p', 'i', 'c', 'e', 'v', 'e', 'n', 't', 'e', 'f', 'g'},
		{0x00, 0x01, 0x01, 0x01, 0x01, '0', '1', 't', 'e', 0x01},
		{0x00, 0x00, 0x00, 0x00, 0x00},
		{0x00, 0x00, 0x00, 0x01, 0x01, 0xff, 'e'},
		{0x01, 0x02, 0x03, 0x05, 0x02},
		{0x02, 0x05, 0x05},
		{0x00, 0x05, 0x00, 0x00},
		append([]byte{0x00, 0x04, 0x01, 0x0a, 0x02}, "🚀1room:caféπ\x07"...),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := V2.Decode(data, true)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error does not wrap ErrInvalidMessage: %v", err)
			}
			return
		}
		if !m.Payload.Binary {
			t.Fatal("binary frame decoded to a JSON payload")
		}
		checkBinaryRoundTrip(t, data, m)

		// Replies with a JSON response carry the binary refs as JSON strings.
		reply, err := V2.EncodeReply(m.JoinRef, m.Ref, m.Topic, "ok", Payload{})
		if err != nil {
			t.Fatalf("encode JSON reply: %v", err)
		}
		back := decodeOrFail(t, V2, reply)
		if back.JoinRef.Text() != m.JoinRef.Text() || back.Ref.Text() != m.Ref.Text() || back.Topic != m.Topic {
			t.Fatalf("JSON reply round trip: got %+v, want %+v", back, m)
		}
		checkExactHint(t, reply)
	})
}

// decodeOrFail decodes an encoded text frame with s.
func decodeOrFail(t testing.TB, s Serializer, f *Frame) Message {
	t.Helper()
	m, err := s.Decode(f.Payload(), f.IsBinary())
	if err != nil {
		t.Fatalf("re-decoding %q: %v", f.Payload(), err)
	}
	return m
}

// checkExactHint asserts the encoder sized its buffer exactly.
func checkExactHint(t testing.TB, f *Frame) {
	t.Helper()
	if cap(f.Wire()) != len(f.Wire()) {
		t.Fatalf("size hint off: cap %d, len %d for %q", cap(f.Wire()), len(f.Wire()), f.Payload())
	}
}
