// Package gen is the code generator behind `caddy channels gen`, the
// counterpart of Phoenix's `mix phx.gen.channel`: for one channel it writes
// a webhook handler for the app (Node.js, Python or Go, standard library
// only) that answers the join, handle_in and leave calls of the webhook
// contract (docs/webhooks.md), and a phoenix.js client module, and it
// returns the Caddyfile `channel` block that routes the channel's topics to
// that handler.
//
// The package has no Caddy imports; the templates are embedded.
package gen

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/caddy-channels/caddy-channels/channels"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Languages are the values Options.Lang accepts, in the order help texts
// list them.
var Languages = []string{"node", "python", "go"}

// Hooks are the webhook calls a generated handler can answer, in the
// order the Caddyfile block lists them. (connect is per socket, not per
// channel, so it is not generated here.)
var Hooks = []string{"join", "handle_in", "leave"}

// Defaults of the Options fields left empty.
const (
	// DefaultLang is the language of the handler when Options.Lang is empty.
	DefaultLang = "node"
	// DefaultAppURL is where the generated handler listens, and what the
	// Caddyfile block calls, when Options.AppURL is empty.
	DefaultAppURL = "http://127.0.0.1:4000"
	// DefaultOut is the directory written to when Options.Out is empty.
	DefaultOut = "."
	// SecretEnv is the environment variable holding the webhook secret,
	// read by the generated handler and by the printed Caddyfile block.
	SecretEnv = "CHANNELS_WEBHOOK_SECRET"
)

// Options are the inputs of Generate, the flags of `caddy channels gen`.
type Options struct {
	// Name names the channel, e.g. "Room" or "ChatRoom": an identifier
	// (a letter, then letters, digits or underscores). Files and paths use
	// its snake_case form ("room", "chat_room").
	Name string
	// Topic is the topic pattern of the channel, an exact topic or a
	// prefix ending in "*"; default "<snake name>:*".
	Topic string
	// Lang is the handler's language: "node", "python" or "go"; default
	// DefaultLang.
	Lang string
	// Hooks are the calls the handler answers, a subset of Hooks; nil
	// means all of them, an empty non-nil slice is an error.
	Hooks []string
	// Out is the directory to write to, created if missing; default ".".
	Out string
	// Force allows overwriting existing files.
	Force bool
	// AppURL is the base URL of the handler (http://host:port[/prefix]):
	// the handler listens on its host and port and serves its hooks under
	// its path; default DefaultAppURL.
	AppURL string
}

// Result describes what Generate wrote and what to do next.
type Result struct {
	// Files are the files written, handler first.
	Files []File
	// Channel is the `channel <pattern> { … }` block for the Caddyfile,
	// indented for a `channels { … }` block (one tab), newline-terminated.
	Channel string
	// Listen is the host:port the generated handler listens on by default.
	Listen string
	// Run is the command that starts the handler, e.g.
	// "CHANNELS_WEBHOOK_SECRET=… node channels_room.mjs".
	Run string
	// Instructions is the text `caddy channels gen` prints: the files, the
	// Caddyfile block with where it goes, and the command to run.
	Instructions string
}

// File is one file Generate wrote.
type File struct {
	// Path is where it was written (Options.Out joined with its name).
	Path string
	// Role says what it is, e.g. "webhook handler".
	Role string
}

// OptionError is an invalid option: Generate wrote nothing.
type OptionError struct {
	// Option names the flag, e.g. "--lang", or "<Name>" for the name.
	Option string
	// Problem says what is wrong and what is accepted.
	Problem string
}

// Error returns "<option>: <problem>".
func (e *OptionError) Error() string { return e.Option + ": " + e.Problem }

// ExistsError is a file Generate would overwrite without Options.Force:
// Generate wrote nothing.
type ExistsError struct {
	// Path is the existing file.
	Path string
}

// Error names the file and the flag that allows overwriting it.
func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exists; pass --force to overwrite it", e.Path)
}

// nameRE is what Options.Name must match.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// maxNameLen bounds Options.Name, which ends up in file names.
const maxNameLen = 64

// data is what the templates see.
type data struct {
	Name         string // as given: "ChatRoom"
	Snake        string // "chat_room"
	Camel        string // "chatRoom"
	Pascal       string // "ChatRoom"
	Topic        string // "chat_room:*"
	ExampleTopic string // "chat_room:lobby"
	Join         bool
	HandleIn     bool
	Leave        bool
	JoinPath     string // "/channels/chat_room/join"
	HandleInPath string
	LeavePath    string
	Host         string // default listen host
	Port         string // default listen port
	Handler      string // handler file name
	Client       string // client file name
	Command      string // the gen command line that made the files
	SecretEnv    string
}

// language is how one Options.Lang is generated.
type language struct {
	template string // in templates/
	ext      string // of the handler file
	run      string // command prefix; the handler path follows
	gofmt    bool
}

var languages = map[string]language{
	"node":   {template: "handler.mjs.tmpl", ext: ".mjs", run: "node"},
	"python": {template: "handler.py.tmpl", ext: ".py", run: "python3"},
	"go":     {template: "handler.go.tmpl", ext: ".go", run: "go run", gofmt: true},
}

// Generate validates opts, writes the handler and the client module into
// opts.Out and returns what it wrote with the Caddyfile block. It writes
// nothing if an option is invalid (*OptionError) or a file exists and
// opts.Force is false (*ExistsError).
func Generate(opts Options) (Result, error) {
	d, lang, out, err := prepare(opts)
	if err != nil {
		return Result{}, err
	}
	handler, err := render(lang.template, d)
	if err != nil {
		return Result{}, err
	}
	if lang.gofmt {
		if handler, err = format.Source(handler); err != nil {
			return Result{}, fmt.Errorf("formatting the generated Go: %w", err)
		}
	}
	client, err := render("socket.js.tmpl", d)
	if err != nil {
		return Result{}, err
	}
	files := []struct {
		File
		body []byte
	}{
		{File{filepath.Join(out, d.Handler), "webhook handler (" + opts.langName() + ")"}, handler},
		{File{filepath.Join(out, d.Client), "phoenix.js client module"}, client},
	}
	if !opts.Force {
		for _, f := range files {
			if _, err := os.Lstat(f.Path); err == nil {
				return Result{}, &ExistsError{Path: f.Path}
			} else if !errors.Is(err, os.ErrNotExist) {
				return Result{}, fmt.Errorf("checking %s: %w", f.Path, err)
			}
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating --out directory: %w", err)
	}
	res := Result{Listen: net.JoinHostPort(d.Host, d.Port)}
	for _, f := range files {
		if err := writeFile(f.Path, f.body, opts.Force); err != nil {
			return Result{}, err
		}
		res.Files = append(res.Files, f.File)
	}
	res.Channel = channelBlock(d, opts.appURL())
	res.Run = SecretEnv + "=… " + lang.run + " " + shellPath(files[0].Path)
	res.Instructions = instructions(res, d)
	return res, nil
}

// langName is the language, defaulted.
func (o Options) langName() string {
	if o.Lang == "" {
		return DefaultLang
	}
	return o.Lang
}

// appURL is the base URL, defaulted, without a trailing slash.
func (o Options) appURL() string {
	u := o.AppURL
	if u == "" {
		u = DefaultAppURL
	}
	return strings.TrimSuffix(u, "/")
}

// prepare validates opts and computes the template data.
func prepare(opts Options) (data, language, string, error) {
	var d data
	if opts.Name == "" {
		return d, language{}, "", &OptionError{"<Name>", "missing: name the channel, e.g. Room"}
	}
	if len(opts.Name) > maxNameLen || !nameRE.MatchString(opts.Name) {
		return d, language{}, "", &OptionError{"<Name>", fmt.Sprintf("%q is not an identifier: use a letter, then letters, digits or underscores (e.g. Room, ChatRoom), at most %d characters", opts.Name, maxNameLen)}
	}
	d.Name = opts.Name
	words := splitWords(opts.Name)
	if len(words) == 0 {
		return d, language{}, "", &OptionError{"<Name>", fmt.Sprintf("%q has no letters or digits to name files with", opts.Name)}
	}
	d.Snake = strings.Join(words, "_")
	for i, w := range words {
		up := strings.ToUpper(w[:1]) + w[1:]
		d.Pascal += up
		if i == 0 {
			d.Camel += w
		} else {
			d.Camel += up
		}
	}
	if unicode.IsDigit(rune(d.Camel[0])) { // "_1room": keep JS identifiers valid
		d.Camel = "c" + d.Camel
	}

	d.Topic = opts.Topic
	if d.Topic == "" {
		d.Topic = d.Snake + ":*"
	}
	p, err := channels.ParsePattern(d.Topic)
	if err != nil {
		return d, language{}, "", &OptionError{"--topic", err.Error() + ` (want an exact topic such as "lobby" or a prefix ending in *, such as "room:*")`}
	}
	if strings.ContainsAny(d.Topic, "\"'`\\{}#") {
		return d, language{}, "", &OptionError{"--topic", fmt.Sprintf("%q: quotes, backslashes, braces and # are not supported in generated files", d.Topic)}
	}
	d.ExampleTopic = d.Topic
	if prefix, ok := strings.CutSuffix(p.String(), "*"); ok {
		d.ExampleTopic = prefix + "lobby"
	}

	lang, ok := languages[opts.langName()]
	if !ok {
		return d, language{}, "", &OptionError{"--lang", fmt.Sprintf("unknown language %q (want %s)", opts.Lang, strings.Join(Languages, ", "))}
	}

	hooks := opts.Hooks
	if hooks == nil {
		hooks = Hooks
	}
	if len(hooks) == 0 {
		return d, language{}, "", &OptionError{"--hooks", "empty: name at least one of " + strings.Join(Hooks, ", ")}
	}
	for _, h := range hooks {
		switch strings.TrimSpace(h) {
		case "join":
			d.Join = true
		case "handle_in":
			d.HandleIn = true
		case "leave":
			d.Leave = true
		case "":
			return d, language{}, "", &OptionError{"--hooks", "empty hook name in the list (want a comma-separated subset of " + strings.Join(Hooks, ",") + ")"}
		case "connect":
			return d, language{}, "", &OptionError{"--hooks", `"connect" is per socket, not per channel: use connect upstream in the channels block (docs/webhooks.md); want a subset of ` + strings.Join(Hooks, ", ")}
		default:
			return d, language{}, "", &OptionError{"--hooks", fmt.Sprintf("unknown hook %q (want a comma-separated subset of %s)", h, strings.Join(Hooks, ","))}
		}
	}

	base, err := url.Parse(opts.appURL())
	switch {
	case err != nil:
		return d, language{}, "", &OptionError{"--app-url", err.Error()}
	case base.Scheme != "http":
		return d, language{}, "", &OptionError{"--app-url", fmt.Sprintf("%q: want an http:// URL (the generated handler serves plain HTTP; put TLS in front of it and edit the upstream URLs for https)", opts.AppURL)}
	case base.Hostname() == "" || base.User != nil || base.RawQuery != "" || base.Fragment != "" || base.Opaque != "":
		return d, language{}, "", &OptionError{"--app-url", fmt.Sprintf("%q: want http://host[:port][/path], without user, query or fragment", opts.AppURL)}
	case strings.ContainsAny(base.Path, "\"'`\\{}# ") || base.RawPath != "":
		return d, language{}, "", &OptionError{"--app-url", fmt.Sprintf("%q: the path must be plain (no escapes, quotes, braces or spaces)", opts.AppURL)}
	}
	d.Host, d.Port = base.Hostname(), base.Port()
	if d.Port == "" {
		d.Port = "80"
	}
	prefix := strings.TrimSuffix(base.Path, "/") + "/channels/" + d.Snake
	d.JoinPath, d.HandleInPath, d.LeavePath = prefix+"/join", prefix+"/handle_in", prefix+"/leave"

	d.Handler = "channels_" + d.Snake + lang.ext
	d.Client = d.Snake + "_socket.js"
	d.SecretEnv = SecretEnv
	d.Command = commandLine(opts)

	out := opts.Out
	if out == "" {
		out = DefaultOut
	}
	return d, lang, out, nil
}

// splitWords splits an identifier into lower-case words as Elixir's
// Macro.underscore does: "ChatRoom" → chat, room; "HTTPServer" → http,
// server; "chat_room2" → chat, room2.
func splitWords(name string) []string {
	var words []string
	for _, part := range strings.Split(name, "_") {
		rs := []rune(part)
		start := 0
		for i := 1; i < len(rs); i++ {
			if !unicode.IsUpper(rs[i]) {
				continue
			}
			prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || (unicode.IsUpper(rs[i-1]) && nextLower) {
				words = append(words, strings.ToLower(string(rs[start:i])))
				start = i
			}
		}
		if start < len(rs) {
			words = append(words, strings.ToLower(string(rs[start:])))
		}
	}
	return words
}

// commandLine is the `caddy channels gen` command that opts stand for,
// recorded in the generated files.
func commandLine(opts Options) string {
	parts := []string{"caddy channels gen", opts.Name}
	if opts.Topic != "" {
		parts = append(parts, "--topic '"+opts.Topic+"'")
	}
	parts = append(parts, "--lang "+opts.langName())
	if opts.Hooks != nil && !slices.Equal(opts.Hooks, Hooks) {
		parts = append(parts, "--hooks "+strings.Join(opts.Hooks, ","))
	}
	if opts.AppURL != "" && opts.appURL() != DefaultAppURL {
		parts = append(parts, "--app-url "+opts.appURL())
	}
	return strings.Join(parts, " ")
}

// render executes one embedded template. Templates use <% %> delimiters,
// so that the braces of the generated code need no escaping.
func render(name string, d data) ([]byte, error) {
	t, err := template.New(name).Delims("<%", "%>").ParseFS(templateFS, "templates/"+name)
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("rendering template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// writeFile writes body to path; without force it fails if path exists
// (O_EXCL, so a file created since the check is not overwritten either).
func writeFile(path string, body []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return &ExistsError{Path: path}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// channelBlock is the Caddyfile `channel` block of d, indented by one tab
// for a `channels { … }` block.
func channelBlock(d data, base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchannel %s {\n", d.Topic)
	if d.Join {
		fmt.Fprintf(&b, "\t\tjoin upstream %s%s\n", base, strings.TrimPrefix(d.JoinPath, basePath(base)))
	} else {
		b.WriteString("\t\tjoin allow\n")
	}
	if d.HandleIn {
		fmt.Fprintf(&b, "\t\thandle_in * upstream %s%s\n", base, strings.TrimPrefix(d.HandleInPath, basePath(base)))
	} else {
		b.WriteString("\t\t# handle_in <event> broadcast   # pushes need a handle_in rule; without one they get {\"reason\":\"unhandled event\"}\n")
	}
	if d.Leave {
		fmt.Fprintf(&b, "\t\tleave upstream %s%s\n", base, strings.TrimPrefix(d.LeavePath, basePath(base)))
	}
	b.WriteString("\t}\n")
	return b.String()
}

// basePath is the path of the base URL, which the hook paths start with.
func basePath(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// shellPath is path as it goes on a command line: "channels_room.mjs"
// for the current directory, quoted when it has shell metacharacters.
func shellPath(path string) string {
	path = filepath.Clean(path)
	if strings.ContainsFunc(path, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("/._-+:,=@%", r))
	}) {
		return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
	}
	return path
}

// instructions is the text printed after generating.
func instructions(res Result, d data) string {
	var b strings.Builder
	for _, f := range res.Files {
		fmt.Fprintf(&b, "* created %s (%s)\n", f.Path, f.Role)
	}
	fmt.Fprintf(&b, `
Add this channel to the channels { … } block of your Caddyfile, next to
webhook_secret {env.%[1]s} (channel rules are tried in file order and
the first matching pattern wins, so put it before any broader pattern such as *):

	channels {
		webhook_secret {env.%[1]s}
%[2]s	}

Start the handler with the same secret as Caddy (it listens on %[3]s):

	export %[1]s=$(openssl rand -hex 32)   # once, for both Caddy and the handler
	%[4]s

Then, in the browser, connect with %[5]s:

	import {connectSocket, join%[6]s} from "./%[5]s"
	const channel = join%[6]s(connectSocket("/socket"), %[7]q)
	channel.push("new_msg", {body: "hi"}).receive("ok", reply => console.log(reply))

Your logic goes where the generated files say TODO(app).
`, SecretEnv, indent(res.Channel), res.Listen, strings.TrimPrefix(res.Run, SecretEnv+"=… "), d.Client, d.Pascal, d.ExampleTopic)
	return b.String()
}

// indent adds one tab before every line of s.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "")
}
