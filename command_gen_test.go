package caddychannels

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// runGen runs `caddy channels gen` with args and returns its output and
// error.
func runGen(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := genCommand()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	err := c.Execute()
	return out.String(), err
}

// printedChannels cuts the `channels { … }` example out of the printed
// instructions, as a user would copy it.
func printedChannels(t *testing.T, out string) string {
	t.Helper()
	start := strings.Index(out, "\tchannels {\n")
	if start < 0 {
		t.Fatalf("no channels block in the output:\n%s", out)
	}
	end := strings.Index(out[start:], "\n\t}\n")
	if end < 0 {
		t.Fatalf("unterminated channels block in the output:\n%s", out)
	}
	return out[start : start+end+len("\n\t}\n")]
}

// adapt runs the Caddyfile adapter (with this module registered) on a
// site holding block and returns the JSON config.
func adapt(t *testing.T, block string) string {
	t.Helper()
	src := "http://localhost:8080 {\n" + block + "}\n"
	cfg, warns, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting the printed block: %v\n%s", err, src)
	}
	if len(warns) != 0 {
		t.Errorf("adapter warnings: %v", warns)
	}
	return string(cfg)
}

// The block `caddy channels gen` prints parses, for each language and
// hook set, and routes the channel to the generated handler's URLs.
func TestGenCommandBlockAdapts(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		wants []string
		not   []string
	}{
		{[]string{"Room"}, []string{
			`"pattern":"room:*"`,
			`"upstream":"http://127.0.0.1:4000/channels/room/join"`,
			`"upstream":"http://127.0.0.1:4000/channels/room/handle_in"`,
			`"upstream":"http://127.0.0.1:4000/channels/room/leave"`,
			`"webhook_secret":"{env.CHANNELS_WEBHOOK_SECRET}"`,
		}, nil},
		{[]string{"ChatRoom", "--lang", "python", "--topic", "chat:*", "--app-url", "http://127.0.0.1:5005/hooks"}, []string{
			`"pattern":"chat:*"`,
			`"upstream":"http://127.0.0.1:5005/hooks/channels/chat_room/join"`,
		}, nil},
		{[]string{"Lobby", "--lang", "go", "--topic", "lobby", "--hooks", "leave"}, []string{
			`"pattern":"lobby"`, `"action":"allow"`,
			`"upstream":"http://127.0.0.1:4000/channels/lobby/leave"`,
		}, []string{"/channels/lobby/join", "/channels/lobby/handle_in"}},
		{[]string{"Feed", "--hooks", "handle_in"}, []string{`"upstream":"http://127.0.0.1:4000/channels/feed/handle_in"`}, []string{"/feed/leave"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			out, err := runGen(t, append(tc.args, "--out", dir)...)
			if err != nil {
				t.Fatalf("gen: %v\n%s", err, out)
			}
			cfg := adapt(t, printedChannels(t, out))
			var v any
			if err := json.Unmarshal([]byte(cfg), &v); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(cfg, w) {
					t.Errorf("adapted config lacks %s:\n%s", w, cfg)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(cfg, w) {
					t.Errorf("adapted config has %s:\n%s", w, cfg)
				}
			}
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) != 2 {
				t.Errorf("wrote %v (%v), want the handler and the client module", ents, err)
			}
		})
	}
}

// Bad input fails with a message naming what is wrong, and writes
// nothing; an existing file needs --force.
func TestGenCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "gen takes one argument, the channel's name"},
		{[]string{"A", "B"}, "gen takes one argument"},
		{[]string{"my-room"}, `<Name>: "my-room" is not an identifier`},
		{[]string{"Room", "--lang", "ruby"}, `--lang: unknown language "ruby"`},
		{[]string{"Room", "--hooks", "join,typing"}, `--hooks: unknown hook "typing"`},
		{[]string{"Room", "--hooks", ""}, "--hooks: empty"},
		{[]string{"Room", "--topic", "ro*om"}, `--topic: invalid topic pattern "ro*om"`},
		{[]string{"Room", "--app-url", "ftp://x"}, "--app-url"},
		{[]string{"Room", "--nope"}, "unknown flag: --nope"},
	} {
		dir := t.TempDir()
		out, err := runGen(t, append(tc.args, "--out", dir)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q\n%s", tc.args, err, tc.want, out)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%v: wrote %v", tc.args, ents)
		}
	}

	dir := t.TempDir()
	if out, err := runGen(t, "Room", "--out", dir); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	_, err := runGen(t, "Room", "--out", dir)
	if want := filepath.Join(dir, "channels_room.mjs") + " already exists; pass --force to overwrite it"; err == nil || err.Error() != want {
		t.Errorf("second run: %v, want %q", err, want)
	}
	if out, err := runGen(t, "Room", "--out", dir, "--force"); err != nil || !strings.Contains(out, "created "+filepath.Join(dir, "channels_room.mjs")) {
		t.Errorf("--force: %v\n%s", err, out)
	}
}

// --help documents every flag.
func TestGenCommandHelp(t *testing.T) {
	out, err := runGen(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--topic", "--lang", "node, python, go", "--hooks", "join,handle_in,leave", "--out", "--force", "--app-url",
		"http://127.0.0.1:4000", "TODO(app)", "webhook_secret {env.CHANNELS_WEBHOOK_SECRET}", "channels_<name>", "<name>_socket.js",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}
