// Package pubsub carries broadcasts between the nodes that serve Phoenix
// channels, keeps optional per-topic history for gap-free catch-up, and
// tracks per-topic presence.
//
// Two independent interfaces split the work, so that a deployment can mix
// backends:
//
//   - Broker fans messages out to every node subscribed to a topic and, when
//     a topic keeps history, stores them in a per-topic stream whose entries
//     carry a Position ("<epoch>:<seq>"). A client that remembers the last
//     Position it saw can ask History for everything after it.
//   - PresenceManager stores who is present on a topic.
//
// Memory and MemoryPresence are the in-process implementations used by a
// single node; networked implementations (Redis, NATS) satisfy the same
// contracts. The package has no dependency on the channels engine: the
// engine adapts its own frames to Message.
package pubsub

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by brokers and presence managers. Implementations wrap them
// with context; test with errors.Is.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("pubsub: closed")
	// ErrNotStarted is returned by Broker methods called before Start.
	ErrNotStarted = errors.New("pubsub: broker not started")
	// ErrAlreadyStarted is returned by a second call to Broker.Start.
	ErrAlreadyStarted = errors.New("pubsub: broker already started")
	// ErrInvalidArgument is returned for an empty topic, a nil message, a
	// nil handler or an empty presence id.
	ErrInvalidArgument = errors.New("pubsub: invalid argument")
	// ErrHistoryUnsupported is returned by brokers that cannot keep history
	// (for Publish with a positive HistorySize, and for History).
	ErrHistoryUnsupported = errors.New("pubsub: history not supported by this broker")
	// ErrInvalidPosition is wrapped by ParsePosition errors.
	ErrInvalidPosition = errors.New("pubsub: invalid position")
)

// Message is one broadcast on a topic.
//
// A Message handed to Broker.Publish belongs to the broker from then on, and
// a Message received by a Handler or returned by Broker.History is shared
// with other receivers: neither the struct nor its Payload may be modified.
type Message struct {
	// Topic is the channel topic, e.g. "room:lobby".
	Topic string
	// Event is the Phoenix event name, e.g. "new_msg".
	Event string
	// Payload is JSON text, or raw bytes when Binary is set.
	Payload []byte
	// Binary marks Payload as binary bytes rather than JSON text.
	Binary bool
	// Exclude is an opaque subscriber id, meaningful only on the node named
	// by Node, that must not receive the message (broadcast_from). 0 means
	// no subscriber is excluded.
	Exclude uint64
	// Node is the id of the publishing node. Receivers apply Exclude only
	// when Node is their own id.
	Node string
	// Position is set by the broker when the topic keeps history; it is the
	// zero Position otherwise.
	Position Position
}

// Position names a message in a topic's history stream. Seq counts the
// messages of the stream from 1; Epoch identifies the stream and changes
// whenever the stream is lost or recreated, so that a Seq from an earlier
// stream is never mistaken for one of the current stream. The zero Position
// means "no history". A stream that exists but holds no message yet has a
// non-empty Epoch and Seq 0.
type Position struct {
	// Epoch identifies the stream: 1 to MaxEpochLen characters from
	// [A-Za-z0-9_-].
	Epoch string
	// Seq is the sequence number of the message within the stream.
	Seq uint64
}

// MaxEpochLen is the longest Epoch ParsePosition accepts.
const MaxEpochLen = 64

// IsZero reports whether p is the zero Position (no history).
func (p Position) IsZero() bool {
	return p.Epoch == "" && p.Seq == 0
}

// String returns "<epoch>:<seq>", the form ParsePosition reads, or "" for
// the zero Position.
func (p Position) String() string {
	if p.IsZero() {
		return ""
	}
	b := make([]byte, 0, len(p.Epoch)+1+20)
	b = append(b, p.Epoch...)
	b = append(b, ':')
	b = strconv.AppendUint(b, p.Seq, 10)
	return string(b)
}

// ParsePosition parses the "<epoch>:<seq>" form produced by
// Position.String. It is strict: the epoch must be 1 to MaxEpochLen
// characters from [A-Za-z0-9_-], and seq a decimal uint64 without sign,
// spaces or leading zeros. Every accepted string is canonical, so
// ParsePosition(s).String() == s.
func ParsePosition(s string) (Position, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Position{}, fmt.Errorf("parse position %q: missing ':': %w", s, ErrInvalidPosition)
	}
	epoch, seq := s[:i], s[i+1:]
	if err := checkEpoch(epoch); err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", s, err)
	}
	n, err := parseSeq(seq)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", s, err)
	}
	return Position{Epoch: epoch, Seq: n}, nil
}

// checkEpoch validates an epoch as ParsePosition accepts it.
func checkEpoch(epoch string) error {
	if epoch == "" {
		return fmt.Errorf("empty epoch: %w", ErrInvalidPosition)
	}
	if len(epoch) > MaxEpochLen {
		return fmt.Errorf("epoch longer than %d bytes: %w", MaxEpochLen, ErrInvalidPosition)
	}
	for i := 0; i < len(epoch); i++ {
		c := epoch[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("invalid epoch byte %q: %w", c, ErrInvalidPosition)
		}
	}
	return nil
}

// parseSeq parses a canonical decimal uint64.
func parseSeq(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty seq: %w", ErrInvalidPosition)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("seq with leading zero: %w", ErrInvalidPosition)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("invalid seq byte %q: %w", s[i], ErrInvalidPosition)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("seq out of range: %w", ErrInvalidPosition)
	}
	return n, nil
}

// PublishOptions controls how Publish stores a message.
type PublishOptions struct {
	// HistorySize is how many messages of the topic to keep. 0 (or less)
	// keeps none: the message gets no Position, and an existing stream of
	// the topic is dropped, since it could no longer replay without a gap.
	HistorySize int
	// HistoryTTL is how long each kept message lives, and how long the
	// stream itself lives without a publish (after which it is recreated
	// with a new epoch). 0 (or less) means no age limit.
	HistoryTTL time.Duration
	// Transient marks a message that is not part of the topic's stream,
	// such as a presence diff: it is delivered but neither stored nor
	// counted, gets no Position, and leaves an existing stream untouched
	// (HistorySize and HistoryTTL are ignored).
	Transient bool
}

// HistoryOptions selects what Broker.History returns.
type HistoryOptions struct {
	// Since, when set, asks for the messages after this position, oldest
	// first. When nil, History returns the newest messages, oldest first.
	Since *Position
	// Limit caps the number of messages returned: with Since, the first
	// Limit messages after it (call again with the last one's Position to
	// page on); without Since, the newest Limit messages. 0 means no limit;
	// a negative Limit returns no messages, only Latest and Recovered.
	Limit int
	// TTL is the topic's HistoryTTL, as given to Publish. If the topic has
	// no stream, History creates an empty one with a new epoch that lives
	// this long (0: no age limit), so that Latest names a stream later
	// publishes continue; a positive TTL also extends the life of an
	// existing stream.
	TTL time.Duration
}

// HistoryResult is what Broker.History returns.
type HistoryResult struct {
	// Messages are the selected messages, oldest first, each with its
	// Position set. They are shared: do not modify them.
	Messages []*Message
	// Latest is the position of the newest message of the stream (Seq 0 if
	// it holds none yet).
	Latest Position
	// Recovered reports, when Since was given, that Messages (together with
	// any further pages) are exactly the messages published after Since: the
	// epochs match and the stream still reaches back to Since. It is false,
	// with no Messages, when the epoch differs, Since lies after Latest, or
	// messages after Since have been dropped. It is true when Since is nil.
	Recovered bool
}

// Handler receives the messages of subscribed topics. It is called by the
// broker and must not block or call back into the broker: it should only
// queue the message for the local subscribers of m.Topic.
type Handler func(m *Message)
