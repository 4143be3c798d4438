package natsbroker

import (
	"context"
	"errors"
	"hash/maphash"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

const (
	// shards is the number of lock shards of subscriptions and topic states.
	shards = 64
	// janitorInterval is how often expired topic states are forgotten.
	janitorInterval = time.Minute
)

// Broker is a pubsub.Broker on NATS: core NATS subjects carry broadcasts,
// a JetStream stream keeps history. See the package documentation for the
// design, and Options for its settings.
type Broker struct {
	opts  Options
	names names
	log   *zap.Logger
	seed  maphash.Seed

	life    *pubsub.Lifecycle
	handler pubsub.Handler
	c       *client // set by Start

	// deliverMu is held (read) around each Handler call; Close takes it to
	// wait for calls in progress before setting closing.
	deliverMu sync.RWMutex
	closing   bool
	queues    []chan *nats.Msg
	done      chan struct{}
	wg        sync.WaitGroup

	subs   [shards]subShard
	topics [shards]topicShard
}

var _ pubsub.Broker = (*Broker)(nil)

// subShard holds the subscriptions of the topics hashed to it.
type subShard struct {
	mu sync.Mutex
	m  map[string]*liveSub
}

// liveSub is this node's subscription of a topic, counted, with the
// position of the last history record delivered for it.
type liveSub struct {
	n    int
	sub  *nats.Subscription
	last pubsub.Position
}

// New returns a Broker configured by opts; Start connects it.
func New(opts Options) (*Broker, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	return &Broker{
		opts:  o,
		names: newNames(o.Prefix),
		log:   o.Logger,
		seed:  maphash.MakeSeed(),
		life:  pubsub.NewLifecycle("natsbroker: "),
	}, nil
}

// historyStreamConfig is the stream of every topic's history. Stored
// records are republished on the broadcast subject of their topic, so that
// storing and sending are one step and subscribers get records in stream
// order. Direct gets are allowed with one replica only: with more, any
// replica answers them, and a follower may not have applied the newest
// records yet (see allowDirect).
func (b *Broker) historyStreamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if b.opts.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	maxAge := b.opts.HistoryMaxAge
	if maxAge < 0 {
		maxAge = 0
	}
	return jetstream.StreamConfig{
		Name:              b.names.historyStream,
		Description:       "caddy-channels history, one subject per topic",
		Subjects:          []string{b.names.hist + ">"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(b.opts.MaxHistorySize) + trimSlack(b.opts.MaxHistorySize) + markerSlack,
		MaxAge:            maxAge,
		Storage:           storage,
		Replicas:          b.opts.Replicas,
		Duplicates:        duplicates(b.opts.Replicas),
		AllowDirect:       allowDirect(b.opts.Replicas),
		RePublish:         &jetstream.RePublish{Source: b.names.hist + ">", Destination: b.names.live + ">"},
	}
}

// Start registers h and connects to NATS. It succeeds when NATS is down:
// the broker then connects in the background, and calls that need NATS
// fail with ErrUnavailable until it does. See pubsub.Broker.Start.
func (b *Broker) Start(h pubsub.Handler) error {
	return b.life.Start(h, func() error {
		c, err := dial(b.opts, "broker", b.historyStreamConfig(), nil)
		if err != nil {
			return err
		}
		b.c, b.handler = c, h
		b.done = make(chan struct{})
		n := min(max(runtime.GOMAXPROCS(0), 2), 16)
		b.queues = make([]chan *nats.Msg, n)
		for i := range b.queues {
			q := make(chan *nats.Msg, b.opts.DeliveryQueue)
			b.queues[i] = q
			b.wg.Add(1)
			go b.dispatch(q)
		}
		b.wg.Add(1)
		go b.janitor()
		return nil
	})
}

// Subscribe counts a subscription of topic; the first one subscribes this
// node to the topic's subject and waits for the server to confirm it. While
// NATS is unavailable the subscription is recorded and takes effect when
// the connection is back. See pubsub.Broker.Subscribe.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	if err := b.life.Check("subscribe", topic); err != nil {
		return err
	}
	sh := &b.subs[b.shardOf(topic)]
	sh.mu.Lock()
	s := sh.m[topic]
	if s == nil {
		sub, err := b.c.nc.ChanSubscribe(b.names.liveSubject(topic), b.queues[b.queueOf(topic)])
		if err != nil {
			sh.mu.Unlock()
			return b.fail("subscribe", topic, err)
		}
		s = &liveSub{sub: sub}
		if sh.m == nil {
			sh.m = make(map[string]*liveSub)
		}
		sh.m[topic] = s
	}
	s.n++
	sh.mu.Unlock()
	if b.c.nc.IsConnected() {
		fctx, cancel := b.c.reqCtx(ctx)
		err := b.c.nc.FlushWithContext(fctx)
		cancel()
		if err != nil && !b.life.Closed() {
			b.log.Warn("NATS did not confirm a subscription; it is restored on reconnect",
				zap.String("topic", topic), zap.Error(err))
		}
	}
	return nil
}

// Unsubscribe undoes one Subscribe; the last one unsubscribes this node
// from the topic's subject. See pubsub.Broker.Unsubscribe.
func (b *Broker) Unsubscribe(_ context.Context, topic string) error {
	if err := b.life.Check("unsubscribe", topic); err != nil {
		return err
	}
	sh := &b.subs[b.shardOf(topic)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[topic]
	if s == nil {
		return nil
	}
	if s.n--; s.n > 0 {
		return nil
	}
	delete(sh.m, topic)
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) &&
		!errors.Is(err, nats.ErrBadSubscription) {
		return b.fail("unsubscribe", topic, err)
	}
	return nil
}

// Close stops delivery, waits for Handler calls in progress, closes the
// connection and stops the broker's goroutines. See pubsub.Broker.Close.
func (b *Broker) Close() error {
	if !b.life.Close() {
		return nil
	}
	b.deliverMu.Lock()
	b.closing = true
	b.deliverMu.Unlock()
	close(b.done)
	b.c.close()
	b.wg.Wait()
	for i := range b.subs {
		sh := &b.subs[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
	for i := range b.topics {
		sh := &b.topics[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
	return nil
}

// dispatch delivers the messages of one queue, in order. Each topic always
// uses the same queue, so its messages reach the Handler one at a time and
// in the order the server sent them.
func (b *Broker) dispatch(q chan *nats.Msg) {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case msg := <-q:
			b.deliver(msg)
		}
	}
}

// deliver decodes msg and hands it to the Handler.
func (b *Broker) deliver(msg *nats.Msg) {
	kind, m, _, err := decodeRecord(msg.Data)
	if err != nil {
		b.log.Warn("dropping an undecodable message", zap.String("subject", msg.Subject), zap.Error(err))
		return
	}
	if kind != kindBroadcast {
		b.noteStream(m.Topic)
		if kind == kindMarker || !b.advance(m.Topic, m.Position) {
			return
		}
	}
	b.deliverMu.RLock()
	if !b.closing {
		b.handler(m)
	}
	b.deliverMu.RUnlock()
}

// advance records pos as the last history position delivered on topic
// and reports whether it follows the previous one: a record at or before
// it in the same epoch (sent again by a new stream leader, say) is not
// delivered twice. Records of a topic are delivered one at a time.
func (b *Broker) advance(topic string, pos pubsub.Position) bool {
	sh := &b.subs[b.shardOf(topic)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[topic]
	if s == nil {
		return true
	}
	if s.last.Epoch == pos.Epoch && pos.Seq <= s.last.Seq {
		b.log.Warn("dropping a history record delivered before", zap.String("topic", topic),
			zap.String("epoch", pos.Epoch), zap.Uint64("seq", pos.Seq), zap.Uint64("last", s.last.Seq))
		return false
	}
	s.last = pos
	return true
}

// janitor periodically forgets the cached state of topics whose history
// has expired.
func (b *Broker) janitor() {
	defer b.wg.Done()
	t := time.NewTicker(janitorInterval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.forgetExpired(nowMs())
		}
	}
}

// fail wraps the error of a call; once the broker is closed, every error
// is reported as pubsub.ErrClosed.
func (b *Broker) fail(op, topic string, err error) error {
	if cerr := b.life.ClosedError(op, topic); cerr != nil {
		return cerr
	}
	return fail("broker", op, topic, err)
}

// shardOf returns the lock shard of topic.
func (b *Broker) shardOf(topic string) int {
	return int(maphash.String(b.seed, topic) % shards)
}

// queueOf returns the delivery queue of topic.
func (b *Broker) queueOf(topic string) int {
	return int((maphash.String(b.seed, topic) / shards) % uint64(len(b.queues)))
}
