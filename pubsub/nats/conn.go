package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ErrUnavailable is wrapped by the errors of calls made while the client
// is not connected to NATS (at start, or during an outage): they fail at
// once instead of waiting for the server.
var ErrUnavailable = errors.New("natsbroker: NATS unavailable")

// errConflict reports a history or presence write whose expected last
// sequence did not match: another writer went first.
var errConflict = errors.New("natsbroker: concurrent write")

// errNotFound reports a read of a message that does not exist.
var errNotFound = errors.New("natsbroker: no such message")

// client is one NATS connection with the JetStream stream its user needs.
// It creates (or updates) the stream on first use after each connect.
type client struct {
	opts  Options
	names names
	log   *zap.Logger
	what  string // "broker" or "presence", for logs and errors
	cfg   jetstream.StreamConfig

	nc *nats.Conn
	js jetstream.JetStream

	mu     sync.Mutex
	stream jetstream.Stream // nil until ensured after the last connect
	// configured is set once this client created or updated the stream
	// with cfg; later ensures (after a reconnect) look it up first.
	configured bool

	// gen counts invalidations: after a reconnect or a lost stream, what
	// users cached about the stream's contents may be stale.
	gen atomic.Uint64

	// lastReads counts the reads of a subject's newest message (one round
	// trip each), so that tests can tell a shared read from one per caller.
	lastReads atomic.Uint64

	// leader is the name of the server leading the stream, as last looked
	// up by a scan; nil until then.
	leader atomic.Pointer[string]
}

// dial connects to NATS. It does not fail when the servers are down: the
// client keeps trying in the background, with backoff, and calls
// onConnect after each (re)connect from nats.go's callback goroutine.
func dial(opts Options, what string, cfg jetstream.StreamConfig, onConnect func()) (*client, error) {
	c := &client{
		opts:  opts,
		names: newNames(opts.Prefix),
		log:   opts.Logger.With(zap.String("nats", what)),
		what:  what,
		cfg:   cfg,
	}
	connected := func(nc *nats.Conn, how string) {
		c.invalidate()
		c.log.Info("connected to NATS", zap.String("event", how), zap.String("server", nc.ConnectedUrlRedacted()))
		if onConnect != nil {
			onConnect()
		}
	}
	nc, err := nats.Connect(opts.serverURLs(), opts.natsOptions(
		nats.ConnectHandler(func(nc *nats.Conn) { connected(nc, "connect") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { connected(nc, "reconnect") }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // closed by this node
			}
			c.log.Error("disconnected from NATS: cross-node broadcasts, history and presence fail until it reconnects",
				zap.Error(err))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			c.log.Error("NATS error", fields...)
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: connect %s: %w", what, err)
	}
	c.nc = nc
	c.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbroker: jetstream %s: %w", what, err)
	}
	if !nc.IsConnected() {
		c.log.Error("NATS unreachable at start: retrying in the background with backoff; "+
			"cross-node broadcasts, history and presence fail until connected",
			zap.Strings("servers", redact(opts.URLs)))
	}
	return c, nil
}

// redact returns urls without their passwords, for logs.
func redact(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u
		at, scheme := strings.LastIndexByte(u, '@'), strings.Index(u, "://")
		if at >= 0 && scheme >= 0 && scheme < at {
			out[i] = u[:scheme+3] + "***" + u[at:]
		}
	}
	return out
}

// close closes the connection.
func (c *client) close() {
	c.nc.Close()
}

// online fails fast with ErrUnavailable when not connected.
func (c *client) online() error {
	if !c.nc.IsConnected() {
		return ErrUnavailable
	}
	return nil
}

// reqCtx bounds ctx by the request timeout.
func (c *client) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.RequestTimeout)
}

// invalidate forgets the stream, so that the next use creates it again
// (a restarted server may have lost it).
func (c *client) invalidate() {
	c.mu.Lock()
	c.stream = nil
	c.gen.Add(1)
	c.mu.Unlock()
}

// allowDirect reports whether a stream of that many replicas allows direct
// gets. With one replica only: otherwise followers answer them too and may
// lag behind the leader, so a read right after a write (another node's
// publish, the newest record before an append) could miss it. Without
// direct gets the stream leader answers every read.
func allowDirect(replicas int) bool { return replicas <= 1 }

// duplicates is the duplicate window of a stream of that many replicas:
// dedupWindow with several (see successorID), the server's default with
// one.
func duplicates(replicas int) time.Duration {
	if replicas <= 1 {
		return 0
	}
	return dedupWindow
}

// ensure returns the stream, setting it up on first use and after a
// reconnect (see setUpStream).
func (c *client) ensure(ctx context.Context) (jetstream.Stream, error) {
	if err := c.online(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return c.stream, nil
	}
	s, err := c.setUpStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.waitLeader(ctx, s); err != nil {
		return nil, err
	}
	c.stream, c.configured = s, true
	return s, nil
}

// waitLeader returns once a replicated stream has a leader: a stream just
// created in a cluster answers nothing until its replicas elected one.
func (c *client) waitLeader(ctx context.Context, s jetstream.Stream) error {
	if c.cfg.Replicas <= 1 {
		return nil
	}
	_, err := c.streamLeader(ctx, s, true)
	return err
}

// streamGone reports whether err says the stream does not exist.
func streamGone(err error) bool {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound
}

// withStream runs f with the stream, recreating the stream and running f
// again once if f failed because the stream was gone.
func (c *client) withStream(ctx context.Context, f func(jetstream.Stream) error) error {
	for attempt := 0; ; attempt++ {
		s, err := c.ensure(ctx)
		if err != nil {
			return err
		}
		err = f(s)
		if err == nil || attempt > 0 || !streamGone(err) {
			return err
		}
		c.invalidate()
	}
}

// publish stores data on subject through JetStream and returns its stream
// sequence. When expect is set, the write only happens if the newest
// message of subject has that stream sequence (0: none); otherwise it
// fails with errConflict. A conditional write to a lost stream fails with
// errConflict too, once the stream is recreated: the caller must reload
// what it expects from the new stream.
func (c *client) publish(ctx context.Context, subject string, data []byte, expect *uint64) (uint64, error) {
	var seq uint64
	write := c.withStream
	if expect != nil {
		write = c.onceWithStream
	}
	err := write(ctx, func(jetstream.Stream) error {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		opts := []jetstream.PublishOpt{jetstream.WithRetryAttempts(0), jetstream.WithExpectStream(c.cfg.Name)}
		if expect != nil {
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
			if id := successorID(c.cfg.Replicas, subject, *expect); id != "" {
				opts = append(opts, jetstream.WithMsgID(id))
			}
		}
		ack, err := c.js.PublishMsg(ctx, msg, opts...)
		if err != nil {
			return err
		}
		if ack.Duplicate {
			return errConflict
		}
		seq = ack.Sequence
		return nil
	})
	if errors.Is(err, errConflict) {
		return 0, err
	}
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, errConflict
		}
		if expect != nil && streamGone(err) {
			c.invalidate()
			return 0, errConflict
		}
		return 0, err
	}
	return seq, nil
}

// dedupWindow is the duplicate window of replicated streams, within
// which successorID makes a second successor of one record a duplicate.
// Racing writers are at most a request timeout apart.
const dedupWindow = 30 * time.Second

// successorID returns the message id of a conditional write to subject
// expecting its newest record at stream sequence expect, on a stream of
// that many replicas. NATS servers before 2.9.21 check the expected last
// subject sequence of a replicated stream before proposing the write only,
// so two concurrent writes expecting the same record may both be stored
// (nats-server issue 4320); the id makes the second one a duplicate, which
// the stream's leader does track while the first is in flight. A record's
// successor is written once: the newest record of a subject never goes
// back to an earlier one, so no id is ever legitimately reused. Writes
// expecting no record (expect 0) get no id, since a purged subject starts
// from 0 again: on those older servers, two nodes writing a topic's very
// first record at the same moment may both succeed. One replica needs no
// id: its check is exact.
func successorID(replicas int, subject string, expect uint64) string {
	if replicas <= 1 || expect == 0 {
		return ""
	}
	return subject + "/" + strconv.FormatUint(expect, 10)
}

// onceWithStream runs f with the stream, without retrying.
func (c *client) onceWithStream(ctx context.Context, f func(jetstream.Stream) error) error {
	s, err := c.ensure(ctx)
	if err != nil {
		return err
	}
	return f(s)
}

// last returns the newest message of subject.
func (c *client) last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	c.lastReads.Add(1)
	var msg *jetstream.RawStreamMsg
	err := c.withStream(ctx, func(s jetstream.Stream) error {
		var err error
		msg, err = s.GetLastMsgForSubject(ctx, subject)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, errNotFound
	}
	return msg, err
}

// get returns the message with stream sequence seq.
func (c *client) get(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	var msg *jetstream.RawStreamMsg
	err := c.withStream(ctx, func(s jetstream.Stream) error {
		var err error
		msg, err = s.GetMsg(ctx, seq)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, errNotFound
	}
	return msg, err
}

// purge removes the messages of the subjects matching filter: all of them
// when below is 0, else those with a stream sequence below it.
func (c *client) purge(ctx context.Context, filter string, below uint64) error {
	return c.withStream(ctx, func(s jetstream.Stream) error {
		opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(filter)}
		if below > 0 {
			opts = append(opts, jetstream.WithPurgeSequence(below))
		}
		return s.Purge(ctx, opts...)
	})
}

// purgeKeep removes the messages of subject but the newest keep.
func (c *client) purgeKeep(ctx context.Context, subject string, keep uint64) error {
	return c.withStream(ctx, func(s jetstream.Stream) error {
		return s.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeKeep(keep))
	})
}

// fail wraps err with the manager (what), the operation and the topic.
func fail(what, op, topic string, err error) error {
	if topic == "" {
		return fmt.Errorf("natsbroker: %s %s: %w", what, op, err)
	}
	return fmt.Errorf("natsbroker: %s %s %q: %w", what, op, topic, err)
}
