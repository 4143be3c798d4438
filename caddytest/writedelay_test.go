package integration

import (
	"fmt"
	"testing"
)

// With write_delay, frames still arrive complete and in order: a burst of
// broadcasts and replies, coalesced into fewer writes, reaches the sender
// and another subscriber frame by frame.
func TestWriteDelayFramesInOrder(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		write_delay 20ms
		channel room:* {
			join allow
			handle_in new_msg broadcast
		}
	}`))
	a := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	b := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:delay")
	b.join("5", "5", "room:delay")
	const n = 200
	for i := range n {
		a.send(fmt.Sprintf(`["1","%d","room:delay","new_msg",{"n":%d,"pad":"%0100d"}]`, i+2, i, i))
	}
	for i := range n {
		msg := fmt.Sprintf(`[null,null,"room:delay","new_msg",{"n":%d,"pad":"%0100d"}]`, i, i)
		a.expect(msg)
		a.expect(fmt.Sprintf(`["1","%d","room:delay","phx_reply",{"status":"ok","response":{}}]`, i+2))
		b.expect(msg)
	}
}
