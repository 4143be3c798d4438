package channels

import (
	"sync/atomic"

	"github.com/caddy-channels/caddy-channels/webhook"
)

// Stats are a hub's counters since it was created, for metrics. Counters
// only grow; Sockets is the current number of open sockets.
type Stats struct {
	// Sockets is the number of open sockets.
	Sockets int
	// Connects counts sockets that were accepted.
	Connects uint64
	// SlowConsumers counts sockets closed because their outbound queue
	// exceeded max_queue_size.
	SlowConsumers uint64
	// InvalidFrames counts sockets closed for a frame that was not a valid
	// message, not UTF-8, or over max_frame_size.
	InvalidFrames uint64
	// MessagesIn counts inbound messages handled (heartbeats included).
	MessagesIn uint64
	// Broadcasts counts broadcasts fanned out on this node.
	Broadcasts uint64
	// Deliveries counts broadcast frames queued on sockets of this node.
	Deliveries uint64
	// LongPollSessions is the number of open LongPoll sessions, part of
	// Sockets.
	LongPollSessions int
	// LongPollConnects counts LongPoll sessions that were accepted, part
	// of Connects.
	LongPollConnects uint64
	// LongPollBinaryDropped counts binary frames not sent to a LongPoll
	// session (LongPoll carries text frames only).
	LongPollBinaryDropped uint64
	// DeflateFrames counts compressed (permessage-deflate) frames built:
	// one per broadcast and serializer, however many sockets it reached.
	DeflateFrames uint64
	// DeflateSavedBytes sums, over the compressed frames built, how many
	// bytes smaller each is than its plain frame (saved per delivery).
	DeflateSavedBytes uint64
	// Refusals counts what the edge refused, by kind (auth and limits).
	Refusals [NumRefusals]uint64
	// Webhooks are the counters of the webhook client in force.
	Webhooks webhook.Stats
}

// hubCounters are the atomic counters behind Stats.
type hubCounters struct {
	connects, slowConsumers, invalidFrames, messagesIn, broadcasts, deliveries atomic.Uint64

	longpollConnects, longpollBinaryDropped atomic.Uint64
	longpollLive                            atomic.Int64 // open LongPoll sockets

	refusals [NumRefusals]atomic.Uint64

	deflate deflateCounters
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	st := Stats{
		Sockets:       h.Sockets(),
		Connects:      h.stats.connects.Load(),
		SlowConsumers: h.stats.slowConsumers.Load(),
		InvalidFrames: h.stats.invalidFrames.Load(),
		MessagesIn:    h.stats.messagesIn.Load(),
		Broadcasts:    h.stats.broadcasts.Load(),
		Deliveries:    h.stats.deliveries.Load(),

		LongPollSessions:      int(h.stats.longpollLive.Load()),
		LongPollConnects:      h.stats.longpollConnects.Load(),
		LongPollBinaryDropped: h.stats.longpollBinaryDropped.Load(),

		DeflateFrames:     h.stats.deflate.frames.Load(),
		DeflateSavedBytes: h.stats.deflate.saved.Load(),
	}
	for i := range st.Refusals {
		st.Refusals[i] = h.stats.refusals[i].Load()
	}
	if w := h.Config().Webhooks; w != nil {
		st.Webhooks = w.Stats()
	}
	return st
}
