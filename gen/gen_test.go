package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hookSets are every non-empty subset of Hooks.
var hookSets = func() [][]string {
	var sets [][]string
	for mask := 1; mask < 1<<len(Hooks); mask++ {
		var s []string
		for i, h := range Hooks {
			if mask&(1<<i) != 0 {
				s = append(s, h)
			}
		}
		sets = append(sets, s)
	}
	return sets
}()

// tool returns the path of a program the syntax checks need, skipping the
// check when it is missing unless CI is set.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is not on PATH; set CI to make this a failure", name)
		}
		t.Fatalf("%s is required when CI is set: %v", name, err)
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Each language writes its handler and the client module, with the
// defaults of the brief: the files, the block, the command and the
// instructions agree.
func TestGenerateDefaults(t *testing.T) {
	for _, tc := range []struct {
		lang, handler, run string
	}{
		{"node", "channels_room.mjs", "CHANNELS_WEBHOOK_SECRET=… node "},
		{"python", "channels_room.py", "CHANNELS_WEBHOOK_SECRET=… python3 "},
		{"go", "channels_room.go", "CHANNELS_WEBHOOK_SECRET=… go run "},
		{"", "channels_room.mjs", "CHANNELS_WEBHOOK_SECRET=… node "}, // default language
	} {
		t.Run("lang="+tc.lang, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Generate(Options{Name: "Room", Lang: tc.lang, Out: dir})
			if err != nil {
				t.Fatal(err)
			}
			handler, client := filepath.Join(dir, tc.handler), filepath.Join(dir, "room_socket.js")
			if len(res.Files) != 2 || res.Files[0].Path != handler || res.Files[1].Path != client {
				t.Fatalf("files %+v, want %s and %s", res.Files, handler, client)
			}
			wantBlock := "\tchannel room:* {\n" +
				"\t\tjoin upstream http://127.0.0.1:4000/channels/room/join\n" +
				"\t\thandle_in * upstream http://127.0.0.1:4000/channels/room/handle_in\n" +
				"\t\tleave upstream http://127.0.0.1:4000/channels/room/leave\n" +
				"\t}\n"
			if res.Channel != wantBlock {
				t.Errorf("channel block:\n%s\nwant:\n%s", res.Channel, wantBlock)
			}
			if res.Listen != "127.0.0.1:4000" {
				t.Errorf("listen %q", res.Listen)
			}
			if res.Run != tc.run+handler {
				t.Errorf("run %q, want %q", res.Run, tc.run+handler)
			}
			for _, want := range []string{
				"created " + handler, "created " + client,
				"channels { … } block", "webhook_secret {env.CHANNELS_WEBHOOK_SECRET}",
				indent(wantBlock), strings.TrimPrefix(res.Run, "CHANNELS_WEBHOOK_SECRET=… "),
				"TODO(app)",
			} {
				if !strings.Contains(res.Instructions, want) {
					t.Errorf("instructions lack %q:\n%s", want, res.Instructions)
				}
			}
			h := read(t, handler)
			for _, want := range []string{
				"TODO(app): decide who may join", "TODO(app): handle the event", "TODO(app): clean up",
				"/channels/room/join", "/channels/room/handle_in", "/channels/room/leave",
				"CHANNELS_WEBHOOK_SECRET", "X-Channels-Signature", "leave topic=", "listening on",
				"caddy channels gen Room --lang " + cmp(tc.lang, "node"),
			} {
				if !strings.Contains(strings.ToLower(h), strings.ToLower(want)) {
					t.Errorf("%s lacks %q", tc.handler, want)
				}
			}
			c := read(t, client)
			for _, want := range []string{`from "phoenix"`, "export function connectSocket", "export function joinRoom", `"room:lobby"`, "channel.join()"} {
				if !strings.Contains(c, want) {
					t.Errorf("room_socket.js lacks %q", want)
				}
			}
		})
	}
}

func cmp(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// Flags reach the files: the name's snake_case form, --topic, --hooks and
// --app-url (host, port and path prefix).
func TestGenerateFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir") // created
	res, err := Generate(Options{
		Name: "ChatRoom", Topic: "chat:*", Lang: "python", Hooks: []string{"handle_in", "join"},
		Out: dir, AppURL: "http://localhost:5001/app/",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "\tchannel chat:* {\n" +
		"\t\tjoin upstream http://localhost:5001/app/channels/chat_room/join\n" +
		"\t\thandle_in * upstream http://localhost:5001/app/channels/chat_room/handle_in\n" +
		"\t}\n"
	if res.Channel != want {
		t.Errorf("channel block:\n%s\nwant:\n%s", res.Channel, want)
	}
	if res.Listen != "localhost:5001" {
		t.Errorf("listen %q", res.Listen)
	}
	h := read(t, filepath.Join(dir, "channels_chat_room.py"))
	for _, want := range []string{`"/app/channels/chat_room/join"`, `"/app/channels/chat_room/handle_in"`, `or "localhost"`, `or "5001"`,
		"caddy channels gen ChatRoom --topic 'chat:*' --lang python --hooks handle_in,join --app-url http://localhost:5001/app"} {
		if !strings.Contains(h, want) {
			t.Errorf("handler lacks %q", want)
		}
	}
	if strings.Contains(h, "def leave") || strings.Contains(h, "/leave") {
		t.Error("handler has a leave hook that --hooks did not ask for")
	}
	c := read(t, filepath.Join(dir, "chat_room_socket.js"))
	if !strings.Contains(c, "export function joinChatRoom") || !strings.Contains(c, `"chat:lobby"`) {
		t.Errorf("client module does not join chat:lobby with joinChatRoom:\n%s", c)
	}

	// An exact topic is joined as is; without join, the block allows joins
	// (a channel without join refuses them); without handle_in it says how
	// to add a rule.
	res, err = Generate(Options{Name: "lobby", Topic: "lobby", Hooks: []string{"leave"}, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Channel, "\t\tjoin allow\n") || !strings.Contains(res.Channel, "# handle_in <event> broadcast") ||
		!strings.Contains(res.Channel, "leave upstream http://127.0.0.1:4000/channels/lobby/leave") {
		t.Errorf("channel block:\n%s", res.Channel)
	}
	if c := read(t, res.Files[1].Path); !strings.Contains(c, `topic = "lobby"`) {
		t.Errorf("client module does not join lobby:\n%s", c)
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string]string{
		"Room": "room", "room": "room", "ChatRoom": "chat_room", "chat_room": "chat_room",
		"HTTPServer": "http_server", "Room2": "room2", "myAPI": "my_api", "A_b__C": "a_b_c",
	} {
		if got := strings.Join(splitWords(in), "_"); got != want {
			t.Errorf("splitWords(%q) = %q, want %q", in, got, want)
		}
	}
}

// Bad input is an *OptionError naming the flag, and writes nothing.
func TestGenerateErrors(t *testing.T) {
	for _, tc := range []struct {
		opts         Options
		option, want string
	}{
		{Options{}, "<Name>", "missing"},
		{Options{Name: "my-room"}, "<Name>", `"my-room" is not an identifier`},
		{Options{Name: "1room"}, "<Name>", "not an identifier"},
		{Options{Name: "Räume"}, "<Name>", "not an identifier"},
		{Options{Name: "_room"}, "<Name>", "not an identifier"},
		{Options{Name: strings.Repeat("a", 65)}, "<Name>", "at most 64"},
		{Options{Name: "Room", Lang: "ruby"}, "--lang", `unknown language "ruby" (want node, python, go)`},
		{Options{Name: "Room", Hooks: []string{}}, "--hooks", "empty"},
		{Options{Name: "Room", Hooks: []string{"join", ""}}, "--hooks", "empty hook name"},
		{Options{Name: "Room", Hooks: []string{"join", "handle_out"}}, "--hooks", `unknown hook "handle_out"`},
		{Options{Name: "Room", Hooks: []string{"connect"}}, "--hooks", "connect upstream"},
		{Options{Name: "Room", Topic: "room:*:x"}, "--topic", "* is only allowed as the last character"},
		{Options{Name: "Room", Topic: "room lobby"}, "--topic", "whitespace"},
		{Options{Name: "Room", Topic: `room"x`}, "--topic", "quotes"},
		{Options{Name: "Room", AppURL: "https://app.example.com"}, "--app-url", "want an http:// URL"},
		{Options{Name: "Room", AppURL: "127.0.0.1:4000"}, "--app-url", ""},
		{Options{Name: "Room", AppURL: "http://127.0.0.1:4000/?x=1"}, "--app-url", "without user, query or fragment"},
		{Options{Name: "Room", AppURL: "http://127.0.0.1:4000/a b"}, "--app-url", "plain"},
	} {
		dir := t.TempDir()
		tc.opts.Out = dir
		_, err := Generate(tc.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want an OptionError on %s saying %q", tc.opts, err, tc.option, tc.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%+v: wrote %v", tc.opts, ents)
		}
	}
}

// An existing file stops Generate before it writes anything, with an error
// naming the file; --force overwrites both files.
func TestGenerateForce(t *testing.T) {
	dir := t.TempDir()
	client := filepath.Join(dir, "room_socket.js")
	if err := os.WriteFile(client, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(Options{Name: "Room", Out: dir})
	var ee *ExistsError
	if !errors.As(err, &ee) || ee.Path != client || !strings.Contains(err.Error(), client+" already exists; pass --force") {
		t.Fatalf("error %v, want an ExistsError naming %s", err, client)
	}
	if _, err := os.Stat(filepath.Join(dir, "channels_room.mjs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the handler was written although the client module exists: %v", err)
	}
	if read(t, client) != "mine" {
		t.Error("the existing file was changed")
	}
	if _, err := Generate(Options{Name: "Room", Out: dir, Force: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(t, client), "joinRoom") {
		t.Error("--force did not overwrite the client module")
	}
	// A second run without --force refuses the handler, first in order.
	_, err = Generate(Options{Name: "Room", Out: dir})
	if !errors.As(err, &ee) || ee.Path != filepath.Join(dir, "channels_room.mjs") {
		t.Errorf("error %v, want an ExistsError naming the handler", err)
	}
}

// genAll generates lang for every hook subset, each in its own directory
// under root, and returns the handler paths.
func genAll(t *testing.T, root, lang string) []string {
	t.Helper()
	var paths []string
	for i, hooks := range hookSets {
		res, err := Generate(Options{Name: "Room", Lang: lang, Hooks: hooks, Out: filepath.Join(root, fmt.Sprintf("h%d", i))})
		if err != nil {
			t.Fatalf("%v: %v", hooks, err)
		}
		for _, h := range Hooks {
			if got := strings.Contains(read(t, res.Files[0].Path), "/channels/room/"+h+`"`); got != slices.Contains(hooks, h) {
				t.Errorf("%s --hooks %v: route for %s present = %v", lang, hooks, h, got)
			}
		}
		paths = append(paths, res.Files[0].Path, res.Files[1].Path)
	}
	return paths
}

// The generated Go handlers are gofmt-clean and vet-clean for every subset
// of hooks.
func TestGoHandlersCompile(t *testing.T) {
	goTool := tool(t, "go")
	root := t.TempDir()
	paths := genAll(t, root, "go")
	for _, p := range paths {
		if !strings.HasSuffix(p, ".go") {
			continue
		}
		src := []byte(read(t, p))
		if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
			t.Errorf("%s is not gofmt-clean (%v)", p, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module gentest\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, root, goTool, "vet", "./...")
}

// The generated Node handlers and client modules parse, for every subset.
func TestNodeFilesParse(t *testing.T) {
	node := tool(t, "node")
	root := t.TempDir()
	// The client modules are ES modules: say so, as a bundler would.
	if err := os.WriteFile(filepath.Join(root, "package.json"), []byte(`{"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range genAll(t, root, "node") {
		run(t, root, node, "--check", p)
	}
}

// The generated Python handlers compile, for every subset.
func TestPythonHandlersCompile(t *testing.T) {
	python := tool(t, "python3")
	root := t.TempDir()
	var py []string
	for _, p := range genAll(t, root, "python") {
		if strings.HasSuffix(p, ".py") {
			py = append(py, p)
		}
	}
	run(t, root, python, append([]string{"-m", "py_compile"}, py...)...)
}
