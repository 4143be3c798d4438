package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// `caddy channels publish` (the binary users get from xcaddy) against a
// real Caddy: the event reaches a subscriber; a wrong key, a bad payload,
// a missing flag and an unreachable gateway each exit non-zero with a
// message saying what is wrong.
func TestPublishCommand(t *testing.T) {
	bin, err := buildCaddy()
	if err != nil {
		t.Fatal(err)
	}
	path := freshPath("publish-cmd")
	loadCaddyfile(t, site(`	channels {
		path `+path+`
		api_key publish-cmd-key
		channel room:* {
			join allow
		}
	}`))
	c := dial(t, path, v2q, nil)
	c.join("1", "1", "room:cli")
	run := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"channels", "publish"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &exit):
			return exit.ExitCode(), out.String()
		}
		t.Fatalf("running %v: %v", args, err)
		return 0, ""
	}
	url := "http://localhost:9080" + path
	if code, out := run(nil, "--url", url, "--key", "publish-cmd-key", "--topic", "room:cli", "--event", "new_msg", "--payload", `{"body":"hi"}`); code != 0 || !strings.Contains(out, `published new_msg to room:cli ({"accepted":1})`) {
		t.Fatalf("publish: exit %d, %s", code, out)
	}
	c.expect(`[null,null,"room:cli","new_msg",{"body":"hi"}]`)
	// Flags from the environment.
	if code, out := run([]string{"CHANNELS_URL=" + url, "CHANNELS_API_KEY=publish-cmd-key"}, "--topic", "room:cli", "--event", "ping"); code != 0 {
		t.Fatalf("publish with env: exit %d, %s", code, out)
	}
	c.expect(`[null,null,"room:cli","ping",{}]`)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--url", url, "--key", "wrong", "--topic", "room:cli", "--event", "e"}, 1, "wrong or missing api key"},
		{[]string{"--url", url, "--key", "publish-cmd-key", "--topic", "room:cli", "--event", "e", "--payload", "[1]"}, 2, "--payload must be a JSON object"},
		{[]string{"--url", url, "--key", "publish-cmd-key", "--topic", "room:cli", "--event", "phx_join"}, 1, "400 Bad Request"},
		{[]string{"--url", url, "--key", "publish-cmd-key", "--event", "e"}, 2, "--topic and --event are required"},
		{[]string{"--url", "http://localhost:9080/nowhere", "--key", "k", "--topic", "t", "--event", "e"}, 1, "no publish API at this URL"},
		{[]string{"--url", "http://127.0.0.1:1/socket", "--key", "k", "--topic", "t", "--event", "e"}, 2, "connection refused"},
		{[]string{"--url", "localhost/socket", "--key", "k", "--topic", "t", "--event", "e"}, 2, "--url must be an http:// or https:// URL"},
	} {
		code, out := run([]string{"CHANNELS_URL=", "CHANNELS_API_KEY="}, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	c.heartbeat("9") // nothing else arrived
}
