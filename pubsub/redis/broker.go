package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Broker is a pubsub.Broker on Redis; see the package documentation.
type Broker struct {
	cfg  *config
	keys keys
	log  *zap.Logger

	life    *pubsub.Lifecycle
	client  rueidis.Client // set by Start
	conns   conns
	handler pubsub.Handler

	// hmu is held while the Handler runs; delivering turns false at Close.
	hmu        sync.Mutex
	delivering bool

	subs   subscriptions
	shards shards        // sharded subscriptions (cluster only)
	stop   chan struct{} // closed by Close to stop run
	done   chan struct{} // closed when run has returned
}

var _ pubsub.Broker = (*Broker)(nil)

// New validates opts and returns a Broker. It does not connect: Start does.
func New(opts Options) (*Broker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Broker{
		cfg:  cfg,
		keys: keys{prefix: cfg.KeyPrefix, sharded: cfg.sharded()},
		log:  cfg.Logger.With(zap.String("component", "redis broker")),
		life: pubsub.NewLifecycle("redisbroker: "),
		subs: subscriptions{topics: make(map[string]*subTopic)},
	}, nil
}

// Start registers h and connects to Redis. When Redis is unreachable Start
// still succeeds: it logs the error and keeps reconnecting in the
// background (see the package documentation for what works meanwhile).
// Start may take up to twice the dial timeout when Redis does not answer.
func (b *Broker) Start(h pubsub.Handler) error {
	return b.life.Start(h, func() error {
		client, err := newClient(b.cfg, "redis broker", &b.conns)
		if err != nil {
			return err
		}
		b.client = client
		b.handler = h
		b.hmu.Lock()
		b.delivering = true
		b.hmu.Unlock()
		b.stop, b.done = make(chan struct{}), make(chan struct{})
		if b.cfg.sharded() {
			// One subscription loop per topic (subscriber_sharded.go).
			b.shards.ctx, b.shards.cancel = context.WithCancel(context.Background())
			go func() {
				defer close(b.done)
				<-b.stop
				b.shards.cancel()
				b.shards.wg.Wait()
			}()
			return nil
		}
		first := b.connect()
		go b.run(first)
		return nil
	})
}

// Subscribe counts one subscription of topic; the first one subscribes the
// node to the topic's channel and returns once Redis confirmed it. While
// Redis is unreachable it succeeds without waiting: the topic is
// subscribed when the connection is back. See pubsub.Broker.Subscribe.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	if err := b.life.Check("subscribe", topic); err != nil {
		return err
	}
	if b.cfg.sharded() {
		return b.subscribeSharded(ctx, topic)
	}
	return b.subscribe(ctx, topic)
}

// Unsubscribe undoes one Subscribe; the last one unsubscribes the node
// from the topic's channel. See pubsub.Broker.Unsubscribe.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	if err := b.life.Check("unsubscribe", topic); err != nil {
		return err
	}
	if b.cfg.sharded() {
		b.unsubscribeSharded(topic)
		return nil
	}
	b.unsubscribe(ctx, topic)
	return nil
}

// Publish stores m in the topic's history stream when opts.HistorySize is
// positive and publishes it to every subscribed node, atomically in one
// Lua script. See pubsub.Broker.Publish.
func (b *Broker) Publish(ctx context.Context, m *pubsub.Message, opts pubsub.PublishOptions) (pubsub.Position, error) {
	if m == nil {
		return pubsub.Position{}, fmt.Errorf("redisbroker: publish: nil message: %w", pubsub.ErrInvalidArgument)
	}
	if err := b.life.Check("publish", m.Topic); err != nil {
		return pubsub.Position{}, err
	}
	if opts.Transient {
		// Not part of the stream: published as is, the stream untouched.
		m.Position = pubsub.Position{}
		env := appendEnvelope(make([]byte, 0, envelopeSize(m)), m)
		cctx, cancel := b.cfg.callCtx(ctx)
		err := b.client.Do(cctx, b.publishCmd(m.Topic, env)).Error()
		cancel()
		if err != nil {
			return pubsub.Position{}, b.fail(ctx, "publish", m.Topic, err)
		}
		return pubsub.Position{}, nil
	}
	env := appendEnvelope(make([]byte, 0, envelopeSize(m)), m)
	size := max(opts.HistorySize, 0)
	keys := []string{b.keys.historyMeta(m.Topic), b.keys.historyStrm(m.Topic)}
	args := []string{
		b.keys.channel(m.Topic),
		rueidis.BinaryString(env),
		strconv.Itoa(size),
		strconv.FormatInt(millis(opts.HistoryTTL), 10),
		newEpoch(),
		b.publishVerb(),
		b.checkReplID(),
	}
	cctx, cancel := b.cfg.callCtx(ctx)
	res := publishScript.Exec(cctx, b.client, keys, args)
	cancel()
	m.Position = pubsub.Position{}
	if err := res.Error(); err != nil {
		if rueidis.IsRedisNil(err) && size == 0 {
			return pubsub.Position{}, nil
		}
		return pubsub.Position{}, b.fail(ctx, "publish", m.Topic, err)
	}
	if size == 0 {
		return pubsub.Position{}, nil
	}
	s, err := res.ToString()
	if err != nil {
		return pubsub.Position{}, fmt.Errorf("redisbroker: publish %q: reply: %w", m.Topic, err)
	}
	pos, err := pubsub.ParsePosition(s)
	if err != nil {
		return pubsub.Position{}, fmt.Errorf("redisbroker: publish %q: reply: %w", m.Topic, err)
	}
	m.Position = pos
	return pos, nil
}

// History reads the topic's history stream, creating an empty one with a
// new epoch if there is none. See pubsub.Broker.History.
func (b *Broker) History(ctx context.Context, topic string, opts pubsub.HistoryOptions) (pubsub.HistoryResult, error) {
	if err := b.life.Check("history", topic); err != nil {
		return pubsub.HistoryResult{}, err
	}
	hasSince, sinceEpoch, sinceSeq := "0", "", "0"
	if opts.Since != nil {
		hasSince, sinceEpoch, sinceSeq = "1", opts.Since.Epoch, strconv.FormatUint(opts.Since.Seq, 10)
	}
	keys := []string{b.keys.historyMeta(topic), b.keys.historyStrm(topic)}
	args := []string{newEpoch(), strconv.FormatInt(millis(opts.TTL), 10), hasSince, sinceEpoch, sinceSeq, strconv.Itoa(opts.Limit), b.checkReplID()}
	cctx, cancel := b.cfg.callCtx(ctx)
	defer cancel()
	arr, err := historyScript.Exec(cctx, b.client, keys, args).ToArray()
	if err != nil {
		return pubsub.HistoryResult{}, b.fail(ctx, "history", topic, err)
	}
	res, err := parseHistory(arr)
	if err != nil {
		return pubsub.HistoryResult{}, fmt.Errorf("redisbroker: history %q: %w", topic, err)
	}
	return res, nil
}

// parseHistory reads the reply of historyScript.
func parseHistory(arr []rueidis.RedisMessage) (pubsub.HistoryResult, error) {
	if len(arr) < 3 || len(arr)%2 == 0 {
		return pubsub.HistoryResult{}, fmt.Errorf("reply of %d elements: %w", len(arr), errMalformed)
	}
	epoch, err := arr[0].ToString()
	if err != nil {
		return pubsub.HistoryResult{}, fmt.Errorf("reply epoch: %w", err)
	}
	top, err := arr[1].AsInt64()
	if err != nil {
		return pubsub.HistoryResult{}, fmt.Errorf("reply seq: %w", err)
	}
	rec, err := arr[2].AsInt64()
	if err != nil {
		return pubsub.HistoryResult{}, fmt.Errorf("reply recovered: %w", err)
	}
	res := pubsub.HistoryResult{Latest: pubsub.Position{Epoch: epoch, Seq: uint64(top)}, Recovered: rec == 1}
	if n := (len(arr) - 3) / 2; n > 0 {
		res.Messages = make([]*pubsub.Message, n)
	}
	for i := range res.Messages {
		id, err := arr[3+2*i].ToString()
		if err != nil {
			return pubsub.HistoryResult{}, fmt.Errorf("reply entry id: %w", err)
		}
		seq, err := streamSeq(id)
		if err != nil {
			return pubsub.HistoryResult{}, err
		}
		env, err := arr[4+2*i].ToString()
		if err != nil {
			return pubsub.HistoryResult{}, fmt.Errorf("reply entry: %w", err)
		}
		m, err := decodeEnvelope(env)
		if err != nil {
			return pubsub.HistoryResult{}, err
		}
		m.Position = pubsub.Position{Epoch: epoch, Seq: seq}
		res.Messages[i] = m
	}
	return res, nil
}

// streamSeq reads the seq of a stream entry id "0-<seq>".
func streamSeq(id string) (uint64, error) {
	rest, ok := strings.CutPrefix(id, "0-")
	if !ok {
		return 0, fmt.Errorf("stream entry id %q: %w", id, errMalformed)
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stream entry id %q: %w", id, errMalformed)
	}
	return seq, nil
}

// Close stops delivery and the background goroutine and closes the
// connections. When it returns, the Handler is not called again. See
// pubsub.Broker.Close.
func (b *Broker) Close() error {
	if !b.life.Close() {
		return nil
	}
	b.hmu.Lock() // waits for a delivery in progress
	b.delivering = false
	b.hmu.Unlock()
	close(b.stop)
	if b.shards.cancel != nil {
		b.shards.cancel() // the loops end instead of reporting the cut connections
	}
	b.conns.closeAll() // no goodbye to a server that may hang
	<-b.done
	b.client.Close()
	return nil
}

// deliver decodes a message received on a channel and hands it to the
// Handler. It runs on the pub/sub connection's reading goroutine, so the
// messages of all topics are delivered one at a time, in the order Redis
// published them.
func (b *Broker) deliver(rm rueidis.PubSubMessage) {
	m, err := decodeEnvelope(rm.Message)
	if err != nil {
		b.log.Warn("dropping undecodable message", zap.String("channel", rm.Channel), zap.Error(err))
		return
	}
	if !b.keys.isChannel(rm.Channel, m.Topic) {
		b.log.Warn("dropping message of another topic", zap.String("channel", rm.Channel), zap.String("topic", m.Topic))
		return
	}
	b.hmu.Lock()
	if b.delivering {
		b.handler(m)
	}
	b.hmu.Unlock()
}

// checkReplID is the scripts' flag to compare the server's replication ID
// with the one that wrote a topic's history: "1" with Sentinel or a
// Cluster, where writes are lost by promoting a replica, "0" on a single
// server (see scripts.go).
func (b *Broker) checkReplID() string {
	if b.cfg.mode == ModeSingle {
		return "0"
	}
	return "1"
}

// publishVerb is the command that broadcasts: SPUBLISH (sharded pub/sub)
// on a cluster, so that a publish touches only the topic's shard, else
// PUBLISH.
func (b *Broker) publishVerb() string {
	if b.cfg.sharded() {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// publishCmd broadcasts env on topic's channel, without history.
func (b *Broker) publishCmd(topic string, env []byte) rueidis.Completed {
	if b.cfg.sharded() {
		return b.client.B().Spublish().Channel(b.keys.channel(topic)).Message(rueidis.BinaryString(env)).Build()
	}
	return b.client.B().Publish().Channel(b.keys.channel(topic)).Message(rueidis.BinaryString(env)).Build()
}

// fail wraps the error of a Redis call, reporting ErrClosed when the
// broker was closed meanwhile.
func (b *Broker) fail(ctx context.Context, op, topic string, err error) error {
	if cerr := b.life.ClosedError(op, topic); cerr != nil {
		return cerr
	}
	return wrap(ctx, op, topic, err)
}

// millis converts a TTL to whole milliseconds, rounding up so that a
// positive TTL stays positive; 0 or less gives 0.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
