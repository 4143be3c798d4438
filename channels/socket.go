package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
	"github.com/caddy-channels/caddy-channels/webhook"
)

// Socket is one connected client. Its channel table is only touched by the
// goroutine that reads the socket's frames; everything else reaches the
// socket through its send queue.
type Socket struct {
	hub        *Hub
	ser        Serializer
	t          Transport // the connection: WebSocket or LongPoll; set by open
	id         string
	vsn        string
	transport  string
	remoteAddr string
	remoteIP   string
	params     map[string]any
	headers    map[string]string
	authToken  *string
	assigns    map[string]any
	claims     map[string]any // the verified connect token's claims, or nil
	tokenExp   time.Time      // when the connect token expires; zero: never (or expire off)
	expiry     *time.Timer    // closes the socket at tokenExp; guarded by hub.mu
	limits     *socketLimits  // message, join and event rate limits, nil until one applies; read loop only
	ipCounted  bool           // counted in hub.perIP; guarded by hub.mu
	anonKey    string         // presence key of an anonymous socket; read loop only

	channels channelList // read loop only

	endReason atomic.Value // string: why the server closed the socket (a leave reason)

	pendingClose *closeIntent // a close that came before the socket was open; guarded by hub.mu
}

// subscription is one joined channel of a socket: a subscriber of a topic.
type subscription struct {
	id      uint64 // node-unique, used to exclude the sender of broadcast_from
	sock    *Socket
	topic   string
	joinRef Ref
	assigns map[string]any
	slot    int // index in the topic's subscriber list; guarded by the topic shard lock

	presence *presenceState // tracked presence, nil if none; read loop only

	// catchUp is set while a history join catches up: broadcasts are held
	// instead of queued, and released after the replay. See history.go.
	catchUp atomic.Pointer[catchUpState]

	published atomic.Pointer[assignsSnapshot] // assigns for deliveries (intercept); see publishAssigns
}

// channelList is a socket's joined channels. A socket joins few topics
// (at most MaxChannels): a slice searched by topic costs 8 bytes per
// channel where a map costs 256 bytes for its first one, and idle memory
// is paid per socket.
type channelList []*subscription

// get returns the subscription of topic, or nil.
func (l channelList) get(topic string) *subscription {
	for _, sub := range l {
		if sub.topic == topic {
			return sub
		}
	}
	return nil
}

// put adds sub, replacing the subscription of the same topic if any.
func (l *channelList) put(sub *subscription) {
	for i, old := range *l {
		if old.topic == sub.topic {
			(*l)[i] = sub
			return
		}
	}
	*l = append(*l, sub)
}

// remove drops the subscription of topic, if any; order is not kept.
func (l *channelList) remove(topic string) {
	s := *l
	for i, sub := range s {
		if sub.topic == topic {
			end := len(s) - 1
			s[i] = s[end]
			s[end] = nil
			*l = s[:end]
			if end == 0 {
				*l = nil // release the backing array
			}
			return
		}
	}
}

// ID returns the socket id ("" for anonymous sockets).
func (s *Socket) ID() string { return s.id }

// Close queues a close frame with code and reason after pending frames.
func (s *Socket) Close(code int, reason string) { s.t.Close(code, reason) }

// closeFor closes the socket and records why, for leave webhooks; the
// first recorded reason wins.
func (s *Socket) closeFor(leaveReason string, code int, reason string) {
	s.endReason.CompareAndSwap(nil, leaveReason)
	s.t.Close(code, reason)
}

// leaveReason is the reason sent to leave webhooks when the socket ends.
func (s *Socket) leaveReason() string {
	if r, ok := s.endReason.Load().(string); ok {
		return r
	}
	return LeaveReasonClosed
}

// send queues a frame; it never blocks.
func (s *Socket) send(f *Frame) { s.t.Send(f) }

// handle processes one decoded inbound message.
func (s *Socket) handle(m *Message) {
	switch {
	case m.Topic == TopicPhoenix && m.Event == EventHeartbeat:
		s.reply(nil, m.Ref, m.Topic, "ok", JSONPayload(emptyObject))
	case m.Event == EventJoin:
		s.join(m)
	case m.Event == EventLeave:
		s.leave(m)
	default:
		s.push(m)
	}
}

// join handles phx_join (protocol §4.1): route, limit, duplicate join,
// decision, reply, subscribe.
func (s *Socket) join(m *Message) {
	cfg := s.hub.Config()
	rule, subtopic, ok := cfg.Rules.Route(m.Topic)
	if !ok {
		if c := cfg.Logger.Check(zap.DebugLevel, "join of unmatched topic"); c != nil {
			c.Write(zap.String("topic", m.Topic), zap.String("socket_id", s.id))
		}
		s.replyError(nil, m.Ref, m.Topic, "unmatched topic")
		return
	}
	old := s.channels.get(m.Topic)
	if old == nil && len(s.channels) >= cfg.MaxChannels {
		cfg.Logger.Warn("join refused: too many channels joined",
			zap.String("topic", m.Topic), zap.String("socket_id", s.id), zap.Int("max_channels", cfg.MaxChannels))
		s.replyError(m.JoinRef, m.Ref, m.Topic, "too many channels joined")
		return
	}
	if !s.allowJoin(cfg, m) {
		return
	}
	if old != nil {
		// Duplicate join: the old channel stops now; its phx_close is
		// sent after the new join's reply, as Phoenix orders them.
		s.hub.unsubscribe(old)
		s.channels.remove(m.Topic)
		s.notifyLeave(cfg, old, LeaveReasonDuplicateJoin)
		defer s.sendControlEvent(old, EventClose, emptyObject)
	}

	if rule.Join.Action == GateUpstream {
		status, response, assigns, pres := s.joinUpstream(cfg, rule, m)
		if status != "ok" {
			s.reply(m.JoinRef, m.Ref, m.Topic, status, response)
			return
		}
		s.subscribeJoin(cfg, rule, m, joinAccepted{response: response, assigns: assigns, presence: pres, subtopic: subtopic})
		return
	}

	vars := &Vars{Assigns: s.assigns, Claims: s.claims, Topic: m.Topic, Subtopic: subtopic, Now: time.Now()}
	if rule.Join.Cond != nil || rule.Join.Reply != nil || rule.Join.Token != nil {
		vars.Params = payloadParams(m.Payload) // only expressions read the join payload
	}
	if rule.Join.Action == GateJWT {
		claims, ok := s.verifyJoinToken(cfg, &rule.Join, vars)
		if !ok {
			s.replyError(m.JoinRef, m.Ref, m.Topic, ReasonUnauthorized)
			return
		}
		vars.JoinClaims = claims
	}
	allowed, reason, err := rule.Join.Decide(vars)
	if err != nil {
		cfg.Logger.Warn("join condition failed to evaluate; refusing",
			zap.String("channel", rule.Pattern.String()), zap.String("rule", rule.Join.String()),
			zap.String("topic", m.Topic), zap.Error(err))
	}
	if !allowed {
		s.replyError(m.JoinRef, m.Ref, m.Topic, reason)
		return
	}
	response := JSONPayload(emptyObject)
	if rule.Join.Reply != nil {
		raw, err := evalJSONObject(rule.Join.Reply, vars)
		if err != nil {
			cfg.Logger.Warn("join reply failed to evaluate; refusing",
				zap.String("channel", rule.Pattern.String()), zap.String("expr", rule.Join.Reply.String()),
				zap.String("topic", m.Topic), zap.Error(err))
			s.replyError(m.JoinRef, m.Ref, m.Topic, "join crashed")
			return
		}
		response = JSONPayload(raw)
	}
	s.subscribeJoin(cfg, rule, m, joinAccepted{response: response, assigns: maps.Clone(s.assigns), subtopic: subtopic, joinClaims: vars.JoinClaims})
}

// joinAccepted is what an accepted join decided.
type joinAccepted struct {
	response Payload           // the ok reply's response
	assigns  map[string]any    // the channel's assigns
	presence *webhook.Presence // a join webhook's presence override, or nil
	subtopic string

	joinClaims map[string]any // the verified join token's claims (join jwt), or nil
}

// subscribeJoin completes an accepted join. Without history, the ok reply
// is queued while the subscription is added, so every broadcast after it
// follows the reply; with history, the reply, the replay and the held
// broadcasts are queued by catchUp. Presence is tracked last, so that
// presence_state follows the replay.
func (s *Socket) subscribeJoin(cfg *Config, rule *ChannelRule, m *Message, acc joinAccepted) {
	sub := &subscription{
		id:      s.hub.nextID.Add(1),
		sock:    s,
		topic:   m.Topic,
		joinRef: bytes.Clone(m.JoinRef), // do not pin the whole inbound frame
		assigns: acc.assigns,
	}
	if rule.History != nil {
		sub.catchUp.Store(&catchUpState{sub: sub})
		sub.publishAssigns()
		if err := s.hub.subscribe(sub, func() {}); err != nil {
			cfg.Logger.Error("join failed", zap.String("topic", m.Topic), zap.Error(err))
			s.replyError(m.JoinRef, m.Ref, m.Topic, "join crashed")
			return
		}
		s.channels.put(sub)
		s.catchUp(cfg, rule.History, sub, m, acc.response)
	} else {
		reply, err := s.ser.EncodeReply(m.JoinRef, m.Ref, m.Topic, "ok", acc.response)
		if err != nil {
			cfg.Logger.Warn("join reply not encodable", zap.String("topic", m.Topic), zap.Error(err))
			s.replyError(m.JoinRef, m.Ref, m.Topic, "join crashed")
			return
		}
		sub.publishAssigns()
		if err := s.hub.subscribe(sub, func() { s.send(reply) }); err != nil {
			cfg.Logger.Error("join failed", zap.String("topic", m.Topic), zap.Error(err))
			s.replyError(m.JoinRef, m.Ref, m.Topic, "join crashed")
			return
		}
		s.channels.put(sub)
	}
	if rule.Presence != nil {
		s.trackPresence(cfg, rule, sub, m, acc)
	}
}

// leave handles phx_leave (protocol §4.3).
func (s *Socket) leave(m *Message) {
	sub := s.channels.get(m.Topic)
	if sub == nil {
		s.reply(m.JoinRef, m.Ref, m.Topic, "ok", JSONPayload(emptyObject))
		return
	}
	if s.stale(sub, m) {
		return
	}
	s.hub.unsubscribe(sub)
	s.channels.remove(m.Topic)
	s.reply(sub.joinRef, m.Ref, m.Topic, "ok", JSONPayload(emptyObject))
	s.sendControlEvent(sub, EventClose, emptyObject)
	s.notifyLeave(s.hub.Config(), sub, LeaveReasonLeave)
}

// push handles an application event sent to a joined channel (handle_in).
func (s *Socket) push(m *Message) {
	cfg := s.hub.Config()
	sub := s.channels.get(m.Topic)
	if !s.allowMessage(cfg, sub, m) { // before anything is answered: unhandled events count too
		return
	}
	if sub == nil {
		s.replyError(nil, m.Ref, m.Topic, "unmatched topic")
		return
	}
	if s.stale(sub, m) {
		return
	}
	rule, _, ok := cfg.Rules.Route(m.Topic)
	var entry *HandleInRule
	if ok {
		entry, ok = rule.HandleIn(m.Event)
	}
	if !ok {
		if c := cfg.Logger.Check(zap.DebugLevel, "unhandled event"); c != nil {
			c.Write(zap.String("topic", m.Topic), zap.String("event", m.Event))
		}
		s.replyError(sub.joinRef, m.Ref, m.Topic, "unhandled event")
		return
	}
	if !s.allowEvent(cfg, sub, entry, m) {
		return
	}
	switch action := entry.Action; action {
	case HandleInUpstream:
		s.handleInUpstream(cfg, sub, entry.Upstream, m)
	case HandleInBroadcast, HandleInBroadcastFrom:
		if !m.Payload.Binary && !m.Payload.IsObject() {
			s.replyError(sub.joinRef, m.Ref, m.Topic, "broadcast payload must be a JSON object")
			return
		}
		var exclude uint64
		if action == HandleInBroadcastFrom {
			exclude = sub.id
		}
		if err := s.hub.Broadcast(context.Background(), m.Topic, m.Event, m.Payload, exclude); err != nil {
			cfg.Logger.Error("broadcast failed", zap.String("topic", m.Topic), zap.String("event", m.Event), zap.Error(err))
			s.replyError(sub.joinRef, m.Ref, m.Topic, "broadcast failed")
			return
		}
		s.reply(sub.joinRef, m.Ref, m.Topic, "ok", JSONPayload(emptyObject))
	case HandleInReply:
		p := m.Payload
		if !p.Binary && len(p.JSON) == 0 {
			p = JSONPayload(emptyObject)
		}
		s.reply(sub.joinRef, m.Ref, m.Topic, "ok", p)
	case HandleInNoReply:
	}
}

// stale reports whether m carries a non-null join_ref of an earlier join of
// its topic; such messages are dropped silently (Phoenix 1.8.12 rules).
func (s *Socket) stale(sub *subscription, m *Message) bool {
	if m.JoinRef.IsNull() || m.JoinRef.Equal(sub.joinRef) {
		return false
	}
	if c := s.hub.logger().Check(zap.DebugLevel, "dropped message with stale join_ref"); c != nil {
		c.Write(zap.String("topic", m.Topic), zap.String("event", m.Event),
			zap.Stringer("join_ref", m.JoinRef), zap.Stringer("current_join_ref", sub.joinRef))
	}
	return true
}

// terminate unsubscribes every channel of a closed socket and notifies
// the leave webhooks.
func (s *Socket) terminate() {
	cfg := s.hub.Config()
	reason := s.leaveReason()
	for len(s.channels) > 0 {
		sub := s.channels[len(s.channels)-1]
		s.hub.unsubscribe(sub)
		s.channels.remove(sub.topic)
		s.notifyLeave(cfg, sub, reason)
	}
}

// reply queues a phx_reply.
func (s *Socket) reply(joinRef, ref Ref, topic, status string, response Payload) {
	f, err := s.ser.EncodeReply(joinRef, ref, topic, status, response)
	if err != nil {
		s.hub.logger().Warn("reply not encodable", zap.String("topic", topic), zap.Error(err))
		f, err = s.ser.EncodeReply(joinRef, ref, topic, "error", JSONPayload(reasonJSON(replyErrorReason(err))))
		if err != nil {
			return
		}
	}
	// Replies are sent from the socket's reader goroutine, holding no lock:
	// written at once when nothing else waits.
	s.t.SendNow(f)
}

// replyError queues {"status":"error","response":{"reason":reason}}.
func (s *Socket) replyError(joinRef, ref Ref, topic, reason string) {
	s.reply(joinRef, ref, topic, "error", JSONPayload(reasonJSON(reason)))
}

// sendControlEvent queues phx_close or phx_error for a channel: its
// join_ref is both join_ref and ref.
func (s *Socket) sendControlEvent(sub *subscription, event string, payload json.RawMessage) {
	f, err := s.ser.EncodeMessage(sub.joinRef, sub.joinRef, sub.topic, event, JSONPayload(payload))
	if err != nil {
		return
	}
	s.send(f)
}

// replyErrorReason names an encoding failure for the client.
func replyErrorReason(err error) string {
	if errors.Is(err, ErrBinaryUnsupported) {
		return "binary payloads need protocol version 2.0.0"
	}
	return "reply not encodable"
}

// reasonJSON returns {"reason":reason}.
func reasonJSON(reason string) json.RawMessage {
	b := append([]byte(`{"reason":`), jsonwire.AppendString(nil, reason)...)
	return append(b, '}')
}

// payloadParams decodes a join payload for rules: a JSON object becomes a
// map; anything else (binary, arrays, scalars) gives an empty map.
func payloadParams(p Payload) map[string]any {
	if p.IsObject() {
		var m map[string]any
		if json.Unmarshal(p.JSON, &m) == nil && m != nil {
			return m
		}
	}
	return map[string]any{}
}

// evalJSONObject evaluates a reply expression and encodes its map result.
func evalJSONObject(e *Expr, v *Vars) (json.RawMessage, error) {
	val, err := e.EvalValue(v)
	if err != nil {
		return nil, err
	}
	if _, ok := val.(map[string]any); !ok {
		return nil, errors.New("reply expression must produce a map")
	}
	return json.Marshal(val)
}
