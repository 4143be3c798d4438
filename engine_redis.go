package caddychannels

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
	redisbroker "github.com/caddy-channels/caddy-channels/pubsub/redis"
)

func init() {
	caddy.RegisterModule(RedisEngine{})
}

// RedisEngine is channels.pubsub.redis: broadcasts over Redis pub/sub
// (one channel per topic, subscribed only while a local socket is in it),
// history in Redis with "<epoch>:<seq>" positions, and presence entries
// that a live node refreshes and that expire when it dies. See the
// README's "Many nodes" section for what an outage loses.
type RedisEngine struct {
	// URL is redis://[[user]:password@]host[:port][/db], rediss:// for
	// TLS, or unix://…; placeholders such as {env.REDIS_URL} are resolved.
	// Default: redis://127.0.0.1:6379/0.
	URL string `json:"url,omitempty"`
	// KeyPrefix starts every key and pub/sub channel name; deployments that
	// share a Redis server need different prefixes. Default "channels:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// PresenceTTL is how long the presences of a dead node survive. Default
	// 30s.
	PresenceTTL caddy.Duration `json:"presence_ttl,omitempty"`
	// DialTimeout bounds opening a connection. Default 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// CommandTimeout bounds each call; calls during an outage fail within
	// about this long. Default 2s.
	CommandTimeout caddy.Duration `json:"command_timeout,omitempty"`
	// ReconnectMin and ReconnectMax bound the reconnect backoff. Defaults
	// 100ms and 5s.
	ReconnectMin caddy.Duration `json:"reconnect_min,omitempty"`
	ReconnectMax caddy.Duration `json:"reconnect_max,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RedisEngine) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "channels.pubsub.redis",
		New: func() caddy.Module { return new(RedisEngine) },
	}
}

// options converts the config, resolving placeholders.
func (e *RedisEngine) options(logger *zap.Logger) redisbroker.Options {
	url := caddy.NewReplacer().ReplaceKnown(e.URL, "")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	return redisbroker.Options{
		URL:            url,
		KeyPrefix:      e.KeyPrefix,
		PresenceTTL:    time.Duration(e.PresenceTTL),
		DialTimeout:    time.Duration(e.DialTimeout),
		CommandTimeout: time.Duration(e.CommandTimeout),
		ReconnectMin:   time.Duration(e.ReconnectMin),
		ReconnectMax:   time.Duration(e.ReconnectMax),
		Logger:         logger,
	}
}

// Provision checks the options without connecting.
func (e *RedisEngine) Provision(caddy.Context) error {
	b, err := redisbroker.New(e.options(zap.NewNop()))
	if err != nil {
		return err
	}
	return b.Close()
}

// NewEngine makes the Redis broker and presence manager. Neither fails
// when Redis is down: they reconnect in the background and log.
func (e *RedisEngine) NewEngine(logger *zap.Logger) (pubsub.Broker, pubsub.PresenceManager, error) {
	opts := e.options(logger.Named("redis"))
	return newEngine("redis",
		func() (*redisbroker.Broker, error) { return redisbroker.New(opts) },
		func() (*redisbroker.Presence, error) { return redisbroker.NewPresence(opts) })
}

// UnmarshalCaddyfile reads
//
//	pubsub redis [<url>] {
//		key_prefix      <prefix>
//		presence_ttl    <duration>
//		dial_timeout    <duration>
//		command_timeout <duration>
//		reconnect_min   <duration>
//		reconnect_max   <duration>
//	}
func (e *RedisEngine) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the engine name
	if d.NextArg() {
		e.URL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	durations := map[string]*caddy.Duration{
		"presence_ttl": &e.PresenceTTL, "dial_timeout": &e.DialTimeout, "command_timeout": &e.CommandTimeout,
		"reconnect_min": &e.ReconnectMin, "reconnect_max": &e.ReconnectMax,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "key_prefix" {
			if err := oneArg(d, &e.KeyPrefix); err != nil {
				return err
			}
			continue
		}
		dst, ok := durations[name]
		if !ok {
			return d.Errf("pubsub redis: unrecognized option %q", name)
		}
		if err := durationArg(d, dst); err != nil {
			return err
		}
	}
	return nil
}

// Interface guards.
var (
	_ Engine                = (*RedisEngine)(nil)
	_ caddy.Provisioner     = (*RedisEngine)(nil)
	_ caddyfile.Unmarshaler = (*RedisEngine)(nil)
)
