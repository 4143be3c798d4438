package integration

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// interceptJSAPIKey is the api_key of the mount of TestPhoenixJSIntercept.
const interceptJSAPIKey = "intercept-js-key"

// interceptJSChannels is what js/intercept.test.mjs expects: room:* that
// intercepts new_msg (drop muted users, mark mine, strip secret) and bin
// (drop bob), and broadcasts other events unchanged.
const interceptJSChannels = `	channels {
		path /socket
		api_key ` + interceptJSAPIKey + `
		assign user_id "params.user"
		channel room:* {
			join allow
			handle_in new_msg broadcast
			handle_in bin broadcast
			intercept new_msg {
				drop if "has(payload.muted_by) && assigns.user_id in payload.muted_by"
				set mine "payload.user_id == assigns.user_id"
				remove secret
			}
			intercept bin {
				drop if "assigns.user_id == 'bob'"
			}
		}
	}`

// TestPhoenixJSIntercept runs js/intercept.test.mjs, the stock phoenix.js
// client against intercepted events. Like TestPhoenixJS, it is skipped
// when node is missing, unless the CI environment variable is set.
func TestPhoenixJSIntercept(t *testing.T) {
	node := requireNode(t)

	loadCaddyfile(t, site(interceptJSChannels))

	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)

	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "intercept.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_API_KEY="+interceptJSAPIKey,
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)
}
