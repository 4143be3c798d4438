package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	// gen counts invalidations: after a reconnect or a lost stream, what
	// users cached about the stream's contents may be stale.
	gen atomic.Uint64
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

// ensure returns the stream, creating or updating it if needed.
func (c *client) ensure(ctx context.Context) (jetstream.Stream, error) {
	if err := c.online(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return c.stream, nil
	}
	s, err := c.js.CreateOrUpdateStream(ctx, c.cfg)
	if err != nil {
		// Another node may have created it with settings that cannot be
		// changed in place (storage, say): use it as it is.
		existing, err2 := c.js.Stream(ctx, c.cfg.Name)
		if err2 != nil {
			return nil, fmt.Errorf("create stream %s: %w", c.cfg.Name, err)
		}
		c.log.Warn("using the existing stream, whose settings differ from this node's",
			zap.String("stream", c.cfg.Name), zap.Error(err))
		s = existing
	}
	c.stream = s
	return s, nil
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
		}
		ack, err := c.js.PublishMsg(ctx, msg, opts...)
		if err != nil {
			return err
		}
		seq = ack.Sequence
		return nil
	})
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

// consumerCreate is the request creating an ephemeral consumer.
type consumerCreate struct {
	Stream string                   `json:"stream_name"`
	Config jetstream.ConsumerConfig `json:"config"`
}

// consumerCreated is the server's answer to a consumerCreate.
type consumerCreated struct {
	jetstream.ConsumerInfo
	Error *jetstream.APIError `json:"error,omitempty"`
}

// scan calls fn with every message matching filter (only the newest of
// each subject when lastPerSubject, only those from stream sequence from
// on when from is positive), oldest first, as of the start of the scan. It reads through a short-lived push consumer: one request creates
// it, and the server sends the messages right away.
func (c *client) scan(ctx context.Context, filter string, lastPerSubject bool, from uint64,
	fn func(subject string, seq uint64, data []byte)) error {
	return c.withStream(ctx, func(jetstream.Stream) error {
		inbox := c.nc.NewInbox()
		var col collector
		col.more = make(chan struct{}, 1)
		sub, err := c.nc.Subscribe(inbox, col.add)
		if err != nil {
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
		req := consumerCreate{Stream: c.cfg.Name, Config: jetstream.ConsumerConfig{
			DeliverSubject:    inbox,
			AckPolicy:         jetstream.AckNonePolicy,
			FilterSubject:     filter,
			InactiveThreshold: time.Minute,
			MemoryStorage:     true,
			Replicas:          1,
		}}
		switch {
		case lastPerSubject:
			req.Config.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
		case from > 0:
			req.Config.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			req.Config.OptStartSeq = from
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		resp, err := c.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE."+c.cfg.Name, body)
		if err != nil {
			return fmt.Errorf("create consumer: %w", err)
		}
		var created consumerCreated
		if err := json.Unmarshal(resp.Data, &created); err != nil {
			return fmt.Errorf("create consumer: %w", err)
		}
		if created.Error != nil {
			return fmt.Errorf("create consumer: %w", created.Error)
		}
		// Delete it without waiting for the answer; the inactive
		// threshold removes it should this be lost.
		defer func() {
			_ = c.nc.Publish("$JS.API.CONSUMER.DELETE."+c.cfg.Name+"."+created.Name, nil)
		}()
		msgs, err := col.wait(ctx, int(created.NumPending))
		if err != nil {
			return fmt.Errorf("scan %s: %w", filter, err)
		}
		for _, m := range msgs {
			fn(m.subject, m.seq, m.data)
		}
		return nil
	})
}

// scanned is one message a scan received.
type scanned struct {
	subject string
	seq     uint64
	data    []byte
}

// collector gathers the messages a consumer pushes to a scan.
type collector struct {
	mu   sync.Mutex
	msgs []scanned
	more chan struct{} // signalled after each message
}

// add is the subscription's handler.
func (col *collector) add(msg *nats.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return // not a stream message (a status)
	}
	col.mu.Lock()
	col.msgs = append(col.msgs, scanned{msg.Subject, md.Sequence.Stream, msg.Data})
	col.mu.Unlock()
	select {
	case col.more <- struct{}{}:
	default:
	}
}

// wait returns the first n messages once they arrived.
func (col *collector) wait(ctx context.Context, n int) ([]scanned, error) {
	for {
		col.mu.Lock()
		got := len(col.msgs)
		msgs := col.msgs
		col.mu.Unlock()
		if got >= n {
			return msgs[:n], nil
		}
		select {
		case <-col.more:
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d messages: %w", got, n, ctx.Err())
		}
	}
}

// fail wraps err with the manager (what), the operation and the topic.
func fail(what, op, topic string, err error) error {
	if topic == "" {
		return fmt.Errorf("natsbroker: %s %s: %w", what, op, err)
	}
	return fmt.Errorf("natsbroker: %s %s %q: %w", what, op, topic, err)
}
