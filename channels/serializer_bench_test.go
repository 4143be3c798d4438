package channels

import (
	"testing"
)

// Benchmark inputs: a typical chat message, as phoenix.js sends and
// receives it.
var (
	benchPayload   = []byte(`{"body":"hello there, this is a chat message","user":"user:123","ts":1700000000}`)
	benchV1Push    = []byte(`{"topic":"room:lobby","event":"new_msg","payload":{"body":"hello there, this is a chat message","user":"user:123","ts":1700000000},"ref":"12","join_ref":"3"}`)
	benchV2Push    = []byte(`["3","12","room:lobby","new_msg",{"body":"hello there, this is a chat message","user":"user:123","ts":1700000000}]`)
	benchBinPush   = benchBinaryClientPush("3", "12", "room:lobby", "new_msg", benchPayload)
	benchJoinRef   = Ref(`"3"`)
	benchRef       = Ref(`"12"`)
	benchJSONPush  = JSONPayload(benchPayload)
	benchBinaryMsg = BinaryPayload(benchPayload)
)

// benchBinaryClientPush builds a V2 binary client push (kind 0).
func benchBinaryClientPush(joinRef, ref, topic, event string, payload []byte) []byte {
	b := []byte{binaryKindPush, byte(len(joinRef)), byte(len(ref)), byte(len(topic)), byte(len(event))}
	b = append(b, joinRef...)
	b = append(b, ref...)
	b = append(b, topic...)
	b = append(b, event...)
	return append(b, payload...)
}

// BenchmarkSerializerDecode decodes one client push per wire format.
func BenchmarkSerializerDecode(b *testing.B) {
	cases := []struct {
		name   string
		ser    Serializer
		data   []byte
		binary bool
	}{
		{"v1_text", V1, benchV1Push, false},
		{"v2_text", V2, benchV2Push, false},
		{"v2_binary", V2, benchBinPush, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m, err := c.ser.Decode(c.data, c.binary)
			if err != nil || m.Topic != "room:lobby" || m.Event != "new_msg" || m.Ref.Text() != "12" || m.JoinRef.Text() != "3" {
				b.Fatalf("Decode = %+v, %v", m, err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := c.ser.Decode(c.data, c.binary); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSerializerEncode encodes pushes, replies and broadcasts with
// every serializer. The V2 text broadcast is BenchmarkV2EncodeBroadcast.
func BenchmarkSerializerEncode(b *testing.B) {
	cases := []struct {
		name   string
		binary bool
		encode func() (*Frame, error)
	}{
		{"v1_push", false, func() (*Frame, error) {
			return V1.EncodeMessage(benchJoinRef, benchRef, "room:lobby", "new_msg", benchJSONPush)
		}},
		{"v1_reply", false, func() (*Frame, error) {
			return V1.EncodeReply(benchJoinRef, benchRef, "room:lobby", "ok", benchJSONPush)
		}},
		{"v1_broadcast", false, func() (*Frame, error) {
			return V1.EncodeBroadcast("room:lobby", "new_msg", benchJSONPush)
		}},
		{"v2_push", false, func() (*Frame, error) {
			return V2.EncodeMessage(benchJoinRef, benchRef, "room:lobby", "new_msg", benchJSONPush)
		}},
		{"v2_reply", false, func() (*Frame, error) {
			return V2.EncodeReply(benchJoinRef, benchRef, "room:lobby", "ok", benchJSONPush)
		}},
		{"binary_push", true, func() (*Frame, error) {
			return V2.EncodeMessage(benchJoinRef, benchRef, "room:lobby", "new_msg", benchBinaryMsg)
		}},
		{"binary_reply", true, func() (*Frame, error) {
			return V2.EncodeReply(benchJoinRef, benchRef, "room:lobby", "ok", benchBinaryMsg)
		}},
		{"binary_broadcast", true, func() (*Frame, error) {
			return V2.EncodeBroadcast("room:lobby", "new_msg", benchBinaryMsg)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f, err := c.encode()
			if err != nil || f.IsBinary() != c.binary || len(f.Payload()) <= len(benchPayload) {
				b.Fatalf("encode = %v, %v", f, err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(f.Size()))
			for b.Loop() {
				if _, err := c.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
