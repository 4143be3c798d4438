package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Payload kinds (-payload): pad fills "p" with x (compresses to almost
// nothing), chat and diff put realistic JSON in "p", to measure
// permessage-deflate on what applications send.
const (
	payloadPad  = "pad"
	payloadChat = "chat"
	payloadDiff = "diff"
)

// realisticBodies holds the "p" values of -payload chat or diff (nil for
// pad), one picked per message by its sequence number. Set once by
// setPayloadKind before any message is built.
var realisticBodies [][]byte

// realisticVariants is how many different bodies a run cycles through.
const realisticVariants = 64

// setPayloadKind prepares the bodies of kind for messages of about size
// bytes.
func setPayloadKind(kind string, size int) {
	realisticBodies = nil
	if kind != payloadChat && kind != payloadDiff {
		return
	}
	r := rand.New(rand.NewPCG(7, uint64(size)))
	// The body is what remains of size after {"t":…,"s":…,"p":}.
	n := max(size-len(`{"t":1700000000000000000,"s":100000,"p":}`), 2)
	for range realisticVariants {
		if kind == payloadChat {
			realisticBodies = append(realisticBodies, chatBody(r, n))
		} else {
			realisticBodies = append(realisticBodies, diffBody(r, n))
		}
	}
}

// appendRealistic appends {"t":<t>,"s":<s>,"p":<body>} with body s's
// variant of realisticBodies.
func appendRealistic(dst []byte, t, s int64) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"s":`...)
	dst = strconv.AppendInt(dst, s, 10)
	dst = append(dst, `,"p":`...)
	i := s % int64(len(realisticBodies))
	if i < 0 {
		i += int64(len(realisticBodies))
	}
	dst = append(dst, realisticBodies[i]...)
	return append(dst, '}')
}

var (
	benchWords = []string{"the", "deploy", "finished", "review", "please", "merge", "channel", "socket", "latency", "looks",
		"good", "tomorrow", "meeting", "moved", "customer", "reported", "issue", "fixed", "branch", "release", "notes",
		"update", "dashboard", "green", "thanks", "ok", "will", "check", "after", "lunch", "server", "restart", "config",
		"broken", "again", "ticket", "priority", "high", "low"}
	benchNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
)

func sentence(r *rand.Rand, n int) string {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(benchWords[r.IntN(len(benchWords))])
	}
	return b.String()
}

// chatBody is about n bytes of chat messages: {"messages":[{id, room,
// user{id,name,avatar}, text, sent_at, reactions}, …]}.
func chatBody(r *rand.Rand, n int) []byte {
	b := []byte(`{"messages":[`)
	for i := 0; len(b) < n-2; i++ {
		name := benchNames[r.IntN(len(benchNames))]
		id, room, user, m, sec, ms, count := r.Uint32(), r.IntN(100), r.IntN(100000), r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(9)
		// The last message's text is shortened to end near n bytes; a
		// message that does not fit even so is left out.
		var msg []byte
		for words := 10 + r.IntN(20); words > 0 && (msg == nil || len(b)+len(msg)+3 > n); words-- {
			msg = fmt.Appendf(nil, `{"id":"msg_%08x","room":"room:%d","user":{"id":%d,"name":%q,"avatar":"https://cdn.example.com/avatars/%s.png"},"text":%q,"sent_at":"2026-12-07T10:%02d:%02d.%03dZ","reactions":[{"emoji":"thumbsup","count":%d}]}`,
				id, room, user, name, name, sentence(r, words), m, sec, ms, count)
		}
		if i > 0 && len(b)+len(msg)+3 > n {
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, msg...)
	}
	return append(b, "]}"...)
}

// diffBody is about n bytes of a JSON-patch-like state diff:
// {"version":…,"ops":[{"op","path","value"}, …]}.
func diffBody(r *rand.Rand, n int) []byte {
	b := []byte(`{"version":` + strconv.Itoa(r.IntN(1e6)) + `,"ops":[`)
	for i := 0; len(b) < n-2; i++ {
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
				r.IntN(5000), r.IntN(1e6), sentence(r, 3), 1+r.IntN(5), r.IntN(200), r.IntN(100))
		}
	}
	return append(b, "]}"...)
}
