package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Client is the HTTP client of webhook calls: per upstream URL a
// concurrency cap and a circuit breaker, in front of an exchanger that
// carries the request (exchange.go): fasthttp's pooled HTTP/1.1 client for
// http:// upstreams, net/http for https:// (TLS and HTTP/2).
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
// proxy environment variables, and does not ask for compressed answers. A
// call whose connection failed before any byte of the answer arrived (a
// keep-alive connection the app closed meanwhile) is retried once, on
// another connection; never once the answer began.
type Client struct {
	cfg     Config
	log     *zap.Logger
	plain   exchanger // http:// upstreams
	tls     exchanger // https:// upstreams
	signers sync.Pool // of *signer keyed with cfg.Secret

	mu        sync.RWMutex
	upstreams map[string]*upstream

	qmu       sync.RWMutex // guards sends on queue against its close
	queue     chan job
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
	pending     atomic.Int64  // notifications queued or in delivery
	lastDropLog atomic.Int64  // unix nanoseconds of the last drop warning
}

// upstream is the state kept per upstream URL.
type upstream struct {
	sem  chan struct{}
	refs atomic.Int64 // calls holding this state; guards sweeping
	br   breaker
	ex   exchanger // the exchanger of the URL's scheme; nil for an unusable URL
}

// New returns a client configured by cfg and starts its notification
// workers; Close stops them.
func New(cfg Config) *Client {
	cfg = cfg.withDefaults()
	w := &Client{
		cfg:       cfg,
		log:       cfg.Logger,
		plain:     newFastExchanger(cfg),
		tls:       newStdExchanger(cfg),
		upstreams: make(map[string]*upstream),
		queue:     make(chan job, cfg.QueueSize),
	}
	if cfg.Secret != "" {
		key := []byte(cfg.Secret)
		w.signers.New = func() any { return &signer{mac: hmac.New(sha256.New, key)} }
	}
	w.notifyCtx, w.cancel = context.WithCancel(context.Background())
	w.workers.Add(cfg.NotifyWorkers)
	for range cfg.NotifyWorkers {
		go w.notifyWorker()
	}
	return w
}

// exchangerOf returns the exchanger of url's scheme, or nil when url is
// neither http:// nor https://.
func (w *Client) exchangerOf(url string) exchanger {
	switch {
	case hasPrefixFold(url, "http://"):
		return w.plain
	case hasPrefixFold(url, "https://"):
		return w.tls
	}
	return nil
}

// hasPrefixFold reports whether s begins with prefix, ASCII case folded.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Call POSTs body (encoded JSON, not modified nor retained) to url with
// Content-Type: application/json, X-Channels-Event: event, User-Agent:
// caddy-channels and, when a secret is set, X-Channels-Signature (see
// Sign). It returns the status and body of any HTTP response, 5xx
// included: interpreting them is the caller's job. The error wraps
// ErrUpstreamUnavailable when the call times out (ctx or Timeout), cannot
// connect, is rejected by an open circuit, gets no concurrency slot before
// its deadline, or the answer is malformed, truncated or has a body over
// MaxResponseBytes (Status is then set for the oversized answer only).
func (w *Client) Call(ctx context.Context, url, event string, body []byte) (Response, error) {
	start := time.Now()
	w.calls.Add(1)
	up := w.upstreamOf(url)
	defer up.refs.Add(-1)

	ok, trial, halfOpened := up.br.admit(w.cfg.Now())
	if halfOpened {
		w.log.Info("webhook circuit half-open, letting a trial call through", zap.String("url", url))
	}
	if !ok {
		w.failures.Add(1)
		w.rejected.Add(1)
		return Response{Latency: time.Since(start)},
			fmt.Errorf("webhook %s to %s: circuit open: %w", event, url, ErrUpstreamUnavailable)
	}

	deadline := start.Add(w.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	resp, err := w.roundTrip(ctx, deadline, up, url, event, body)
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

// roundTrip takes a concurrency slot of up and makes the exchange before
// deadline.
func (w *Client) roundTrip(ctx context.Context, deadline time.Time, up *upstream, url, event string, body []byte) (Response, error) {
	if up.ex == nil {
		return Response{}, fmt.Errorf("webhook %s to %q: %w: the URL is not http:// or https://", event, url, ErrUpstreamUnavailable)
	}
	if err := up.acquireUntil(ctx, deadline); err != nil {
		return Response{}, fmt.Errorf("webhook %s to %s: no free slot of %d: %w: %w",
			event, url, cap(up.sem), ErrUpstreamUnavailable, err)
	}
	defer up.release()
	req := request{url: url, event: event, body: body, maxBody: w.cfg.MaxResponseBytes}
	if w.cfg.Secret != "" {
		var sg *signer
		sg, req.signature = w.sign(body)
		defer w.signers.Put(sg)
	}
	resp, err := up.ex.exchange(ctx, deadline, req)
	if err != nil {
		return resp, fmt.Errorf("webhook %s to %s: %w: %w", event, url, ErrUpstreamUnavailable, err)
	}
	return resp, nil
}

// signer is a reusable HMAC and its output buffer.
type signer struct {
	mac hash.Hash
	buf [signatureLen]byte
}

// sign returns a signer holding the signature header value of body, now,
// in its buffer; the caller puts it back in w.signers once sent.
func (w *Client) sign(body []byte) (*signer, []byte) {
	s := w.signers.Get().(*signer)
	return s, appendWebhookSignature(s.buf[:0], s.mac, w.cfg.Now().Unix(), body)
}

// upstreamOf returns the state of url with a reference held; the caller
// drops it with refs.Add(-1).
func (w *Client) upstreamOf(url string) *upstream {
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
		up = &upstream{sem: make(chan struct{}, w.cfg.MaxConcurrency), ex: w.exchangerOf(url)}
		w.upstreams[url] = up
	}
	up.refs.Add(1)
	return up
}

// acquireUntil takes a concurrency slot, waiting until ctx is done or
// deadline. Waiting takes a
// pooled timer rather than a context per call: with many callers queued
// for the slots of one upstream, waiting is common.
func (up *upstream) acquireUntil(ctx context.Context, deadline time.Time) error {
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
func (up *upstream) release() { <-up.sem }

// settle records a call's outcome in the circuit of up and logs a change.
func (w *Client) settle(up *upstream, url string, trial bool, outcome breakerOutcome) {
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
