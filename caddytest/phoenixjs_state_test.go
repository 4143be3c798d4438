package integration

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// stateJSAPIKey is the api_key of the mount js/state.test.mjs publishes to.
const stateJSAPIKey = "phoenixjs-state-key"

// stateJSChannels is what js/state.test.mjs expects at /socket: presence
// keyed by the "name" join param, and history for catch-up.
const stateJSChannels = `	channels {
		path /socket
		api_key ` + stateJSAPIKey + `
		channel room:* {
			join allow
			handle_in msg broadcast
			presence {
				key "has(params.name) ? params.name : 'nobody'"
				meta "{'online_at': string(now)}"
				batch 20ms
			}
		}
		channel feed:* {
			join allow
			history 1000
		}
	}`

// TestPhoenixJSState runs js/state.test.mjs: phoenix.js Presence and
// history catch-up with the stock client. Like TestPhoenixJS, it is skipped
// when node is missing, unless the CI environment variable is set.
func TestPhoenixJSState(t *testing.T) {
	node := requireNode(t)
	loadCaddyfile(t, site(stateJSChannels))
	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "state.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_API_KEY="+stateJSAPIKey,
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)
}
