package main

import (
	"context"
	"sync"
	"time"
)

// churnWorker is one connect → join → leave → close loop.
type churnWorker struct {
	hist     *Histogram
	cycles   int64 // measured complete cycles
	failures int64 // measured failed cycles
	firstErr error
}

// run loops until end (unix time) or ctx ends; cycles that start before
// measureStart are not counted.
func (w *churnWorker) run(ctx context.Context, e *env, measureStart, end time.Time) {
	topic := e.cfg.topic
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		err := churnCycle(ctx, e, topic)
		if t0.Before(measureStart) {
			continue
		}
		if err != nil {
			w.failures++
			if w.firstErr == nil {
				w.firstErr = err
			}
			sleepCtx(ctx, 10*time.Millisecond) // do not spin on a dead server
			continue
		}
		w.hist.Record(int64(time.Since(t0)))
		w.cycles++
	}
}

// churnCycle connects, joins, leaves and closes one socket.
func churnCycle(ctx context.Context, e *env, topic string) error {
	c, err := e.dialer.dial(ctx)
	if err != nil {
		return err
	}
	if err := c.join(topic); err != nil {
		c.close()
		return err
	}
	if err := c.leave(topic); err != nil {
		c.close()
		return err
	}
	c.closeGracefully()
	return nil
}

// runChurn runs the churn scenario.
func runChurn(ctx context.Context, e *env, r *report) error {
	cfg := e.cfg
	begin := time.Now()
	measureStart := begin.Add(cfg.warmup)
	end := measureStart.Add(cfg.duration)
	workers := make([]*churnWorker, cfg.concurrency)
	var wg sync.WaitGroup
	s0 := e.sample(ctx)
	for i := range workers {
		workers[i] = &churnWorker{hist: newHistogram()}
		wg.Add(1)
		go func(w *churnWorker) {
			defer wg.Done()
			w.run(ctx, e, measureStart, end)
		}(workers[i])
	}
	e.logf("churn: %d workers for %s", cfg.concurrency, cfg.warmup+cfg.duration)
	sleepCtx(ctx, time.Until(measureStart))
	s1 := e.sample(ctx)
	cpu1 := selfCPU()
	sleepCtx(ctx, time.Until(end))
	s2 := e.sample(ctx)
	cpu2 := selfCPU()
	wg.Wait()
	elapsed := min(time.Since(measureStart), cfg.duration)
	// Let the server finish closing the last sockets before the final sample.
	sleepCtx(ctx, time.Second)
	s3 := e.sample(ctx)

	hist := newHistogram()
	var cycles, failures int64
	var firstErr error
	for _, w := range workers {
		hist.Merge(w.hist)
		cycles += w.cycles
		failures += w.failures
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	r.add("workers", "workers", cfg.concurrency, "")
	r.add("duration_s", "measured", elapsed.Seconds(), "s")
	r.add("cycles", "cycles", cycles, "")
	r.add("cycles_per_s", "cycles/s", perSecond(cycles, elapsed), "")
	r.add("failures", "failed cycles", failures, "")
	if firstErr != nil {
		r.add("first_error", "first error", firstErr.Error(), "")
	}
	r.addLatency("cycle", "cycle time", hist)
	r.addServer("", "", s1, s2, cycles, "cycle")
	r.addServerState("before", "before", s0)
	r.addServerState("start", "at start", s1)
	r.addServerState("end", "at end", s2)
	r.addServerState("after", "1 s after", s3)
	r.addClientCPU(cpu1, cpu2, cycles, "cycle")
	return ctx.Err()
}
