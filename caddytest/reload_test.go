package integration

import (
	"testing"
)

// A reload with changed rules keeps every open socket and its joins; the
// new rules apply to later joins and pushes.
func TestReloadKeepsSockets(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		channel room:* {
			join allow
			handle_in new_msg broadcast
		}
	}`))
	a := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:reload")

	// New rules: room:* events now answer with reply; a new channel
	// pattern appears.
	loadCaddyfile(t, site(`	channels {
		channel room:* {
			join allow
			handle_in new_msg reply
		}
		channel lobby:* {
			join allow
		}
	}`))

	// The socket survived, is still joined, and follows the new rules.
	a.send(`["1","2","room:reload","new_msg",{"body":"after"}]`)
	a.expect(`["1","2","room:reload","phx_reply",{"status":"ok","response":{"body":"after"}}]`)
	a.send(`["3","3","lobby:new","phx_join",{}]`)
	a.expect(`["3","3","lobby:new","phx_reply",{"status":"ok","response":{}}]`)
	a.send(`[null,"4","phoenix","heartbeat",{}]`)
	a.expect(`[null,"4","phoenix","phx_reply",{"status":"ok","response":{}}]`)
}

// When the handler leaves the config, its sockets are closed with 1001 so
// clients reconnect.
func TestRemovedHandlerClosesSocketsWith1001(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		path /gone
		channel room:* {
			join allow
		}
	}`))
	a := dial(t, "/gone", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:x")
	v1 := dial(t, "/gone", "", nil)
	v1.send(`{"topic":"room:x","event":"phx_join","payload":{},"ref":"1"}`)
	v1.expect(`{"topic":"room:x","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}`)

	loadCaddyfile(t, site(`	respond /gone/* "no sockets here" 200`))
	a.expectClose(1001)
	v1.expectClose(1001)
}

// Changing the path moves the hub: sockets on the old path close with 1001
// and the new path serves.
func TestPathChangeClosesOldSockets(t *testing.T) {
	loadCaddyfile(t, site(`	channels {
		path /old
		channel room:* {
			join allow
		}
	}`))
	a := dial(t, "/old", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:x")
	loadCaddyfile(t, site(`	channels {
		path /new
		channel room:* {
			join allow
		}
	}`))
	a.expectClose(1001)
	b := dial(t, "/new", q("vsn", "2.0.0"), nil)
	b.join("1", "1", "room:x")
}

// The upgrade works through Caddy's response writer wrappers, with and
// without access logging (gorilla v1.5.3 only finds the hijacker through
// Unwrap when logging is off).
func TestUpgradeWithAndWithoutAccessLog(t *testing.T) {
	for _, withLog := range []bool{false, true} {
		extra := ""
		if withLog {
			extra = "\tlog {\n\t\toutput discard\n\t}"
		}
		loadCaddyfile(t, site(`	channels {
		channel room:* {
			join allow
		}
	}`, extra))
		c := dial(t, "/socket", q("vsn", "2.0.0"), nil)
		c.join("1", "1", "room:log")
		c.conn.Close()
	}
}
