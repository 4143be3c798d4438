package main

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// padding is the filler of the "p" field, appended in chunks.
var padding = bytes.Repeat([]byte{'x'}, 4096)

// appendPayload appends {"t":<t>,"s":<s>,"p":"xx…"} to dst, padding "p" so
// that the object is size bytes long (or as short as possible when size is
// smaller than the object without padding).
func appendPayload(dst []byte, t, s int64, size int) []byte {
	if realisticBodies != nil {
		return appendRealistic(dst, t, s) // -payload chat or diff
	}
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"s":`...)
	dst = strconv.AppendInt(dst, s, 10)
	dst = append(dst, `,"p":"`...)
	pad := size - (len(dst) - start) - len(`"}`)
	for pad > 0 {
		n := min(pad, len(padding))
		dst = append(dst, padding[:n]...)
		pad -= n
	}
	return append(dst, `"}`...)
}

// appendPush appends the V2 client push [join_ref,ref,topic,event,payload]
// with the payload appendPayload builds. topicJSON and eventJSON are the
// JSON-encoded topic and event strings.
func appendPush(dst []byte, joinRef string, ref uint64, topicJSON, eventJSON []byte, t, s int64, size int) []byte {
	dst = append(dst, `["`...)
	dst = append(dst, joinRef...)
	dst = append(dst, `","`...)
	dst = strconv.AppendUint(dst, ref, 10)
	dst = append(dst, `",`...)
	dst = append(dst, topicJSON...)
	dst = append(dst, ',')
	dst = append(dst, eventJSON...)
	dst = append(dst, ',')
	dst = appendPayload(dst, t, s, size)
	return append(dst, ']')
}

// appendAPIMessage appends one message of the publish API body:
// {"topic":…,"event":…,"payload":{…}}.
func appendAPIMessage(dst []byte, topicJSON, eventJSON []byte, t, s int64, size int) []byte {
	dst = append(dst, `{"topic":`...)
	dst = append(dst, topicJSON...)
	dst = append(dst, `,"event":`...)
	dst = append(dst, eventJSON...)
	dst = append(dst, `,"payload":`...)
	dst = appendPayload(dst, t, s, size)
	return append(dst, '}')
}

// jsonString returns s encoded as a JSON string.
func jsonString(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		// A Go string always marshals; keep a valid fallback anyway.
		return []byte(`""`)
	}
	return b
}
