package integration

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/examples/backend/chat"
)

// webhooksJSSecret is the webhook_secret shared by Caddy and the example
// chat app in TestPhoenixJSWebhooks.
const webhooksJSSecret = "phoenixjs-webhooks-secret"

// webhooksJSAPIKey is the api_key of the webhook-backed /socket mount.
const webhooksJSAPIKey = "phoenixjs-webhooks-key"

// webhooksJSLeaveWait bounds the wait for leave notifications after node
// exits: they are delivered asynchronously.
const webhooksJSLeaveWait = 5 * time.Second

// webhooksJSChannels is the Caddyfile block of examples/backend/Caddyfile,
// pointed at the chat app served at app (a base URL without a trailing
// slash).
func webhooksJSChannels(app string) string {
	return fmt.Sprintf(`	channels {
		path /socket
		api_key %s
		connect upstream %[2]s/socket/connect {
			forward_headers User-Agent
		}
		webhook_secret %s
		webhook_timeout 3s
		channel room:* {
			join upstream %[2]s/channels/join
			handle_in typing broadcast_from
			handle_in * upstream %[2]s/channels/event
			leave upstream %[2]s/channels/leave
		}
	}`, webhooksJSAPIKey, app, webhooksJSSecret)
}

// TestPhoenixJSWebhooks runs js/webhooks.test.mjs: the stock phoenix.js
// client against a channels handler whose connect, join, handle_in and
// leave are decided by the example chat app (examples/backend/chat) over
// signed webhooks. It then checks the leave notifications the app
// received. Like TestPhoenixJS, it is skipped when node is missing, unless
// the CI environment variable is set.
func TestPhoenixJSWebhooks(t *testing.T) {
	node := requireNode(t)

	app := chat.New(webhooksJSSecret, t.Logf)
	srv := httptest.NewServer(app.Handler())
	// Closing the app waits for its in-flight calls, so it never logs
	// after the test ends.
	t.Cleanup(srv.Close)
	tokens := map[string]string{}
	for _, name := range []string{"alice", "carol"} {
		tok, err := app.IssueToken(name)
		if err != nil {
			t.Fatalf("issuing a token for %s: %v", name, err)
		}
		tokens[name] = tok
	}

	loadCaddyfile(t, site(webhooksJSChannels(srv.URL)))

	ctx, cancel := context.WithTimeout(context.Background(), phoenixJSTimeout)
	defer cancel()
	ensureNodeModules(ctx, t)

	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "webhooks.test.mjs")
	cmd.Env = append(os.Environ(),
		"CHANNELS_URL="+wsBase+"/socket",
		"CHANNELS_TOKEN_ALICE="+tokens["alice"],
		"CHANNELS_TOKEN_CAROL="+tokens["carol"],
		"NO_COLOR=1",
	)
	runLogged(ctx, t, "node --test", cmd)

	checkWebhookLeaves(t, app)
}

// checkWebhookLeaves checks the leave notifications of the node run, as
// docs/webhooks.md describes them: reason "leave" for channel.leave(),
// "closed" for channels still joined when their socket disconnected, and
// none for a refused join or a channel the app stopped.
func checkWebhookLeaves(t *testing.T, app *chat.App) {
	t.Helper()
	want := []chat.LeaveEvent{
		{SocketID: "user_socket:alice", User: "alice", Topic: "room:wh-leave", Reason: "leave"},
		{SocketID: "user_socket:alice", User: "alice", Topic: "room:lobby", Reason: "closed"},
		{SocketID: "user_socket:carol", User: "carol", Topic: "room:lobby", Reason: "closed"},
	}
	var got []chat.LeaveEvent
	deadline := time.Now().Add(webhooksJSLeaveWait)
	for {
		got = app.Leaves()
		missing := slices.DeleteFunc(slices.Clone(want), func(w chat.LeaveEvent) bool {
			return slices.Contains(got, w)
		})
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leave notifications missing after %v: %+v\nreceived: %+v", webhooksJSLeaveWait, missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Every socket of the node run has closed and its notifications were
	// delivered: a stray one would be here by now.
	webhooksSettled(t, "/socket", 0)
	for _, ev := range app.Leaves() {
		switch ev.Topic {
		case "room:wh-bye":
			t.Errorf("leave notification for a channel the app stopped: %+v", ev)
		case "room:private-staff":
			t.Errorf("leave notification for a refused join: %+v", ev)
		}
	}
}
