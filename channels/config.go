package channels

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by Config.withDefaults.
const (
	// DefaultPath is where sockets are mounted: phoenix.js connects to
	// DefaultPath + "/websocket".
	DefaultPath = "/socket"
	// DefaultIdleTimeout closes a socket that sent no frame for this long.
	// phoenix.js sends a heartbeat every 30 s, so 60 s leaves one miss of
	// slack, as Phoenix's own transport timeout does.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultWriteTimeout bounds one write to a socket; a peer that does
	// not read for this long is disconnected (see Config.WriteTimeout for
	// the exact bound).
	DefaultWriteTimeout = 10 * time.Second
	// MaxWriteDelay is the largest Config.WriteDelay.
	MaxWriteDelay = time.Second
	// DefaultMaxFrameSize is the largest inbound WebSocket message.
	DefaultMaxFrameSize = 1 << 20
	// DefaultMaxChannels is the number of topics one socket may join, as
	// Phoenix's max_channels_per_transport.
	DefaultMaxChannels = 100
	// DefaultMaxQueueSize is the number of outbound bytes that may wait for
	// a slow socket before it is disconnected.
	DefaultMaxQueueSize = 1 << 20
)

// Config is everything a Hub needs to serve sockets. A Hub's Config can be
// replaced at any time with Hub.SetConfig: open sockets apply the new rules
// to their next join or push.
type Config struct {
	// Rules decides connects, joins and inbound events.
	Rules *Rules
	// Origins is the check_origin policy; nil means "conn" (the Origin
	// must match the request's own scheme, host and port).
	Origins *OriginPolicy
	// IdleTimeout closes a socket that sends nothing for this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to a socket. The deadline is moved
	// only when less than half of it remains, so a write to a peer that
	// stopped reading fails, and the socket is closed, between
	// WriteTimeout/2 and WriteTimeout after that write began.
	WriteTimeout time.Duration
	// WriteDelay, when positive, makes a socket's writer wait up to this
	// long before writing, so that frames sent meanwhile go out in the same
	// system call: fewer syscalls for sockets receiving several frames per
	// delay, at the cost of up to WriteDelay of added latency. A close
	// frame, or a batch reaching 1024 frames or half of MaxQueueSize, is
	// written at once. 0 (the default) writes as soon as a frame is queued.
	// At most MaxWriteDelay; see ValidateWriteDelay. Like WriteTimeout,
	// it is fixed for a socket when it connects.
	WriteDelay time.Duration
	// MaxFrameSize is the largest inbound message in bytes; a larger one
	// closes the socket with 1009.
	MaxFrameSize int64
	// MaxChannels is how many topics one socket may join at once.
	MaxChannels int
	// MaxQueueSize is the per-socket outbound byte budget.
	MaxQueueSize int
	// APIKey enables the HTTP publish API when non-empty.
	APIKey string
	// Logger receives the engine's logs; nil discards them.
	Logger *zap.Logger
	// Webhooks carries the calls of upstream rules (a *webhook.Client).
	// The owner of the Config creates it and closes it when the Config is
	// no longer used. Without it, upstream rules fail as unavailable.
	Webhooks WebhookClient
	// ClientIP returns the client address of a request for webhooks'
	// remote_ip; nil uses the host of the request's RemoteAddr.
	ClientIP func(*http.Request) string
	// Drain shapes how Hub.Close closes the sockets (see DrainConfig).
	Drain DrainConfig
	// LongPoll shapes the LongPoll transport (see LongPollConfig).
	LongPoll LongPollConfig
	// Auth verifies a token at connect (see AuthConfig).
	Auth AuthConfig
	// Limits are the abuse limits (see LimitsConfig).
	Limits LimitsConfig
	// Compression is permessage-deflate on the WebSocket transport (see
	// CompressionConfig); off by default.
	Compression CompressionConfig
}

// clientIP returns the client address of r.
func (c *Config) clientIP(r *http.Request) string {
	if c.ClientIP != nil {
		return c.ClientIP(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// defaultRules allow every connect and refuse every join.
var defaultRules, _ = CompileRules(RulesSpec{})

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() *Config {
	if c.Rules == nil {
		c.Rules = defaultRules
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	c.WriteDelay = min(max(c.WriteDelay, 0), MaxWriteDelay)
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.MaxQueueSize <= 0 {
		c.MaxQueueSize = DefaultMaxQueueSize
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Drain = c.Drain.withDefaults()
	c.Limits = c.Limits.withDefaults()
	c.Compression = c.Compression.withDefaults()
	c.LongPoll = c.LongPoll.withDefaults(c.MaxFrameSize)
	return &c
}

// ValidateWriteDelay checks a Config.WriteDelay: from 0 to MaxWriteDelay.
// Config itself clamps an out-of-range value.
func ValidateWriteDelay(d time.Duration) error {
	if d < 0 || d > MaxWriteDelay {
		return fmt.Errorf("write delay %v out of range: want 0 to %v", d, MaxWriteDelay)
	}
	return nil
}
