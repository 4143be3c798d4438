package channels

import (
	"maps"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Helpers of intercepted delivery that touch the topic table and the
// subscriptions' assigns; see intercept_deliver.go for why delivery takes
// the shard lock twice.

// snapshot appends the local subscribers of topic that m is delivered to
// now to dst, under the shard's read lock, and returns it. A subscription
// catching up on history holds m instead (see catchUpState), decided under
// the same lock as on the broadcast path; its catch-up runs the intercept
// for it later.
func (t *topicTable) snapshot(topic string, m *pubsub.Message, dst []*subscription) []*subscription {
	sh := t.shard(topic)
	sh.mu.RLock()
	if ts := sh.topics[topic]; ts != nil {
		for _, s := range ts.subs {
			if cu := s.catchUp.Load(); cu != nil && cu.hold(m) {
				continue
			}
			dst = append(dst, s)
		}
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
			if s.slot >= 0 && s.slot < len(ts.subs) && ts.subs[s.slot] == s && s.sock.t.Send(q.f) {
				n++
			}
		}
	}
	sh.mu.RUnlock()
	return n
}

// assignsSnapshot is a subscription's assigns as deliveries see them:
// the map, never modified once published, and its CEL form, converted on
// first use and then shared by every delivery until the assigns change.
type assignsSnapshot struct {
	m    map[string]any
	once sync.Once
	val  ref.Val
}

// celValue returns the assigns as a CEL map.
func (a *assignsSnapshot) celValue() ref.Val {
	a.once.Do(func() { a.val = celValue(a.m) })
	return a.val
}

// publishAssigns makes sub.assigns visible to deliveries, which run on
// other goroutines than the socket's read loop. A published map is never
// modified: mergeAssigns replaces it.
func (sub *subscription) publishAssigns() {
	sub.published.Store(&assignsSnapshot{m: sub.assigns})
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
func (sub *subscription) deliveryAssigns() *assignsSnapshot {
	return sub.published.Load()
}

// emptyCELMap is the CEL value of absent assigns or payload.
var emptyCELMap = types.NewRefValMap(types.DefaultTypeAdapter, map[ref.Val]ref.Val{})

// celValue converts a JSON-ready Go value (map[string]any, []any, string,
// bool, nil, float64, int64, uint64) to a CEL value ahead of evaluation,
// so that evaluations reading it allocate nothing to wrap it.
func celValue(v any) ref.Val {
	switch t := v.(type) {
	case nil:
		return types.NullValue
	case bool:
		return types.Bool(t)
	case string:
		return types.String(t)
	case float64:
		return types.Double(t)
	case int64:
		return types.Int(t)
	case int:
		return types.Int(t)
	case uint64:
		return types.Uint(t)
	case map[string]any:
		m := make(map[ref.Val]ref.Val, len(t))
		for k, x := range t {
			m[types.String(k)] = celValue(x)
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, m)
	case []any:
		l := make([]ref.Val, len(t))
		for i, x := range t {
			l[i] = celValue(x)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}
