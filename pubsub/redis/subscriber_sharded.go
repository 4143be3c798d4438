package redisbroker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// shardSub is one topic's sharded subscription on a Redis Cluster: a
// goroutine that keeps SSUBSCRIBE of the topic's channel on the shard
// owning its slot (rueidis routes it, and keeps one pub/sub connection per
// node for all of them), subscribing again whenever the shard's
// connection is lost, the shard's master changes or the server drops the
// subscription (a slot that moved).
type shardSub struct {
	cancel    context.CancelFunc
	done      chan struct{} // closed when the loop returned
	confirmed chan struct{} // closed at the first confirmation
	failed    chan struct{} // closed at the first failed attempt
	up        atomic.Bool   // subscribed: confirmed since the last failure
}

// shards is what the sharded subscriptions of a broker share.
type shards struct {
	ctx     context.Context // ended by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // one per loop
	failing atomic.Int64   // loops whose subscription is down
}

// subscribeSharded is subscribe on a cluster.
func (b *Broker) subscribeSharded(ctx context.Context, topic string) error {
	s := &b.subs
	st := s.acquire(topic)
	defer s.release(topic, st)
	st.op.Lock()
	defer st.op.Unlock()
	s.mu.Lock()
	st.refs++
	first := st.refs == 1
	s.mu.Unlock()
	if !first {
		return nil
	}
	ss := b.startShardSub(topic)
	st.shard = ss
	cctx, cancel := b.cfg.callCtx(ctx)
	defer cancel()
	select {
	case <-ss.confirmed:
		return nil
	case <-ss.failed:
	case <-cctx.Done():
	}
	if ctx.Err() != nil {
		b.stopShardSub(topic, ss)
		st.shard = nil
		s.mu.Lock()
		st.refs--
		s.mu.Unlock()
		return wrap(ctx, "subscribe", topic, ctx.Err())
	}
	b.log.Warn("subscribe not confirmed yet; the topic is subscribed when its shard answers",
		zap.String("topic", topic))
	return nil
}

// unsubscribeSharded is unsubscribe on a cluster.
func (b *Broker) unsubscribeSharded(topic string) {
	s := &b.subs
	st := s.acquire(topic)
	defer s.release(topic, st)
	st.op.Lock()
	defer st.op.Unlock()
	s.mu.Lock()
	if st.refs == 0 {
		s.mu.Unlock()
		return
	}
	st.refs--
	last := st.refs == 0
	s.mu.Unlock()
	if last && st.shard != nil {
		b.stopShardSub(topic, st.shard)
		st.shard = nil
	}
}

// startShardSub starts the subscription loop of topic.
func (b *Broker) startShardSub(topic string) *shardSub {
	ctx, cancel := context.WithCancel(b.shards.ctx)
	ss := &shardSub{cancel: cancel, done: make(chan struct{}), confirmed: make(chan struct{}), failed: make(chan struct{})}
	b.shards.wg.Add(1)
	go b.shardLoop(ctx, topic, ss)
	return ss
}

// stopShardSub ends the loop of topic and unsubscribes it on its shard
// (the loop's end already stops delivery: rueidis drops messages of a
// channel nobody receives).
func (b *Broker) stopShardSub(topic string, ss *shardSub) {
	ss.cancel()
	<-ss.done
	if b.shards.ctx.Err() != nil || !ss.up.Load() {
		return // closing, or not subscribed: nothing to undo on the shard
	}
	ctx, cancel := b.cfg.callCtx(context.Background())
	defer cancel()
	if err := b.client.Do(ctx, b.client.B().Sunsubscribe().Channel(b.keys.channel(topic)).Build()).Error(); err != nil {
		b.log.Debug("sunsubscribe failed; the shard drops the subscription with its connection",
			zap.String("topic", topic), zap.Error(err))
	}
}

// shardLoop keeps topic subscribed until ctx ends.
func (b *Broker) shardLoop(ctx context.Context, topic string, ss *shardSub) {
	defer b.shards.wg.Done()
	defer close(ss.done)
	var confirmedOnce, failedOnce sync.Once
	var down atomic.Bool // counted in shards.failing
	defer func() {
		if down.CompareAndSwap(true, false) {
			b.shards.failing.Add(-1)
		}
	}()
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind != "ssubscribe" {
			return
		}
		ss.up.Store(true)
		confirmedOnce.Do(func() { close(ss.confirmed) })
		if down.CompareAndSwap(true, false) && b.shards.failing.Add(-1) == 0 {
			b.log.Info("redis sharded subscriptions restored")
		}
	})
	bo := backoff{min: b.cfg.ReconnectMin, max: b.cfg.ReconnectMax}
	channel := b.keys.channel(topic)
	for {
		err := b.client.Receive(hooked, b.client.B().Ssubscribe().Channel(channel).Build(), b.deliver)
		if ctx.Err() != nil {
			return
		}
		// nil: the shard dropped the subscription (its slot moved);
		// otherwise the connection failed or the node refused.
		if ss.up.Swap(false) {
			bo.reset()
		}
		failedOnce.Do(func() { close(ss.failed) })
		if down.CompareAndSwap(false, true) && b.shards.failing.Add(1) == 1 {
			b.log.Error("redis sharded subscription lost; subscribing again (messages published meanwhile are not received)",
				zap.String("topic", topic), zap.Error(err))
		}
		timer := time.NewTimer(bo.delay())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
