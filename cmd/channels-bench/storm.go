package main

import (
	"context"
	"fmt"
)

// runStorm runs the storm scenario: open -sockets sockets with -concurrency
// parallel dials as fast as possible, then close them all.
func runStorm(ctx context.Context, e *env, r *report) error {
	cfg := e.cfg
	open := func(ctx context.Context, _ int) (*client, error) { return e.dialer.dial(ctx) }
	what := "connects"
	if cfg.join {
		open = e.dialJoin(func(int) string { return cfg.topic })
		what = "connects+joins"
	}
	s0 := e.sample(ctx)
	cpu0 := selfCPU()
	e.logf("storm: %d %s, %d at a time", cfg.sockets, what, cfg.concurrency)
	o := e.openAll(ctx, cfg.sockets, cfg.concurrency, open)
	s1 := e.sample(ctx)
	cpu1 := selfCPU()
	clients := o.connected()
	closeAll(clients)

	ok := int64(len(clients))
	r.add("mode", "mode", what, "")
	r.add("concurrency", "concurrency", cfg.concurrency, "")
	r.add("connected", "connected", ok, "")
	r.add("failures", "failures", o.failures, "")
	if o.firstErr != nil {
		r.add("first_error", "first error", o.firstErr.Error(), "")
	}
	r.add("elapsed_s", "elapsed", o.elapsed.Seconds(), "s")
	r.add("connects_per_s", "connects/s", perSecond(ok, o.elapsed), "")
	r.addLatency("connect", "connect time", o.latency)
	r.addServer("", "", s0, s1, ok, "connect")
	r.addServerState("start", "at start", s0)
	r.addServerState("end", "with all open", s1)
	r.addClientCPU(cpu0, cpu1, ok, "connect")
	if ok == 0 {
		return fmt.Errorf("no socket connected: %w", o.firstErr)
	}
	return ctx.Err()
}
