package channels

// The hub's socket registry: which sockets are open, and under which id,
// so that a disconnect by id and a drain reach every socket, including one
// whose handshake is still being answered.
//
// A socket is admitted before its handshake answers (the 101 of a
// WebSocket) and opened once it can send. A close that reaches an
// admitted socket before it is open (a disconnect by id published as soon
// as the client saw the 101, a drain) is kept and carried out by open.

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"
)

// closeIntent is a close that reached a socket before it could send.
type closeIntent struct {
	leaveReason string
	code        int
	reason      string
}

// admit registers s before its handshake answers, so that a disconnect
// by its id or a drain reaches it from then on. It fails with 503 once the
// hub is closing and with 429 when s would go over max_sockets_per_ip or
// max_sockets_per_id. Every admitted socket ends with unregister.
func (h *Hub) admit(cfg *Config, s *Socket) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return httpErrorf(http.StatusServiceUnavailable, "shutting down")
	}
	lim := &cfg.Limits
	if n := lim.MaxSocketsPerID; n > 0 && s.id != "" && len(h.byID[s.id]) >= n {
		h.stats.refusals[RefusedSocketsPerID].Add(1)
		cfg.Logger.Info("refusing socket: max_sockets_per_id reached",
			zap.String("socket_id", s.id), zap.Int("max_sockets_per_id", n), zap.String("transport", s.transport))
		return &HTTPError{Status: http.StatusTooManyRequests, Err: fmt.Errorf("socket id %q holds %d sockets: %w", s.id, n, errLimited)}
	}
	if n := lim.MaxSocketsPerIP; n > 0 {
		if !h.perIP.take(s.remoteIP, n) {
			h.stats.refusals[RefusedSocketsPerIP].Add(1)
			cfg.Logger.Info("refusing socket: max_sockets_per_ip reached",
				zap.String("remote_ip", s.remoteIP), zap.Int("max_sockets_per_ip", n), zap.String("transport", s.transport))
			return &HTTPError{Status: http.StatusTooManyRequests, Err: fmt.Errorf("address holds %d sockets: %w", n, errLimited)}
		}
		s.ipCounted = true
	}
	h.live.Add(1)
	h.sockets[s] = struct{}{}
	if s.id != "" {
		set := h.byID[s.id]
		if set == nil {
			set = make(map[*Socket]struct{})
			h.byID[s.id] = set
		}
		set[s] = struct{}{}
	}
	return nil
}

// open gives an admitted socket its transport and carries out a close
// that reached it meanwhile. The socket's reader starts after open.
func (h *Hub) open(s *Socket, t Transport) {
	h.mu.Lock()
	s.t = t
	pending := s.pendingClose
	s.pendingClose = nil
	s.watchExpiry()
	h.mu.Unlock()
	h.stats.connects.Add(1)
	if pending != nil {
		s.closeFor(pending.leaveReason, pending.code, pending.reason)
	}
}

// closeSockets closes each socket of list with code and reason, recording
// leaveReason for its leave webhooks; a socket that is not open yet is
// closed by open.
func (h *Hub) closeSockets(list []*Socket, leaveReason string, code int, reason string) {
	var ready []*Socket
	h.mu.Lock()
	for _, s := range list {
		if s.t != nil {
			ready = append(ready, s)
		} else if s.pendingClose == nil {
			s.pendingClose = &closeIntent{leaveReason: leaveReason, code: code, reason: reason}
		}
	}
	h.mu.Unlock()
	for _, s := range ready {
		s.closeFor(leaveReason, code, reason)
	}
}

// socketsWithID returns the registered sockets whose id is id.
func (h *Hub) socketsWithID(id string) []*Socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := make([]*Socket, 0, len(h.byID[id]))
	for s := range h.byID[id] {
		list = append(list, s)
	}
	return list
}

// unregister removes a socket admitted by admit and releases its id
// subscription.
func (h *Hub) unregister(s *Socket) {
	h.unsubscribeID(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	if _, ok := h.sockets[s]; ok {
		h.live.Done()
	}
	if s.ipCounted {
		s.ipCounted = false
		h.perIP.release(s.remoteIP)
	}
	delete(h.sockets, s)
	if set := h.byID[s.id]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.byID, s.id)
		}
	}
}
