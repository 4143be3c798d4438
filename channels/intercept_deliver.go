package channels

import (
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Delivery of intercepted events.
//
// Cost model. Per broadcast: one route lookup, one decode of the payload
// (only when an expression reads payload) and one split of it into
// top-level members (only when a step sets or removes a key). Per
// subscriber: the steps' CEL evaluations, the encoding of set values and
// the composition of the edited payload. Frames are shared: subscribers
// whose outcome is the same payload, with the same serializer and the same
// join_ref, get one *Frame. phoenix.js numbers refs per socket, so most
// clients join a given topic with the same few join_refs and a drop-only
// intercept encodes a handful of frames, not one per subscriber. V1 frames
// carry no join_ref (Phoenix's V1 serializer never sends it), so V1
// subscribers share frames by payload alone.
//
// Locking. topicTable.each holds the topic shard's read lock while it
// calls its function; a join or leave on any topic of that shard (1/64 of
// all topics) waits for it, and broadcasts that arrive behind the waiting
// writer wait too. Queuing a shared frame costs tens of nanoseconds per
// subscriber, but CEL costs microseconds, so an intercepted broadcast to
// thousands of subscribers would hold the lock for milliseconds. Delivery
// therefore runs in three phases: the subscribers are copied under the
// read lock, the steps run and frames are built without any lock, and the
// frames are queued, every interceptChunk of them, under the read lock
// again, each only if its subscription is still in the table. So, as on the broadcast path,
// nothing is queued on a subscription after unsubscribe has returned (no
// push after phx_close), and the join reply is queued before any
// delivery; a subscriber that joins while the steps run misses the
// broadcast, as if it had joined just after it.

// queuedFrame is a frame built for one subscriber.
type queuedFrame struct {
	sub *subscription
	f   *Frame
}

// interceptBufs are the reusable slices of one intercepted delivery.
type interceptBufs struct {
	subs    []*subscription
	out     []queuedFrame
	members []objectMember
	edits   []keyEdit
	written []bool
	present []bool // which keys the published payload has
	vals    []byte // encoded set values
	payload []byte // the composed payload
	key     []byte // frame cache key
	cache   frameCache
}

var interceptBufPool = sync.Pool{New: func() any { return new(interceptBufs) }}

// release clears references and returns b to the pool.
func (b *interceptBufs) release() {
	clear(b.subs)
	clear(b.out)
	clear(b.members)
	clear(b.edits)
	b.subs, b.out, b.members, b.edits = b.subs[:0], b.out[:0], b.members[:0], b.edits[:0]
	b.cache.reset()
	interceptBufPool.Put(b)
}

// deliverIntercepted delivers m through the intercept of its event, if its
// channel has one, and reports whether it did; otherwise the caller takes
// the broadcast path.
func (h *Hub) deliverIntercepted(m *pubsub.Message, p Payload) bool {
	cfg := h.cfg.Load()
	rule, ic := cfg.Rules.interceptFor(m.Topic, m.Event)
	if ic == nil {
		return false
	}
	h.stats.broadcasts.Add(1)
	b := interceptBufPool.Get().(*interceptBufs)
	defer b.release()

	d := newInterceptDelivery(cfg, rule, ic, m, p, b)
	b.subs = h.topics.snapshot(m.Topic, m, b.subs)
	local := m.Node == h.node
	var delivered uint64
	for i, s := range b.subs {
		if !(local && m.Exclude != 0 && s.id == m.Exclude) {
			if f := d.frameFor(s); f != nil {
				b.out = append(b.out, queuedFrame{s, f})
			}
		}
		if len(b.out) == interceptChunk || i == len(b.subs)-1 {
			delivered += h.topics.sendSubscribed(m.Topic, b.out)
			clear(b.out)
			b.out = b.out[:0]
		}
	}
	h.stats.deliveries.Add(delivered)
	return true
}

// newInterceptDelivery prepares the delivery of m (payload p) through ic
// with the buffers b.
func newInterceptDelivery(cfg *Config, rule *ChannelRule, ic *Intercept, m *pubsub.Message, p Payload, b *interceptBufs) *interceptDelivery {
	d := &interceptDelivery{
		log:   cfg.Logger,
		rule:  rule,
		ic:    ic,
		topic: m.Topic,
		event: m.Event,
		p:     p,
		b:     b,
		vars:  Vars{Topic: m.Topic, Event: m.Event, Now: time.Now()},
	}
	if !m.Position.IsZero() && !p.Binary {
		// A history channel's position rides in the ref field, as on
		// broadcasts (binary pushes have no ref field).
		d.ref = positionRef(m.Position)
	}
	d.prepare()
	return d
}

// interceptFrame runs the intercept of m's event, if its channel has one,
// for the subscription sub alone (history replay and broadcasts held
// during a catch-up): intercepted reports whether there is one, f is the
// frame to queue, nil when sub is dropped.
func interceptFrame(cfg *Config, sub *subscription, m *pubsub.Message, p Payload) (f *Frame, intercepted bool) {
	rule, ic := cfg.Rules.interceptFor(m.Topic, m.Event)
	if ic == nil {
		return nil, false
	}
	b := interceptBufPool.Get().(*interceptBufs)
	defer b.release()
	return newInterceptDelivery(cfg, rule, ic, m, p, b).frameFor(sub), true
}

// interceptChunk is how many frames are built before they are queued: the
// first subscribers do not wait for the steps of the last ones, and the
// shard lock is taken once per chunk.
const interceptChunk = 128

// interceptDelivery is the state of one intercepted broadcast.
type interceptDelivery struct {
	log   *zap.Logger
	rule  *ChannelRule
	ic    *Intercept
	topic string
	event string
	p     Payload
	ref   Ref // the message's history position, or nil
	b     *interceptBufs
	vars  Vars

	object    bool                 // the payload is a JSON object whose members were split
	encFailed [numSerializers]bool // the unedited payload is not encodable
}

// prepare decodes and splits the payload as the steps need it.
func (d *interceptDelivery) prepare() {
	ic, p := d.ic, d.p
	d.vars.payloadVal = emptyCELMap
	if p.Binary || !isJSONObject(p.JSON) || (!ic.usesPayload && !ic.edits()) {
		return // payload stays unread: {} for expressions, no edits
	}
	if ic.usesPayload {
		var obj map[string]any
		if json.Unmarshal(p.JSON, &obj) != nil {
			return
		}
		d.vars.Payload, d.vars.payloadVal = obj, celValue(obj)
	} else if !json.Valid(p.JSON) {
		return
	}
	if ic.edits() {
		d.object = true
		d.b.members = splitObject(p.JSON, ic.keys, d.b.members)
		d.b.edits = append(d.b.edits[:0], make([]keyEdit, len(ic.keys))...)
		d.b.written = append(d.b.written[:0], make([]bool, len(ic.keys))...)
		d.b.present = append(d.b.present[:0], make([]bool, len(ic.keys))...)
		for _, m := range d.b.members {
			if m.key >= 0 {
				d.b.present[m.key] = true
			}
		}
	}
}

// frameFor runs the steps for s and returns its frame, or nil when s is
// dropped or its frame cannot be encoded.
func (d *interceptDelivery) frameFor(s *subscription) *Frame {
	if a := s.deliveryAssigns(); a != nil {
		d.vars.Assigns, d.vars.assignsVal = a.m, a.celValue()
	} else {
		d.vars.Assigns, d.vars.assignsVal = nil, emptyCELMap
	}
	d.vars.Claims = s.sock.claims // nil reads as {}
	b := d.b
	if d.object {
		clear(b.edits)
		b.vals = b.vals[:0]
	}
	for i := range d.ic.Steps {
		st := &d.ic.Steps[i]
		switch st.Op {
		case InterceptDrop:
			drop, err := st.Expr.EvalBool(&d.vars)
			if err != nil {
				d.stepFailed(st, s, err)
				continue
			}
			if drop {
				return nil
			}
		case InterceptSet:
			if !d.object {
				continue
			}
			out, err := st.Expr.eval(&d.vars)
			if err != nil {
				d.stepFailed(st, s, err)
				continue
			}
			start := len(b.vals)
			b.vals, err = appendCELJSON(b.vals, out)
			if err != nil {
				b.vals = b.vals[:start]
				d.stepFailed(st, s, err)
				continue
			}
			b.edits[st.key] = keyEdit{op: keySet, start: start, end: len(b.vals)}
		case InterceptRemove:
			if !d.object {
				continue
			}
			if st.Cond != nil {
				remove, err := st.Cond.EvalBool(&d.vars)
				if err != nil {
					d.stepFailed(st, s, err)
					remove = true // fail closed: see InterceptStepSpec.If
				}
				if !remove {
					continue
				}
			}
			b.edits[st.key] = keyEdit{op: keyRemove}
		}
	}
	if !d.edited() {
		return d.frame(s, nil)
	}
	b.payload = composeObject(b.payload[:0], b.members, d.ic.keys, b.edits, b.vals, b.written)
	return d.frame(s, b.payload)
}

// edited reports whether the subscriber's edits change the payload: a set,
// or the removal of a key the payload has.
func (d *interceptDelivery) edited() bool {
	if !d.object {
		return false
	}
	for k, e := range d.b.edits {
		if e.op == keySet || e.op == keyRemove && d.b.present[k] {
			return true
		}
	}
	return false
}

// frame returns the frame of s for payload (nil: the published payload),
// sharing it with earlier subscribers that got the same payload with the
// same serializer and join_ref.
func (d *interceptDelivery) frame(s *subscription, payload []byte) *Frame {
	ser := s.sock.ser
	i := ser.Index()
	if payload == nil && d.encFailed[i] {
		return nil
	}
	k := append(d.b.key[:0], byte(i))
	if ser != V1 { // V1 frames carry no join_ref
		k = append(k, s.joinRef...)
	}
	k = append(k, 0)
	if payload != nil {
		k = append(k, 1)
		k = append(k, payload...)
	}
	d.b.key = k
	f, h := d.b.cache.get(k)
	if f != nil {
		return f
	}
	p := d.p
	if payload != nil {
		p = JSONPayload(payload)
	}
	f, err := ser.EncodeMessage(s.joinRef, d.ref, d.topic, d.event, p)
	if err != nil {
		if payload == nil && (ser == V1 || !p.Binary) {
			d.encFailed[i] = true // the failure does not depend on the join_ref
		}
		if c := d.log.Check(zap.DebugLevel, "intercepted event not encodable for this subscriber"); c != nil {
			c.Write(zap.String("topic", d.topic), zap.String("event", d.event), zap.String("vsn", ser.Version()),
				zap.Stringer("join_ref", s.joinRef), zap.Error(err))
		}
		return nil
	}
	d.b.cache.put(k, h, f)
	return f
}

// stepFailed logs an evaluation failure, at most once per second per step.
func (d *interceptDelivery) stepFailed(st *InterceptStep, s *subscription, err error) {
	ce := d.log.Check(zap.WarnLevel, "intercept step failed to evaluate; skipped")
	if ce == nil {
		return
	}
	ok, suppressed := st.limiter.allow(d.vars.Now)
	if !ok {
		return
	}
	ce.Write(zap.String("channel", d.rule.Pattern.String()), zap.String("event", d.event),
		zap.String("topic", d.topic), zap.Stringer("step", st), zap.Stringer("join_ref", s.joinRef),
		zap.Uint64("suppressed", suppressed), zap.Error(err))
}
