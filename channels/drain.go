package channels

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Drain defaults, Phoenix's socket drainer's.
const (
	// DefaultDrainBatch is how many sockets one drain batch closes.
	DefaultDrainBatch = 10000
	// DefaultDrainInterval is the pause between two drain batches.
	DefaultDrainInterval = 2 * time.Second
	// DefaultDrainTimeout bounds a whole drain.
	DefaultDrainTimeout = 30 * time.Second
)

// abortWait is how long Close waits for the sockets it aborted at the
// drain deadline to terminate (and queue their leave webhooks).
const abortWait = time.Second

// DrainConfig shapes the close of a hub's sockets at shutdown or when a
// config drops the handler, as Phoenix's socket drainer does: the sockets
// are closed with 1001 in batches, one batch per Interval, so that their
// clients do not all reconnect (to this node after a restart, or to the
// others) and call the connect webhook in the same instant.
//
// Batches grow when the sockets would not all be asked to close within
// Timeout: a node with more sockets than Batch × (Timeout - 3s) / Interval
// closes ⌈sockets / batches⌉ per batch instead. Sockets still open at
// Timeout (peers that do not answer the close) are cut.
type DrainConfig struct {
	// Batch is the smallest number of sockets closed per batch. Default
	// DefaultDrainBatch.
	Batch int
	// Interval is the pause between batches. Default DefaultDrainInterval.
	Interval time.Duration
	// Timeout bounds the drain, leave webhooks included. Default
	// DefaultDrainTimeout.
	Timeout time.Duration
}

// withDefaults returns d with zero or negative fields set to defaults.
func (d DrainConfig) withDefaults() DrainConfig {
	if d.Batch <= 0 {
		d.Batch = DefaultDrainBatch
	}
	if d.Interval <= 0 {
		d.Interval = DefaultDrainInterval
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultDrainTimeout
	}
	return d
}

// batchSize returns how many of n sockets one batch closes: at least
// Batch, and enough that the last batch is asked to close a close
// handshake (closeGrace) before Timeout.
func (d DrainConfig) batchSize(n int) int {
	rounds := 1
	if span := d.Timeout - closeGrace; span > 0 {
		rounds += int(span / d.Interval)
	}
	return max(d.Batch, (n+rounds-1)/rounds, 1)
}

// Close drains the hub and then closes its broker and presence manager.
// New sockets are refused from the start (503). The open sockets are
// closed with 1001 in batches (see DrainConfig); each runs its leave
// webhooks with reason "shutdown", which wait for room in the webhook
// queue until the drain deadline instead of being dropped, and its
// presences leave, the diffs reaching the other nodes before the broker
// closes. Close returns once every socket has terminated, or at the drain
// deadline, after cutting the sockets that were still open.
func (h *Hub) Close() error {
	d := h.Config().Drain
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(d.Timeout))
	defer cancel()
	h.mu.Lock()
	h.closed = true
	h.draining = ctx
	list := make([]*Socket, 0, len(h.sockets))
	for s := range h.sockets {
		list = append(list, s)
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() { h.live.Wait(); close(done) }()
	batch := d.batchSize(len(list))
	for i := 0; i < len(list); i += batch {
		if i > 0 {
			timer := time.NewTimer(d.Interval)
			select {
			case <-timer.C:
			case <-ctx.Done():
				batch = len(list) // past the deadline: the rest at once
			}
			timer.Stop()
		}
		h.closeSockets(list[i:min(i+batch, len(list))], LeaveReasonShutdown, CloseGoingAway, "shutdown")
	}
	select {
	case <-done:
	case <-ctx.Done():
		h.abortAll()
		select {
		case <-done:
		case <-time.After(abortWait):
		}
	}
	if n := len(list); n > 0 {
		h.logger().Info("sockets drained", zap.Int("sockets", n), zap.Int("batch", batch),
			zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	}
	h.diffs.flushAll() // announce the leaves of the closed sockets to other nodes
	var errs []error
	if err := h.broker.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing broker: %w", err))
	}
	if err := h.presence.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing presence: %w", err))
	}
	return errors.Join(errs...)
}

// abortAll cuts the connection of every socket still registered at the
// drain deadline; their readers then terminate them.
func (h *Hub) abortAll() {
	h.mu.Lock()
	var open []*Socket
	for s := range h.sockets {
		if s.t != nil {
			open = append(open, s)
		}
	}
	h.mu.Unlock()
	h.logger().Warn("sockets still open at the drain deadline; cutting them",
		zap.Int("sockets", len(open)), zap.Duration("timeout", h.Config().Drain.Timeout))
	for _, s := range open {
		s.t.Abort()
	}
}

// drainContext returns the context of a drain in progress (it ends at the
// drain deadline), or nil.
func (h *Hub) drainContext() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}
