package channels

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/klauspost/compress/flate"
)

// benchWords and benchNames make realistic JSON text: repeated keys, a
// small vocabulary, numbers and ids, as chat messages and state diffs have.
var (
	benchWords = []string{"the", "deploy", "finished", "review", "please", "merge", "channel", "socket", "latency", "looks",
		"good", "tomorrow", "meeting", "moved", "customer", "reported", "issue", "fixed", "branch", "release", "notes",
		"update", "dashboard", "green", "thanks", "ok", "will", "check", "after", "lunch", "server", "restart", "config",
		"broken", "again", "ticket", "priority", "high", "low"}
	benchNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
)

func benchSentence(r *rand.Rand, n int) string {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(benchWords[r.IntN(len(benchWords))])
	}
	return b.String()
}

// chatMessages is about size bytes of chat messages as JSON: a 1 KB
// payload is a chat message with its metadata, a few of them in a list.
func chatMessages(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := []byte(`{"messages":[`)
	for i := 0; len(b) < size; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		n := benchNames[r.IntN(len(benchNames))]
		b = fmt.Appendf(b, `{"id":"msg_%08x","room":"room:%d","user":{"id":%d,"name":%q,"avatar":"https://cdn.example.com/avatars/%s.png"},"text":%q,"sent_at":"2026-12-07T10:%02d:%02d.%03dZ","reactions":[{"emoji":"thumbsup","count":%d}]}`,
			r.Uint32(), r.IntN(100), r.IntN(100000), n, n, benchSentence(r, 10+r.IntN(20)), r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(9))
	}
	return append(b, "]}"...)
}

// stateDiff is about size bytes of a JSON-patch-like state diff.
func stateDiff(size int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	b := []byte(`{"version":` + strconv.Itoa(r.IntN(1e6)) + `,"ops":[`)
	for i := 0; len(b) < size; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		switch r.IntN(3) {
		case 0:
			b = fmt.Appendf(b, `{"op":"replace","path":"/orders/%d/status","value":%q}`, r.IntN(5000), benchWords[r.IntN(len(benchWords))])
		case 1:
			b = fmt.Appendf(b, `{"op":"replace","path":"/orders/%d/total","value":%d.%02d}`, r.IntN(5000), r.IntN(1000), r.IntN(100))
		default:
			b = fmt.Appendf(b, `{"op":"add","path":"/orders/%d/items/-","value":{"sku":"SKU-%06d","name":%q,"qty":%d,"price":%d.%02d}}`,
				r.IntN(5000), r.IntN(1e6), benchSentence(r, 3), 1+r.IntN(5), r.IntN(200), r.IntN(100))
		}
	}
	return append(b, "]}"...)
}

// benchPayloads are the payloads of the compression benchmarks.
var benchPayloads = []struct {
	name string
	p    []byte
}{{"chat1k", chatMessages(1 << 10)}, {"diff1k", stateDiff(1 << 10)}, {"chat10k", chatMessages(10 << 10)}, {"diff10k", stateDiff(10 << 10)}}

// BenchmarkDeflate compares compress/flate and klauspost/compress/flate
// compressing one message without context takeover (Reset, Write, Flush),
// as permessage-deflate does, by payload and level. ratio is compressed /
// plain size.
func BenchmarkDeflate(b *testing.B) {
	type writer interface {
		Write([]byte) (int, error)
		Flush() error
	}
	libs := []struct {
		name string
		open func(w *appendWriter, level int) (writer, func())
	}{
		{"std", func(w *appendWriter, level int) (writer, func()) {
			fw, _ := stdflate.NewWriter(w, level)
			return fw, func() { fw.Reset(w) }
		}},
		{"klauspost", func(w *appendWriter, level int) (writer, func()) {
			fw, _ := flate.NewWriter(w, level)
			return fw, func() { fw.Reset(w) }
		}},
	}
	for _, bp := range benchPayloads {
		for _, level := range benchLevels {
			for _, lib := range libs {
				b.Run(fmt.Sprintf("%s/level%d/%s", bp.name, level, lib.name), func(b *testing.B) {
					w := &appendWriter{}
					fw, reset := lib.open(w, level)
					b.SetBytes(int64(len(bp.p)))
					for b.Loop() {
						w.b = w.b[:0]
						reset()
						fw.Write(bp.p)
						fw.Flush()
					}
					b.ReportMetric(float64(len(w.b)-4)/float64(len(bp.p)), "ratio")
				})
			}
		}
	}
}

// BenchmarkDeflateBroadcast is the per-broadcast cost compression adds
// to fan-out: encoding one V2 broadcast frame (what every broadcast
// costs) and then its deflated form (once per broadcast and serializer,
// whatever the number of subscribers), at the default level.
func BenchmarkDeflateBroadcast(b *testing.B) {
	for _, bp := range benchPayloads {
		for _, deflate := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/deflate=%v", bp.name, deflate), func(b *testing.B) {
				var st deflateCounters
				p := JSONPayload(bp.p)
				var f *Frame
				for b.Loop() {
					f, _ = V2.EncodeBroadcast("room:lobby", "new_msg", p)
					if deflate {
						f = f.deflated(DefaultCompressionLevel, &st)
					}
				}
				b.ReportMetric(float64(f.Size()), "wire-bytes")
			})
		}
	}
}

// benchLevels are the levels BenchmarkDeflate compares.
var benchLevels = []int{1, 2, 3, 5, 9}
