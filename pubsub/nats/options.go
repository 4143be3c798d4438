package natsbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Defaults of Options.
const (
	// DefaultURL is the server used when Options.URLs is empty.
	DefaultURL = "nats://127.0.0.1:4222"
	// DefaultPrefix is the default Options.Prefix.
	DefaultPrefix = "channels"
	// DefaultPresenceTTL is the default Options.PresenceTTL.
	DefaultPresenceTTL = 30 * time.Second
	// DefaultRequestTimeout is the default Options.RequestTimeout.
	DefaultRequestTimeout = 2 * time.Second
	// DefaultConnectTimeout is the default Options.ConnectTimeout.
	DefaultConnectTimeout = 2 * time.Second
	// DefaultReconnectWait is the default Options.ReconnectWait.
	DefaultReconnectWait = 100 * time.Millisecond
	// DefaultMaxReconnectWait is the default Options.MaxReconnectWait.
	DefaultMaxReconnectWait = 5 * time.Second
	// DefaultPingInterval is the default Options.PingInterval.
	DefaultPingInterval = 10 * time.Second
	// DefaultMaxHistorySize is the default Options.MaxHistorySize.
	DefaultMaxHistorySize = 10000
	// DefaultHistoryMaxAge is the default Options.HistoryMaxAge.
	DefaultHistoryMaxAge = 24 * time.Hour
	// DefaultDeliveryQueue is the default Options.DeliveryQueue.
	DefaultDeliveryQueue = 8192

	// minPresenceTTL is the shortest PresenceTTL accepted.
	minPresenceTTL = 300 * time.Millisecond
	// maxPrefixLen bounds Options.Prefix.
	maxPrefixLen = 64
)

// Options configures a Broker (New) or a Presence manager (NewPresence).
// The zero value connects to DefaultURL without authentication and uses
// the defaults documented on each field. Every node of a cluster must use
// the same Prefix, Storage, Replicas, MaxHistorySize and HistoryMaxAge:
// they describe the shared JetStream streams, which each node creates or
// updates when it connects.
type Options struct {
	// URLs are the NATS servers of the cluster, e.g. "nats://10.0.0.1:4222"
	// or "tls://nats.example.com:4222"; credentials may be given in the URL
	// ("nats://user:pass@host:4222"). Empty means DefaultURL.
	URLs []string
	// Name is the connection name shown in the server's monitoring.
	// Empty means "caddy-channels".
	Name string

	// Token authenticates with a token.
	Token string
	// User and Password authenticate with a user name and password.
	User, Password string
	// CredentialsFile is a .creds file (user JWT and NKey seed) for
	// decentralized authentication.
	CredentialsFile string
	// NKeySeedFile is a file holding an NKey seed to authenticate with.
	NKeySeedFile string
	// TLS, when set, is the TLS configuration for the connection (client
	// certificates, root CAs). tls:// URLs use TLS with the system roots
	// without it.
	TLS *tls.Config

	// Prefix starts every subject the broker uses, and names its streams:
	// "<prefix>.m.<topic>" carries broadcasts, "<prefix>.h.<topic>" history,
	// "<prefix>.p.…" presence; the streams are "<prefix>_history" and
	// "<prefix>_presence" (dots replaced by underscores). It is one or more
	// dot-separated tokens of [A-Za-z0-9_-], at most 64 bytes. Empty means
	// DefaultPrefix. Topics are arbitrary strings: they appear in subjects
	// as unpadded base64url.
	Prefix string

	// PresenceTTL is how long the presence entries of a node that stopped
	// (crashed, or lost NATS) survive: each node refreshes a heartbeat
	// every PresenceTTL/3, and the surviving nodes remove and report the
	// entries of a node whose heartbeat is older than PresenceTTL, checking
	// every PresenceTTL/10. A node closed with Close is removed at the next
	// check. 0 means DefaultPresenceTTL; the least accepted is 300ms.
	PresenceTTL time.Duration

	// RequestTimeout bounds every request to NATS (a history append, a
	// read, a presence change) when the caller's context has no earlier
	// deadline. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ConnectTimeout bounds each attempt to dial a server. 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReconnectWait is the wait before the first reconnect attempt; it
	// doubles on each failed attempt up to MaxReconnectWait, with ±20%
	// jitter. Reconnecting never gives up. 0 means DefaultReconnectWait
	// and DefaultMaxReconnectWait.
	ReconnectWait, MaxReconnectWait time.Duration
	// PingInterval is how often the client pings the server; a server
	// that misses three pings is considered gone and the client
	// reconnects. 0 means DefaultPingInterval.
	PingInterval time.Duration

	// Storage is where JetStream keeps history and presence: "file" (the
	// default, survives a server restart) or "memory".
	Storage string
	// Replicas is the number of replicas of each stream in a clustered
	// JetStream (1 to 5, at most the number of servers, which all must be
	// up to create the streams). 0 means 1. With 3 on a three-server
	// cluster, history and presence survive the loss of any one server;
	// see "Clusters" in the package documentation.
	Replicas int
	// MaxHistorySize caps PublishOptions.HistorySize: a topic never keeps
	// more messages than this. 0 means DefaultMaxHistorySize.
	MaxHistorySize int
	// HistoryMaxAge is the age after which JetStream drops any history
	// message, whatever its HistoryTTL; a topic whose messages all went
	// this way starts a new epoch. 0 means DefaultHistoryMaxAge; negative
	// means no limit.
	HistoryMaxAge time.Duration

	// DeliveryQueue is the number of received messages each delivery
	// goroutine buffers. A node that falls this far behind drops messages
	// (logged as a slow consumer; clients see a gap in positions). 0 means
	// DefaultDeliveryQueue.
	DeliveryQueue int

	// Logger receives connection events and errors. Nil means no logging.
	Logger *zap.Logger
}

// normalize returns o with defaults applied, or an error for invalid
// values.
func (o Options) normalize() (Options, error) {
	if len(o.URLs) == 0 {
		o.URLs = []string{DefaultURL}
	}
	for _, u := range o.URLs {
		if strings.TrimSpace(u) == "" {
			return o, errors.New("natsbroker: empty server URL")
		}
	}
	if o.Name == "" {
		o.Name = "caddy-channels"
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if err := checkPrefix(o.Prefix); err != nil {
		return o, err
	}
	if o.PresenceTTL == 0 {
		o.PresenceTTL = DefaultPresenceTTL
	}
	if o.PresenceTTL < minPresenceTTL {
		return o, fmt.Errorf("natsbroker: presence TTL %v below %v", o.PresenceTTL, minPresenceTTL)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"request timeout", &o.RequestTimeout, DefaultRequestTimeout},
		{"connect timeout", &o.ConnectTimeout, DefaultConnectTimeout},
		{"reconnect wait", &o.ReconnectWait, DefaultReconnectWait},
		{"max reconnect wait", &o.MaxReconnectWait, DefaultMaxReconnectWait},
		{"ping interval", &o.PingInterval, DefaultPingInterval},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return o, fmt.Errorf("natsbroker: negative %s %v", d.name, *d.v)
		}
	}
	o.MaxReconnectWait = max(o.MaxReconnectWait, o.ReconnectWait)
	switch o.Storage {
	case "":
		o.Storage = "file"
	case "file", "memory":
	default:
		return o, fmt.Errorf("natsbroker: storage %q is neither \"file\" nor \"memory\"", o.Storage)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return o, fmt.Errorf("natsbroker: replicas %d not in 1..5", o.Replicas)
	}
	if o.MaxHistorySize == 0 {
		o.MaxHistorySize = DefaultMaxHistorySize
	}
	if o.MaxHistorySize < 0 {
		return o, fmt.Errorf("natsbroker: negative max history size %d", o.MaxHistorySize)
	}
	if o.HistoryMaxAge == 0 {
		o.HistoryMaxAge = DefaultHistoryMaxAge
	}
	if o.DeliveryQueue == 0 {
		o.DeliveryQueue = DefaultDeliveryQueue
	}
	if o.DeliveryQueue < 0 {
		return o, fmt.Errorf("natsbroker: negative delivery queue %d", o.DeliveryQueue)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o, nil
}

// checkPrefix validates Options.Prefix.
func checkPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("natsbroker: prefix longer than %d bytes", maxPrefixLen)
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return fmt.Errorf("natsbroker: prefix %q has an empty token", p)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
			if !ok {
				return fmt.Errorf("natsbroker: prefix %q: invalid byte %q", p, c)
			}
		}
	}
	return nil
}

// natsOptions returns the nats.go options of a connection: never give up
// reconnecting, retry a failed first connect in the background, and fail
// publishes at once while disconnected instead of buffering them.
func (o Options) natsOptions(handlers ...nats.Option) []nats.Option {
	wait, maxWait := o.ReconnectWait, o.MaxReconnectWait
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.ConnectTimeout),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.PingInterval(o.PingInterval),
		nats.MaxPingsOutstanding(3),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return backoff(attempts, wait, maxWait)
		}),
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.User != "" || o.Password != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredentialsFile))
	}
	if o.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			opts = append(opts, func(*nats.Options) error {
				return fmt.Errorf("natsbroker: nkey seed file: %w", err)
			})
		} else {
			opts = append(opts, opt)
		}
	}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS.Clone()))
	}
	return append(opts, handlers...)
}

// backoff is the wait before reconnect attempt n (from 1): wait doubled
// n-1 times, capped at maxWait, with ±20% jitter.
func backoff(n int, wait, maxWait time.Duration) time.Duration {
	d := wait
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	if d <= 0 {
		return 0
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// serverURLs joins URLs as nats.Connect expects them.
func (o Options) serverURLs() string {
	return strings.Join(o.URLs, ",")
}
