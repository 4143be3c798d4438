package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrUpstreamUnavailable is wrapped by every error of Webhooks.Call: the
// app could not be asked (timeout, connection failure, open circuit, no
// concurrency slot before the deadline, oversized or truncated answer).
var ErrUpstreamUnavailable = errors.New("upstream unavailable")

// Defaults applied to a zero WebhookConfig field.
const (
	// DefaultWebhookTimeout bounds one webhook call, connection included.
	DefaultWebhookTimeout = 3 * time.Second
	// DefaultWebhookMaxResponseBytes caps an answer's body.
	DefaultWebhookMaxResponseBytes int64 = 1 << 20
	// DefaultWebhookMaxConcurrency is the number of calls in flight to one
	// upstream URL.
	DefaultWebhookMaxConcurrency = 64
	// DefaultWebhookQueueSize is the number of pending notifications.
	DefaultWebhookQueueSize = 10000
	// DefaultWebhookNotifyWorkers is the number of goroutines that deliver
	// notifications.
	DefaultWebhookNotifyWorkers = 4
	// DefaultWebhookBreakerThreshold is the number of consecutive failures
	// that opens an upstream's circuit.
	DefaultWebhookBreakerThreshold = 5
	// DefaultWebhookBreakerCooldown is how long an open circuit rejects
	// calls before it lets a trial call through.
	DefaultWebhookBreakerCooldown = 5 * time.Second
)

const (
	// webhookMaxIdleUpstreams is the number of per-URL states kept before
	// states that carry no information (no call in flight, circuit closed
	// without failures) are swept, so that URLs built from placeholders
	// cannot grow the map without bound.
	webhookMaxIdleUpstreams = 1024
	// webhookDropLogInterval rate-limits the dropped-notification warning.
	webhookDropLogInterval = time.Second
)

// Header values shared by every request; net/http never modifies them.
var (
	webhookContentType = []string{"application/json"}
	webhookUserAgent   = []string{"caddy-channels"}
)

// WebhookConfig configures outgoing webhook calls. Zero fields take the
// DefaultWebhook* values.
type WebhookConfig struct {
	// Secret is the HMAC key of X-Channels-Signature; empty = unsigned.
	Secret string
	// Timeout bounds one call, from waiting for a slot to the last byte of
	// the answer. On http:// upstreams a timeout may fire up to
	// Timeout/256 late (connection deadlines are moved lazily); caller
	// deadlines and cancellations are exact.
	Timeout time.Duration
	// MaxResponseBytes caps an answer's body; a larger one is a failure.
	MaxResponseBytes int64
	// MaxConcurrency is the number of calls in flight per upstream URL.
	MaxConcurrency int
	// QueueSize is the number of pending fire-and-forget notifications.
	QueueSize int
	// NotifyWorkers is the number of goroutines delivering notifications.
	NotifyWorkers int
	// BreakerThreshold is the number of consecutive failures of one URL
	// that opens its circuit.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit rejects calls.
	BreakerCooldown time.Duration
	// Logger receives failures and circuit changes; nil discards them.
	Logger *zap.Logger
	// Now is the clock of signatures and circuit cool-downs; nil is
	// time.Now. Latencies always use the real clock.
	Now func() time.Time
}

// withDefaults returns c with zero fields set to their defaults.
func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultWebhookTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultWebhookMaxResponseBytes
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = DefaultWebhookMaxConcurrency
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultWebhookQueueSize
	}
	if c.NotifyWorkers <= 0 {
		c.NotifyWorkers = DefaultWebhookNotifyWorkers
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = DefaultWebhookBreakerThreshold
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = DefaultWebhookBreakerCooldown
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// WebhookResponse is the app's answer to a call.
type WebhookResponse struct {
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Body is the answer's body, at most MaxResponseBytes; nil when empty.
	Body []byte
	// Latency is the time the call took, waiting for a slot included.
	Latency time.Duration
}

// WebhookStats counts what a Webhooks did since it was created.
type WebhookStats struct {
	// Calls is the number of calls, notifications included.
	Calls uint64
	// Failures is the number of calls that failed with
	// ErrUpstreamUnavailable or got a 5xx status, Rejected included.
	Failures uint64
	// Rejected is the number of calls refused by an open circuit.
	Rejected uint64
	// BreakerOpens is the number of times a circuit opened.
	BreakerOpens uint64
	// Dropped is the number of notifications not delivered because the
	// queue was full or closed, or abandoned by Close.
	Dropped uint64
}

// Webhooks is the HTTP client of webhook calls: connection pools (a lean
// HTTP/1.1 client of its own for http:// upstreams, see webhook_http1.go;
// net/http for https://), and per upstream URL a concurrency cap and a
// circuit breaker.
//
// Circuit breaker, per URL: BreakerThreshold (default 5) consecutive
// failures open the circuit. A failure is an ErrUpstreamUnavailable error
// (timeout, connection failure, no concurrency slot before the deadline,
// oversized or truncated answer) or a 5xx status; any other status is a
// success and resets the count. An open circuit fails calls at once with
// ErrUpstreamUnavailable for BreakerCooldown (default 5s); then one trial
// call goes through (half-open) while others are still rejected: its
// success closes the circuit, its failure opens it for another cool-down.
// A call cancelled by its caller's context neither counts as a failure nor
// as a success. Transitions are logged; rejected calls are only counted.
//
// Concurrency cap, per URL: at most MaxConcurrency (default 64) calls are
// in flight; a call waits for a slot until its deadline, then fails.
//
// Notifications (Notify) go through a bounded queue drained by
// NotifyWorkers goroutines; they never block the caller.
//
// The client follows no redirects (a 3xx is returned as a status), ignores
// proxy environment variables, and does not ask for compressed answers.
type Webhooks struct {
	cfg       WebhookConfig
	log       *zap.Logger
	transport *http.Transport
	client    *http.Client
	signers   sync.Pool // of *webhookSigner keyed with cfg.Secret

	mu        sync.RWMutex
	upstreams map[string]*webhookUpstream

	h1mu    sync.Mutex
	h1pools map[string]*h1Pool // lean HTTP/1.1 pools by dial address

	qmu       sync.RWMutex // guards sends on queue against its close
	queue     chan webhookJob
	closed    bool
	notifyCtx context.Context
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once

	calls       atomic.Uint64
	failures    atomic.Uint64
	rejected    atomic.Uint64
	opens       atomic.Uint64
	dropped     atomic.Uint64
	abandoned   atomic.Uint64 // notifications given up by Close
	lastDropLog atomic.Int64  // unix nanoseconds of the last drop warning
}

// webhookJob is a queued notification.
type webhookJob struct {
	url, event string
	body       []byte
}

// webhookUpstream is the state kept per upstream URL.
type webhookUpstream struct {
	sem  chan struct{}
	refs atomic.Int64 // calls holding this state; guards sweeping
	br   webhookBreaker
	h1   *h1Target // lean HTTP/1.1 target; nil = net/http
}

// NewWebhooks returns a client configured by cfg and starts its
// notification workers; Close stops them.
func NewWebhooks(cfg WebhookConfig) *Webhooks {
	cfg = cfg.withDefaults()
	transport := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.Timeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    cfg.MaxConcurrency,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	w := &Webhooks{
		cfg:       cfg,
		log:       cfg.Logger,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		upstreams: make(map[string]*webhookUpstream),
		h1pools:   make(map[string]*h1Pool),
		queue:     make(chan webhookJob, cfg.QueueSize),
	}
	if cfg.Secret != "" {
		key := []byte(cfg.Secret)
		w.signers.New = func() any { return &webhookSigner{mac: hmac.New(sha256.New, key)} }
	}
	w.notifyCtx, w.cancel = context.WithCancel(context.Background())
	w.workers.Add(cfg.NotifyWorkers)
	for range cfg.NotifyWorkers {
		go w.notifyWorker()
	}
	return w
}

// Call POSTs body (encoded JSON, not modified nor retained) to url with
// Content-Type: application/json, X-Channels-Event: event, User-Agent:
// caddy-channels and, when a secret is set, X-Channels-Signature (see
// SignWebhook). It returns the status and body of any HTTP response, 5xx
// included: interpreting them is the caller's job. The error wraps
// ErrUpstreamUnavailable when the call times out (ctx or Timeout), cannot
// connect, is rejected by an open circuit, gets no concurrency slot before
// its deadline, or the answer's body is over MaxResponseBytes or
// truncated (Status is then set).
func (w *Webhooks) Call(ctx context.Context, url, event string, body []byte) (WebhookResponse, error) {
	start := time.Now()
	w.calls.Add(1)
	up := w.upstream(url)
	defer up.refs.Add(-1)

	ok, trial, halfOpened := up.br.admit(w.cfg.Now())
	if halfOpened {
		w.log.Info("webhook circuit half-open, letting a trial call through", zap.String("url", url))
	}
	if !ok {
		w.failures.Add(1)
		w.rejected.Add(1)
		return WebhookResponse{Latency: time.Since(start)},
			fmt.Errorf("webhook %s to %s: circuit open: %w", event, url, ErrUpstreamUnavailable)
	}

	var resp WebhookResponse
	var err error
	if up.h1 != nil {
		deadline := start.Add(w.cfg.Timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		resp, err = w.roundTripH1(ctx, deadline, up, url, event, body)
	} else {
		callCtx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		resp, err = w.roundTrip(callCtx, up, url, event, body)
		cancel()
	}
	resp.Latency = time.Since(start)

	outcome := breakerSuccess
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		outcome = breakerNeutral
	case err != nil || resp.Status >= 500:
		outcome = breakerFailure
	}
	w.settle(up, url, trial, outcome)
	switch outcome {
	case breakerFailure:
		w.failures.Add(1)
		fields := []zap.Field{zap.String("url", url), zap.String("event", event), zap.Duration("latency", resp.Latency)}
		if resp.Status != 0 {
			fields = append(fields, zap.Int("status", resp.Status))
		}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		w.log.Warn("webhook call failed", fields...)
	case breakerNeutral:
		if c := w.log.Check(zap.DebugLevel, "webhook call cancelled by its caller"); c != nil {
			c.Write(zap.String("url", url), zap.String("event", event), zap.Duration("latency", resp.Latency), zap.Error(err))
		}
	}
	return resp, err
}

// roundTrip sends one request within ctx and reads the capped answer.
func (w *Webhooks) roundTrip(ctx context.Context, up *webhookUpstream, url, event string, body []byte) (WebhookResponse, error) {
	if err := up.acquire(ctx); err != nil {
		return WebhookResponse{}, fmt.Errorf("webhook %s to %s: no free slot of %d: %w: %w",
			event, url, cap(up.sem), ErrUpstreamUnavailable, err)
	}
	defer up.release()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return WebhookResponse{}, fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, err)
	}
	req.Header["Content-Type"] = webhookContentType
	req.Header["User-Agent"] = webhookUserAgent
	req.Header["X-Channels-Event"] = webhookEventHeader(event)
	if w.cfg.Secret != "" {
		req.Header["X-Channels-Signature"] = []string{w.sign(body)}
	}

	resp, err := w.client.Do(req)
	if err != nil {
		return WebhookResponse{}, fmt.Errorf("webhook %s: %w: %w", event, ErrUpstreamUnavailable, err)
	}
	defer resp.Body.Close()
	out := WebhookResponse{Status: resp.StatusCode}
	out.Body, err = readCappedBody(resp.Body, resp.ContentLength, w.cfg.MaxResponseBytes)
	if err != nil {
		return out, fmt.Errorf("webhook %s to %s: status %d: %w: %w", event, url, resp.StatusCode, ErrUpstreamUnavailable, err)
	}
	return out, nil
}

// webhookSigner is a reusable HMAC and its output buffer.
type webhookSigner struct {
	mac hash.Hash
	buf [webhookSignatureLen]byte
}

// sign returns the signature header value of body, now.
func (w *Webhooks) sign(body []byte) string {
	s := w.signers.Get().(*webhookSigner)
	sig := string(appendWebhookSignature(s.buf[:0], s.mac, w.cfg.Now().Unix(), body))
	w.signers.Put(s)
	return sig
}

// Header values of the documented events, shared to save an allocation.
var webhookEventHeaders = map[string][]string{
	"connect":   {"connect"},
	"join":      {"join"},
	"handle_in": {"handle_in"},
	"leave":     {"leave"},
}

// webhookEventHeader returns the X-Channels-Event value of event.
func webhookEventHeader(event string) []string {
	if v, ok := webhookEventHeaders[event]; ok {
		return v
	}
	return []string{event}
}

// readCappedBody reads r to its end into a buffer sized from the declared
// length, failing once more than limit bytes arrive. Reading to the end
// lets the transport reuse the connection.
func readCappedBody(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return nil, fmt.Errorf("answer of %d bytes is over the %d byte limit", declared, limit)
	}
	if declared == 0 {
		return nil, nil
	}
	size := int64(512)
	if declared > 0 {
		size = declared + 1 // room to see EOF without growing
	}
	size = min(size, limit+1)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("answer is over the %d byte limit", limit)
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, nil
			}
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading answer: %w", err)
		}
	}
}

// upstream returns the state of url with a reference held; the caller
// drops it with refs.Add(-1).
func (w *Webhooks) upstream(url string) *webhookUpstream {
	w.mu.RLock()
	up := w.upstreams[url]
	if up != nil {
		up.refs.Add(1) // under the read lock, so a sweep cannot miss it
	}
	w.mu.RUnlock()
	if up != nil {
		return up
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if up = w.upstreams[url]; up == nil {
		if len(w.upstreams) >= webhookMaxIdleUpstreams {
			for u, st := range w.upstreams {
				if st.refs.Load() == 0 && st.br.idle() {
					delete(w.upstreams, u)
				}
			}
		}
		up = &webhookUpstream{sem: make(chan struct{}, w.cfg.MaxConcurrency), h1: w.h1TargetOf(url)}
		w.upstreams[url] = up
	}
	up.refs.Add(1)
	return up
}

// acquire takes a concurrency slot, waiting until ctx is done.
func (up *webhookUpstream) acquire(ctx context.Context) error {
	select {
	case up.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case up.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireUntil is acquire with a deadline besides ctx. Waiting takes a
// pooled timer rather than a context per call: with many callers queued
// for the slots of one upstream, waiting is common.
func (up *webhookUpstream) acquireUntil(ctx context.Context, deadline time.Time) error {
	select {
	case up.sem <- struct{}{}:
		return nil
	default:
	}
	d := time.Until(deadline)
	if d <= 0 {
		return context.DeadlineExceeded
	}
	t, _ := slotTimers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(d)
	} else {
		t.Reset(d)
	}
	defer func() {
		t.Stop() // since Go 1.23, a stopped timer delivers no stale tick
		slotTimers.Put(t)
	}()
	select {
	case up.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return context.DeadlineExceeded
	}
}

// slotTimers pools the timers of acquireUntil.
var slotTimers sync.Pool

// release returns a concurrency slot.
func (up *webhookUpstream) release() { <-up.sem }

// settle records a call's outcome in the circuit of up and logs a change.
func (w *Webhooks) settle(up *webhookUpstream, url string, trial bool, outcome breakerOutcome) {
	switch up.br.record(outcome, trial, w.cfg.Now(), w.cfg.BreakerThreshold, w.cfg.BreakerCooldown) {
	case breakerOpened:
		w.opens.Add(1)
		w.log.Warn("webhook circuit opened, rejecting calls",
			zap.String("url", url), zap.Int("consecutive_failures", w.cfg.BreakerThreshold), zap.Duration("cooldown", w.cfg.BreakerCooldown))
	case breakerReopened:
		w.opens.Add(1)
		w.log.Warn("webhook circuit re-opened after a failed trial call",
			zap.String("url", url), zap.Duration("cooldown", w.cfg.BreakerCooldown))
	case breakerClosed:
		w.log.Info("webhook circuit closed after a successful trial call", zap.String("url", url))
	}
}

// Notify queues a fire-and-forget call of url (leave notifications). It
// never blocks and takes ownership of body. It returns false, counts and
// logs (at most once per second) when the queue is full or closed.
// Non-2xx answers and errors are logged by the worker that delivers it.
func (w *Webhooks) Notify(url, event string, body []byte) bool {
	return w.enqueue(nil, url, event, body)
}

// NotifyWait is Notify, except that a full queue makes it wait for room
// until ctx ends (a nil ctx waits for nothing). A drain uses it so that
// the leave notifications of thousands of sockets closed at once are
// delivered, not dropped. Close waits for a NotifyWait in progress.
func (w *Webhooks) NotifyWait(ctx context.Context, url, event string, body []byte) bool {
	return w.enqueue(ctx.Done(), url, event, body)
}

// enqueue queues a notification, waiting for room until wait yields when
// wait is not nil.
func (w *Webhooks) enqueue(wait <-chan struct{}, url, event string, body []byte) bool {
	queued, closed := false, false
	job := webhookJob{url: url, event: event, body: body}
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
func (w *Webhooks) notifyWorker() {
	defer w.workers.Done()
	for job := range w.queue {
		if w.notifyCtx.Err() != nil {
			w.abandon()
			continue
		}
		resp, err := w.Call(w.notifyCtx, job.url, job.event, job.body)
		if err != nil && w.notifyCtx.Err() != nil {
			w.abandon() // cut short by Close
			continue
		}
		// Call logged errors and 5xx; other non-2xx are logged here.
		if err == nil && (resp.Status < 200 || resp.Status > 299) && resp.Status < 500 {
			w.log.Warn("webhook notification not accepted",
				zap.String("url", job.url), zap.String("event", job.event),
				zap.Int("status", resp.Status), zap.Duration("latency", resp.Latency))
		}
	}
}

// Close stops accepting notifications, lets the workers deliver what is
// queued for at most twice the Timeout (then abandons the rest, counted as
// dropped), and closes idle connections. Calls made after Close still
// work. Close is safe to call more than once.
func (w *Webhooks) Close() { w.CloseWithin(0) }

// CloseWithin is Close letting the workers deliver what is queued for up
// to wait, or twice the Timeout if that is longer: after a drain, the
// leave notifications of every drained socket may be queued.
func (w *Webhooks) CloseWithin(wait time.Duration) {
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
		w.transport.CloseIdleConnections()
		w.closeH1Idle()
	})
}

// abandon counts a notification given up by Close.
func (w *Webhooks) abandon() {
	w.abandoned.Add(1)
	w.dropped.Add(1)
}

// Stats returns the counters of w.
func (w *Webhooks) Stats() WebhookStats {
	return WebhookStats{
		Calls:        w.calls.Load(),
		Failures:     w.failures.Load(),
		Rejected:     w.rejected.Load(),
		BreakerOpens: w.opens.Load(),
		Dropped:      w.dropped.Load(),
	}
}

// breakerState is the state of a circuit.
type breakerState uint8

const (
	circuitClosed breakerState = iota
	circuitOpen
	circuitHalfOpen
)

// breakerOutcome is how a call ended, for its circuit.
type breakerOutcome uint8

const (
	breakerSuccess breakerOutcome = iota
	breakerFailure
	breakerNeutral // cancelled by the caller: says nothing of the upstream
)

// breakerTransition is a state change worth logging.
type breakerTransition uint8

const (
	breakerUnchanged breakerTransition = iota
	breakerOpened
	breakerReopened
	breakerClosed
)

// webhookBreaker is the circuit breaker of one upstream URL (see
// Webhooks).
type webhookBreaker struct {
	mu       sync.Mutex
	state    breakerState
	failures int       // consecutive failures while closed
	until    time.Time // end of the cool-down while open
	trial    bool      // the half-open trial call is in flight
}

// admit reports whether a call may go now, whether it is the half-open
// trial call, and whether the circuit just became half-open.
func (b *webhookBreaker) admit(now time.Time) (ok, trial, halfOpened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case circuitOpen:
		if now.Before(b.until) {
			return false, false, false
		}
		b.state, b.trial = circuitHalfOpen, true
		return true, true, true
	case circuitHalfOpen:
		if b.trial {
			return false, false, false
		}
		b.trial = true // the previous trial was cancelled by its caller
		return true, true, false
	default:
		return true, false, false
	}
}

// record applies a call's outcome; trial is what admit said of the call.
// Outcomes of calls admitted before the circuit opened are ignored.
func (b *webhookBreaker) record(o breakerOutcome, trial bool, now time.Time, threshold int, cooldown time.Duration) breakerTransition {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial {
		b.trial = false
		switch o {
		case breakerSuccess:
			b.state, b.failures = circuitClosed, 0
			return breakerClosed
		case breakerFailure:
			b.state, b.until = circuitOpen, now.Add(cooldown)
			return breakerReopened
		}
		return breakerUnchanged
	}
	if b.state != circuitClosed {
		return breakerUnchanged
	}
	switch o {
	case breakerSuccess:
		b.failures = 0
	case breakerFailure:
		b.failures++
		if b.failures >= threshold {
			b.state, b.until, b.failures = circuitOpen, now.Add(cooldown), 0
			return breakerOpened
		}
	}
	return breakerUnchanged
}

// idle reports whether the circuit holds no information worth keeping.
func (b *webhookBreaker) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == circuitClosed && b.failures == 0
}
