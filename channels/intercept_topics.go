package channels

import "maps"

// Helpers of intercepted delivery that touch the topic table and the
// subscriptions' assigns; see intercept_deliver.go for why delivery takes
// the shard lock twice.

// snapshot appends the local subscribers of topic to dst under the shard's
// read lock and returns it.
func (t *topicTable) snapshot(topic string, dst []*subscription) []*subscription {
	sh := t.shard(topic)
	sh.mu.RLock()
	if ts := sh.topics[topic]; ts != nil {
		dst = append(dst, ts.subs...)
	}
	sh.mu.RUnlock()
	return dst
}

// sendSubscribed queues each frame on its subscriber's socket, under the
// shard's read lock, if the subscription is still in the table, and
// returns how many frames were queued.
func (t *topicTable) sendSubscribed(topic string, out []queuedFrame) uint64 {
	if len(out) == 0 {
		return 0
	}
	var n uint64
	sh := t.shard(topic)
	sh.mu.RLock()
	if ts := sh.topics[topic]; ts != nil {
		for _, q := range out {
			s := q.sub
			if s.slot >= 0 && s.slot < len(ts.subs) && ts.subs[s.slot] == s && s.sock.q.Send(q.f) {
				n++
			}
		}
	}
	sh.mu.RUnlock()
	return n
}

// publishAssigns makes sub.assigns visible to deliveries, which run on
// other goroutines than the socket's read loop. A published map is never
// modified: mergeAssigns replaces it.
func (sub *subscription) publishAssigns() {
	a := sub.assigns
	sub.published.Store(&a)
}

// mergeAssigns merges a into the channel assigns, copy-on-write, and
// publishes the result. Read loop only.
func (sub *subscription) mergeAssigns(a map[string]any) {
	next := make(map[string]any, len(sub.assigns)+len(a))
	maps.Copy(next, sub.assigns)
	maps.Copy(next, a)
	sub.assigns = next
	sub.publishAssigns()
}

// deliveryAssigns returns the published assigns (nil before the first
// publication).
func (sub *subscription) deliveryAssigns() map[string]any {
	if p := sub.published.Load(); p != nil {
		return *p
	}
	return nil
}
