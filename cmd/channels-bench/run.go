package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// env is what every scenario needs: the flags, a dialer, the server probe
// and a place for progress and warnings.
type env struct {
	cfg    *config
	dialer *dialer
	probe  *serverProbe
	log    io.Writer
	warned map[string]bool
	mu     sync.Mutex
}

// logf prints a progress or warning line (never part of the result).
func (e *env) logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.log, format+"\n", args...)
}

// sample reads the server, warning once per distinct error.
func (e *env) sample(ctx context.Context) serverSample {
	s, err := e.probe.sample(ctx)
	if err != nil {
		e.mu.Lock()
		first := !e.warned[err.Error()]
		e.warned[err.Error()] = true
		e.mu.Unlock()
		if first {
			e.logf("warning: %v", err)
		}
	}
	return s
}

// openResult is the outcome of opening many sockets.
type openResult struct {
	clients  []*client // index i holds socket i, nil when it failed
	failures int
	firstErr error
	elapsed  time.Duration
	latency  *Histogram // dial (+ join) time of each success
}

// openAll opens n sockets with conc parallel workers; open(ctx, i) dials
// (and usually joins) socket i. It stops early when ctx ends.
func (e *env) openAll(ctx context.Context, n, conc int, open func(context.Context, int) (*client, error)) openResult {
	res := openResult{clients: make([]*client, n), latency: newHistogram()}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < min(conc, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHistogram()
			var fails int
			var firstErr error
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t0 := time.Now()
				c, err := open(ctx, i)
				if err != nil {
					fails++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				h.Record(int64(time.Since(t0)))
				res.clients[i] = c
			}
			mu.Lock()
			res.latency.Merge(h)
			res.failures += fails
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if int(next.Load()) < n {
		// Cancelled: the sockets never tried count as failures.
		res.failures += n - int(next.Load())
	}
	return res
}

// connected returns the clients that opened.
func (r openResult) connected() []*client {
	var cs []*client
	for _, c := range r.clients {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// dialJoin returns an open function that dials and joins topic(i).
func (e *env) dialJoin(topic func(int) string) func(context.Context, int) (*client, error) {
	return func(ctx context.Context, i int) (*client, error) {
		c, err := e.dialer.dial(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.join(topic(i)); err != nil {
			c.close()
			return nil, err
		}
		return c, nil
	}
}

// heartbeats sends a heartbeat on every client each interval until ctx
// ends, so the server's idle timeout does not close silent sockets. It runs
// in one goroutine; the returned function stops it and waits.
func (e *env) heartbeats(ctx context.Context, clients []*client) (stop func()) {
	every := e.cfg.heartbeat
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, c := range clients {
					if ctx.Err() != nil {
						return
					}
					_ = c.heartbeat() // a dead socket shows up in its reader
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// closeAll closes every client at once, in parallel chunks.
func closeAll(clients []*client) {
	var wg sync.WaitGroup
	const chunk = 1024
	for i := 0; i < len(clients); i += chunk {
		part := clients[i:min(i+chunk, len(clients))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range part {
				if c != nil {
					c.close()
				}
			}
		}()
	}
	wg.Wait()
}

// sleepCtx sleeps for d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// addOpen adds the outcome of a connect phase to r.
func (r *report) addOpen(prefix, label string, o openResult) {
	r.add(prefix+"_ok", label+" opened", len(o.clients)-o.failures, "")
	r.add(prefix+"_failed", label+" failed", o.failures, "")
	r.add(prefix+"_s", label+" connect time", o.elapsed.Seconds(), "s")
	if o.firstErr != nil {
		r.add(prefix+"_error", label+" first error", o.firstErr.Error(), "")
	}
}
