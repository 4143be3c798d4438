package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// protocol is the wire protocol the tool speaks to the server under test.
type protocol int

const (
	// phoenixV2 is the Phoenix Channels V2 JSON array protocol.
	phoenixV2 protocol = iota
	// centrifugoJSON is Centrifugo's bidirectional JSON protocol over
	// WebSocket: commands and replies are objects with an "id", several of
	// them may share one frame separated by newlines, pushes carry no id.
	centrifugoJSON
)

// parseProtocol maps the -proto flag to a protocol.
func parseProtocol(s string) (protocol, error) {
	switch s {
	case "phoenix":
		return phoenixV2, nil
	case "centrifugo":
		return centrifugoJSON, nil
	}
	return 0, fmt.Errorf("-proto %q: want phoenix or centrifugo", s)
}

// String returns the -proto name.
func (p protocol) String() string {
	if p == centrifugoJSON {
		return "centrifugo"
	}
	return "phoenix"
}

// centrifugoPong is the client's answer to a server ping (an empty object).
var centrifugoPong = []byte(`{}`)

// isCentrifugoPing reports whether msg is a server ping: an empty object.
func isCentrifugoPing(msg []byte) bool {
	msg = bytes.TrimSpace(msg)
	return len(msg) == 2 && msg[0] == '{' && msg[1] == '}'
}

// splitLine returns the bytes before the first newline and those after it.
func splitLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// connect sends Centrifugo's connect command (anonymous, no token) and
// waits for its reply. It must run before the socket's read loop starts.
func (c *client) connect() error {
	id := strconv.FormatUint(c.nextRef(), 10)
	f := fmt.Appendf(nil, `{"id":%s,"connect":{"name":"channels-bench"}}`, id)
	if err := c.request(f, id); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

// centrifugoCommand sends {"id":N,"<method>":{"channel":topic}} and waits for
// its reply without error.
func (c *client) centrifugoCommand(method, topic string) error {
	id := strconv.FormatUint(c.nextRef(), 10)
	f := fmt.Appendf(nil, `{"id":%s,%s:{"channel":%s}}`, id, jsonString(method), jsonString(topic))
	if err := c.request(f, id); err != nil {
		return fmt.Errorf("%s %s: %w", method, topic, err)
	}
	return nil
}

// centrifugoReply is the part of a Centrifugo reply the tool looks at.
type centrifugoReply struct {
	ID    uint64 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// centrifugoReplyStatus decodes one Centrifugo message and reports whether
// it is the reply with id (match) and whether it carries no error (ok).
func centrifugoReplyStatus(msg []byte, id string) (ok, match bool, err error) {
	var r centrifugoReply
	if err := json.Unmarshal(msg, &r); err != nil {
		return false, false, fmt.Errorf("message %.100q: %w", msg, err)
	}
	if r.ID == 0 || strconv.FormatUint(r.ID, 10) != id {
		return false, false, nil
	}
	return r.Error == nil, true, nil
}

// isCentrifugoOKReply reports whether msg is a reply (it has an id) without
// an error; pushes and malformed messages are not.
func isCentrifugoOKReply(msg []byte) bool {
	var r centrifugoReply
	return json.Unmarshal(msg, &r) == nil && r.ID != 0 && r.Error == nil
}

// appendRPC appends the Centrifugo command
// {"id":N,"rpc":{"method":…,"data":{payload}}}; methodJSON is the
// JSON-encoded method name.
func appendRPC(dst []byte, id uint64, methodJSON []byte, t, s int64, size int) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"rpc":{"method":`...)
	dst = append(dst, methodJSON...)
	dst = append(dst, `,"data":`...)
	dst = appendPayload(dst, t, s, size)
	return append(dst, `}}`...)
}

// appendClientPublish appends the Centrifugo command
// {"id":N,"publish":{"channel":…,"data":{payload}}}.
func appendClientPublish(dst []byte, id uint64, channelJSON []byte, t, s int64, size int) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"publish":`...)
	dst = appendPublishParams(dst, channelJSON, t, s, size)
	return append(dst, '}')
}

// appendPublishParams appends {"channel":…,"data":{payload}}, the body of
// Centrifugo's server API publish and of its client publish command.
func appendPublishParams(dst []byte, channelJSON []byte, t, s int64, size int) []byte {
	dst = append(dst, `{"channel":`...)
	dst = append(dst, channelJSON...)
	dst = append(dst, `,"data":`...)
	dst = appendPayload(dst, t, s, size)
	return append(dst, '}')
}

// centrifugoAPIBody builds the server API request for n messages from seq
// (all with s=-1 when seq is negative): the publish params for one message,
// {"commands":[{"publish":…},…]} for the batch endpoint otherwise.
func centrifugoAPIBody(dst []byte, channelJSON []byte, seq int64, n, size int) []byte {
	t := time.Now().UnixNano()
	if n == 1 {
		return appendPublishParams(dst, channelJSON, t, seq, size)
	}
	dst = append(dst, `{"commands":[`...)
	for k := 0; k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		s := seq
		if seq >= 0 {
			s = seq + int64(k)
		}
		dst = append(dst, `{"publish":`...)
		dst = appendPublishParams(dst, channelJSON, t, s, size)
		dst = append(dst, '}')
	}
	return append(dst, `]}`...)
}
