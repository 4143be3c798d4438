package channels

import (
	"fmt"
	"time"
)

// Presence and history limits.
const (
	// DefaultPresenceBatch is how long presence joins and leaves of a
	// topic are collected before one presence_diff announces them.
	DefaultPresenceBatch = 50 * time.Millisecond
	// MaxPresenceBatch is the longest batch window accepted.
	MaxPresenceBatch = time.Second
	// MaxHistorySize is the largest number of messages a topic may keep.
	MaxHistorySize = 100_000
)

// PresenceSpec turns presence tracking on for a channel rule.
type PresenceSpec struct {
	// Key is a CEL expression computing the presence key of a joining
	// socket (a string; it sees topic, subtopic, params, assigns and now).
	// The default is the socket id, or a key generated per connection for
	// anonymous sockets.
	Key string `json:"key,omitempty"`
	// Meta is a CEL expression computing the presence meta (a map, same
	// variables as Key). The default is an empty map. The keys phx_ref and
	// phx_ref_prev are reserved and removed.
	Meta string `json:"meta,omitempty"`
	// Batch is how long joins and leaves are collected before one
	// presence_diff broadcast announces them: 0 means the default
	// (DefaultPresenceBatch); at most MaxPresenceBatch. A negative value
	// sends every change at once.
	Batch Duration `json:"batch,omitempty"`
}

// HistorySpec keeps the broadcasts of a channel's topics.
type HistorySpec struct {
	// Size is the number of messages kept per topic, 1 to MaxHistorySize.
	Size int `json:"size"`
	// TTL is how long a kept message lives, and how long a topic's stream
	// lives without a broadcast (after which it starts over with a new
	// epoch). 0 means no age limit.
	TTL Duration `json:"ttl,omitempty"`
	// OnJoin is the number of newest messages pushed to a client that
	// joins without "_since" (0: none), at most Size.
	OnJoin int `json:"on_join,omitempty"`
}

// PresenceRule is a compiled PresenceSpec.
type PresenceRule struct {
	// Key computes the presence key; nil means the default.
	Key *Expr
	// Meta computes the presence meta; nil means {}.
	Meta *Expr
	// Batch is the diff batching window; 0 sends each change at once.
	Batch time.Duration
}

// HistoryRule is a compiled HistorySpec.
type HistoryRule struct {
	// Size is the number of messages kept per topic.
	Size int
	// TTL is the age limit of kept messages and idle streams; 0 means none.
	TTL time.Duration
	// OnJoin is how many newest messages a join without "_since" receives.
	OnJoin int
}

// compilePresence validates and compiles a presence spec.
func compilePresence(ps *PresenceSpec) (*PresenceRule, error) {
	p := &PresenceRule{Batch: time.Duration(ps.Batch)}
	switch {
	case p.Batch == 0:
		p.Batch = DefaultPresenceBatch
	case p.Batch < 0:
		p.Batch = 0
	case p.Batch > MaxPresenceBatch:
		return nil, fmt.Errorf("batch %s is longer than %s", p.Batch, MaxPresenceBatch)
	}
	if ps.Key != "" {
		e, err := CompileExpr(ExprPresenceKey, ps.Key)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		p.Key = e
	}
	if ps.Meta != "" {
		e, err := CompileExpr(ExprPresenceMeta, ps.Meta)
		if err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
		p.Meta = e
	}
	return p, nil
}

// compileHistory validates a history spec.
func compileHistory(hs *HistorySpec) (*HistoryRule, error) {
	if hs.Size < 1 || hs.Size > MaxHistorySize {
		return nil, fmt.Errorf("size %d out of range (1 to %d)", hs.Size, MaxHistorySize)
	}
	if hs.TTL < 0 {
		return nil, fmt.Errorf("negative ttl %s", time.Duration(hs.TTL))
	}
	if hs.OnJoin < 0 || hs.OnJoin > hs.Size {
		return nil, fmt.Errorf("on_join %d out of range (0 to size %d)", hs.OnJoin, hs.Size)
	}
	return &HistoryRule{Size: hs.Size, TTL: time.Duration(hs.TTL), OnJoin: hs.OnJoin}, nil
}
