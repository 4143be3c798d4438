package channels

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Hub owns the sockets of one mount point: their registry, the topic table
// of local subscribers, and the broker that carries broadcasts (between
// nodes, for the brokers that support it). A Hub outlives configuration
// changes: SetConfig swaps the rules under open sockets.
type Hub struct {
	cfg      atomic.Pointer[Config]
	broker   pubsub.Broker
	presence pubsub.PresenceManager
	diffs    presenceDiffs
	node     string
	topics   *topicTable
	nextID   atomic.Uint64
	stats    hubCounters
	lp       lpTable // LongPoll sessions

	live sync.WaitGroup // registered sockets that have not terminated yet

	mu       sync.Mutex
	sockets  map[*Socket]struct{}
	byID     map[string]map[*Socket]struct{}
	closed   bool
	draining context.Context // set by Close: ends at the drain deadline
	perIP    ipCounts        // open sockets per client address (max_sockets_per_ip)

	connRates connectRates // connects per client address (limit connects)
}

// NewHub creates a hub that publishes through broker and tracks presence
// in presence (nil means a new in-memory broker, or presence manager) with
// the given configuration. The hub owns both: Close closes them.
func NewHub(cfg Config, broker pubsub.Broker, presence pubsub.PresenceManager) (*Hub, error) {
	if broker == nil {
		broker = pubsub.NewMemory()
	}
	if presence == nil {
		presence = pubsub.NewMemoryPresence()
	}
	h := &Hub{
		broker:   broker,
		presence: presence,
		node:     newNodeID(),
		topics:   newTopicTable(),
		sockets:  make(map[*Socket]struct{}),
		byID:     make(map[string]map[*Socket]struct{}),
		perIP:    make(ipCounts),
		lp:       lpTable{key: newTokenKey(), sessions: make(map[string]*lpSession), waiting: make(map[string]chan lpReply)},
	}
	h.SetConfig(cfg)
	h.diffs.init(h)
	if ex, ok := presence.(pubsub.PresenceExpirer); ok {
		ex.OnExpire(h.presenceExpired)
	}
	if err := broker.Start(h.deliver); err != nil {
		return nil, fmt.Errorf("starting broker: %w", err)
	}
	h.subscribeNodeTopic()
	return h, nil
}

// SetConfig replaces the hub's configuration. Open sockets keep their
// connection and apply the new rules from their next join or push on.
func (h *Hub) SetConfig(cfg Config) {
	h.cfg.Store(cfg.withDefaults())
}

// Config returns the configuration in force (with defaults applied).
func (h *Hub) Config() *Config { return h.cfg.Load() }

func (h *Hub) logger() *zap.Logger { return h.cfg.Load().Logger }

// Broadcast publishes an event to every subscriber of topic, on every node
// the broker reaches. exclude is the subscription that must not receive it
// (broadcast_from), or 0.
// Topics whose channel rule keeps history store the message and give it a
// position.
func (h *Hub) Broadcast(ctx context.Context, topic, event string, p Payload, exclude uint64) error {
	var opts pubsub.PublishOptions
	if rule, _, ok := h.Config().Rules.Route(topic); ok && rule.History != nil {
		opts.HistorySize, opts.HistoryTTL = rule.History.Size, rule.History.TTL
	}
	return h.publish(ctx, topic, event, p, exclude, opts)
}

// publish sends one message through the broker.
func (h *Hub) publish(ctx context.Context, topic, event string, p Payload, exclude uint64, opts pubsub.PublishOptions) error {
	m := &pubsub.Message{Topic: topic, Event: event, Exclude: exclude, Node: h.node}
	if p.Binary {
		m.Payload, m.Binary = p.Data, true
	} else {
		m.Payload = p.JSON
		if len(m.Payload) == 0 {
			m.Payload = emptyObject
		}
	}
	if _, err := h.broker.Publish(ctx, m, opts); err != nil {
		return fmt.Errorf("publishing to %q: %w", topic, err)
	}
	return nil
}

// deliver fans a broker message out to the local subscribers of its topic.
// The frame is encoded at most once per serializer and the same frame is
// queued on every subscriber; queuing never blocks.
func (h *Hub) deliver(m *pubsub.Message) {
	if isReservedTopic(m.Topic) {
		if strings.HasPrefix(m.Topic, lpTopicPrefix) {
			h.deliverRemote(m)
		}
		return
	}
	p := Payload{JSON: m.Payload}
	if m.Binary {
		p = BinaryPayload(m.Payload)
	}
	if m.Event == EventDisconnect {
		h.disconnectLocal(m.Topic)
	}
	if h.deliverIntercepted(m, p) {
		return
	}
	h.stats.broadcasts.Add(1)
	var frames [numSerializers]*Frame
	var failed [numSerializers]bool
	var delivered uint64
	defer func() { h.stats.deliveries.Add(delivered) }()
	local := m.Node == h.node
	h.topics.each(m.Topic, func(s *subscription) {
		if local && m.Exclude != 0 && s.id == m.Exclude {
			return
		}
		if cu := s.catchUp.Load(); cu != nil && cu.hold(m) {
			return
		}
		i := s.sock.ser.Index()
		f := frames[i]
		if f == nil {
			if failed[i] {
				return
			}
			var err error
			f, err = encodeBroadcast(s.sock.ser, m, p)
			if err != nil {
				failed[i] = true
				if c := h.logger().Check(zap.DebugLevel, "broadcast not encodable for this protocol version"); c != nil {
					c.Write(zap.String("topic", m.Topic), zap.String("event", m.Event), zap.String("vsn", s.sock.ser.Version()), zap.Error(err))
				}
				return
			}
			frames[i] = f
		}
		if s.sock.t.Send(f) {
			delivered++
		}
	})
}

// EventDisconnect, broadcast to the topic named by a socket id, closes
// every socket with that id on every node, as in Phoenix.
const EventDisconnect = "disconnect"

// Disconnect closes every socket whose id is id, on every node the broker
// reaches, with code 1001, so clients reconnect (and connect rules run
// again). It publishes a "disconnect" event to the id's topic.
func (h *Hub) Disconnect(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("empty socket id")
	}
	return h.publish(ctx, id, EventDisconnect, JSONPayload(emptyObject), 0, pubsub.PublishOptions{Transient: true})
}

// disconnectLocal closes the sockets of this node whose id is id and
// returns how many it closed.
func (h *Hub) disconnectLocal(id string) int {
	list := h.socketsWithID(id)
	h.closeSockets(list, LeaveReasonDisconnect, CloseGoingAway, "disconnect")
	return len(list)
}

// Sockets returns the number of open sockets.
func (h *Hub) Sockets() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sockets)
}

// Subscribers returns the number of local subscribers of topic.
func (h *Hub) Subscribers(topic string) int { return h.topics.count(topic) }

// subscribeID subscribes the node to a socket's id topic, so that a
// "disconnect" broadcast to it reaches this node.
func (h *Hub) subscribeID(s *Socket) {
	if s.id == "" {
		return
	}
	if err := h.broker.Subscribe(context.Background(), s.id); err != nil {
		h.logger().Error("broker subscribe to socket id failed", zap.String("socket_id", s.id), zap.Error(err))
	}
}

// unsubscribeID undoes subscribeID.
func (h *Hub) unsubscribeID(s *Socket) {
	if s.id == "" {
		return
	}
	if err := h.broker.Unsubscribe(context.Background(), s.id); err != nil {
		h.logger().Error("broker unsubscribe from socket id failed", zap.String("socket_id", s.id), zap.Error(err))
	}
}

// subscribe subscribes the node to the topic at the broker (the broker
// counts one subscription per local subscriber) and then adds s to the
// topic table; onSubscribed runs while no broadcast of the topic can be
// delivered (see topicTable.add). No hub lock is held while the broker is
// called: the broker calls deliver under its own locks.
func (h *Hub) subscribe(s *subscription, onSubscribed func()) error {
	if err := h.broker.Subscribe(context.Background(), s.topic); err != nil {
		return fmt.Errorf("subscribing to %q: %w", s.topic, err)
	}
	h.topics.add(s, onSubscribed)
	return nil
}

// unsubscribe removes s from the topic table and releases its broker
// subscription.
func (h *Hub) unsubscribe(s *subscription) {
	if !h.topics.remove(s) {
		return
	}
	h.untrack(s)
	if err := h.broker.Unsubscribe(context.Background(), s.topic); err != nil {
		h.logger().Error("broker unsubscribe failed", zap.String("topic", s.topic), zap.Error(err))
	}
}

// newNodeID returns a random identifier for this hub instance.
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
