package channels

import (
	"hash/maphash"
	"sync"
)

// numTopicShards splits the topic table so that joins, leaves and
// broadcasts on unrelated topics do not contend for one lock.
const numTopicShards = 64

// topicTable maps topics to their local subscribers.
type topicTable struct {
	seed   maphash.Seed
	shards [numTopicShards]topicShard
}

type topicShard struct {
	mu     sync.RWMutex
	topics map[string]*topicSubs
}

// topicSubs is the set of local subscriptions of one topic. Removal is
// O(1): each subscription remembers its slot.
type topicSubs struct {
	subs []*subscription
}

func newTopicTable() *topicTable {
	t := &topicTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].topics = make(map[string]*topicSubs)
	}
	return t
}

func (t *topicTable) shard(topic string) *topicShard {
	return &t.shards[maphash.String(t.seed, topic)%numTopicShards]
}

// add subscribes s to its topic. onSubscribed runs while the shard lock is
// held, so that every message delivered after the subscription is ordered
// after whatever onSubscribed queues (the join reply).
func (t *topicTable) add(s *subscription, onSubscribed func()) {
	sh := t.shard(s.topic)
	sh.mu.Lock()
	ts := sh.topics[s.topic]
	if ts == nil {
		ts = &topicSubs{}
		sh.topics[s.topic] = ts
	}
	s.slot = len(ts.subs)
	ts.subs = append(ts.subs, s)
	onSubscribed()
	sh.mu.Unlock()
}

// remove unsubscribes s and reports whether it was subscribed. Removing
// twice is harmless.
func (t *topicTable) remove(s *subscription) bool {
	sh := t.shard(s.topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ts := sh.topics[s.topic]
	if ts != nil && s.slot >= 0 && s.slot < len(ts.subs) && ts.subs[s.slot] == s {
		end := len(ts.subs) - 1
		moved := ts.subs[end]
		ts.subs[s.slot] = moved
		moved.slot = s.slot
		ts.subs[end] = nil
		ts.subs = ts.subs[:end]
		s.slot = -1
		if len(ts.subs) == 0 {
			delete(sh.topics, s.topic)
		}
		return true
	}
	return false
}

// each calls fn for every local subscriber of topic under the shard's read
// lock. fn must not block: it only queues frames.
func (t *topicTable) each(topic string, fn func(*subscription)) {
	sh := t.shard(topic)
	sh.mu.RLock()
	if ts := sh.topics[topic]; ts != nil {
		for _, s := range ts.subs {
			fn(s)
		}
	}
	sh.mu.RUnlock()
}

// count returns the number of local subscribers of topic.
func (t *topicTable) count(topic string) int {
	sh := t.shard(topic)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ts := sh.topics[topic]; ts != nil {
		return len(ts.subs)
	}
	return 0
}
