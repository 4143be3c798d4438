package pubsub

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
)

// MemoryPresence is the in-process PresenceManager of a single node. List
// returns entries in the order their ids were first tracked (an update keeps
// its place). Entries never expire. Topics are spread over lock shards, and a
// topic without entries uses no memory. It starts no goroutines and ignores
// the ctx of every call.
type MemoryPresence struct {
	seed   maphash.Seed
	shards [memoryShards]presenceShard
}

var _ PresenceManager = (*MemoryPresence)(nil)

// presenceShard holds the topics whose name hashes to it.
type presenceShard struct {
	mu     sync.Mutex
	closed bool
	topics map[string]*presenceTopic
}

// presenceTopic is the presence of one topic.
type presenceTopic struct {
	next    uint64 // order of the next new id
	entries map[string]presenceItem
}

// presenceItem is a tracked entry with its place in List.
type presenceItem struct {
	order uint64
	entry PresenceEntry
}

// NewMemoryPresence returns an empty MemoryPresence.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{seed: maphash.MakeSeed()}
}

// Track stores e on topic, replacing an entry with the same id. It keeps a
// copy of e.Meta. See PresenceManager.Track.
func (p *MemoryPresence) Track(_ context.Context, topic string, e PresenceEntry) error {
	if err := checkPresence("track", topic); err != nil {
		return err
	}
	if e.ID == "" {
		return fmt.Errorf("pubsub: memory presence track %q: empty id: %w", topic, ErrInvalidArgument)
	}
	e.Meta = bytes.Clone(e.Meta)
	sh := p.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return fmt.Errorf("pubsub: memory presence track %q: %w", topic, ErrClosed)
	}
	t := sh.topics[topic]
	if t == nil {
		t = &presenceTopic{entries: make(map[string]presenceItem)}
		if sh.topics == nil {
			sh.topics = make(map[string]*presenceTopic)
		}
		sh.topics[topic] = t
	}
	it, ok := t.entries[e.ID]
	if !ok {
		it.order = t.next
		t.next++
	}
	it.entry = e
	t.entries[e.ID] = it
	return nil
}

// Untrack removes the entry id from topic. See PresenceManager.Untrack.
func (p *MemoryPresence) Untrack(_ context.Context, topic, id string) error {
	if err := checkPresence("untrack", topic); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("pubsub: memory presence untrack %q: empty id: %w", topic, ErrInvalidArgument)
	}
	sh := p.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return fmt.Errorf("pubsub: memory presence untrack %q: %w", topic, ErrClosed)
	}
	t := sh.topics[topic]
	if t == nil {
		return nil
	}
	delete(t.entries, id)
	if len(t.entries) == 0 {
		delete(sh.topics, topic)
	}
	return nil
}

// List returns the entries of topic in first-track order. See
// PresenceManager.List.
func (p *MemoryPresence) List(_ context.Context, topic string) ([]PresenceEntry, error) {
	if err := checkPresence("list", topic); err != nil {
		return nil, err
	}
	sh := p.shard(topic)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, fmt.Errorf("pubsub: memory presence list %q: %w", topic, ErrClosed)
	}
	t := sh.topics[topic]
	if t == nil {
		sh.mu.Unlock()
		return nil, nil
	}
	items := make([]presenceItem, 0, len(t.entries))
	for _, it := range t.entries {
		items = append(items, it)
	}
	sh.mu.Unlock()
	slices.SortFunc(items, func(a, b presenceItem) int { return cmp.Compare(a.order, b.order) })
	out := make([]PresenceEntry, len(items))
	for i, it := range items {
		out[i] = it.entry
	}
	return out, nil
}

// Close drops all entries; later calls return ErrClosed. See
// PresenceManager.Close.
func (p *MemoryPresence) Close() error {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.topics = nil
		sh.mu.Unlock()
	}
	return nil
}

// shard returns the shard of topic.
func (p *MemoryPresence) shard(topic string) *presenceShard {
	return &p.shards[maphash.String(p.seed, topic)%memoryShards]
}

// checkPresence validates a presence call's topic.
func checkPresence(op, topic string) error {
	if topic == "" {
		return fmt.Errorf("pubsub: memory presence %s: empty topic: %w", op, ErrInvalidArgument)
	}
	return nil
}
