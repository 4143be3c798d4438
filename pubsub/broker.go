package pubsub

import "context"

// Broker fans messages out to every node subscribed to a topic and keeps
// optional per-topic history.
//
// A node uses one Broker: it calls Start once with its Handler, Subscribe
// when the first local subscriber joins a topic, Unsubscribe when the last
// one leaves, Publish for every broadcast, History to catch a joining client
// up, and Close on shutdown.
//
// All methods are safe for concurrent use. Methods other than Close return
// ErrNotStarted before Start and ErrClosed after Close (wrapped; test with
// errors.Is). The ctx of a call bounds network round trips; brokers that
// never block may ignore it.
//
// Delivery: the Handler is called once per message published (by any node)
// on a topic this node is subscribed to. Messages of one topic reach the
// Handler one at a time, in the order of their Seq (for history topics) and
// of their Publish calls on one node; messages of different topics may be
// delivered concurrently. Delivery is at most once for networked brokers: a
// gap is detected through positions and repaired with History. In-process
// brokers deliver synchronously inside Publish, so a publisher's own
// subscribers see the message before Publish returns; networked brokers may
// deliver after Publish returns. A Handler must tolerate a message for a
// topic it no longer has subscribers for (one in flight during Unsubscribe).
type Broker interface {
	// Start registers the node's Handler and connects the broker. It must be
	// called exactly once, before any other method; a second call returns
	// ErrAlreadyStarted, a nil Handler ErrInvalidArgument.
	Start(h Handler) error

	// Subscribe makes the broker deliver the topic's messages to the
	// Handler. Subscriptions are counted per node: each successful Subscribe
	// must be balanced by one Unsubscribe, and delivery continues while the
	// count is positive. (The engine subscribes once per topic; counting
	// keeps a duplicate call harmless.) Every message published after
	// Subscribe returns is delivered.
	Subscribe(ctx context.Context, topic string) error

	// Unsubscribe undoes one Subscribe. Unsubscribing a topic that is not
	// subscribed is a no-op. When the count drops to zero, in-process
	// brokers deliver nothing more for the topic once Unsubscribe returns.
	Unsubscribe(ctx context.Context, topic string) error

	// Publish sends m to every node subscribed to m.Topic. When
	// opts.HistorySize is positive the broker also appends m to the topic's
	// history stream, setting m.Position, and returns that position;
	// storing and sending are atomic per topic, so Seq order is delivery
	// order. Otherwise it returns the zero Position. Publish takes ownership
	// of m (see Message).
	Publish(ctx context.Context, m *Message, opts PublishOptions) (Position, error)

	// History returns messages kept for topic and the stream's latest
	// position, as selected by opts (see HistoryOptions and HistoryResult).
	// A topic without a stream gets a new, empty one (see
	// HistoryOptions.TTL).
	History(ctx context.Context, topic string, opts HistoryOptions) (HistoryResult, error)

	// Close stops delivery, releases the broker's resources and stops its
	// goroutines. When Close returns, the Handler is not called again. Later
	// calls of other methods return ErrClosed; Close itself is idempotent.
	Close() error
}
