package channels

// Abuse limits at the edge: how fast one socket may push and join, how
// many sockets one address or one id may hold, how fast one address may
// connect. Every limit is per node (see LimitsConfig).

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Rate is N events per Per, in bursts of up to Burst (a token bucket that
// holds Burst tokens and gains N every Per). The zero Rate is no limit.
type Rate struct {
	N     int
	Per   time.Duration
	Burst int // 0 means N
}

// On reports whether r limits anything.
func (r Rate) On() bool { return r.N > 0 && r.Per > 0 }

// burst is the bucket size.
func (r Rate) burst() float64 {
	if r.Burst > 0 {
		return float64(r.Burst)
	}
	return float64(r.N)
}

// String formats r as ParseRate reads it.
func (r Rate) String() string {
	if !r.On() {
		return "off"
	}
	s := strconv.Itoa(r.N) + "/" + r.Per.String()
	if r.Burst > 0 {
		s += " burst " + strconv.Itoa(r.Burst)
	}
	return s
}

// ParseRate reads "<n>/<duration>" such as "20/1s", "100/1m" or "5/s"
// (a bare unit means one of it). n and the duration must be positive.
func ParseRate(s string) (Rate, error) {
	ns, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want <n>/<duration>, such as 20/1s", s)
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: count must be a positive integer", s)
	}
	switch per {
	case "s", "m", "h":
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: period must be a positive duration", s)
	}
	return Rate{N: n, Per: d}, nil
}

// bucket is a token bucket of one Rate. It is not safe for concurrent use:
// a socket's buckets are used by its read loop only.
type bucket struct {
	tokens float64
	last   time.Time // zero: never used, full
}

// allow takes one token at now, reporting whether there was one.
func (b *bucket) allow(r Rate, now time.Time) bool {
	burst := r.burst()
	if b.last.IsZero() {
		b.tokens = burst
	} else if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(burst, b.tokens+dt.Seconds()*float64(r.N)/r.Per.Seconds())
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether b has refilled by now: forgetting it changes
// nothing.
func (b *bucket) full(r Rate, now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*float64(r.N)/r.Per.Seconds() >= r.burst()
}

// DefaultFloodFactor is LimitsConfig.FloodFactor's default.
const DefaultFloodFactor = 3

// DefaultMaxAddresses is LimitsConfig.MaxAddresses' default.
const DefaultMaxAddresses = 100_000

// LimitsConfig is the abuse limits (limit, max_sockets_per_ip and
// max_sockets_per_id in the Caddyfile). The zero value limits nothing, and
// a socket without limits pays nothing for them. Limits are per node:
// behind a balancer spreading one client over k nodes it may do k times
// as much, and per-address caps count the addresses each node sees.
type LimitsConfig struct {
	// Messages limits every push of one socket, handled or not (joins, leaves and
	// heartbeats aside). Over it, the push gets an error reply
	// {"reason":"rate limited"}.
	Messages Rate
	// Joins limits the phx_join of one socket; over it, the join gets
	// {"reason":"rate limited"}.
	Joins Rate
	// FloodFactor closes a socket (1008) that keeps pushing or joining
	// at FloodFactor times its limit or more: its refusals drain a
	// second bucket of (FloodFactor-1) times the limit. Default 3.
	FloodFactor int
	// ConnectsPerIP limits new sockets per client address; over it the
	// handshake gets 429.
	ConnectsPerIP Rate
	// MaxSocketsPerIP caps the open sockets of one client address; 0 is
	// no cap. Over it the handshake gets 429.
	MaxSocketsPerIP int
	// MaxSocketsPerID caps the open sockets of one socket id (anonymous
	// sockets aside); 0 is no cap. Over it the handshake gets 429.
	MaxSocketsPerID int
	// MaxAddresses bounds the addresses ConnectsPerIP remembers: beyond
	// it the idle ones are forgotten first, then arbitrary ones. Default
	// 100,000 (about 10 MB).
	MaxAddresses int
}

// withDefaults fills the zero fields.
func (c LimitsConfig) withDefaults() LimitsConfig {
	if c.FloodFactor < 2 {
		c.FloodFactor = DefaultFloodFactor
	}
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = DefaultMaxAddresses
	}
	return c
}

// flood is the rate of refusals that closes a socket limited by r.
func (c *LimitsConfig) flood(r Rate) Rate {
	k := c.FloodFactor - 1
	return Rate{N: r.N * k, Per: r.Per, Burst: int(r.burst()) * k}
}

// reasonRateLimited is the error reply to a push or join over its limit.
const reasonRateLimited = "rate limited"

// errLimited is the refusal of a handshake over a per-address or per-id
// limit (429).
var errLimited = errors.New("rate limited")

// socketLimits is a socket's buckets; read loop only. A socket gets them
// the first time a limit applies to it (see buckets): one without limits
// carries a nil pointer.
type socketLimits struct {
	messages, joins, flood bucket
	events                 map[string]*bucket // per-event limits, by the handle_in rule's event
}

// buckets returns the socket's buckets, made on first use.
func (s *Socket) buckets() *socketLimits {
	if s.limits == nil {
		s.limits = new(socketLimits)
	}
	return s.limits
}

// refused counts a push or join refused under r and reports whether the
// socket floods: its refusals went over the flood rate.
func (s *Socket) refused(cfg *Config, kind Refusal, r Rate, now time.Time) (flood bool) {
	s.hub.stats.refusals[kind].Add(1)
	if s.buckets().flood.allow(cfg.Limits.flood(r), now) {
		return false
	}
	s.hub.stats.refusals[RefusedFlood].Add(1)
	cfg.Logger.Warn("closing socket: flooding past its rate limit",
		zap.String("socket_id", s.id), zap.String("remote_ip", s.remoteIP),
		zap.String("limit", kind.String()), zap.Stringer("rate", r))
	s.closeFor(LeaveReasonFlood, ClosePolicyViolation, "rate limited")
	return true
}

// allowMessage applies the message limit to a push, whether or not its
// topic is joined (sub nil) or its event handled. false means the push
// was answered (an error reply, or the socket is closing).
func (s *Socket) allowMessage(cfg *Config, sub *subscription, m *Message) bool {
	r := cfg.Limits.Messages
	if !r.On() {
		return true
	}
	joinRef := m.JoinRef
	if sub != nil {
		joinRef = sub.joinRef
	}
	return s.take(cfg, &s.buckets().messages, r, RefusedMessageRate, joinRef, m)
}

// take takes one token of b under r for m, a push or join. Over the
// limit it answers m with an error reply on joinRef (unless the socket
// floods and is closed) and returns false.
func (s *Socket) take(cfg *Config, b *bucket, r Rate, kind Refusal, joinRef Ref, m *Message) bool {
	now := time.Now()
	if b.allow(r, now) {
		return true
	}
	if !s.refused(cfg, kind, r, now) {
		s.replyError(joinRef, m.Ref, m.Topic, reasonRateLimited)
	}
	return false
}

// allowEvent applies the event limit of entry, a handle_in rule, to a push
// on sub. false means the push was answered.
func (s *Socket) allowEvent(cfg *Config, sub *subscription, entry *HandleInRule, m *Message) bool {
	if !entry.Limit.On() {
		return true
	}
	// One bucket per rule, keyed by the rule's event ("*" for the catch-all:
	// bounded by the rules, not by the event names a client makes up), so
	// that it survives a config reload.
	l := s.buckets()
	b := l.events[entry.Event]
	if b == nil {
		if l.events == nil {
			l.events = make(map[string]*bucket)
		}
		b = &bucket{}
		l.events[entry.Event] = b
	}
	return s.take(cfg, b, entry.Limit, RefusedEventRate, sub.joinRef, m)
}

// allowJoin applies the join limit. false means the join was answered.
func (s *Socket) allowJoin(cfg *Config, m *Message) bool {
	r := cfg.Limits.Joins
	if !r.On() {
		return true
	}
	return s.take(cfg, &s.buckets().joins, r, RefusedJoinRate, m.JoinRef, m)
}
