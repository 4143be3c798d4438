package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// subscribeOnly is fanout with -publish=false: the subscribers are joined
// and reading; it creates -ready-file so that a script can start the
// publisher (another channels-bench fanout process) once every subscriber
// process is ready, then waits until every subscriber has all -messages or
// -drain has passed. Several such processes spread sockets over processes
// and source addresses; the publisher stamps each message with the time
// (same machine clock), so every process measures its own latencies. The
// absolute server CPU readings at ready and done let a script compute the
// server CPU of the whole delivery across processes.
func subscribeOnly(ctx context.Context, e *env, r *report, subs []*subscriber, done *sync.WaitGroup, shutdown func(), wall0 time.Time) error {
	cfg := e.cfg
	ready := e.sample(ctx)
	cpu1 := selfCPU()
	readyAt := time.Now()
	if cfg.readyFile != "" {
		if err := os.WriteFile(cfg.readyFile, fmt.Appendf(nil, "%d\n", readyAt.UnixNano()), 0o644); err != nil {
			shutdown()
			return fmt.Errorf("ready file: %w", err)
		}
	}
	e.logf("fanout: %d subscribers ready, waiting up to %s for %d messages", len(subs), cfg.drain, cfg.messages)
	allDone := make(chan struct{})
	go func() { done.Wait(); close(allDone) }()
	drained := true
	select {
	case <-allDone:
	case <-time.After(cfg.drain):
		drained = false
	case <-ctx.Done():
		drained = false
	}
	end := e.sample(ctx)
	cpu2 := selfCPU()
	shutdown()

	t := mergeSubscribers(subs)
	window := time.Duration(t.last - t.first)
	r.add("via", "published via", "another process", "")
	r.add("messages", "messages", cfg.messages, "")
	r.add("deliveries", "deliveries", t.delivered, "")
	r.add("deliveries_expected", "deliveries expected", int64(len(subs))*int64(cfg.messages), "")
	r.add("delivery_window_s", "delivery window", window.Seconds(), "s")
	r.add("deliveries_per_s", "deliveries/s", perSecond(t.delivered, window), "")
	r.add("first_delivery_unix_ns", "first delivery (unix ns)", t.first, "")
	r.add("last_delivery_unix_ns", "last delivery (unix ns)", t.last, "")
	r.addLatency("latency", "latency", t.hist)
	r.add("lost", "lost", t.lost, "")
	r.add("duplicated", "duplicated", t.dups, "")
	r.add("reordered", "reordered", t.reordered, "")
	r.add("subscribers_complete", "subscribers complete", t.complete, "")
	r.add("subscribers_disconnected", "subscribers disconnected", t.disconnected, "")
	if t.disconnectReason != "" {
		r.add("disconnect_reason", "first disconnect", t.disconnectReason, "")
	}
	r.add("drained", "drained in time", drained, "")
	r.add("wall_s", "wall time", time.Since(wall0).Seconds(), "s")
	if ready.OK && end.OK {
		r.add("server_cpu_total_s_ready", "server CPU total at ready", ready.CPU, "s")
		r.add("server_cpu_total_s_done", "server CPU total when done", end.CPU, "s")
		r.add("server_done_unix_ns", "server sampled when done (unix ns)", end.At.UnixNano(), "")
	}
	r.addServerState("ready", "at ready", ready)
	r.addClientCPU(cpu1, cpu2, t.delivered, "delivery")
	if err := writeLatency(cfg.latencyOut, t.hist); err != nil {
		return err
	}
	if !drained {
		return fmt.Errorf("%d of %d subscribers complete after -drain %s", t.complete, len(subs), cfg.drain)
	}
	return nil
}
