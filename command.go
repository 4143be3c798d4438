package caddychannels

// The `caddy channels` subcommands, registered with Caddy's command line so
// that every build with this module has them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "channels",
		Usage: "gen|publish [flags]",
		Short: "Operate a caddy-channels gateway from the shell",
		Long: `
Commands for a caddy-channels gateway.

  caddy channels gen       generate a webhook handler and a phoenix.js client for a channel
  caddy channels publish   publish an event to a topic through POST {path}/api/broadcast
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(publishCommand())
			cmd.AddCommand(genCommand())
		},
	})
}

// Environment variables read by `caddy channels publish` when its flags
// are not given.
const (
	envPublishURL = "CHANNELS_URL"
	envAPIKey     = "CHANNELS_API_KEY"
)

// defaultPublishURL is the mount point `caddy channels publish` talks to
// when neither --url nor CHANNELS_URL names one.
const defaultPublishURL = "http://localhost:8080/socket"

// publishCommand is `caddy channels publish`.
func publishCommand() *cobra.Command {
	var p publishArgs
	c := &cobra.Command{
		Use:   "publish --topic <topic> --event <event> [--payload <json>] [--url <socket url>] [--key <api key>]",
		Short: "Publish an event to a topic",
		Long: `Publishes one event to every subscriber of a topic, on every node, through the
gateway's publish API (POST {path}/api/broadcast, enabled by api_key).

--url is the mount point of the channels handler, e.g. https://chat.example.com/socket
(default $` + envPublishURL + `, else ` + defaultPublishURL + `). --key is the api_key (default
$` + envAPIKey + `). --payload is a JSON object (default {}).

Exit status 0 when the gateway accepted the event, 1 when it refused it (the
gateway's error is printed), 2 for bad flags or when the gateway is unreachable.

  caddy channels publish --topic room:lobby --event new_msg --payload '{"body":"hello"}'`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
	}
	c.RunE = caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
		return p.run(c.Context(), c.OutOrStdout())
	})
	f := c.Flags()
	f.StringVar(&p.topic, "topic", "", "topic to publish to (required)")
	f.StringVar(&p.event, "event", "", "event name (required)")
	f.StringVar(&p.payload, "payload", "{}", "payload, a JSON object")
	f.StringVar(&p.url, "url", "", "mount point of the channels handler (default $"+envPublishURL+", else "+defaultPublishURL+")")
	f.StringVar(&p.key, "key", "", "api_key of the handler (default $"+envAPIKey+")")
	f.DurationVar(&p.timeout, "timeout", 10*time.Second, "how long to wait for the gateway")
	return c
}

// publishArgs are the flags of `caddy channels publish`.
type publishArgs struct {
	topic, event, payload, url, key string
	timeout                         time.Duration
}

// run publishes and prints the gateway's answer; it returns the exit
// status: 0 accepted, 1 refused by the gateway, 2 bad flags or no answer.
func (p *publishArgs) run(ctx context.Context, out io.Writer) (int, error) {
	req, err := p.request(ctx)
	if err != nil {
		return 2, err
	}
	client := &http.Client{Timeout: p.timeout}
	resp, err := client.Do(req)
	if err != nil {
		return 2, fmt.Errorf("publishing to %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode == http.StatusAccepted {
		fmt.Fprintf(out, "published %s to %s (%s)\n", p.event, p.topic, text)
		return 0, nil
	}
	why := text
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		why = "wrong or missing api key (--key or $" + envAPIKey + ")"
	case http.StatusNotFound:
		why = "no publish API at this URL: is --url the handler's path (e.g. …/socket) and api_key set?"
	}
	return 1, fmt.Errorf("the gateway refused the event: %s: %s", resp.Status, why)
}

// request builds the API call from the flags and the environment.
func (p *publishArgs) request(ctx context.Context) (*http.Request, error) {
	if p.topic == "" || p.event == "" {
		return nil, errors.New("--topic and --event are required")
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p.payload), &payload); err != nil || payload == nil {
		return nil, fmt.Errorf("--payload must be a JSON object: %q", p.payload)
	}
	base := p.url
	if base == "" {
		base = os.Getenv(envPublishURL)
	}
	if base == "" {
		base = defaultPublishURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url must be an http:// or https:// URL of the handler's path, got %q", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/broadcast"
	key := p.key
	if key == "" {
		key = os.Getenv(envAPIKey)
	}
	if key == "" {
		return nil, errors.New("no api key: pass --key or set $" + envAPIKey)
	}
	body, err := json.Marshal(struct {
		Topic   string          `json:"topic"`
		Event   string          `json:"event"`
		Payload json.RawMessage `json:"payload"`
	}{p.topic, p.event, json.RawMessage(p.payload)})
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return req, nil
}
