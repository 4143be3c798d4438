package redisbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultKeyPrefix      = "channels:"
	DefaultPresenceTTL    = 30 * time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultCommandTimeout = 2 * time.Second
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
)

// minPresenceTTL is the shortest PresenceTTL accepted.
const minPresenceTTL = 100 * time.Millisecond

// Options configures a Broker or a Presence. The zero value of every field
// but URL selects its default.
type Options struct {
	// URL names the Redis server:
	//
	//	redis://[[user]:password@]host[:port][/db]
	//	rediss://...            (TLS, same form)
	//	unix://[[user]:password@]/path/to/redis.sock[?db=N]
	//
	// The port defaults to 6379 and the database to 0. The query parameters
	// dial_timeout, write_timeout, client_name and protocol=2 (force RESP2)
	// are honoured; Sentinel (master_set) and Redis Cluster are not
	// supported. Required.
	URL string

	// KeyPrefix starts the name of every key and pub/sub channel the broker
	// uses, so that several deployments can share one Redis. Pub/sub
	// channels are global to a Redis server (not per database), so two
	// deployments on one server need different prefixes even when they use
	// different databases. Default "channels:".
	KeyPrefix string

	// PresenceTTL is how long a presence entry survives in Redis without
	// being refreshed: the node that tracked an entry refreshes it every
	// PresenceTTL/3, so the entries of a node that died (or lost Redis)
	// are removed, and reported through OnExpire on a surviving node,
	// between PresenceTTL and PresenceTTL plus one sweep interval
	// (PresenceTTL/10, at most 1s) after its last refresh. Nodes of
	// one cluster should use the same value. Default 30s, minimum 100ms.
	PresenceTTL time.Duration

	// DialTimeout bounds the opening of a connection. Default 2s.
	DialTimeout time.Duration

	// CommandTimeout bounds each call to Redis (on top of the caller's
	// context), and is the time after which an unresponsive connection is
	// considered dead. Calls made while Redis is unreachable fail within
	// about this long. Default 2s.
	CommandTimeout time.Duration

	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between attempts to re-establish the pub/sub connection.
	// Defaults 100ms and 5s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// TLSConfig, if set, replaces the TLS configuration (rediss:// URLs
	// get one verifying the server's host name by default).
	TLSConfig *tls.Config

	// Logger receives connection events: errors when Redis is lost,
	// information when it is back. Default: no logging.
	Logger *zap.Logger
}

// config is Options with defaults applied and the client options parsed.
type config struct {
	Options
	client rueidis.ClientOption
}

// newConfig validates opts and applies the defaults.
func newConfig(opts Options) (*config, error) {
	if opts.URL == "" {
		return nil, errors.New("redisbroker: options: empty URL")
	}
	co, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: options: parse URL: %w", err)
	}
	if co.Sentinel.MasterSet != "" {
		return nil, errors.New("redisbroker: options: Redis Sentinel (master_set) is not supported")
	}
	if len(co.InitAddress) != 1 {
		return nil, errors.New("redisbroker: options: URL must name exactly one server")
	}
	c := &config{Options: opts}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	switch {
	case c.PresenceTTL == 0:
		c.PresenceTTL = DefaultPresenceTTL
	case c.PresenceTTL < minPresenceTTL:
		return nil, fmt.Errorf("redisbroker: options: presence TTL %v below %v", c.PresenceTTL, minPresenceTTL)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if co.Dialer.Timeout == 0 || opts.DialTimeout > 0 {
		co.Dialer.Timeout = c.DialTimeout
	}
	if co.ConnWriteTimeout == 0 || opts.CommandTimeout > 0 {
		co.ConnWriteTimeout = c.CommandTimeout
	}
	if opts.TLSConfig != nil {
		co.TLSConfig = opts.TLSConfig.Clone()
	}
	// One server, no client-side caching (every key is written by scripts
	// and read once), and a client even when the server is down at start:
	// rueidis then dials again on the next command.
	co.ForceSingleClient = true
	co.DisableCache = true
	// Every connection keeps a reader running, so a connection that Redis
	// closed (a restart, a failover) is noticed at once and redialed by
	// the next command. Without it rueidis reads an idle connection only
	// while a call waits on it, and after a restart each of its pipelined
	// connections fails one later call with EOF, whichever call lands on
	// it first, although Redis is back.
	co.AlwaysPipelining = true
	co.ClientName = firstNonEmpty(co.ClientName, "caddy-channels")
	c.client = co
	return c, nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
