package channels

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

func TestSerializerIdentity(t *testing.T) {
	if V1.Version() != "1.0.0" || V1.Index() != 0 {
		t.Errorf("V1 = %q/%d, want 1.0.0/0", V1.Version(), V1.Index())
	}
	if V2.Version() != "2.0.0" || V2.Index() != 1 {
		t.Errorf("V2 = %q/%d, want 2.0.0/1", V2.Version(), V2.Index())
	}
	if V1.Index() >= numSerializers || V2.Index() >= numSerializers {
		t.Errorf("indexes must be below numSerializers (%d)", numSerializers)
	}
}

func TestV2EncodeJSON(t *testing.T) {
	m1 := JSONPayload([]byte(`{"m":1}`))
	tests := []struct {
		name   string
		encode func() (*Frame, error)
		want   string
	}{
		{ // §8.1 item 1
			name:   "push",
			encode: func() (*Frame, error) { return V2.EncodeMessage(nil, nil, "t", "e", m1) },
			want:   `[null,null,"t","e",{"m":1}]`,
		},
		{ // §8.1 item 2
			name:   "broadcast",
			encode: func() (*Frame, error) { return V2.EncodeBroadcast("t", "e", m1) },
			want:   `[null,null,"t","e",{"m":1}]`,
		},
		{ // §8.1 item 3
			name:   "reply without refs or status",
			encode: func() (*Frame, error) { return V2.EncodeReply(nil, nil, "t", "", m1) },
			want:   `[null,null,"t","phx_reply",{"response":{"m":1},"status":null}]`,
		},
		{ // §3.3
			name: "push with join_ref",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("11"), nil, "room:lobby", "joined",
					JSONPayload([]byte(`{"status":"connected","user_id":null}`)))
			},
			want: `["11",null,"room:lobby","joined",{"status":"connected","user_id":null}]`,
		},
		{ // §8.3 item 39: join reply
			name: "join reply",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(StringRef("11"), StringRef("1"), "room:bin", "ok", JSONPayload([]byte(`{}`)))
			},
			want: `["11","1","room:bin","phx_reply",{"response":{},"status":"ok"}]`,
		},
		{ // phx_close carries ref = join_ref
			name: "phx_close",
			encode: func() (*Frame, error) {
				return V2.EncodeMessage(StringRef("13"), StringRef("13"), "custom:ok", EventClose, Payload{})
			},
			want: `["13","13","custom:ok","phx_close",{}]`,
		},
		{
			name: "numeric refs echoed as sent",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(Ref("7"), Ref("-1.5e3"), "t", "error", JSONPayload([]byte(`{"reason":"x"}`)))
			},
			want: `[7,-1.5e3,"t","phx_reply",{"response":{"reason":"x"},"status":"error"}]`,
		},
		{
			name: "reply response may be any JSON",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(nil, StringRef("2"), "t", "ok", JSONPayload([]byte(`"str"`)))
			},
			want: `[null,"2","t","phx_reply",{"response":"str","status":"ok"}]`,
		},
		{
			name: "reply null response",
			encode: func() (*Frame, error) {
				return V2.EncodeReply(nil, StringRef("2"), "t", "ok", JSONPayload([]byte(`null`)))
			},
			want: `[null,"2","t","phx_reply",{"response":null,"status":"ok"}]`,
		},
		{
			name:   "empty payload is {}",
			encode: func() (*Frame, error) { return V2.EncodeBroadcast("t", "e", Payload{}) },
			want:   `[null,null,"t","e",{}]`,
		},
		{
			name:   "empty response is {}",
			encode: func() (*Frame, error) { return V2.EncodeReply(nil, StringRef("2"), "t", "ok", Payload{}) },
			want:   `[null,"2","t","phx_reply",{"response":{},"status":"ok"}]`,
		},
		{
			name:   "object with leading whitespace",
			encode: func() (*Frame, error) { return V2.EncodeBroadcast("t", "e", JSONPayload([]byte(" \n{}"))) },
			want:   "[null,null,\"t\",\"e\", \n{}]",
		},
		{
			name: "escaped strings",
			encode: func() (*Frame, error) {
				return V2.EncodeBroadcast("a\"b\\c\n\x01", "\u2028é\xff", JSONPayload([]byte(`{}`)))
			},
			want: `[null,null,"a\"b\\c\n\u0001","\u2028é\ufffd",{}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if got := string(f.Payload()); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if f.IsBinary() || f.Wire()[0] != 0x81 {
				t.Fatalf("not a text frame: first byte %#x", f.Wire()[0])
			}
			if cap(f.Wire()) != len(f.Wire()) {
				t.Fatalf("size hint off: cap %d, len %d", cap(f.Wire()), len(f.Wire()))
			}
			// §8.1 item 17: every server frame parses as a 5-element array.
			var arr []json.RawMessage
			if err := json.Unmarshal(f.Payload(), &arr); err != nil || len(arr) != 5 {
				t.Fatalf("not a 5-element JSON array: %v (%d elements)", err, len(arr))
			}
		})
	}
}

// TestV2RejectsNonObjectPayload covers §8.1 item 5.
func TestV2RejectsNonObjectPayload(t *testing.T) {
	for _, raw := range []string{`"invalid"`, `[1]`, `1`, `null`, `true`, ` "x"`} {
		p := JSONPayload([]byte(raw))
		if f, err := V2.EncodeMessage(StringRef("1"), nil, "t", "e", p); !errors.Is(err, ErrPayloadNotObject) || f != nil {
			t.Errorf("push %s: frame %v, err %v; want ErrPayloadNotObject", raw, f, err)
		}
		if f, err := V2.EncodeBroadcast("t", "e", p); !errors.Is(err, ErrPayloadNotObject) || f != nil {
			t.Errorf("broadcast %s: frame %v, err %v; want ErrPayloadNotObject", raw, f, err)
		}
		if _, err := V2.EncodeReply(nil, StringRef("1"), "t", "ok", p); err != nil {
			t.Errorf("reply %s: %v; replies accept any JSON", raw, err)
		}
	}
}

func TestV2DecodeText(t *testing.T) {
	tests := []struct {
		name                  string
		in                    string
		joinRef, ref          string // raw JSON, "" for null
		topic, event, payload string
	}{
		{ // §8.1 item 4
			name: "nulls", in: `[null,null,"t","e",{"m":1}]`,
			topic: "t", event: "e", payload: `{"m":1}`,
		},
		{ // §8.1 item 17
			name: "phoenix.js push", in: `["0","1","t","e",{"foo":1}]`,
			joinRef: `"0"`, ref: `"1"`, topic: "t", event: "e", payload: `{"foo":1}`,
		},
		{
			name: "heartbeat", in: `[null,"1","phoenix","heartbeat",{}]`,
			ref: `"1"`, topic: "phoenix", event: "heartbeat", payload: `{}`,
		},
		{
			name: "extra elements ignored", in: `["1","2","t","e",{},"x",[3]]`,
			joinRef: `"1"`, ref: `"2"`, topic: "t", event: "e", payload: `{}`,
		},
		{
			name: "numeric refs kept raw", in: `[11,-2.0e1,"t","e",[1,2]]`,
			joinRef: `11`, ref: `-2.0e1`, topic: "t", event: "e", payload: `[1,2]`,
		},
		{
			name: "whitespace", in: " [ \"1\" ,\n2 , \"t\" , \"e\" , \"p\" ] ",
			joinRef: `"1"`, ref: `2`, topic: "t", event: "e", payload: `"p"`,
		},
		{
			name: "escaped strings", in: `["\u0031",null,"room:caf\u00e9","a\"b",null]`,
			joinRef: `"\u0031"`, topic: "room:café", event: `a"b`, payload: `null`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := V2.Decode([]byte(tt.in), false)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkRef(t, "join_ref", m.JoinRef, tt.joinRef, tt.joinRef == "")
			checkRef(t, "ref", m.Ref, tt.ref, tt.ref == "")
			if m.Topic != tt.topic || m.Event != tt.event {
				t.Fatalf("topic, event = %q, %q; want %q, %q", m.Topic, m.Event, tt.topic, tt.event)
			}
			if m.Payload.Binary || string(m.Payload.JSON) != tt.payload {
				t.Fatalf("payload = %+v, want JSON %s", m.Payload, tt.payload)
			}
		})
	}
}

func TestV2DecodeTextErrors(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"four elements", `[null,null,"t","e"]`, "expected 5 array elements, got 4"},
		{"empty array", `[]`, "got 0"},
		{"object", `{"topic":"t"}`, "expected a JSON array, got an object"},
		{"string", `"x"`, "got a string"},
		{"null", `null`, "got null"},
		{"empty frame", ``, "got nothing"},
		{"invalid JSON", `[null,null,"t","e",{]`, "invalid"},
		{"trailing garbage", `[null,null,"t","e",{}]x`, "invalid"},
		{"object join_ref", `[{},null,"t","e",{}]`, "join_ref must be a string, number or null, got an object"},
		{"bool ref", `[null,true,"t","e",{}]`, "ref must be a string, number or null, got a boolean"},
		{"array ref", `[null,[1],"t","e",{}]`, "ref must be"},
		{"numeric topic", `[null,null,1,"e",{}]`, "topic must be a string, got a number"},
		{"null event", `[null,null,"t",null,{}]`, "event must be a string, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := V2.Decode([]byte(tt.in), false)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestV1Encode(t *testing.T) {
	tests := []struct {
		name   string
		encode func() (*Frame, error)
		want   string
	}{
		{ // §8.1 item 13: V1 does not require object payloads
			name:   "message",
			encode: func() (*Frame, error) { return V1.EncodeMessage(nil, nil, "t", "e", JSONPayload([]byte(`"m"`))) },
			want:   `{"event":"e","payload":"m","ref":null,"topic":"t"}`,
		},
		{ // join_ref is never sent
			name: "message drops join_ref",
			encode: func() (*Frame, error) {
				return V1.EncodeMessage(StringRef("11"), StringRef("2"), "t", "e", JSONPayload([]byte(`{"a":1}`)))
			},
			want: `{"event":"e","payload":{"a":1},"ref":"2","topic":"t"}`,
		},
		{
			name:   "broadcast",
			encode: func() (*Frame, error) { return V1.EncodeBroadcast("t", "e", JSONPayload([]byte(`"m"`))) },
			want:   `{"event":"e","payload":"m","ref":null,"topic":"t"}`,
		},
		{ // §8.1 item 14
			name: "reply",
			encode: func() (*Frame, error) {
				return V1.EncodeReply(nil, StringRef("null"), "t", "", JSONPayload([]byte(`null`)))
			},
			want: `{"event":"phx_reply","payload":{"response":null,"status":null},"ref":"null","topic":"t"}`,
		},
		{ // §3.2 typical join reply
			name: "join reply",
			encode: func() (*Frame, error) {
				return V1.EncodeReply(StringRef("1"), StringRef("1"), "room:lobby", "ok", Payload{})
			},
			want: `{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":"1","topic":"room:lobby"}`,
		},
		{ // §3.2 phx_close: the channel's join_ref (null for V1) is the ref
			name:   "phx_close",
			encode: func() (*Frame, error) { return V1.EncodeMessage(nil, nil, "room:lobby", EventClose, Payload{}) },
			want:   `{"event":"phx_close","payload":{},"ref":null,"topic":"room:lobby"}`,
		},
		{
			name: "phx_error",
			encode: func() (*Frame, error) {
				return V1.EncodeMessage(nil, nil, "room:lobby", EventError, JSONPayload([]byte(`{"reason":"channel_crash"}`)))
			},
			want: `{"event":"phx_error","payload":{"reason":"channel_crash"},"ref":null,"topic":"room:lobby"}`,
		},
		{
			name: "escaped strings and numeric ref",
			encode: func() (*Frame, error) {
				return V1.EncodeReply(nil, Ref("12"), "a\"\u2029", "o\tk", JSONPayload([]byte(`[1]`)))
			},
			want: `{"event":"phx_reply","payload":{"response":[1],"status":"o\tk"},"ref":12,"topic":"a\"\u2029"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if got := string(f.Payload()); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if f.IsBinary() || f.Wire()[0] != 0x81 {
				t.Fatalf("not a text frame: first byte %#x", f.Wire()[0])
			}
			if cap(f.Wire()) != len(f.Wire()) {
				t.Fatalf("size hint off: cap %d, len %d", cap(f.Wire()), len(f.Wire()))
			}
			checkV1Keys(t, f.Payload())
		})
	}
}

// checkV1Keys asserts a V1 frame is an object with exactly the keys event,
// payload, ref and topic.
func checkV1Keys(t testing.TB, data []byte) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatalf("V1 frame is not a JSON object: %v", err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "event,payload,ref,topic" {
		t.Fatalf("V1 keys = %s, want event,payload,ref,topic", got)
	}
}

func TestV1Decode(t *testing.T) {
	tests := []struct {
		name                  string
		in                    string
		joinRef, ref          string // raw JSON, "" for null
		topic, event, payload string
	}{
		{
			name: "without join_ref", in: `{"topic":"room:lobby","event":"phx_join","payload":{},"ref":"1"}`,
			ref: `"1"`, topic: "room:lobby", event: "phx_join", payload: `{}`,
		},
		{
			name: "with join_ref", in: `{"topic":"t","event":"e","payload":{"m":1},"ref":"2","join_ref":"1"}`,
			joinRef: `"1"`, ref: `"2"`, topic: "t", event: "e", payload: `{"m":1}`,
		},
		{
			name: "null refs", in: `{"join_ref":null,"ref":null,"topic":"t","event":"e","payload":null}`,
			topic: "t", event: "e", payload: `null`,
		},
		{
			name: "numeric ref, string payload", in: ` {"ref":5,"topic":"t","event":"e","payload":"m","extra":[1]} `,
			ref: `5`, topic: "t", event: "e", payload: `"m"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := V1.Decode([]byte(tt.in), false)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			checkRef(t, "join_ref", m.JoinRef, tt.joinRef, tt.joinRef == "")
			checkRef(t, "ref", m.Ref, tt.ref, tt.ref == "")
			if m.Topic != tt.topic || m.Event != tt.event {
				t.Fatalf("topic, event = %q, %q; want %q, %q", m.Topic, m.Event, tt.topic, tt.event)
			}
			if m.Payload.Binary || string(m.Payload.JSON) != tt.payload {
				t.Fatalf("payload = %+v, want JSON %s", m.Payload, tt.payload)
			}
		})
	}
}

func TestV1DecodeErrors(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		// §8.1 item 15
		{"array", `[null,null,"t","e",{"m":1}]`, "expected a JSON object, got an array"},
		{"null", `null`, "got null"},
		{"number", `1`, "got a number"},
		{"empty", ``, "got nothing"},
		{"invalid JSON", `{"topic":"t",`, "invalid"},
		// §8.1 item 16
		{"missing topic", `{"event":"e","payload":{},"ref":"1"}`, `missing key "topic"`},
		{"missing event", `{"topic":"t","payload":{},"ref":"1"}`, `missing key "event"`},
		{"missing payload", `{"topic":"t","event":"e","ref":"1"}`, `missing key "payload"`},
		{"missing ref", `{"topic":"t","event":"e","payload":{}}`, `missing key "ref"`},
		{"keys are case-sensitive", `{"Topic":"t","event":"e","payload":{},"ref":"1"}`, `missing key "topic"`},
		{"numeric topic", `{"topic":1,"event":"e","payload":{},"ref":"1"}`, "topic must be a string, got a number"},
		{"null event", `{"topic":"t","event":null,"payload":{},"ref":"1"}`, "event must be a string, got null"},
		{"object ref", `{"topic":"t","event":"e","payload":{},"ref":{}}`, "ref must be a string, number or null, got an object"},
		{"bool join_ref", `{"topic":"t","event":"e","payload":{},"ref":"1","join_ref":false}`, "join_ref must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := V1.Decode([]byte(tt.in), false)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestFrameHeader(t *testing.T) {
	tests := []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		for _, bin := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'a'}, tt.n)
			buf := newFrameBuf(tt.n)
			buf = append(buf, payload...)
			f := finishFrame(buf, bin)
			want := append([]byte(nil), tt.header...)
			if bin {
				want[0] = 0x82
			}
			if got := f.Wire()[:len(want)]; !bytes.Equal(got, want) {
				t.Errorf("n=%d binary=%v: header % x, want % x", tt.n, bin, got, want)
			}
			if !bytes.Equal(f.Payload(), payload) {
				t.Errorf("n=%d binary=%v: payload differs", tt.n, bin)
			}
			if f.Size() != len(want)+tt.n || f.IsBinary() != bin {
				t.Errorf("n=%d binary=%v: size %d, IsBinary %v", tt.n, bin, f.Size(), f.IsBinary())
			}
		}
	}
}

// TestFrameHeaderFromEncoder checks the header of a real encoded frame just
// past the 16-bit length boundary.
func TestFrameHeaderFromEncoder(t *testing.T) {
	// [null,null,"t","e",{"x":"…"}] is 28 bytes plus the filler.
	filler := strings.Repeat("a", 65536-28)
	f, err := V2.EncodeBroadcast("t", "e", JSONPayload([]byte(`{"x":"`+filler+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Payload()); n != 65536 {
		t.Fatalf("payload length %d, want 65536", n)
	}
	hdr := f.Wire()[:10]
	if hdr[0] != 0x81 || hdr[1] != 127 || binary.BigEndian.Uint64(hdr[2:]) != 65536 {
		t.Fatalf("header % x", hdr)
	}
}

func TestNegotiateSerializer(t *testing.T) {
	tests := []struct {
		vsn     string
		present bool
		want    Serializer
	}{
		{"", false, V1},
		{"1.0.0", true, V1},
		{"1.0.5", true, V1},
		{"2.0.0", true, V2},
		{"2.0.1-rc.1", true, V2},
		{"123.1.1", true, nil},
		{"2.1.0", true, nil},
		{"1.1.0", true, nil},
		{"abc", true, nil},
		{"", true, nil},
		{"2.0", true, nil},
	}
	for _, tt := range tests {
		got, err := NegotiateSerializer(tt.vsn, tt.present)
		if tt.want == nil {
			if err == nil || got != nil {
				t.Errorf("vsn %q: got %v, %v; want an error", tt.vsn, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("vsn %q (present %v): got %v, %v; want %s", tt.vsn, tt.present, got, err, tt.want.Version())
		}
	}
}

func TestRefEqual(t *testing.T) {
	tests := []struct {
		a, b Ref
		want bool
	}{
		{nil, nil, true},
		{nil, Ref("null"), true},
		{Ref(`"3"`), Ref(`"3"`), true},
		{Ref(`"3"`), Ref(`3`), false},
		{Ref(`3`), Ref(`3`), true},
		{Ref(`"\u0033"`), Ref(`"3"`), true},
		{nil, Ref(`"3"`), false},
		{Ref(`""`), nil, false},
		{Ref(`"3"`), Ref(`"4"`), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%s.Equal(%s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.Equal(tt.a); got != tt.want {
			t.Errorf("%s.Equal(%s) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestStringRefAndText(t *testing.T) {
	tests := []struct {
		s    string
		json string // "" for nil
	}{
		{"", ""},
		{"12", `"12"`},
		{`a"b`, `"a\"b"`},
		{"🚀", `"🚀"`},
		{"null", `"null"`},
	}
	for _, tt := range tests {
		r := StringRef(tt.s)
		if tt.json == "" {
			if r != nil {
				t.Errorf("StringRef(%q) = %s, want nil", tt.s, r)
			}
		} else if string(r) != tt.json {
			t.Errorf("StringRef(%q) = %s, want %s", tt.s, r, tt.json)
		}
		if got := r.Text(); got != tt.s {
			t.Errorf("StringRef(%q).Text() = %q", tt.s, got)
		}
	}
	for _, tt := range []struct {
		r    Ref
		want string
	}{
		{nil, ""},
		{Ref("null"), ""},
		{Ref("12"), "12"},
		{Ref("-1.5"), "-1.5"},
		{Ref(`"\u00e9"`), "é"},
	} {
		if got := tt.r.Text(); got != tt.want {
			t.Errorf("Ref(%s).Text() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestJSONStringLen(t *testing.T) {
	for _, s := range []string{
		"", "room:lobby", `a"b\c`, "\n\r\t\x00\x1f\x7f", "é🚀π", "\u2028\u2029",
		"\xff", "a\xc3", "\xe2\x80", "\xed\xa0\x80", strings.Repeat("x", 300),
	} {
		want := len(jsonwire.AppendString(nil, s))
		if got := jsonStringLen(s); got != want {
			t.Errorf("jsonStringLen(%q) = %d, want %d", s, got, want)
		}
		if !utf8.Valid(jsonwire.AppendString(nil, s)) {
			t.Errorf("jsonwire.AppendString(%q) is not valid UTF-8", s)
		}
	}
}

// TestV2EncodeBroadcastAllocs pins the hot path: one buffer plus the Frame.
func TestV2EncodeBroadcastAllocs(t *testing.T) {
	p := JSONPayload([]byte(`{"body":"hello","user":"u1"}`))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := V2.EncodeBroadcast("room:lobby", "new_msg", p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("EncodeBroadcast allocates %.0f times, want at most 2", allocs)
	}
}

func BenchmarkV2EncodeBroadcast(b *testing.B) {
	p := JSONPayload([]byte(`{"body":"hello there, this is a chat message","user":"user:123","ts":1700000000}`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := V2.EncodeBroadcast("room:lobby", "new_msg", p); err != nil {
			b.Fatal(err)
		}
	}
}
