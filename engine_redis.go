package caddychannels

import (
	"strconv"
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
	// Default (without Sentinel or Cluster): redis://127.0.0.1:6379/0.
	URL string `json:"url,omitempty"`
	// Sentinel finds the master through Redis Sentinel and follows its
	// failovers.
	Sentinel *RedisSentinel `json:"sentinel,omitempty"`
	// Cluster lists host:port of Redis Cluster nodes (any that answers
	// tells the others): a topic's keys and sharded pub/sub channel live on
	// the shard of its hash slot.
	Cluster []string `json:"cluster,omitempty"`
	// Username and Password authenticate to the data nodes with Sentinel
	// or Cluster (a URL carries its own); placeholders are resolved.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB is the database with Sentinel. Default 0.
	DB int `json:"db,omitempty"`
	// TLS dials the data nodes and sentinels with TLS.
	TLS bool `json:"tls,omitempty"`
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

// RedisSentinel names the sentinels and the master they monitor.
type RedisSentinel struct {
	// Addrs lists host:port of sentinels.
	Addrs []string `json:"addrs,omitempty"`
	// MasterName is the monitored master's name. Required.
	MasterName string `json:"master_name,omitempty"`
	// Username and Password authenticate to the sentinels; placeholders
	// are resolved.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
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
	repl := caddy.NewReplacer()
	url := repl.ReplaceKnown(e.URL, "")
	if url == "" && e.Sentinel == nil && len(e.Cluster) == 0 {
		url = "redis://127.0.0.1:6379/0"
	}
	var sentinel redisbroker.SentinelOptions
	if e.Sentinel != nil {
		sentinel = redisbroker.SentinelOptions{
			Addrs:      e.Sentinel.Addrs,
			MasterName: e.Sentinel.MasterName,
			Username:   repl.ReplaceKnown(e.Sentinel.Username, ""),
			Password:   repl.ReplaceKnown(e.Sentinel.Password, ""),
		}
	}
	return redisbroker.Options{
		URL:            url,
		Sentinel:       sentinel,
		Cluster:        redisbroker.ClusterOptions{Addrs: e.Cluster},
		Username:       repl.ReplaceKnown(e.Username, ""),
		Password:       repl.ReplaceKnown(e.Password, ""),
		DB:             e.DB,
		TLS:            e.TLS,
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
//	pubsub redis [<url> | sentinel <addr...> | cluster <addr...>] {
//		master_name       <name>     # sentinel: required
//		sentinel_username <user>     # sentinel
//		sentinel_password <password> # sentinel
//		username          <user>     # sentinel, cluster: data nodes
//		password          <password> # sentinel, cluster: data nodes
//		db                <n>        # sentinel
//		tls                          # sentinel, cluster
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
		switch d.Val() {
		case "sentinel":
			e.Sentinel = &RedisSentinel{Addrs: d.RemainingArgs()}
			if len(e.Sentinel.Addrs) == 0 {
				return d.Err("pubsub redis sentinel: no sentinel address")
			}
		case "cluster":
			e.Cluster = d.RemainingArgs()
			if len(e.Cluster) == 0 {
				return d.Err("pubsub redis cluster: no node address")
			}
		default:
			e.URL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		}
	}
	if err := e.unmarshalBlock(d); err != nil {
		return err
	}
	return e.checkMode(d)
}

// unmarshalBlock reads the options block of UnmarshalCaddyfile.
func (e *RedisEngine) unmarshalBlock(d *caddyfile.Dispenser) error {
	strs := map[string]*string{"key_prefix": &e.KeyPrefix, "username": &e.Username, "password": &e.Password}
	sentinelOnly := map[string]bool{"master_name": true, "sentinel_username": true, "sentinel_password": true, "db": true}
	durations := map[string]*caddy.Duration{
		"presence_ttl": &e.PresenceTTL, "dial_timeout": &e.DialTimeout, "command_timeout": &e.CommandTimeout,
		"reconnect_min": &e.ReconnectMin, "reconnect_max": &e.ReconnectMax,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if sentinelOnly[name] && e.Sentinel == nil {
			return d.Errf("pubsub redis: %s needs the sentinel form (pubsub redis sentinel <addr...>)", name)
		}
		switch name {
		case "master_name":
			if err := oneArg(d, &e.Sentinel.MasterName); err != nil {
				return err
			}
			continue
		case "sentinel_username":
			if err := oneArg(d, &e.Sentinel.Username); err != nil {
				return err
			}
			continue
		case "sentinel_password":
			if err := oneArg(d, &e.Sentinel.Password); err != nil {
				return err
			}
			continue
		case "db":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("pubsub redis: db: invalid database %q", v)
			}
			e.DB = n
			continue
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			e.TLS = true
			continue
		}
		if dst, ok := strs[name]; ok {
			if err := oneArg(d, dst); err != nil {
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

// checkMode rejects options that do not fit the chosen form.
func (e *RedisEngine) checkMode(d *caddyfile.Dispenser) error {
	ha := e.Sentinel != nil || len(e.Cluster) > 0
	switch {
	case e.Sentinel != nil && e.Sentinel.MasterName == "":
		return d.Err("pubsub redis sentinel: master_name is required")
	case !ha && (e.Username != "" || e.Password != "" || e.TLS):
		return d.Err("pubsub redis: username, password and tls go with sentinel or cluster; put them in the URL (rediss://user:pass@host)")
	}
	return nil
}

// Interface guards.
var (
	_ Engine                = (*RedisEngine)(nil)
	_ caddy.Provisioner     = (*RedisEngine)(nil)
	_ caddyfile.Unmarshaler = (*RedisEngine)(nil)
)
