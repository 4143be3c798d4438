package caddychannels

// `caddy channels gen`, the counterpart of `mix phx.gen.channel`: the
// generator itself is package gen; this is its command line.

import (
	"errors"
	"fmt"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-channels/caddy-channels/gen"
)

// genCommand is `caddy channels gen`.
func genCommand() *cobra.Command {
	var (
		o     gen.Options
		hooks string
	)
	c := &cobra.Command{
		Use:   "gen <Name> [--topic <pattern>] [--lang node|python|go] [--hooks join,handle_in,leave] [--out <dir>] [--force] [--app-url <url>]",
		Short: "Generate a webhook handler and a phoenix.js client for a channel",
		Long: `Generates the app side of a channel decided by webhooks (docs/webhooks.md),
as mix phx.gen.channel does for Phoenix:

  channels_<name>.mjs|.py|.go   a webhook handler for your app (Node.js 20,
                                Python 3.11 or Go, standard library only) that
                                verifies X-Channels-Signature and answers the
                                chosen hooks; your logic goes where it says
                                TODO(app) (defaults: join allows, handle_in
                                broadcasts the payload and replies ok, leave
                                logs a line)
  <name>_socket.js              a phoenix.js client module: connect, join the
                                topic, push, listen to events

<Name> is an identifier (Room, ChatRoom); files and paths use its snake_case
form (room, chat_room). Existing files are not overwritten unless --force.

It then prints the channel block to paste into the channels { … } block of
the Caddyfile, next to webhook_secret {env.CHANNELS_WEBHOOK_SECRET}, with
upstream URLs under --app-url, and the command that starts the handler.

  caddy channels gen Room
  caddy channels gen ChatRoom --topic 'chat:*' --lang python --hooks join,handle_in --out app/`,
		SilenceUsage: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("gen takes one argument, the channel's name (e.g. Room), got %d", len(args))
			}
			return nil
		},
	}
	c.RunE = caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
		o.Name = fl.Arg(0)
		o.Hooks = []string{} // empty is an error, unlike nil
		if strings.TrimSpace(hooks) != "" {
			o.Hooks = strings.Split(hooks, ",")
		}
		res, err := gen.Generate(o)
		var optErr *gen.OptionError
		switch {
		case errors.As(err, &optErr):
			return 2, err
		case err != nil:
			return 1, err
		}
		fmt.Fprint(c.OutOrStdout(), res.Instructions)
		return 0, nil
	})
	f := c.Flags()
	f.StringVar(&o.Topic, "topic", "", "topic pattern of the channel, an exact topic or a prefix ending in * (default '<name>:*')")
	f.StringVar(&o.Lang, "lang", gen.DefaultLang, "language of the webhook handler: "+strings.Join(gen.Languages, ", "))
	f.StringVar(&hooks, "hooks", strings.Join(gen.Hooks, ","), "comma-separated hooks the handler answers, a subset of "+strings.Join(gen.Hooks, ","))
	f.StringVar(&o.Out, "out", gen.DefaultOut, "directory to write the files to, created if missing")
	f.BoolVar(&o.Force, "force", false, "overwrite existing files")
	f.StringVar(&o.AppURL, "app-url", gen.DefaultAppURL, "base URL of the handler: it listens on its host and port, and the Caddyfile block calls <app-url>/channels/<name>/<hook>")
	return c
}
