// Package caddychannels is the Caddy module http.handlers.channels: it
// terminates Phoenix Channels sockets (phoenix.js, Swift, Kotlin, Dart
// clients) and routes topics by declarative rules. The protocol engine
// lives in the channels package, which has no Caddy imports; this package
// only adapts it to Caddy's configuration, lifecycle and errors.
package caddychannels

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/channels"
	"github.com/caddy-channels/caddy-channels/webhook"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves Phoenix Channels sockets at {path}/websocket and the
// publish API at {path}/api/broadcast; every other request goes to the next
// handler.
//
// Open sockets survive config reloads: the hub that holds them is shared
// through a usage pool keyed by path, so a reload with changed rules keeps
// every socket and applies the new rules to later joins and pushes. When
// the handler leaves the config, its sockets are closed with code 1001 so
// clients reconnect.
type Handler struct {
	// Path is the mount point; phoenix.js connects to Path + "/websocket".
	// Default: /socket.
	Path string `json:"path,omitempty"`

	// CheckOrigin is the Origin policy of the WebSocket handshake. Empty
	// (the default) or ["conn"]: the Origin's scheme, host and port must
	// equal the request's own, like Phoenix's check_origin: :conn.
	// ["off"]: no check. Otherwise a list of allowed origins such as
	// "https://example.com", "//example.com" (any scheme) or
	// "https://*.example.com" (the domain and any subdomain). Requests
	// without an Origin header are always allowed.
	CheckOrigin []string `json:"check_origin,omitempty"`

	// APIKey enables POST {path}/api/broadcast, authenticated with
	// "Authorization: Bearer <api_key>". Placeholders such as
	// {env.CHANNELS_API_KEY} are replaced at provision time. Without a key
	// the API answers 404.
	APIKey string `json:"api_key,omitempty"`

	// The rules: connect, assign, id and channels.
	channels.RulesSpec

	// PubSub is the engine that carries broadcasts between nodes and
	// stores history and presence: a module of namespace channels.pubsub
	// named by its "engine" key (memory, redis or nats). Default: memory
	// (one node). Handlers with the same path and the same pubsub settings
	// share a hub across reloads; changing the settings starts a new hub
	// (sockets of the old one reconnect).
	PubSubRaw json.RawMessage `json:"pubsub,omitempty" caddy:"namespace=channels.pubsub inline_key=engine"`

	// WebhookSecret signs every webhook call (X-Channels-Signature, see
	// docs/webhooks.md). Placeholders such as {env.CHANNELS_WEBHOOK_SECRET}
	// are replaced at provision time. Empty: calls are not signed.
	WebhookSecret string `json:"webhook_secret,omitempty"`

	// WebhookTimeout bounds every webhook call. Default: 3s.
	WebhookTimeout caddy.Duration `json:"webhook_timeout,omitempty"`

	// IdleTimeout closes a socket that sends no frame for this long
	// (heartbeats count). Default: 60s.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// WriteTimeout disconnects a socket whose peer does not accept a write
	// for this long. The deadline is moved only when less than half of it
	// remains, so a stuck peer is disconnected between write_timeout/2 and
	// write_timeout after the write that blocks began. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// WriteDelay makes a socket wait up to this long before writing, so
	// that frames sent meanwhile go out in one system call: fewer syscalls
	// under fan-out, up to write_delay of added latency. A close frame or
	// a full batch is written at once. Default: 0 (write at once); at
	// most 1s.
	WriteDelay caddy.Duration `json:"write_delay,omitempty"`

	// MaxFrameSize is the largest inbound message in bytes; a larger one
	// closes the socket with 1009. Default: 1 MiB.
	MaxFrameSize int64 `json:"max_frame_size,omitempty"`

	// MaxChannels is how many topics one socket may join at once; the join
	// beyond it gets {"reason":"too many channels joined"}. Default: 100.
	MaxChannels int `json:"max_channels,omitempty"`

	// MaxQueueSize is how many outbound bytes may wait for one socket; a
	// socket that falls further behind is disconnected (close 1013) and
	// logged instead of growing memory. Default: 1 MiB.
	MaxQueueSize int `json:"max_queue_size,omitempty"`

	// Drain shapes how sockets are closed at shutdown, or when a config
	// no longer has this handler: in batches, so that clients do not all
	// reconnect in the same instant. See Drain.
	Drain *Drain `json:"drain,omitempty"`

	// LongPoll shapes the LongPoll transport at {path}/longpoll, on by
	// default (phoenix.js falls back to it when WebSockets fail). See
	// LongPoll.
	LongPoll *LongPoll `json:"longpoll,omitempty"`

	// Auth verifies a token at connect, before the connect rules (auth
	// jwt). See Auth.
	Auth *Auth `json:"auth,omitempty"`

	// Limits are the abuse limits: message, join and connect rates, and
	// sockets per address and per id. See Limits.
	Limits *Limits `json:"limits,omitempty"`

	// Compression is permessage-deflate (RFC 7692) on the WebSocket
	// transport, negotiated with clients that offer it; absent, it is off.
	// See Compression.
	Compression *Compression `json:"compression,omitempty"`

	authClose func() // closes the token verifier
	cfg       channels.Config
	webhooks  *webhook.Client
	shared    *sharedHub
	poolKey   string
	logger    *zap.Logger
}

// Drain is the socket drainer's settings (Phoenix's drainer options): the
// sockets are closed with 1001 in batches of at least Batch, one batch per
// Interval, all within Timeout (batches grow when a node holds more
// sockets than Batch × Timeout / Interval); sockets still open at Timeout
// are cut. Leave webhooks (reason "shutdown") and presence leaves go out
// for every drained socket.
type Drain struct {
	// Batch is the smallest number of sockets closed per batch. Default
	// 10000.
	Batch int `json:"batch,omitempty"`
	// Interval is the pause between batches. Default 2s.
	Interval caddy.Duration `json:"interval,omitempty"`
	// Timeout bounds the whole drain, leave webhooks included. Default
	// 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// config returns the engine's drain settings (zero fields take the
// defaults).
func (d *Drain) config() channels.DrainConfig {
	if d == nil {
		return channels.DrainConfig{}
	}
	return channels.DrainConfig{Batch: d.Batch, Interval: timeDuration(d.Interval), Timeout: timeDuration(d.Timeout)}
}

// LongPoll is the LongPoll transport's settings.
type LongPoll struct {
	// Off disables {path}/longpoll: requests to it go to the next handler.
	Off bool `json:"off,omitempty"`
	// Window is how long a poll waits for messages (Phoenix's window_ms);
	// a session that does not poll for 1.5 windows expires. Default 10s.
	Window caddy.Duration `json:"window,omitempty"`
	// Secret signs session tokens; supports placeholders such as
	// {env.CHANNELS_LONGPOLL_SECRET}. Nodes that serve each other's
	// sessions share it. Default: a random key per node.
	Secret string `json:"secret,omitempty"`
	// MaxSessions caps the open LongPoll sessions of this handler.
	// Default 100000.
	MaxSessions int `json:"max_sessions,omitempty"`
	// MaxBodySize caps a POST body in bytes. Default max_frame_size × 100.
	MaxBodySize int64 `json:"max_body_size,omitempty"`
}

// config returns the engine's LongPoll settings.
func (l *LongPoll) config(repl *caddy.Replacer) channels.LongPollConfig {
	if l == nil {
		return channels.LongPollConfig{}
	}
	c := channels.LongPollConfig{Off: l.Off, Window: timeDuration(l.Window), MaxSessions: l.MaxSessions, MaxBodySize: l.MaxBodySize}
	if l.Secret != "" {
		c.Secret = []byte(repl.ReplaceKnown(l.Secret, ""))
	}
	return c
}

// Compression is the WebSocket transport's permessage-deflate setting:
// present and not Off, it is negotiated with clients that offer it,
// without context takeover either way, so each broadcast is compressed
// once for all its subscribers. Inbound compressed messages count their
// inflated size against max_frame_size (a larger one is closed with 1009).
type Compression struct {
	// Off disables compression (as when the setting is absent).
	Off bool `json:"off,omitempty"`
	// Threshold is the smallest payload in bytes sent compressed; smaller
	// messages go plain. Default 512.
	Threshold int `json:"threshold,omitempty"`
	// Level is the DEFLATE level, 1 (fastest) to 9 (smallest). Default 1.
	Level int `json:"level,omitempty"`
}

// config returns the engine's compression settings.
func (c *Compression) config() channels.CompressionConfig {
	if c == nil || c.Off {
		return channels.CompressionConfig{}
	}
	return channels.CompressionConfig{Enabled: true, Threshold: c.Threshold, Level: c.Level}
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.channels",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision compiles the rules and attaches the handler to its hub.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	path, err := normalizePath(h.Path)
	if err != nil {
		return err
	}
	h.Path = path
	repl := caddy.NewReplacer()
	rules, err := channels.CompileRules(h.RulesSpec.MapUpstreams(func(u string) string { return repl.ReplaceKnown(u, "") }))
	if err != nil {
		return fmt.Errorf("compiling rules: %w", err)
	}
	origins, err := channels.ParseOriginPolicy(h.CheckOrigin)
	if err != nil {
		return fmt.Errorf("check_origin: %w", err)
	}
	if h.MaxFrameSize < 0 || h.MaxChannels < 0 || h.MaxQueueSize < 0 || h.IdleTimeout < 0 || h.WriteTimeout < 0 {
		return errors.New("limits and timeouts must not be negative")
	}
	if d := h.Drain; d != nil && (d.Batch < 0 || d.Interval < 0 || d.Timeout < 0) {
		return errors.New("drain: batch, interval and timeout must not be negative")
	}
	if l := h.LongPoll; l != nil && (l.Window < 0 || l.MaxSessions < 0 || l.MaxBodySize < 0) {
		return errors.New("longpoll: window, max_sessions and max_body_size must not be negative")
	}
	if err := channels.ValidateWriteDelay(timeDuration(h.WriteDelay)); err != nil {
		return fmt.Errorf("write_delay: %w", err)
	}
	if c := h.Compression; c != nil && !c.Off {
		if c.Threshold < 0 {
			return errors.New("compression: threshold must not be negative")
		}
		if c.Level != 0 {
			if err := channels.ValidateCompressionLevel(c.Level); err != nil {
				return fmt.Errorf("compression: %w", err)
			}
		}
	}
	limits, err := h.Limits.config()
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	auth, authClose, err := h.Auth.config(ctx, repl, h.logger.Named("auth"))
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	h.authClose = authClose
	if auth.Verifier == nil {
		for _, c := range rules.Channels {
			if c.Join.Action == channels.GateJWT {
				return fmt.Errorf("channel %s: join jwt verifies with the keys of auth jwt, which is not configured", c.Pattern.String())
			}
		}
	}
	h.webhooks = webhook.New(webhook.Config{
		Secret:  repl.ReplaceKnown(h.WebhookSecret, ""),
		Timeout: timeDuration(h.WebhookTimeout),
		Logger:  h.logger.Named("webhook"),
	})
	h.cfg = channels.Config{
		Rules:        rules,
		Origins:      origins,
		IdleTimeout:  timeDuration(h.IdleTimeout),
		WriteTimeout: timeDuration(h.WriteTimeout),
		WriteDelay:   timeDuration(h.WriteDelay),
		MaxFrameSize: h.MaxFrameSize,
		MaxChannels:  h.MaxChannels,
		MaxQueueSize: h.MaxQueueSize,
		APIKey:       repl.ReplaceKnown(h.APIKey, ""),
		Logger:       h.logger,
		Webhooks:     h.webhooks,
		ClientIP:     clientIP,
		Drain:        h.Drain.config(),
		LongPoll:     h.LongPoll.config(repl),
		Auth:         auth,
		Limits:       limits,
		Compression:  h.Compression.config(),
	}

	// The pool key includes the engine settings (before LoadModule
	// consumes them): a reload with the same settings keeps the hub and
	// its broker connection.
	poolKey := "channels:" + h.Path
	var engine Engine = MemoryEngine{}
	if len(h.PubSubRaw) > 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, h.PubSubRaw); err != nil {
			return fmt.Errorf("pubsub: %w", err)
		}
		poolKey += "\x00" + compact.String()
		mod, err := ctx.LoadModule(h, "PubSubRaw")
		if err != nil {
			return fmt.Errorf("loading pubsub engine: %w", err)
		}
		engine = mod.(Engine)
	}
	h.poolKey = poolKey
	val, _, err := hubs.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		broker, presence, err := engine.NewEngine(h.logger.Named("pubsub"))
		if err != nil {
			return nil, fmt.Errorf("starting pubsub engine: %w", err)
		}
		hub, err := channels.NewHub(h.cfg, broker, presence)
		if err != nil {
			return nil, err
		}
		return &sharedHub{hub: hub, path: h.Path}, nil
	})
	if err != nil {
		h.poolKey = ""
		return fmt.Errorf("starting hub for %s: %w", h.Path, err)
	}
	h.shared = val.(*sharedHub)
	h.shared.attach(h)
	if err := registerMetrics(ctx); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}

// Validate checks the provisioned handler.
func (h *Handler) Validate() error {
	if h.shared == nil {
		return errors.New("handler not provisioned")
	}
	return nil
}

// Cleanup detaches the handler from its hub. The hub, with its sockets,
// lives on while a newer config uses the same path and pubsub settings;
// otherwise it is drained (see Drain): in the background when a reload
// dropped it, so that the reload does not wait, and before Cleanup returns
// when the process exits, so that the drain completes.
func (h *Handler) Cleanup() error {
	var handedOver bool
	if h.poolKey != "" {
		if h.shared != nil {
			handedOver = h.shared.detach(h)
		}
		deleted, err := hubs.Delete(h.poolKey)
		h.poolKey = ""
		handedOver = handedOver && deleted
		if err != nil {
			return err
		}
	}
	// The last handler's webhook client carries the drained sockets'
	// leave webhooks: the hub closes it once drained. Any other is closed
	// now (sockets use the config in force).
	if h.webhooks != nil && !handedOver {
		h.webhooks.Close()
	}
	if h.authClose != nil {
		h.authClose()
	}
	return nil
}

// ServeHTTP serves the socket transport and the API; other requests pass
// through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rest, ok := strings.CutPrefix(r.URL.Path, h.Path)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	hub := h.shared.hub
	switch rest {
	case "/websocket":
		if err := hub.ServeWebSocket(w, r); err != nil {
			var he *channels.HTTPError
			if errors.As(err, &he) {
				return caddyhttp.Error(he.Status, he)
			}
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		return nil
	case "/longpoll":
		if h.LongPoll != nil && h.LongPoll.Off {
			return next.ServeHTTP(w, r)
		}
		hub.ServeLongPoll(w, r)
		return nil
	case "/api/broadcast":
		hub.ServeBroadcastAPI(w, r)
		return nil
	case "/api/disconnect":
		hub.ServeDisconnectAPI(w, r)
		return nil
	case "/api/presence":
		hub.ServePresenceAPI(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// hubs holds the hubs shared across config reloads, keyed by path.
var hubs = caddy.NewUsagePool()

// sharedHub is a pooled hub plus the handlers (config generations) using
// it. The newest attached handler's config is in force; if it is cleaned
// up first (a reload that failed), the previous one is restored.
type sharedHub struct {
	hub  *channels.Hub
	path string

	mu       sync.Mutex
	handlers []*Handler
	webhooks *webhook.Client // the last handler's, closed after the drain
}

func (s *sharedHub) attach(h *Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append(s.handlers, h)
	s.hub.SetConfig(h.cfg)
}

// detach removes h. When h was the last handler it returns true: the
// hub is about to be drained and closed, with h's config in force, and
// h's webhook client is closed after the drain (see Destruct).
func (s *sharedHub) detach(h *Handler) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.handlers {
		if x == h {
			s.handlers = append(s.handlers[:i], s.handlers[i+1:]...)
			break
		}
	}
	if n := len(s.handlers); n > 0 {
		s.hub.SetConfig(s.handlers[n-1].cfg)
		return false
	}
	s.webhooks = h.webhooks
	return true
}

// Destruct drains the hub once no config uses it, then closes the webhook
// client that carried the drained sockets' leave webhooks. When the
// process is exiting it drains before returning, so that the process
// lives until every socket is closed; on a reload it drains in the
// background and returns at once (the new config is already serving).
func (s *sharedHub) Destruct() error {
	if caddy.Exiting() {
		return s.shutdown()
	}
	go func() {
		if err := s.shutdown(); err != nil {
			s.hub.Config().Logger.Error("closing the hub of a removed handler", zap.String("path", s.path), zap.Error(err))
		}
	}()
	return nil
}

// shutdown drains and closes the hub, then flushes and closes the
// webhook client for what is left of the drain window.
func (s *sharedHub) shutdown() error {
	start := time.Now()
	timeout := s.hub.Config().Drain.Timeout
	err := s.hub.Close()
	s.mu.Lock()
	wh := s.webhooks
	s.mu.Unlock()
	if wh != nil {
		wh.CloseWithin(timeout - time.Since(start))
	}
	return err
}

// clientIP is the client address Caddy determined for the request (it
// honours trusted_proxies), for webhooks' remote_ip.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// normalizePath defaults and checks the mount path.
func normalizePath(p string) (string, error) {
	if p == "" {
		return channels.DefaultPath, nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must start with /", p)
	}
	p = strings.TrimRight(p, "/")
	return p, nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
	_ caddy.Destructor            = (*sharedHub)(nil)
)
