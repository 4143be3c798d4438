package redisbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
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
	// are honoured; the URL's master_set and addr parameters are not (use
	// Sentinel or Cluster). Required unless Sentinel or Cluster is set, and
	// then empty.
	URL string

	// Sentinel, when its Addrs are set, finds the master through Redis
	// Sentinel and follows its failovers. See SentinelOptions.
	Sentinel SentinelOptions

	// Cluster, when its Addrs are set, talks to a Redis Cluster: keys and
	// broadcasts of one topic go to the shard owning the topic's hash slot
	// (sharded pub/sub, SPUBLISH and SSUBSCRIBE). See ClusterOptions.
	Cluster ClusterOptions

	// Username and Password authenticate to the Redis data nodes (the
	// master and replicas with Sentinel, every node of a Cluster). With URL
	// they must be empty: the URL carries them.
	Username string
	Password string

	// DB selects the database with Sentinel (Cluster has only database 0).
	// With URL it must be 0: the URL's path carries it.
	DB int

	// TLS dials the data nodes and the sentinels with TLS (TLSConfig, or
	// one verifying host names). With URL use rediss:// instead.
	TLS bool

	// KeyPrefix starts the name of every key and pub/sub channel the broker
	// uses, so that several deployments can share one Redis. Pub/sub
	// channels are global to a Redis server (not per database), so two
	// deployments on one server need different prefixes even when they use
	// different databases. With Cluster it may not contain { or } (it
	// would become every key's hash tag). Default "channels:".
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

// SentinelOptions locates the master through Redis Sentinel.
type SentinelOptions struct {
	// Addrs lists host:port of sentinels; one that answers is enough.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under.
	// Required with Addrs.
	MasterName string
	// Username and Password authenticate to the sentinels (not to the data
	// nodes: see Options.Username and Options.Password).
	Username string
	Password string
}

// ClusterOptions names a Redis Cluster.
type ClusterOptions struct {
	// Addrs lists host:port of cluster nodes; the client learns the others
	// (and the slot map) from any that answers.
	Addrs []string
}

// Mode is how the broker reaches Redis.
type Mode int

// Modes of Options.
const (
	// ModeSingle is one Redis server named by Options.URL.
	ModeSingle Mode = iota
	// ModeSentinel is a master found through Redis Sentinel.
	ModeSentinel
	// ModeCluster is a Redis Cluster.
	ModeCluster
)

// String names the mode as the Caddyfile does.
func (m Mode) String() string {
	switch m {
	case ModeSentinel:
		return "sentinel"
	case ModeCluster:
		return "cluster"
	}
	return "single"
}

// config is Options with defaults applied and the client options parsed.
type config struct {
	Options
	mode   Mode
	client rueidis.ClientOption
}

// sharded reports whether broadcasts use sharded pub/sub.
func (c *config) sharded() bool { return c.mode == ModeCluster }

// where names the servers for log messages.
func (c *config) where() string {
	return fmt.Sprintf("%s %v", c.mode, c.client.InitAddress)
}

// newConfig validates opts and applies the defaults.
func newConfig(opts Options) (*config, error) {
	mode, co, err := clientOption(opts)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: options: %w", err)
	}
	c := &config{Options: opts, mode: mode}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if mode == ModeCluster && strings.ContainsAny(c.KeyPrefix, "{}") {
		// A brace in the prefix would make it the hash tag of every key:
		// all topics on one shard.
		return nil, fmt.Errorf("redisbroker: options: key prefix %q: no { or } with Redis Cluster", c.KeyPrefix)
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
		if mode == ModeSentinel {
			co.Sentinel.TLSConfig = opts.TLSConfig.Clone()
		}
	}
	co.Sentinel.Dialer.Timeout = co.Dialer.Timeout
	// No client-side caching (every key is written by scripts and read
	// once). A single server gets a client even when it is down at start:
	// rueidis then dials again on the next command.
	co.ForceSingleClient = mode == ModeSingle
	co.DisableCache = true
	if mode == ModeSentinel {
		// Follows +switch-master events, and checks the sentinels' view
		// every few seconds in case one was missed.
		co.Sentinel.TopologyRefreshInterval = 5 * time.Second
	}
	if mode == ModeCluster {
		co.ClusterOption.ShardsRefreshInterval = 5 * time.Second
	}
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

// clientOption validates the choice of servers and returns the mode and
// the rueidis options naming them.
func clientOption(opts Options) (Mode, rueidis.ClientOption, error) {
	sentinel, cluster := len(opts.Sentinel.Addrs) > 0, len(opts.Cluster.Addrs) > 0
	switch {
	case sentinel && cluster:
		return 0, rueidis.ClientOption{}, errors.New("both Sentinel and Cluster addresses given")
	case (sentinel || cluster) && opts.URL != "":
		return 0, rueidis.ClientOption{}, errors.New("a URL and Sentinel or Cluster addresses given: use one")
	case !sentinel && opts.Sentinel.MasterName != "":
		return 0, rueidis.ClientOption{}, errors.New("Sentinel master name without sentinel addresses")
	case !sentinel && (opts.Sentinel.Username != "" || opts.Sentinel.Password != ""):
		return 0, rueidis.ClientOption{}, errors.New("Sentinel credentials without sentinel addresses")
	}
	if sentinel || cluster {
		co := rueidis.ClientOption{Username: opts.Username, Password: opts.Password}
		if opts.TLS {
			co.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cluster {
			if opts.DB != 0 {
				return 0, co, errors.New("Redis Cluster has only database 0")
			}
			co.InitAddress = append([]string(nil), opts.Cluster.Addrs...)
			return ModeCluster, co, nil
		}
		if opts.Sentinel.MasterName == "" {
			return 0, co, errors.New("Sentinel addresses without a master name")
		}
		co.InitAddress = append([]string(nil), opts.Sentinel.Addrs...)
		co.SelectDB = opts.DB
		co.Sentinel = rueidis.SentinelOption{
			MasterSet: opts.Sentinel.MasterName,
			Username:  opts.Sentinel.Username,
			Password:  opts.Sentinel.Password,
			TLSConfig: co.TLSConfig,
		}
		return ModeSentinel, co, nil
	}
	if opts.URL == "" {
		return 0, rueidis.ClientOption{}, errors.New("empty URL")
	}
	if opts.Username != "" || opts.Password != "" || opts.DB != 0 || opts.TLS {
		return 0, rueidis.ClientOption{}, errors.New("username, password, database and TLS of a single server go in its URL")
	}
	co, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return 0, co, fmt.Errorf("parse URL: %w", err)
	}
	if co.Sentinel.MasterSet != "" {
		return 0, co, errors.New("URL with master_set: use the Sentinel options")
	}
	if len(co.InitAddress) != 1 {
		return 0, co, errors.New("URL must name exactly one server (use the Cluster options for several)")
	}
	return ModeSingle, co, nil
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
