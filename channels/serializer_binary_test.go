package channels

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// frameBytes parses a frame written as in the protocol spec: space-separated
// hex bytes and "quoted" strings, e.g. `00 03 "123" 01`.
func frameBytes(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated string in %q", s)
			}
			out = append(out, s[1:1+end]...)
			s = s[end+2:]
			continue
		}
		tok, rest, _ := strings.Cut(s, " ")
		b, err := hex.DecodeString(tok)
		if err != nil || len(b) != 1 {
			t.Fatalf("bad hex byte %q", tok)
		}
		out = append(out, b[0])
		s = rest
	}
	return out
}

func TestV2BinaryEncode(t *testing.T) {
	efg := []byte("efg")
	tests := []struct {
		name   string
		encode func() (*Frame, error)
		want   string
	}{
		{ // §8.1 item 6
			name: "push",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("12"), nil, "topic", "event", BinaryPayload(efg))
			},
			want: "00 02 05 05 31 32 74 6f 70 69 63 65 76 65 6e 74 65 66 67",
		},
		{ // §8.1 item 6: the server layout has no ref, even when one is given
			name: "push ignores ref",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("12"), StringRef("99"), "topic", "event", BinaryPayload(efg))
			},
			want: "00 02 05 05 31 32 74 6f 70 69 63 65 76 65 6e 74 65 66 67",
		},
		{ // §3.4: null join_ref is the empty string
			name: "push null join_ref",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(nil, nil, "t", "e", BinaryPayload([]byte{1}))
			},
			want: "00 00 01 01 74 65 01",
		},
		{
			name: "push numeric join_ref",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(Ref("12"), nil, "t", "e", BinaryPayload(nil))
			},
			want: "00 02 01 01 31 32 74 65",
		},
		{ // §8.1 item 7
			name: "reply",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(StringRef("12"), StringRef("123"), "topic", "ok", BinaryPayload(efg))
			},
			want: "01 02 03 05 02 31 32 31 32 33 74 6f 70 69 63 6f 6b 65 66 67",
		},
		{ // §8.1 item 8
			name: "broadcast",
			encode: func() (*Frame, error) {
				return V2.EncodeBroadcast("topic", "event", BinaryPayload(efg))
			},
			want: "02 05 05 74 6f 70 69 63 65 76 65 6e 74 65 66 67",
		},
		{ // §8.1 item 12: frames phoenix.js decodes
			name: "phoenix.js push",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("123"), nil, "top", "some-event", BinaryPayload([]byte{1, 1}))
			},
			want: `00 03 03 0a "123" "top" "some-event" 01 01`,
		},
		{
			name: "phoenix.js reply",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(StringRef("100"), StringRef("12"), "top", "ok", BinaryPayload([]byte{1, 1}))
			},
			want: `01 03 02 03 02 "100" "12" "top" "ok" 01 01`,
		},
		{
			name: "phoenix.js broadcast",
			encode: func() (*Frame, error) {
				return V2.EncodeBroadcast("top", "some-event", BinaryPayload([]byte{1, 1}))
			},
			want: `02 03 0a "top" "some-event" 01 01`,
		},
		{ // §8.3 item 39
			name: "item 39 push",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("11"), nil, "room:bin", "binary_event", BinaryPayload([]byte{0, 1}))
			},
			want: "00 02 08 0c 31 31 72 6f 6f 6d 3a 62 69 6e 62 69 6e 61 72 79 5f 65 76 65 6e 74 00 01",
		},
		{
			name: "item 39 reply",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(StringRef("11"), StringRef("2"), "room:bin", "ok", BinaryPayload([]byte{1, 2, 3, 4}))
			},
			want: "01 02 01 08 02 31 31 32 72 6f 6f 6d 3a 62 69 6e 6f 6b 01 02 03 04",
		},
		{ // §8.1 item 11: lengths are UTF-8 byte counts
			name: "non-ASCII push",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("🚀"), nil, "room:café", "π", BinaryPayload(nil))
			},
			want: `00 04 0a 02 "🚀" "room:café" "π"`,
		},
		{
			name: "non-ASCII reply",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(StringRef("🚀"), StringRef("1"), "room:café", "ök", BinaryPayload(nil))
			},
			want: `01 04 01 0a 03 "🚀" "1" "room:café" "ök"`,
		},
		{
			name: "255-byte fields fit",
			encode: func() (*Frame, error) {
				return V2.EncodeBroadcast(strings.Repeat("t", 255), "e", BinaryPayload([]byte{9}))
			},
			want: "02 ff 01 " + strings.Repeat("74 ", 255) + "65 09",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			want := frameBytes(t, tt.want)
			if !bytes.Equal(f.Payload(), want) {
				t.Fatalf("payload\n got % x\nwant % x", f.Payload(), want)
			}
			if !f.IsBinary() {
				t.Fatal("frame is not binary")
			}
			if f.Wire()[0] != 0x82 {
				t.Fatalf("opcode byte = %#x, want 0x82", f.Wire()[0])
			}
			if cap(f.Wire()) != len(f.Wire()) {
				t.Fatalf("size hint off: cap %d, len %d", cap(f.Wire()), len(f.Wire()))
			}
		})
	}
}

// TestV2BinaryFieldTooLong covers §8.1 item 10: a header field of 256 bytes
// is refused and no frame is produced.
func TestV2BinaryFieldTooLong(t *testing.T) {
	long := strings.Repeat("x", 256)
	longRef := StringRef(long)
	data := BinaryPayload([]byte{1})
	tests := []struct {
		name   string
		encode func() (*Frame, error)
	}{
		{"push topic", func() (*Frame, error) { return V2.EncodeMessage(nil, nil, long, "e", data) }},
		{"push event", func() (*Frame, error) { return V2.EncodeMessage(nil, nil, "t", long, data) }},
		{"push join_ref", func() (*Frame, error) { return V2.EncodeMessage(longRef, nil, "t", "e", data) }},
		{"reply topic", func() (*Frame, error) { return V2.EncodeReply(nil, nil, long, "ok", data) }},
		{"reply join_ref", func() (*Frame, error) { return V2.EncodeReply(longRef, nil, "t", "ok", data) }},
		{"reply ref", func() (*Frame, error) { return V2.EncodeReply(nil, longRef, "t", "ok", data) }},
		{"reply status", func() (*Frame, error) { return V2.EncodeReply(nil, nil, "t", long, data) }},
		{"broadcast topic", func() (*Frame, error) { return V2.EncodeBroadcast(long, "e", data) }},
		{"broadcast event", func() (*Frame, error) { return V2.EncodeBroadcast("t", long, data) }},
		{"multi-byte runes", func() (*Frame, error) {
			return V2.EncodeBroadcast(strings.Repeat("é", 128), "e", data) // 256 bytes, 128 runes
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.encode()
			if !errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("err = %v, want ErrFieldTooLong", err)
			}
			if f != nil {
				t.Fatal("a frame was produced")
			}
		})
	}
}

func TestV2BinaryDecode(t *testing.T) {
	tests := []struct {
		name                     string
		in                       string
		joinRef, ref, topic, evt string
		payload                  []byte
		nullJoinRef, nullRef     bool
	}{
		{ // §8.1 item 9
			name:    "pushed message",
			in:      "00 02 03 05 05 31 32 31 32 33 74 6f 70 69 63 65 76 65 6e 74 65 66 67",
			joinRef: `"12"`, ref: `"123"`, topic: "topic", evt: "event", payload: []byte("efg"),
		},
		{ // phoenix.js "encodes"
			name:    "phoenix.js push",
			in:      "00 01 01 01 01 30 31 74 65 01",
			joinRef: `"0"`, ref: `"1"`, topic: "t", evt: "e", payload: []byte{1},
		},
		{ // §8.1 item 11
			name:    "non-ASCII",
			in:      `00 04 01 0a 02 "🚀" "1" "room:café" "π" 07`,
			joinRef: `"🚀"`, ref: `"1"`, topic: "room:café", evt: "π", payload: []byte{7},
		},
		{ // §8.3 item 39
			name:    "item 39",
			in:      "00 02 01 08 0c 31 31 32 72 6f 6f 6d 3a 62 69 6e 62 69 6e 61 72 79 5f 65 76 65 6e 74 01 02",
			joinRef: `"11"`, ref: `"2"`, topic: "room:bin", evt: "binary_event", payload: []byte{1, 2},
		},
		{
			name:        "empty refs are null, empty payload",
			in:          `00 00 00 01 01 "t" "e"`,
			nullJoinRef: true, nullRef: true, topic: "t", evt: "e", payload: []byte{},
		},
		{
			name:        "ref with quote is escaped",
			in:          `00 00 03 00 00 61 22 62`,
			nullJoinRef: true, ref: `"a\"b"`, payload: []byte{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := frameBytes(t, tt.in)
			m, err := V2.Decode(in, true)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkRef(t, "join_ref", m.JoinRef, tt.joinRef, tt.nullJoinRef)
			checkRef(t, "ref", m.Ref, tt.ref, tt.nullRef)
			if m.Topic != tt.topic || m.Event != tt.evt {
				t.Fatalf("topic, event = %q, %q; want %q, %q", m.Topic, m.Event, tt.topic, tt.evt)
			}
			if !m.Payload.Binary || !bytes.Equal(m.Payload.Data, tt.payload) || m.Payload.Data == nil {
				t.Fatalf("payload = %+v, want binary % x", m.Payload, tt.payload)
			}
			// The payload is a copy: changing the frame leaves it intact.
			for i := range in {
				in[i] ^= 0xff
			}
			if !bytes.Equal(m.Payload.Data, tt.payload) {
				t.Fatal("payload aliases the frame")
			}
		})
	}
}

// checkRef asserts a decoded ref: null, or exactly the JSON text want.
func checkRef(t *testing.T, name string, got Ref, want string, null bool) {
	t.Helper()
	if null {
		if got != nil {
			t.Fatalf("%s = %s, want nil (null)", name, got)
		}
		return
	}
	if string(got) != want {
		t.Fatalf("%s = %s, want %s", name, got, want)
	}
}

func TestV2BinaryDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"empty", "", "empty binary frame"},
		{"kind 1", "01 02 03 05 02 31 32 31 32 33 74 6f 70 69 63 6f 6b 65 66 67", "kind 1"},
		{"kind 2", "02 05 05 74 6f 70 69 63 65 76 65 6e 74 65 66 67", "kind 2"},
		{"unknown kind", "03 00 00 00 00", "unknown binary frame kind 3"},
		{"kind only", "00", "header needs 5 bytes, got 1"},
		{"truncated header", "00 00 00 01", "header needs 5 bytes, got 4"},
		{"join_ref past end", "00 05 00 00 00 31 32", "join_ref length 5"},
		{"ref past end", "00 00 02 00 00 31", "ref length 2"},
		{"topic past end", "00 00 00 05 00 74 6f 70", "topic length 5"},
		{"event past end", "00 00 00 01 03 74 65", "event length 3"},
		{"invalid UTF-8 topic", "00 00 00 01 01 ff 65", "topic is not valid UTF-8"},
		{"invalid UTF-8 event", "00 00 00 01 02 74 c3 28", "event is not valid UTF-8"},
		{"invalid UTF-8 join_ref", "00 01 00 01 01 80 74 65", "join_ref is not valid UTF-8"},
		{"invalid UTF-8 ref", "00 00 01 01 01 fe 74 65", "ref is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := V2.Decode(frameBytes(t, tt.in), true)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

// TestV2BinaryRoundTrip decodes client pushes and re-encodes them as server
// pushes and replies, checking every field survives.
func TestV2BinaryRoundTrip(t *testing.T) {
	for _, in := range []string{
		"00 02 03 05 05 31 32 31 32 33 74 6f 70 69 63 65 76 65 6e 74 65 66 67",
		`00 04 01 0a 02 "🚀" "1" "room:café" "π" 07`,
		`00 00 00 00 00`,
		`00 00 03 00 00 61 22 62`,
	} {
		data := frameBytes(t, in)
		m, err := V2.Decode(data, true)
		if err != nil {
			t.Fatalf("decode % x: %v", data, err)
		}
		checkBinaryRoundTrip(t, data, m)
	}
}

// checkBinaryRoundTrip asserts that a client push decoded from data
// re-encodes into the same fields: the client frame rebuilt from m equals
// data, and the server push, reply and broadcast carry the same values.
func checkBinaryRoundTrip(t testing.TB, data []byte, m Message) {
	t.Helper()
	jr, r := m.JoinRef.Text(), m.Ref.Text()
	rebuilt := []byte{0, byte(len(jr)), byte(len(r)), byte(len(m.Topic)), byte(len(m.Event))}
	rebuilt = append(rebuilt, jr+r+m.Topic+m.Event...)
	rebuilt = append(rebuilt, m.Payload.Data...)
	if !bytes.Equal(rebuilt, data) {
		t.Fatalf("decoded fields do not rebuild the frame\n got % x\nwant % x", rebuilt, data)
	}

	push, err := V2.EncodeMessage(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
	if err != nil {
		t.Fatalf("encode push: %v", err)
	}
	want := []byte{0, byte(len(jr)), byte(len(m.Topic)), byte(len(m.Event))}
	want = append(want, jr+m.Topic+m.Event...)
	want = append(want, m.Payload.Data...)
	if !bytes.Equal(push.Payload(), want) {
		t.Fatalf("push\n got % x\nwant % x", push.Payload(), want)
	}

	reply, err := V2.EncodeReply(m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload)
	if err != nil {
		t.Fatalf("encode reply: %v", err)
	}
	want = []byte{1, byte(len(jr)), byte(len(r)), byte(len(m.Topic)), byte(len(m.Event))}
	want = append(want, jr+r+m.Topic+m.Event...)
	want = append(want, m.Payload.Data...)
	if !bytes.Equal(reply.Payload(), want) {
		t.Fatalf("reply\n got % x\nwant % x", reply.Payload(), want)
	}

	bc, err := V2.EncodeBroadcast(m.Topic, m.Event, m.Payload)
	if err != nil {
		t.Fatalf("encode broadcast: %v", err)
	}
	want = []byte{2, byte(len(m.Topic)), byte(len(m.Event))}
	want = append(want, m.Topic+m.Event...)
	want = append(want, m.Payload.Data...)
	if !bytes.Equal(bc.Payload(), want) {
		t.Fatalf("broadcast\n got % x\nwant % x", bc.Payload(), want)
	}
}

// TestV1RejectsBinary checks V1 refuses binary frames and payloads.
func TestV1RejectsBinary(t *testing.T) {
	if _, err := V1.Decode(frameBytes(t, "00 00 00 01 01 74 65"), true); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("decode binary frame: err = %v, want ErrInvalidMessage", err)
	}
	bin := BinaryPayload([]byte{1})
	for name, encode := range map[string]func() (*Frame, error){
		"message":   func() (*Frame, error) { return V1.EncodeMessage(nil, nil, "t", "e", bin) },
		"reply":     func() (*Frame, error) { return V1.EncodeReply(nil, StringRef("1"), "t", "ok", bin) },
		"broadcast": func() (*Frame, error) { return V1.EncodeBroadcast("t", "e", bin) },
	} {
		f, err := encode()
		if !errors.Is(err, ErrBinaryUnsupported) || f != nil {
			t.Errorf("%s: frame %v, err = %v; want ErrBinaryUnsupported", name, f, err)
		}
	}
}
