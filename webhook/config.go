package webhook

import (
	"crypto/tls"
	"errors"
	"time"

	"go.uber.org/zap"
)

// ErrUpstreamUnavailable is wrapped by every error of Client.Call: the
// app could not be asked (timeout, connection failure, open circuit, no
// concurrency slot before the deadline, oversized or truncated answer).
var ErrUpstreamUnavailable = errors.New("upstream unavailable")

// Defaults applied to a zero Config field.
const (
	// DefaultTimeout bounds one webhook call, connection included.
	DefaultTimeout = 3 * time.Second
	// DefaultMaxResponseBytes caps an answer's body.
	DefaultMaxResponseBytes int64 = 1 << 20
	// DefaultMaxConcurrency is the number of calls in flight to one
	// upstream URL.
	DefaultMaxConcurrency = 64
	// DefaultQueueSize is the number of pending notifications.
	DefaultQueueSize = 10000
	// DefaultNotifyWorkers is the number of goroutines that deliver
	// notifications.
	DefaultNotifyWorkers = 4
	// DefaultBreakerThreshold is the number of consecutive failures
	// that opens an upstream's circuit.
	DefaultBreakerThreshold = 5
	// DefaultBreakerCooldown is how long an open circuit rejects
	// calls before it lets a trial call through.
	DefaultBreakerCooldown = 5 * time.Second
)

const (
	// webhookMaxIdleUpstreams is the number of per-URL states kept before
	// states that carry no information (no call in flight, circuit closed
	// without failures) are swept, so that URLs built from placeholders
	// cannot grow the map without bound.
	webhookMaxIdleUpstreams = 1024
	// webhookDropLogInterval rate-limits the dropped-notification warning.
	webhookDropLogInterval = time.Second
)

// Config configures outgoing webhook calls. Zero fields take the
// Default* values.
type Config struct {
	// Secret is the HMAC key of X-Channels-Signature; empty = unsigned.
	Secret string
	// Timeout bounds one call, from waiting for a slot to the last byte of
	// the answer.
	Timeout time.Duration
	// MaxResponseBytes caps an answer's body; a larger one is a failure.
	MaxResponseBytes int64
	// MaxConcurrency is the number of calls in flight per upstream URL.
	MaxConcurrency int
	// QueueSize is the number of pending fire-and-forget notifications.
	QueueSize int
	// NotifyWorkers is the number of goroutines delivering notifications.
	NotifyWorkers int
	// BreakerThreshold is the number of consecutive failures of one URL
	// that opens its circuit.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit rejects calls.
	BreakerCooldown time.Duration
	// TLSConfig configures the TLS of https:// upstreams (roots, client
	// certificates); nil uses the system's roots.
	TLSConfig *tls.Config
	// Logger receives failures and circuit changes; nil discards them.
	Logger *zap.Logger
	// Now is the clock of signatures and circuit cool-downs; nil is
	// time.Now. Latencies always use the real clock.
	Now func() time.Time
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.NotifyWorkers <= 0 {
		c.NotifyWorkers = DefaultNotifyWorkers
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Response is the app's answer to a call.
type Response struct {
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Body is the answer's body, at most MaxResponseBytes; nil when empty.
	Body []byte
	// Latency is the time the call took, waiting for a slot included.
	Latency time.Duration
}

// Stats counts what a Webhooks did since it was created.
type Stats struct {
	// Calls is the number of calls, notifications included.
	Calls uint64
	// Failures is the number of calls that failed with
	// ErrUpstreamUnavailable or got a 5xx status, Rejected included.
	Failures uint64
	// Rejected is the number of calls refused by an open circuit.
	Rejected uint64
	// BreakerOpens is the number of times a circuit opened.
	BreakerOpens uint64
	// Dropped is the number of notifications not delivered because the
	// queue was full or closed, or abandoned by Close.
	Dropped uint64
	// Pending is the number of notifications queued or being delivered
	// now: the backlog an outage of the app builds up.
	Pending int64
}
