package redisbroker

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// ErrUnavailable is wrapped by the errors of calls that could not reach
// Redis (connection refused or lost, timeout). Test with errors.Is.
var ErrUnavailable = errors.New("redisbroker: redis unavailable")

// newClient opens a client for cfg. When Redis cannot be reached it still
// returns a client, which dials again on its next command, and logs the
// error loudly.
func newClient(cfg *config, what string, cs *conns) (rueidis.Client, error) {
	opt := cfg.client
	opt.DialCtxFn = cs.wrap(opt.DialCtxFn)
	c, err := rueidis.NewClient(opt)
	if c == nil {
		return nil, fmt.Errorf("redisbroker: %s: connect: %w", what, err)
	}
	if err != nil {
		cfg.Logger.Error("redis unreachable; serving local traffic only until it is back, retrying",
			zap.String("component", what), zap.String("redis", cfg.where()), zap.Error(err))
	}
	return c, nil
}

// callCtx bounds one call by the command timeout.
func (c *config) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.CommandTimeout)
}

// wrap adds context to an error of a Redis call and marks connection
// failures with ErrUnavailable. parent is the caller's context.
func wrap(parent context.Context, op, topic string, err error) error {
	if _, ok := rueidis.IsRedisErr(err); ok || parent.Err() != nil {
		return fmt.Errorf("redisbroker: %s %q: %w", op, topic, err)
	}
	return fmt.Errorf("redisbroker: %s %q: %w: %w", op, topic, ErrUnavailable, err)
}

// newEpoch returns a random epoch for a stream the next script may create.
func newEpoch() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// backoff computes exponentially growing, jittered delays.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

// delay returns the next delay: a random duration in [d/2, d] where d
// doubles from min up to max.
func (b *backoff) delay() time.Duration {
	if b.next < b.min {
		b.next = b.min
	}
	d := b.next
	b.next = min(2*b.next, b.max)
	return d/2 + rand.N(d/2+1)
}

// reset starts over from min.
func (b *backoff) reset() { b.next = 0 }

// keys builds key and channel names; see the package documentation for
// the layout.
type keys struct {
	prefix  string
	sharded bool // channels carry the topic's hash tag (Redis Cluster)
}

// tagged returns prefix{topic}suffix: every key of a topic shares the
// hash tag {topic}, hence one hash slot. A topic that starts with "}"
// would make an empty tag (no tag: each key on its own slot), so such
// topics are keyed prefix#{x}topic suffix instead, all on the slot of "x".
func (k keys) tagged(topic, suffix string) string {
	if strings.HasPrefix(topic, "}") {
		return k.prefix + "#{x}" + topic + suffix
	}
	return k.prefix + "{" + topic + "}" + suffix
}

// channel is the pub/sub channel of topic: prefix+topic for classic
// pub/sub, the tagged name for sharded pub/sub.
func (k keys) channel(topic string) string {
	if k.sharded {
		return k.tagged(topic, "")
	}
	return k.prefix + topic
}

// isChannel reports whether ch is topic's channel, without allocating.
func (k keys) isChannel(ch, topic string) bool {
	rest, ok := strings.CutPrefix(ch, k.prefix)
	if !ok {
		return false
	}
	if !k.sharded {
		return rest == topic
	}
	if strings.HasPrefix(topic, "}") {
		rest, ok = strings.CutPrefix(rest, "#{x}")
		return ok && rest == topic
	}
	return len(rest) == len(topic)+2 && rest[0] == '{' && rest[len(rest)-1] == '}' && rest[1:len(rest)-1] == topic
}

func (k keys) historyMeta(topic string) string  { return k.tagged(topic, ":hm") }
func (k keys) historyStrm(topic string) string  { return k.tagged(topic, ":hs") }
func (k keys) presenceHash(topic string) string { return k.tagged(topic, ":pe") }
func (k keys) presenceDead(topic string) string { return k.tagged(topic, ":pd") }

// The keys shared by all topics share the tag {presence}.
func (k keys) presenceIndex() string { return k.prefix + "{presence}:pi" }
func (k keys) sweepClock() string    { return k.prefix + "{presence}:psc" }
func (k keys) sweepGrace() string    { return k.prefix + "{presence}:psg" }
