package channels

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
	"github.com/caddy-channels/caddy-channels/pubsub"
)

// This file implements Phoenix Presence for channels whose rule has a
// presence block (protocol reference §6): each joined socket is tracked
// under a key with a meta map and a unique phx_ref; the joiner gets
// presence_state after its join reply, and joins and leaves are announced
// to the topic as presence_diff broadcasts, batched per topic over the
// rule's window. Entries live in the hub's PresenceManager, diffs travel
// through the broker, so both work across nodes.

// Presence event names, phoenix.js Presence's defaults.
const (
	EventPresenceState = "presence_state"
	EventPresenceDiff  = "presence_diff"
)

// presenceTimeout bounds one call to the presence manager.
const presenceTimeout = 5 * time.Second

// presenceState is the tracked presence of one subscription.
type presenceState struct {
	key   string
	ref   string
	meta  json.RawMessage // a JSON object without phx_ref
	batch time.Duration
}

// item returns the presence as a diff entry.
func (p *presenceState) item() presenceItem {
	return presenceItem{key: p.key, ref: p.ref, meta: p.meta}
}

// presenceItem is one meta of a presence_state or presence_diff.
type presenceItem struct {
	key  string
	ref  string
	meta json.RawMessage
}

// trackPresence tracks a socket that joined a presence channel, queues the
// join diff and pushes presence_state to the socket.
func (s *Socket) trackPresence(cfg *Config, rule *ChannelRule, sub *subscription, m *Message, acc joinAccepted) {
	pr := rule.Presence
	log := cfg.Logger.With(zap.String("channel", rule.Pattern.String()), zap.String("topic", m.Topic))
	var vars *Vars
	exprVars := func() *Vars {
		if vars == nil {
			vars = &Vars{Assigns: acc.assigns, Claims: s.claims, JoinClaims: acc.joinClaims, Topic: m.Topic, Subtopic: acc.subtopic, Params: payloadParams(m.Payload), Now: time.Now()}
		}
		return vars
	}
	key := ""
	switch {
	case acc.presence != nil && acc.presence.Key != nil && *acc.presence.Key != "":
		key = *acc.presence.Key
	case pr.Key != nil:
		v, err := pr.Key.EvalValue(exprVars())
		if k, ok := v.(string); err == nil && ok && k != "" {
			key = k
		} else {
			log.Warn("presence key failed to evaluate; using the default key",
				zap.String("expr", pr.Key.String()), zap.Error(orNonString(err, v)))
		}
	}
	if key == "" {
		key = s.presenceKey()
	}
	meta := json.RawMessage(emptyObject)
	switch {
	case acc.presence != nil && len(acc.presence.Meta) > 0 && string(acc.presence.Meta) != "null":
		nm, err := normalizeMeta(acc.presence.Meta)
		if err != nil {
			log.Warn("webhook presence meta ignored", zap.Error(err))
		} else {
			meta = nm
		}
	case pr.Meta != nil:
		raw, err := evalJSONObject(pr.Meta, exprVars())
		if err == nil {
			raw, err = normalizeMeta(raw)
		}
		if err != nil {
			log.Warn("presence meta failed to evaluate; using {}", zap.String("expr", pr.Meta.String()), zap.Error(err))
		} else {
			meta = raw
		}
	}
	ps := &presenceState{key: key, ref: newPresenceRef(), meta: meta, batch: pr.Batch}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := s.hub.presence.Track(ctx, m.Topic, pubsub.PresenceEntry{ID: ps.ref, Key: key, Meta: meta, Node: s.hub.node}); err != nil {
		log.Error("presence track failed", zap.Error(err))
	} else {
		sub.presence = ps
		s.hub.diffs.add(m.Topic, ps.batch, []presenceItem{ps.item()}, nil)
	}
	entries, err := s.hub.presence.List(ctx, m.Topic)
	if err != nil {
		log.Error("presence list failed; sending an empty presence_state", zap.Error(err))
	}
	f, err := s.ser.EncodeMessage(sub.joinRef, nil, m.Topic, EventPresenceState, JSONPayload(renderPresence(entryItems(entries))))
	if err != nil {
		log.Warn("presence_state not encodable", zap.Error(err))
		return
	}
	s.send(f)
}

// updatePresence replaces a subscription's meta (a handle_in webhook's
// "presence" answer): a new phx_ref with phx_ref_prev naming the old one,
// announced as one diff joining the new meta and leaving the old.
func (s *Socket) updatePresence(log *zap.Logger, sub *subscription, raw json.RawMessage) {
	old := sub.presence
	if old == nil {
		log.Warn("webhook presence update ignored: the channel does not track presence, or tracking failed")
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		log.Warn("webhook presence meta ignored: not a JSON object")
		return
	}
	delete(obj, "phx_ref")
	prev, _ := json.Marshal(old.ref)
	obj["phx_ref_prev"] = prev
	meta, _ := json.Marshal(obj)
	ps := &presenceState{key: old.key, ref: newPresenceRef(), meta: meta, batch: old.batch}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := s.hub.presence.Track(ctx, sub.topic, pubsub.PresenceEntry{ID: ps.ref, Key: ps.key, Meta: meta, Node: s.hub.node}); err != nil {
		log.Error("presence update failed", zap.Error(err))
		return
	}
	if err := s.hub.presence.Untrack(ctx, sub.topic, old.ref); err != nil {
		log.Error("presence untrack of the replaced meta failed", zap.Error(err))
	}
	sub.presence = ps
	s.hub.diffs.add(sub.topic, ps.batch, []presenceItem{ps.item()}, []presenceItem{old.item()})
}

// untrack removes a leaving subscription's presence and queues its leave.
func (h *Hub) untrack(sub *subscription) {
	ps := sub.presence
	if ps == nil {
		return
	}
	sub.presence = nil
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := h.presence.Untrack(ctx, sub.topic, ps.ref); err != nil {
		h.logger().Error("presence untrack failed", zap.String("topic", sub.topic), zap.Error(err))
	}
	h.diffs.add(sub.topic, ps.batch, nil, []presenceItem{ps.item()})
}

// presenceExpired announces the leave of an entry whose node stopped
// refreshing it (PresenceExpirer).
func (h *Hub) presenceExpired(topic string, e pubsub.PresenceEntry) {
	batch := DefaultPresenceBatch
	if rule, _, ok := h.Config().Rules.Route(topic); ok && rule.Presence != nil {
		batch = rule.Presence.Batch
	}
	h.diffs.add(topic, batch, nil, []presenceItem{{key: e.Key, ref: e.ID, meta: e.Meta}})
}

// PresenceList returns the presences of topic in presence_state shape:
// {"<key>": {"metas": [{"phx_ref": …, …meta}, …]}, …}.
func (h *Hub) PresenceList(ctx context.Context, topic string) (json.RawMessage, error) {
	entries, err := h.presence.List(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing presence of %q: %w", topic, err)
	}
	return renderPresence(entryItems(entries)), nil
}

// presenceKey is the default presence key: the socket id, or a key
// generated once per anonymous connection.
func (s *Socket) presenceKey() string {
	if s.id != "" {
		return s.id
	}
	if s.anonKey == "" {
		s.anonKey = "anon:" + newPresenceRef()
	}
	return s.anonKey
}

// newPresenceRef returns a phx_ref: 16 base64url characters of 12 random
// bytes, as Phoenix makes them.
func newPresenceRef() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// normalizeMeta checks that raw is a JSON object and removes the reserved
// keys phx_ref and phx_ref_prev, returning compact JSON.
func normalizeMeta(raw json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, errors.New("presence meta must be a JSON object")
	}
	delete(obj, "phx_ref")
	delete(obj, "phx_ref_prev")
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding presence meta: %w", err)
	}
	return out, nil
}

// orNonString explains a presence key that is not a string.
func orNonString(err error, v any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("result %T is not a non-empty string", v)
}

// entryItems converts stored entries to presence items.
func entryItems(entries []pubsub.PresenceEntry) []presenceItem {
	items := make([]presenceItem, len(entries))
	for i, e := range entries {
		items[i] = presenceItem{key: e.Key, ref: e.ID, meta: e.Meta}
	}
	return items
}

// renderPresence encodes items grouped by key, keys in order of first
// appearance: {"<key>": {"metas": [meta, …]}, …}, each meta with its
// phx_ref first.
func renderPresence(items []presenceItem) json.RawMessage {
	order := make([]string, 0, len(items))
	groups := make(map[string][]presenceItem, len(items))
	for _, it := range items {
		if _, ok := groups[it.key]; !ok {
			order = append(order, it.key)
		}
		groups[it.key] = append(groups[it.key], it)
	}
	b := []byte{'{'}
	for i, key := range order {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonwire.AppendString(b, key)
		b = append(b, `:{"metas":[`...)
		for j, it := range groups[key] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendMeta(b, it.ref, it.meta)
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}

// appendMeta appends meta (a compact JSON object) with "phx_ref" added
// first.
func appendMeta(b []byte, ref string, meta json.RawMessage) []byte {
	b = append(b, `{"phx_ref":`...)
	b = jsonwire.AppendString(b, ref)
	if len(meta) > 2 && meta[0] == '{' {
		b = append(b, ',')
		return append(b, meta[1:]...)
	}
	return append(b, '}')
}

// presenceDiffs collects each topic's presence joins and leaves over its
// batch window and broadcasts them as one presence_diff.
type presenceDiffs struct {
	hub     *Hub
	mu      sync.Mutex
	pending map[string]*pendingDiff
}

// pendingDiff is a topic's diff waiting for its window to end.
type pendingDiff struct {
	joins, leaves []presenceItem
	timer         *time.Timer
}

func (d *presenceDiffs) init(h *Hub) {
	d.hub = h
	d.pending = make(map[string]*pendingDiff)
}

// add queues joins and leaves of topic. With a window of 0 the diff (with
// anything already pending for the topic) is broadcast at once.
func (d *presenceDiffs) add(topic string, window time.Duration, joins, leaves []presenceItem) {
	d.mu.Lock()
	p := d.pending[topic]
	if p == nil {
		p = &pendingDiff{}
		d.pending[topic] = p
		if window > 0 {
			p.timer = time.AfterFunc(window, func() { d.flush(topic, p) })
		}
	}
	p.joins = append(p.joins, joins...)
	p.leaves = append(p.leaves, leaves...)
	d.mu.Unlock()
	if window <= 0 {
		d.flush(topic, p)
	}
}

// flush broadcasts p if it is still the topic's pending diff.
func (d *presenceDiffs) flush(topic string, p *pendingDiff) {
	d.mu.Lock()
	if d.pending[topic] != p {
		d.mu.Unlock()
		return
	}
	delete(d.pending, topic)
	if p.timer != nil {
		p.timer.Stop()
	}
	d.mu.Unlock()
	d.broadcast(topic, p)
}

// flushAll broadcasts every pending diff now (shutdown).
func (d *presenceDiffs) flushAll() {
	d.mu.Lock()
	all := d.pending
	d.pending = make(map[string]*pendingDiff)
	d.mu.Unlock()
	for topic, p := range all {
		if p.timer != nil {
			p.timer.Stop()
		}
		d.broadcast(topic, p)
	}
}

// broadcast publishes one presence_diff. Diffs are transient: they are not
// part of a topic's history.
func (d *presenceDiffs) broadcast(topic string, p *pendingDiff) {
	b := append([]byte(`{"joins":`), renderPresence(p.joins)...)
	b = append(b, `,"leaves":`...)
	b = append(b, renderPresence(p.leaves)...)
	b = append(b, '}')
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	err := d.hub.publish(ctx, topic, EventPresenceDiff, JSONPayload(b), 0, pubsub.PublishOptions{Transient: true})
	if err != nil && !errors.Is(err, pubsub.ErrClosed) {
		d.hub.logger().Error("presence_diff broadcast failed", zap.String("topic", topic), zap.Error(err))
	}
}
