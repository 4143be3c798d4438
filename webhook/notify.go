package webhook

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// job is a queued notification.
type job struct {
	url, event string
	body       []byte
}

// Notify queues a fire-and-forget call of url (leave notifications). It
// never blocks and takes ownership of body. It returns false, counts and
// logs (at most once per second) when the queue is full or closed.
// Non-2xx answers and errors are logged by the worker that delivers it.
func (w *Client) Notify(url, event string, body []byte) bool {
	return w.enqueue(nil, url, event, body)
}

// NotifyWait is Notify, except that a full queue makes it wait for room
// until ctx ends (a nil ctx waits for nothing). A drain uses it so that
// the leave notifications of thousands of sockets closed at once are
// delivered, not dropped. Close waits for a NotifyWait in progress.
func (w *Client) NotifyWait(ctx context.Context, url, event string, body []byte) bool {
	return w.enqueue(ctx.Done(), url, event, body)
}

// enqueue queues a notification, waiting for room until wait yields when
// wait is not nil.
func (w *Client) enqueue(wait <-chan struct{}, url, event string, body []byte) bool {
	queued, closed := false, false
	job := job{url: url, event: event, body: body}
	w.pending.Add(1) // before the worker can take it
	w.qmu.RLock()
	if w.closed {
		closed = true
	} else {
		select {
		case w.queue <- job:
			queued = true
		default:
			if wait != nil {
				select {
				case w.queue <- job:
					queued = true
				case <-wait:
				}
			}
		}
	}
	w.qmu.RUnlock()
	if queued {
		return true
	}
	w.pending.Add(-1)
	total := w.dropped.Add(1)
	now := w.cfg.Now().UnixNano()
	last := w.lastDropLog.Load()
	if (last == 0 || now-last >= int64(webhookDropLogInterval)) && w.lastDropLog.CompareAndSwap(last, now) {
		reason := "queue full"
		if closed {
			reason = "client closed"
		}
		w.log.Warn("webhook notification dropped",
			zap.String("url", url), zap.String("event", event), zap.String("reason", reason),
			zap.Int("queue_size", w.cfg.QueueSize), zap.Uint64("dropped_total", total))
	}
	return false
}

// notifyWorker delivers queued notifications until the queue is closed.
func (w *Client) notifyWorker() {
	defer w.workers.Done()
	for job := range w.queue {
		w.deliver(job)
		w.pending.Add(-1)
	}
}

// deliver makes the call of one queued notification.
func (w *Client) deliver(job job) {
	if w.notifyCtx.Err() != nil {
		w.abandon()
		return
	}
	resp, err := w.Call(w.notifyCtx, job.url, job.event, job.body)
	if err != nil && w.notifyCtx.Err() != nil {
		w.abandon() // cut short by Close
		return
	}
	// Call logged errors and 5xx; other non-2xx are logged here.
	if err == nil && (resp.Status < 200 || resp.Status > 299) && resp.Status < 500 {
		w.log.Warn("webhook notification not accepted",
			zap.String("url", job.url), zap.String("event", job.event),
			zap.Int("status", resp.Status), zap.Duration("latency", resp.Latency))
	}
}

// Close stops accepting notifications, lets the workers deliver what is
// queued for at most twice the Timeout (then abandons the rest, counted as
// dropped), and closes idle connections. Calls made after Close still
// work. Close is safe to call more than once.
func (w *Client) Close() { w.CloseWithin(0) }

// CloseWithin is Close letting the workers deliver what is queued for up
// to wait, or twice the Timeout if that is longer: after a drain, the
// leave notifications of every drained socket may be queued.
func (w *Client) CloseWithin(wait time.Duration) {
	w.closeOnce.Do(func() {
		w.qmu.Lock()
		w.closed = true
		close(w.queue)
		w.qmu.Unlock()

		done := make(chan struct{})
		go func() {
			w.workers.Wait()
			close(done)
		}()
		timer := time.NewTimer(max(wait, 2*w.cfg.Timeout))
		select {
		case <-done:
		case <-timer.C:
			w.cancel() // aborts calls in flight; the rest is skipped
			<-done
		}
		timer.Stop()
		w.cancel()
		if n := w.abandoned.Load(); n > 0 {
			w.log.Warn("webhook notifications abandoned at close", zap.Uint64("count", n))
		}
		w.plain.closeIdle()
		w.tls.closeIdle()
	})
}

// abandon counts a notification given up by Close.
func (w *Client) abandon() {
	w.abandoned.Add(1)
	w.dropped.Add(1)
}

// Stats returns the counters of w.
func (w *Client) Stats() Stats {
	return Stats{
		Calls:        w.calls.Load(),
		Failures:     w.failures.Load(),
		Rejected:     w.rejected.Load(),
		BreakerOpens: w.opens.Load(),
		Dropped:      w.dropped.Load(),
		Pending:      w.pending.Load(),
	}
}
