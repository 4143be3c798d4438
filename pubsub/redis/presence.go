package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Presence is a pubsub.PresenceManager and pubsub.PresenceExpirer on Redis;
// see the package documentation.
type Presence struct {
	cfg    *config
	keys   keys
	log    *zap.Logger
	client rueidis.Client
	conns  conns

	mu   sync.Mutex
	own  map[string]*ownTopic // this node's entries, to refresh them; guarded by mu
	life *pubsub.Lifecycle    // closed under mu

	onExpire    atomic.Pointer[func(string, pubsub.PresenceEntry)]
	lastFailure atomic.Int64 // unix nanoseconds of the last call that could not reach Redis

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ pubsub.PresenceManager = (*Presence)(nil)
	_ pubsub.PresenceExpirer = (*Presence)(nil)
)

// ownTopic holds the entries this node tracked on one topic.
type ownTopic struct {
	mu      sync.Mutex        // serializes this node's writes of the topic
	entries map[string]string // id -> encoded entry; guarded by mu
	users   int               // calls holding this ownTopic; guarded by Presence.mu
}

// NewPresence returns a Presence with its own connection to Redis and
// starts its refresh and sweep goroutines. When Redis is unreachable it
// still succeeds, logs the error and keeps retrying.
func NewPresence(opts Options) (*Presence, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	p := &Presence{
		cfg:  cfg,
		keys: keys{prefix: cfg.KeyPrefix, sharded: cfg.sharded()},
		log:  cfg.Logger.With(zap.String("component", "redis presence")),
		own:  make(map[string]*ownTopic),
		life: pubsub.NewStartedLifecycle("redisbroker: presence "),
		stop: make(chan struct{}),
	}
	if p.client, err = newClient(cfg, "redis presence", &p.conns); err != nil {
		return nil, err
	}
	p.wg.Add(2)
	go p.refreshLoop()
	go p.sweepLoop()
	return p, nil
}

// OnExpire registers f, called on the sweeping goroutine for each entry
// of another node (or of a node that was closed) that expired and that
// this node removed. See pubsub.PresenceExpirer.
func (p *Presence) OnExpire(f func(topic string, e pubsub.PresenceEntry)) {
	p.onExpire.Store(&f)
}

// Track stores e on topic with a deadline PresenceTTL ahead, and keeps a
// copy so that this node refreshes it until Untrack or Close. If Redis
// cannot be reached, Track fails and nothing is kept. See
// pubsub.PresenceManager.Track.
func (p *Presence) Track(ctx context.Context, topic string, e pubsub.PresenceEntry) error {
	if err := checkPresence("track", topic, e.ID); err != nil {
		return err
	}
	enc := string(appendEntry(nil, e))
	ot, err := p.acquire("track", topic)
	if err != nil {
		return err
	}
	defer p.release(topic, ot)
	ot.mu.Lock()
	defer ot.mu.Unlock()
	cctx, cancel := p.cfg.callCtx(ctx)
	err = p.write(cctx, []entryWrite{{topic, []string{e.ID, enc}}})
	cancel()
	if err != nil {
		return p.fail(ctx, "track", topic, err)
	}
	ot.entries[e.ID] = enc
	return nil
}

// Untrack removes the entry id from topic, in Redis and from this node's
// refreshed entries (even if Redis cannot be reached: the entry then
// expires within PresenceTTL). See pubsub.PresenceManager.Untrack.
func (p *Presence) Untrack(ctx context.Context, topic, id string) error {
	if err := checkPresence("untrack", topic, id); err != nil {
		return err
	}
	ot, err := p.acquire("untrack", topic)
	if err != nil {
		return err
	}
	defer p.release(topic, ot)
	ot.mu.Lock()
	defer ot.mu.Unlock()
	delete(ot.entries, id)
	cctx, cancel := p.cfg.callCtx(ctx)
	err = untrackScript.Exec(cctx, p.client, p.presenceKeys(topic), []string{id}).Error()
	cancel()
	if err != nil {
		return p.fail(ctx, "untrack", topic, err)
	}
	return nil
}

// List returns the entries of topic tracked by every node, in no
// particular order. Entries of a dead node are listed until a sweep
// removes them. See pubsub.PresenceManager.List.
func (p *Presence) List(ctx context.Context, topic string) ([]pubsub.PresenceEntry, error) {
	if err := p.life.Check("list", topic); err != nil {
		return nil, err
	}
	cctx, cancel := p.cfg.callCtx(ctx)
	defer cancel()
	all, err := p.client.Do(cctx, p.client.B().Hgetall().Key(p.keys.presenceHash(topic)).Build()).AsStrMap()
	if err != nil {
		return nil, p.fail(ctx, "list", topic, err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	out := make([]pubsub.PresenceEntry, 0, len(all))
	for id, enc := range all {
		e, err := decodeEntry(id, enc)
		if err != nil {
			p.log.Warn("skipping undecodable presence entry", zap.String("topic", topic), zap.Error(err))
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Close stops refreshing this node's entries and closes the connection.
// Entries are left in Redis: they expire after PresenceTTL and another
// node reports them through OnExpire, as for a node that died. Untrack
// entries first to remove them at once. See pubsub.PresenceManager.Close.
func (p *Presence) Close() error {
	p.mu.Lock()
	if !p.life.Close() {
		p.mu.Unlock()
		return nil
	}
	p.own = nil
	p.mu.Unlock()
	close(p.stop)
	p.conns.closeAll() // no goodbye to a server that may hang
	p.wg.Wait()
	p.client.Close()
	return nil
}

// acquire returns this node's state of topic, creating it if needed.
func (p *Presence) acquire(op, topic string) (*ownTopic, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.life.ClosedError(op, topic); err != nil {
		return nil, err
	}
	ot := p.own[topic]
	if ot == nil {
		ot = &ownTopic{entries: make(map[string]string)}
		p.own[topic] = ot
	}
	ot.users++
	return ot, nil
}

// release undoes acquire, dropping the state of a topic without entries.
// ot.mu must not be held (the lock order is Presence.mu, then ownTopic.mu).
func (p *Presence) release(topic string, ot *ownTopic) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ot.users--
	if ot.users == 0 && p.own[topic] == ot {
		ot.mu.Lock()
		empty := len(ot.entries) == 0
		ot.mu.Unlock()
		if empty {
			delete(p.own, topic)
		}
	}
}

// presenceKeys returns the keys of one topic's presence: the entries
// hash and the deadlines zset.
func (p *Presence) presenceKeys(topic string) []string {
	return []string{p.keys.presenceHash(topic), p.keys.presenceDead(topic)}
}

// entryWrite is one trackScript call: entries of a topic as id, encoded
// entry pairs.
type entryWrite struct {
	topic string
	pairs []string
}

// write stores entries with a fresh deadline and keeps the topic index
// right (see scripts.go): the index scores of the topics are lowered
// first, then the entries written, then the topics whose deadlines zset
// the write created get their exact score.
func (p *Presence) write(ctx context.Context, writes []entryWrite) error {
	if len(writes) == 0 {
		return nil
	}
	ttl := millis(p.cfg.PresenceTTL)
	index := p.keys.presenceIndex()
	topics := make([]string, 0, 1+len(writes))
	topics = append(topics, strconv.FormatInt(ttl, 10))
	execs := make([]rueidis.LuaExec, len(writes))
	for i, w := range writes {
		if i == 0 || w.topic != writes[i-1].topic {
			topics = append(topics, w.topic)
		}
		args := make([]string, 0, 2+len(w.pairs))
		args = append(args, strconv.FormatInt(ttl, 10), strconv.FormatInt(3*ttl+millis(time.Minute), 10))
		execs[i] = rueidis.LuaExec{Keys: p.presenceKeys(w.topic), Args: append(args, w.pairs...)}
	}
	if err := indexScript.Exec(ctx, p.client, []string{index}, topics).Error(); err != nil {
		return err
	}
	zadd := p.client.B().Zadd().Key(index).ScoreMember()
	created := 0
	for i, res := range trackScript.ExecMulti(ctx, p.client, execs...) {
		out, err := res.AsIntSlice()
		if err != nil {
			return err
		}
		if len(out) == 2 && out[1] == 1 {
			zadd = zadd.ScoreMember(float64(out[0]), writes[i].topic)
			created++
		}
	}
	if created == 0 {
		return nil
	}
	return p.client.Do(ctx, zadd.Build()).Error()
}

// fail wraps the error of a Redis call and notes connection failures.
func (p *Presence) fail(ctx context.Context, op, topic string, err error) error {
	if cerr := p.life.ClosedError(op, topic); cerr != nil {
		return cerr
	}
	if _, ok := rueidis.IsRedisErr(err); !ok {
		p.lastFailure.Store(time.Now().UnixNano())
	}
	return wrap(ctx, "presence "+op, topic, err)
}

// checkPresence validates a presence call's topic and id.
func checkPresence(op, topic, id string) error {
	if topic == "" {
		return fmt.Errorf("redisbroker: presence %s: empty topic: %w", op, pubsub.ErrInvalidArgument)
	}
	if id == "" {
		return fmt.Errorf("redisbroker: presence %s %q: empty id: %w", op, topic, pubsub.ErrInvalidArgument)
	}
	return nil
}
