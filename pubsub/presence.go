package pubsub

import "context"

// PresenceEntry is one tracked presence on a topic: one join of one
// connection.
type PresenceEntry struct {
	// ID identifies the tracked join and is unique per topic, e.g. the
	// phx_ref Phoenix Presence assigns to it.
	ID string
	// Key groups entries in presence lists, e.g. a user id; one key may have
	// several entries (several tabs or devices).
	Key string
	// Meta is the entry's metadata as JSON text. It is shared once tracked:
	// do not modify it.
	Meta []byte
	// Node is the id of the node whose connection the entry belongs to, so
	// that a node's entries can be told apart (and cleaned up) cluster-wide.
	Node string
}

// PresenceManager stores who is present on each topic. It only stores:
// announcing changes to subscribers (presence_diff) is the engine's job,
// through a Broker.
//
// All methods are safe for concurrent use and return ErrClosed (wrapped)
// after Close. An empty topic or entry id is rejected with
// ErrInvalidArgument. Implementations backed by shared storage may expire
// entries that are not tracked again within a TTL, so callers that use them
// re-Track live entries periodically; the in-memory one never expires them.
type PresenceManager interface {
	// Track stores e on topic under e.ID. Tracking an id that is already
	// tracked on the topic replaces its entry (an update).
	Track(ctx context.Context, topic string, e PresenceEntry) error

	// Untrack removes the entry id from topic. Untracking an unknown id is a
	// no-op.
	Untrack(ctx context.Context, topic, id string) error

	// List returns the entries tracked on topic (nil if none). The order is
	// implementation-defined; callers group entries by Key.
	List(ctx context.Context, topic string) ([]PresenceEntry, error)

	// Close releases the manager's resources and stops its goroutines.
	// Close is idempotent.
	Close() error
}

// PresenceExpirer is implemented by presence managers whose entries can
// disappear without an Untrack: a networked manager expires the entries of a
// node that stopped refreshing them (a crashed or partitioned node) after a
// documented TTL.
type PresenceExpirer interface {
	// OnExpire registers f, called after an entry expired with the topic and
	// the removed entry, so that the node can announce the leave
	// (presence_diff). Each expired entry is reported once in the whole
	// cluster, on one surviving node. f must not block; it is registered
	// once, before the first Track.
	OnExpire(f func(topic string, e PresenceEntry))
}
