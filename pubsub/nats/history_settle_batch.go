package natsbroker

import (
	"context"
	"fmt"
	"time"
)

// settleBatch is one settle of a topic whose result every History call
// that joined it shares. A call joins only a batch that has not begun, so
// the read of the newest record starts after every member arrived: a
// member's subscription was in place by then, and whatever was published
// before it is in the record read or older.
type settleBatch struct {
	ttl  time.Duration // the stream life the members ask for
	done chan struct{} // closed once top and err are set
	top  newest
	err  error
}

// sharedSettle settles topic for a History call. Without it, the History
// calls of a topic take turns on st.mu, one round trip to the server each:
// a wave of joins (a node starting, clients reconnecting after a broker
// fault) then waits in line, and the last ones run out of time. With it, the
// calls that arrive while a settle runs share the next one, so a wave costs
// two round trips, not one per join.
func (b *Broker) sharedSettle(ctx context.Context, st *topicState, topic string, ttl time.Duration) (newest, error) {
	st.batchMu.Lock()
	if bt := st.next; bt != nil && bt.ttl == ttl {
		st.batchMu.Unlock()
		select {
		case <-bt.done:
			return bt.top, bt.err
		case <-ctx.Done():
			return newest{}, fmt.Errorf("wait for the shared read of the newest history record: %w", ctx.Err())
		}
	}
	bt := &settleBatch{ttl: ttl, done: make(chan struct{})}
	if st.next == nil {
		st.next = bt // a batch with another ttl is waiting: run alone
	}
	st.batchMu.Unlock()

	st.mu.Lock()
	st.batchMu.Lock()
	if st.next == bt {
		st.next = nil // from here on, arrivals wait for the next batch
	}
	st.batchMu.Unlock()
	bt.top, bt.err = b.settle(ctx, st, topic, ttl)
	st.mu.Unlock()
	close(bt.done)
	return bt.top, bt.err
}
