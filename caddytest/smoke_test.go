package integration

import "testing"

const basicChannels = `	channels {
		channel room:* {
			join allow
			handle_in new_msg broadcast
			handle_in typing broadcast_from
			handle_in ping reply
		}
	}`

func TestSmokeJoinBroadcast(t *testing.T) {
	loadCaddyfile(t, site(basicChannels))
	a := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	b := dial(t, "/socket", q("vsn", "2.0.0"), nil)
	a.join("1", "1", "room:smoke")
	b.join("5", "5", "room:smoke")
	a.send(`["1","2","room:smoke","new_msg",{"body":"hi"}]`)
	a.expect(`[null,null,"room:smoke","new_msg",{"body":"hi"}]`)
	a.expect(`["1","2","room:smoke","phx_reply",{"status":"ok","response":{}}]`)
	b.expect(`[null,null,"room:smoke","new_msg",{"body":"hi"}]`)
}
