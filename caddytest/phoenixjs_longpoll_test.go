package integration

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// longpollJSAPIKey is the api_key of the /socket mount of the LongPoll run.
const longpollJSAPIKey = "phoenixjs-longpoll-key"

// longpollJSChannels is what js/longpoll.test.mjs expects: /socket with
// rooms, presence, history and an id rule; /fallback, whose WebSocket
// upgrade a route in front answers 403 (a WebSocket-hostile proxy).
const longpollJSChannels = `	channels {
		path /socket
		api_key ` + longpollJSAPIKey + `
		id "has(params.user) ? 'user_socket:' + params.user : ''"
		longpoll {
			window 2s
		}
		channel room:* {
			join allow reply "{'welcome': subtopic}"
			handle_in new_msg broadcast
			handle_in ping reply
			handle_in bin broadcast
		}
		channel private:* {
			join if "has(params.password) && params.password == 'letmein'"
		}
		channel secret:* {
			join deny forbidden
		}
		channel pres:* {
			join allow
			presence {
				key "params.name"
				batch 20ms
			}
		}
		channel hist:* {
			join allow
			history 1000
		}
	}
	route /fallback/* {
		respond /fallback/websocket "no websockets here" 403
		channels {
			path /fallback
			channel room:* {
				join allow reply "{'welcome': subtopic}"
				handle_in ping reply
			}
		}
	}`

// TestPhoenixJSLongPoll runs js/longpoll.test.mjs: the stock phoenix.js
// client over LongPoll, mixed with WebSocket clients, and falling back to
// LongPoll when the upgrade is refused. Like TestPhoenixJS, it is skipped
// when node is missing, unless the CI environment variable is set.
func TestPhoenixJSLongPoll(t *testing.T) {
	node := requireNode(t)
	loadCaddyfile(t, site(longpollJSChannels))
	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "longpoll.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_FALLBACK_URL="+wsBase+"/fallback",
		"CHANNELS_API_KEY="+longpollJSAPIKey,
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)
}
