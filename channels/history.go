package channels

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// This file implements history catch-up for joins of channels whose rule
// keeps history (protocol extension; see the README's "History and
// catch-up").
//
// Every broadcast on such a topic carries its position "<epoch>:<seq>" in
// the ref field of the frame (JSON serializers). A join payload with
// "_since": "<epoch>:<seq>" asks for every later message. The join is
// gap-free and duplicate-free:
//
//  1. the subscription is added to the topic table in catching-up mode:
//     broadcasts that reach it are held, not queued;
//  2. the broker's history is read: the messages after _since (or the
//     newest on_join ones, or none), and the stream's latest position L;
//  3. under the subscription's catch-up lock, the ok reply (with
//     "_recovered" and "_position": L), the replayed messages and the held
//     broadcasts that come after L are queued, and the mode ends.
//
// A held broadcast of the same epoch at or before L was published before
// the history read: it is either in the replay or before the join point.
// Held broadcasts of another epoch, or without a position, are queued as
// they are.
//
// The broker may hand the node a broadcast after the history read has
// already returned it (Redis appends and publishes in one script, but the
// node's pub/sub connection delivers on its own time): after step 3 the
// state stays as a floor, and a broadcast of the same epoch at or before
// L is dropped, until the first later one arrives and removes it.

// maxHeld bounds the broadcasts held for one catching-up subscription; a
// subscription that exceeds it is disconnected as a slow consumer.
const maxHeld = 10_000

// historyTimeout bounds the broker's history read during a join.
const historyTimeout = 5 * time.Second

// catchUpState is the state of a subscription while its history join
// catches up. It exists only during the join, so idle subscriptions pay
// one pointer for it.
type catchUpState struct {
	sub  *subscription
	mu   sync.Mutex
	done bool              // the catch-up ended: queue what comes after floor
	held []*pubsub.Message // broadcasts that arrived meanwhile
	over bool              // more than maxHeld arrived

	floor    pubsub.Position // once done: the join point L
	hasFloor bool
}

// hold holds m for a catching-up subscription and reports whether it did
// (or dropped it as already replayed); false means m is queued as usual.
// Once the catch-up is done, the first broadcast after the join point
// removes the state. It runs under the topic shard's read lock.
func (cu *catchUpState) hold(m *pubsub.Message) bool {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	if cu.done {
		if cu.hasFloor && m.Position.Epoch == cu.floor.Epoch && m.Position.Seq <= cu.floor.Seq {
			return true // replayed already
		}
		if !m.Position.IsZero() || !cu.hasFloor {
			cu.sub.catchUp.CompareAndSwap(cu, nil)
		}
		return false
	}
	if len(cu.held) >= maxHeld {
		cu.over = true
		return true
	}
	cu.held = append(cu.held, m)
	return true
}

// sinceParam returns the "_since" of a join payload: present reports that
// the key exists, ok that it is a valid position.
func sinceParam(p Payload) (pos pubsub.Position, present, ok bool) {
	if !p.IsObject() {
		return pos, false, false
	}
	var v struct {
		Since *json.RawMessage `json:"_since"`
	}
	if json.Unmarshal(p.JSON, &v) != nil || v.Since == nil {
		return pos, false, false
	}
	var str string
	if json.Unmarshal(*v.Since, &str) != nil {
		return pos, true, false
	}
	pos, err := pubsub.ParsePosition(str)
	return pos, true, err == nil
}

// catchUp reads the topic's history for a join, then queues the ok reply,
// the replay and the held broadcasts, and ends the catch-up mode.
func (s *Socket) catchUp(cfg *Config, hr *HistoryRule, sub *subscription, m *Message, response Payload) {
	since, sincePresent, sinceOK := sinceParam(m.Payload)
	opts := pubsub.HistoryOptions{TTL: hr.TTL, Limit: -1}
	switch {
	case sincePresent && sinceOK:
		opts.Since, opts.Limit = &since, 0
	case !sincePresent && hr.OnJoin > 0:
		opts.Limit = hr.OnJoin
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	res, err := s.hub.broker.History(ctx, m.Topic, opts)
	cancel()
	if err != nil {
		cfg.Logger.Error("history read failed; joining without catch-up",
			zap.String("topic", m.Topic), zap.Error(err))
		res = pubsub.HistoryResult{}
	}
	extra := map[string]any{}
	if sincePresent {
		extra["_recovered"] = err == nil && sinceOK && res.Recovered
	}
	if err == nil {
		extra["_position"] = res.Latest.String()
	}
	response = mergeResponse(cfg, m.Topic, response, extra)
	reply, encErr := s.ser.EncodeReply(m.JoinRef, m.Ref, m.Topic, "ok", response)
	if encErr != nil {
		cfg.Logger.Warn("join reply not encodable", zap.String("topic", m.Topic), zap.Error(encErr))
		reply, _ = s.ser.EncodeReply(m.JoinRef, m.Ref, m.Topic, "ok", JSONPayload(emptyObject))
	}

	cu := sub.catchUp.Load()
	cu.mu.Lock()
	defer cu.mu.Unlock()
	s.send(reply)
	for _, hm := range res.Messages {
		s.sendBroadcast(cfg, sub, hm)
	}
	latest := res.Latest
	for _, hm := range cu.held {
		if err == nil && hm.Position.Epoch == latest.Epoch && hm.Position.Seq <= latest.Seq {
			continue // in the replay, or before the join point
		}
		s.sendBroadcast(cfg, sub, hm)
	}
	over := cu.over
	cu.held, cu.done = nil, true
	if err == nil && !latest.IsZero() {
		cu.floor, cu.hasFloor = latest, true // until a later broadcast (see hold)
	} else {
		sub.catchUp.Store(nil)
	}
	if over {
		cfg.Logger.Warn("disconnecting slow consumer: too many broadcasts during a history join",
			zap.String("topic", m.Topic), zap.String("socket_id", s.id), zap.Int("held", maxHeld))
		s.closeFor(LeaveReasonClosed, CloseSlowConsumer, "slow consumer")
	}
}

// sendBroadcast encodes a broker message for sub alone (replay and held
// messages) and queues it; an intercepted event goes through its
// intercept for sub, as it would have live.
func (s *Socket) sendBroadcast(cfg *Config, sub *subscription, m *pubsub.Message) {
	p := Payload{JSON: m.Payload}
	if m.Binary {
		p = BinaryPayload(m.Payload)
	}
	if f, ok := interceptFrame(cfg, sub, m, p); ok {
		if f != nil {
			s.send(f)
		}
		return
	}
	f, err := encodeBroadcast(s.ser, m, p)
	if err != nil {
		if c := cfg.Logger.Check(zap.DebugLevel, "replayed message not encodable for this protocol version"); c != nil {
			c.Write(zap.String("topic", m.Topic), zap.String("event", m.Event), zap.Error(err))
		}
		return
	}
	s.send(f)
}

// encodeBroadcast encodes a broadcast for ser. A message with a position
// carries it in the ref field, "<epoch>:<seq>", as a JSON string (binary
// frames have no ref field for broadcasts, so binary payloads go without).
func encodeBroadcast(ser Serializer, m *pubsub.Message, p Payload) (*Frame, error) {
	if m.Position.IsZero() || p.Binary {
		return ser.EncodeBroadcast(m.Topic, m.Event, p)
	}
	return ser.EncodeMessage(nil, positionRef(m.Position), m.Topic, m.Event, p)
}

// positionRef returns a position as a JSON string ref. Positions contain
// ':' and so never equal phoenix.js's numeric string refs.
func positionRef(p pubsub.Position) Ref {
	b := make([]byte, 0, len(p.Epoch)+24)
	b = append(b, '"')
	b = append(b, p.String()...)
	return append(b, '"')
}

// mergeResponse adds extra's keys to a join response. A response that is
// not a JSON object is replaced (history join responses are objects).
func mergeResponse(cfg *Config, topic string, response Payload, extra map[string]any) Payload {
	if len(extra) == 0 {
		return response
	}
	obj := map[string]json.RawMessage{}
	if response.Binary || (len(response.JSON) > 0 && json.Unmarshal(response.JSON, &obj) != nil) {
		cfg.Logger.Warn("join response of a history channel is not a JSON object; replaced",
			zap.String("topic", topic))
		obj = nil
	}
	if obj == nil {
		obj = map[string]json.RawMessage{}
	}
	for k, v := range extra {
		raw, _ := json.Marshal(v)
		obj[k] = raw
	}
	raw, _ := json.Marshal(obj)
	return JSONPayload(raw)
}
