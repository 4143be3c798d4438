package natsbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Presence is a pubsub.PresenceManager and pubsub.PresenceExpirer on a
// JetStream stream: one subject per tracked entry, holding its newest
// record, and one heartbeat subject per manager. See the package
// documentation for how entries of dead nodes expire.
type Presence struct {
	opts  Options
	names names
	log   *zap.Logger
	seed  maphash.Seed
	// owner identifies this manager in subjects: random, so that a
	// restarted node never inherits entries of its previous life.
	owner string
	c     *client

	life     *pubsub.Lifecycle
	onExpire atomic.Pointer[func(string, pubsub.PresenceEntry)]
	shards   [shards]presShard

	// pending holds filters of entries to purge once NATS takes them: the
	// Untracks that failed, and the Tracks that may have been stored.
	pendMu  sync.Mutex
	pending map[string]struct{} // entry filters

	// hbMu orders heartbeat writes; hbSeq is the stream sequence of this
	// manager's last heartbeat (0 before the first), retrack is set when
	// the entries must be written again.
	hbMu    sync.Mutex
	hbSeq   uint64
	hbReady atomic.Bool
	retrack atomic.Bool

	kick chan struct{} // wakes the loop after a (re)connect
	done chan struct{}
	wg   sync.WaitGroup

	// seen is the loop's record of other managers' heartbeats; blind is
	// set by the loop when its last read of them, or its own heartbeat,
	// failed.
	seen  map[string]observed
	blind bool
}

var (
	_ pubsub.PresenceManager = (*Presence)(nil)
	_ pubsub.PresenceExpirer = (*Presence)(nil)
)

// presShard holds this manager's own entries of the topics hashed to it,
// kept to write them again after NATS lost them.
type presShard struct {
	mu  sync.Mutex
	own map[string]map[string]pubsub.PresenceEntry // topic -> id -> entry
}

// observed is when a heartbeat was first seen with its stream sequence.
type observed struct {
	seq uint64
	at  time.Time
}

// NewPresence returns a presence manager configured by opts, connected (or
// connecting in the background while NATS is down) and heartbeating.
func NewPresence(opts Options) (*Presence, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("natsbroker: presence id: %w", err)
	}
	p := &Presence{
		opts:    o,
		names:   newNames(o.Prefix),
		log:     o.Logger,
		seed:    maphash.MakeSeed(),
		owner:   hex.EncodeToString(id[:]),
		life:    pubsub.NewStartedLifecycle("natsbroker: presence "),
		pending: make(map[string]struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		seen:    make(map[string]observed),
	}
	p.c, err = dial(o, "presence", p.streamConfig(), p.wake)
	if err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.loop()
	return p, nil
}

// streamConfig is the stream of presence records: one record per subject.
func (p *Presence) streamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if p.opts.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:              p.names.presenceStream,
		Description:       "caddy-channels presence: entries and node heartbeats",
		Subjects:          []string{p.names.presence + ">"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		Storage:           storage,
		Replicas:          p.opts.Replicas,
		Duplicates:        duplicates(p.opts.Replicas),
		AllowDirect:       allowDirect(p.opts.Replicas),
	}
}

// OnExpire registers f, called with each entry of a dead node that this
// manager removed. A manager without it never removes other nodes'
// entries. See pubsub.PresenceExpirer.
func (p *Presence) OnExpire(f func(topic string, e pubsub.PresenceEntry)) {
	p.onExpire.Store(&f)
}

// Track stores e on topic. It fails with ErrUnavailable while NATS is
// unreachable. See pubsub.PresenceManager.Track.
func (p *Presence) Track(ctx context.Context, topic string, e pubsub.PresenceEntry) error {
	if err := p.life.Check("track", topic); err != nil {
		return err
	}
	if e.ID == "" {
		return fmt.Errorf("natsbroker: presence track %q: empty id: %w", topic, pubsub.ErrInvalidArgument)
	}
	if err := p.c.online(); err != nil {
		return p.fail("track", topic, err)
	}
	ctx, cancel := p.c.reqCtx(ctx)
	defer cancel()
	if !p.hbReady.Load() {
		// Entries exist only with their owner's heartbeat, which is what
		// lets other nodes find and expire them.
		if err := p.beat(ctx); err != nil {
			return p.fail("track", topic, fmt.Errorf("heartbeat: %w", err))
		}
	}
	e.Meta = bytes.Clone(e.Meta)
	subject := p.names.entrySubject(topic, p.owner, e.ID)
	sh := p.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, err := p.c.publish(ctx, subject, encodePresence(p.entryRecord(topic, e)), nil)
	if err != nil {
		// The entry may have been stored all the same: remove it later.
		p.addPending(subject)
		return p.fail("track", topic, err)
	}
	p.dropPending(subject)
	p.dropPending(p.names.entriesOfID(topic, e.ID))
	ids := sh.own[topic]
	if ids == nil {
		ids = make(map[string]pubsub.PresenceEntry)
		if sh.own == nil {
			sh.own = make(map[string]map[string]pubsub.PresenceEntry)
		}
		sh.own[topic] = ids
	}
	ids[e.ID] = e
	return nil
}

// Untrack removes the entry id from topic. While NATS is unreachable, the
// removal is queued and done once it is back; Untrack then returns nil.
// See pubsub.PresenceManager.Untrack.
func (p *Presence) Untrack(ctx context.Context, topic, id string) error {
	if err := p.life.Check("untrack", topic); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("natsbroker: presence untrack %q: empty id: %w", topic, pubsub.ErrInvalidArgument)
	}
	ctx, cancel := p.c.reqCtx(ctx)
	defer cancel()
	sh := p.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// An entry tracked here has a known subject; any other is looked for
	// under every owner.
	filter := p.names.entriesOfID(topic, id)
	if ids := sh.own[topic]; ids != nil {
		if _, ok := ids[id]; ok {
			filter = p.names.entrySubject(topic, p.owner, id)
			delete(ids, id)
			if len(ids) == 0 {
				delete(sh.own, topic)
			}
		}
	}
	err := p.c.online()
	if err == nil {
		err = p.c.purge(ctx, filter, 0)
	}
	if err != nil {
		p.addPending(filter)
		p.log.Warn("presence removal queued until NATS takes it", zap.String("topic", topic), zap.Error(err))
		return nil
	}
	p.dropPending(filter)
	return nil
}

// List returns the entries of topic tracked by every node, in the order
// of their last Track. See pubsub.PresenceManager.List.
func (p *Presence) List(ctx context.Context, topic string) ([]pubsub.PresenceEntry, error) {
	if err := p.life.Check("list", topic); err != nil {
		return nil, err
	}
	if err := p.c.online(); err != nil {
		return nil, p.fail("list", topic, err)
	}
	ctx, cancel := p.c.reqCtx(ctx)
	defer cancel()
	var out []pubsub.PresenceEntry
	err := p.c.scan(ctx, p.names.topicEntries(topic), true, 0, func(subject string, _ uint64, data []byte) {
		r, err := decodePresence(data)
		if err != nil {
			p.log.Warn("ignoring an invalid presence record", zap.String("subject", subject), zap.Error(err))
			return
		}
		if r.kind == presEntry && r.topic == topic {
			out = append(out, pubsub.PresenceEntry{ID: r.id, Key: r.key, Meta: r.meta, Node: r.node})
		}
	})
	if err != nil {
		return nil, p.fail("list", topic, err)
	}
	return out, nil
}

// Close stops the manager's goroutines and closes its connection. It
// first writes a last heartbeat marking this node closed, so that the
// surviving nodes remove (and report) the entries still tracked here at
// their next check; call Untrack first for entries that should simply go.
// See pubsub.PresenceManager.Close.
func (p *Presence) Close() error {
	if !p.life.Close() {
		return nil
	}
	close(p.done)
	p.wg.Wait()
	if p.c.online() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), min(p.opts.RequestTimeout, time.Second))
		p.hbMu.Lock()
		if p.hbSeq != 0 {
			expect := p.hbSeq
			rec := &presRecord{kind: presClosed, owner: p.owner}
			if _, err := p.c.publish(ctx, p.names.heartbeatSubject(p.owner), encodePresence(rec), &expect); err != nil {
				p.log.Warn("could not mark this node's presence closed; it expires after the TTL", zap.Error(err))
			}
		}
		p.hbMu.Unlock()
		cancel()
	}
	p.c.close()
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		sh.own = nil
		sh.mu.Unlock()
	}
	return nil
}

// entryRecord is the record of e tracked on topic by this manager.
func (p *Presence) entryRecord(topic string, e pubsub.PresenceEntry) *presRecord {
	return &presRecord{kind: presEntry, topic: topic, id: e.ID, key: e.Key, node: e.Node, owner: p.owner, meta: e.Meta}
}

// fail wraps the error of a call, as pubsub.ErrClosed once closed.
func (p *Presence) fail(op, topic string, err error) error {
	if cerr := p.life.ClosedError(op, topic); cerr != nil {
		return cerr
	}
	return fail("presence", op, topic, err)
}

// shard returns the shard of topic.
func (p *Presence) shard(topic string) *presShard {
	return &p.shards[maphash.String(p.seed, topic)%shards]
}

// addPending queues the purge of filter.
func (p *Presence) addPending(filter string) {
	p.pendMu.Lock()
	p.pending[filter] = struct{}{}
	p.pendMu.Unlock()
}

// dropPending cancels a queued purge of filter.
func (p *Presence) dropPending(filter string) {
	p.pendMu.Lock()
	delete(p.pending, filter)
	p.pendMu.Unlock()
}

// wake asks the loop to check this node's heartbeat now.
func (p *Presence) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// isConflict reports whether err is a lost conditional write.
func isConflict(err error) bool { return errors.Is(err, errConflict) }
