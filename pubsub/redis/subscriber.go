package redisbroker

import (
	"context"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// subscribeBatch is the most channels one SUBSCRIBE names when a new
// connection restores the subscriptions.
const subscribeBatch = 256

// subscriptions is the node's set of subscribed topics and the pub/sub
// connection that carries them.
//
// Lock order: subTopic.op, then resub, then mu. resub is held for reading
// by a Subscribe or Unsubscribe while it talks to Redis, and for writing by
// the reconnect loop while it restores all subscriptions on a new
// connection, so that a topic is never subscribed on Redis without being
// counted here, nor left out of a restored connection.
type subscriptions struct {
	resub  sync.RWMutex
	mu     sync.Mutex
	topics map[string]*subTopic
	cur    *subConn // nil while disconnected
}

// subTopic is one topic's subscription count.
type subTopic struct {
	op    sync.Mutex // serializes the topic's SUBSCRIBE and UNSUBSCRIBE
	refs  int        // Subscribe calls not yet undone; guarded by subscriptions.mu
	users int        // calls holding this subTopic; guarded by subscriptions.mu
	shard *shardSub  // the sharded subscription (cluster only); guarded by op
}

// subConn is one pub/sub connection.
type subConn struct {
	dc    rueidis.DedicatedClient
	wait  <-chan error // yields when the connection is lost
	close func()
}

// acquire returns topic's state, creating it if needed.
func (s *subscriptions) acquire(topic string) *subTopic {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.topics[topic]
	if st == nil {
		st = &subTopic{}
		s.topics[topic] = st
	}
	st.users++
	return st
}

// release undoes acquire, dropping the state of an unsubscribed topic.
func (s *subscriptions) release(topic string, st *subTopic) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.users--
	if st.users == 0 && st.refs == 0 {
		delete(s.topics, topic)
	}
}

// subscribe counts one subscription and subscribes the channel on the
// first.
func (b *Broker) subscribe(ctx context.Context, topic string) error {
	s := &b.subs
	st := s.acquire(topic)
	defer s.release(topic, st)
	st.op.Lock()
	defer st.op.Unlock()
	s.resub.RLock()
	defer s.resub.RUnlock()
	s.mu.Lock()
	st.refs++
	first, cur := st.refs == 1, s.cur
	s.mu.Unlock()
	if !first || cur == nil {
		return nil
	}
	cctx, cancel := b.cfg.callCtx(ctx)
	err := cur.dc.Do(cctx, cur.dc.B().Subscribe().Channel(b.keys.channel(topic)).Build()).Error()
	cancel()
	if err == nil {
		return nil
	}
	// The SUBSCRIBE may or may not have reached Redis: drop the connection,
	// so that the reconnect loop restores exactly the counted topics. The
	// loop waits for this close (subConn.close runs once), so it does not
	// outlive Close.
	go cur.close()
	if ctx.Err() != nil {
		s.mu.Lock()
		st.refs--
		s.mu.Unlock()
		return wrap(ctx, "subscribe", topic, err)
	}
	b.log.Warn("subscribe failed; the topic is subscribed when the connection is restored",
		zap.String("topic", topic), zap.Error(err))
	return nil
}

// unsubscribe undoes one subscription and unsubscribes the channel on the
// last.
func (b *Broker) unsubscribe(ctx context.Context, topic string) {
	s := &b.subs
	st := s.acquire(topic)
	defer s.release(topic, st)
	st.op.Lock()
	defer st.op.Unlock()
	s.resub.RLock()
	defer s.resub.RUnlock()
	s.mu.Lock()
	if st.refs == 0 {
		s.mu.Unlock()
		return
	}
	st.refs--
	last, cur := st.refs == 0, s.cur
	s.mu.Unlock()
	if !last || cur == nil {
		return
	}
	cctx, cancel := b.cfg.callCtx(ctx)
	err := cur.dc.Do(cctx, cur.dc.B().Unsubscribe().Channel(b.keys.channel(topic)).Build()).Error()
	cancel()
	if err != nil {
		// Restore the other topics on a new connection without this one.
		go cur.close()
		b.log.Warn("unsubscribe failed; reconnecting", zap.String("topic", topic), zap.Error(err))
	}
}

// connect opens a pub/sub connection, makes it current and subscribes every
// counted topic on it. It returns nil, having logged why, if that fails.
func (b *Broker) connect() *subConn {
	s := &b.subs
	dc, _ := b.client.Dedicate()
	var once sync.Once
	sc := &subConn{dc: dc, close: func() { once.Do(dc.Close) }}
	sc.wait = dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: b.deliver})
	s.resub.Lock()
	defer s.resub.Unlock()
	s.mu.Lock()
	var channels []string
	for topic, st := range s.topics {
		if st.refs > 0 {
			channels = append(channels, b.keys.channel(topic))
		}
	}
	s.cur = sc
	s.mu.Unlock()
	var err error
	if len(channels) == 0 {
		// Check that the connection works.
		ctx, cancel := b.cfg.callCtx(context.Background())
		err = dc.Do(ctx, dc.B().Ping().Build()).Error()
		cancel()
	}
	for i := 0; i < len(channels) && err == nil; i += subscribeBatch {
		batch := channels[i:min(i+subscribeBatch, len(channels))]
		ctx, cancel := b.cfg.callCtx(context.Background())
		err = dc.Do(ctx, dc.B().Subscribe().Channel(batch...).Build()).Error()
		cancel()
	}
	if err != nil {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		sc.close()
		b.log.Error("redis pub/sub connection failed; cross-node messages are not received until it is back",
			zap.Error(err))
		return nil
	}
	return sc
}

// run keeps a pub/sub connection open until Close: it waits for the
// current one to fail and reconnects with backoff, restoring the
// subscriptions.
func (b *Broker) run(cur *subConn) {
	defer close(b.done)
	bo := backoff{min: b.cfg.ReconnectMin, max: b.cfg.ReconnectMax}
	var lost time.Time
	attempts := 0
	for {
		if cur == nil {
			timer := time.NewTimer(bo.delay())
			select {
			case <-b.stop:
				timer.Stop()
				return
			case <-timer.C:
			}
			attempts++
			if cur = b.connect(); cur == nil {
				continue
			}
			b.log.Info("redis pub/sub connection restored; subscriptions restored",
				zap.Int("attempts", attempts), zap.Duration("down", time.Since(lost).Round(time.Millisecond)))
			bo.reset()
			attempts = 0
		}
		select {
		case <-b.stop:
			b.drop(cur)
			return
		case err := <-cur.wait:
			b.drop(cur)
			cur = nil
			lost = time.Now()
			select {
			case <-b.stop:
				return // cut by Close
			default:
			}
			b.log.Error("redis pub/sub connection lost; reconnecting (messages published meanwhile are not received)",
				zap.Error(err))
		}
	}
}

// drop closes sc and forgets it as the current connection.
func (b *Broker) drop(sc *subConn) {
	b.subs.mu.Lock()
	if b.subs.cur == sc {
		b.subs.cur = nil
	}
	b.subs.mu.Unlock()
	sc.close()
	// The hooks are not called once wait is closed.
	for range sc.wait {
	}
}
