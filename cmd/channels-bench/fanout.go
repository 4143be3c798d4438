package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is the state of one fan-out socket, owned by its read loop
// until the loop ends.
type subscriber struct {
	c         *client
	hist      *Histogram
	seq       *seqTracker
	delivered int64 // frames with a valid s (duplicates included)
	warm      int64 // warm-up frames (s < 0)
	other     int64 // frames without s: heartbeat replies and the like
	first     int64 // unix nanos of the first measured delivery
	last      int64 // unix nanos of the last measured delivery
	endErr    error // why the loop ended before the run closed it
}

// readLoop counts deliveries until the socket closes. done is called once:
// when every sequence number arrived, or when the loop ends.
func (s *subscriber) readLoop(closing *atomic.Bool, done func()) {
	signaled := false
	for {
		b, err := s.c.readFrame()
		if err != nil {
			if !closing.Load() {
				s.endErr = err
			}
			break
		}
		for len(b) > 0 {
			var msg []byte
			if msg, b = s.c.nextMessage(b); msg == nil {
				continue
			}
			s.count(msg)
		}
		if !signaled && s.seq.complete() {
			signaled = true
			done()
		}
	}
	if !signaled {
		done()
	}
}

// count records one message: a delivery when it carries a sequence number.
func (s *subscriber) count(msg []byte) {
	f := scanFields(msg)
	if !f.HasS {
		s.other++
		return
	}
	if f.S < 0 {
		s.warm++
		return
	}
	now := time.Now().UnixNano()
	if f.HasT {
		s.hist.Record(now - f.T)
	}
	s.seq.add(f.S)
	if f.S < s.seq.n {
		s.delivered++
		if s.first == 0 {
			s.first = now
		}
		s.last = now
	}
}

// fanoutTotals merges the subscribers after their loops ended.
type fanoutTotals struct {
	hist                   *Histogram
	delivered, warm, other int64
	lost, dups, reordered  int64
	invalid                int64
	first, last            int64
	disconnected           int
	disconnectReason       string
	complete               int
}

// mergeSubscribers sums the subscribers' counters and histograms.
func mergeSubscribers(subs []*subscriber) fanoutTotals {
	t := fanoutTotals{hist: newHistogram(), first: math.MaxInt64}
	for _, s := range subs {
		t.hist.Merge(s.hist)
		t.delivered += s.delivered
		t.warm += s.warm
		t.other += s.other
		t.lost += s.seq.lost()
		t.dups += s.seq.dups
		t.reordered += s.seq.reordered
		t.invalid += s.seq.invalid
		if s.seq.complete() {
			t.complete++
		}
		if s.first != 0 {
			t.first = min(t.first, s.first)
			t.last = max(t.last, s.last)
		}
		if s.endErr != nil {
			t.disconnected++
			if t.disconnectReason == "" {
				t.disconnectReason = closeReason(s.endErr)
			}
		}
	}
	if t.first == math.MaxInt64 {
		t.first = 0
	}
	return t
}

// publisher sends n messages starting at sequence number seq, all stamped
// with the current time.
type publisher interface {
	publish(ctx context.Context, seq int64, n int) error
	close()
}

// runFanout runs the fanout scenario.
func runFanout(ctx context.Context, e *env, r *report) error {
	cfg := e.cfg
	startAll := e.sample(ctx)
	wall0 := time.Now()

	e.logf("fanout: connecting %d subscribers to %s", cfg.sockets, cfg.topic)
	opened := e.openAll(ctx, cfg.sockets, cfg.concurrency, e.dialJoin(func(int) string { return cfg.topic }))
	r.addOpen("subscribers", "subscribers", opened)
	clients := opened.connected()
	if len(clients) == 0 {
		return fmt.Errorf("no subscriber connected: %w", opened.firstErr)
	}

	var closing atomic.Bool
	var done, exited sync.WaitGroup
	subs := make([]*subscriber, len(clients))
	for i, c := range clients {
		subs[i] = &subscriber{c: c, hist: newHistogram(), seq: newSeqTracker(cfg.messages)}
		done.Add(1)
		exited.Add(1)
		go func(s *subscriber) {
			defer exited.Done()
			s.readLoop(&closing, done.Done)
		}(subs[i])
	}
	stopHB := e.heartbeats(ctx, clients)
	shutdown := func() {
		stopHB()
		closing.Store(true)
		closeAll(clients)
		exited.Wait()
	}

	if !cfg.publish {
		return subscribeOnly(ctx, e, r, subs, &done, shutdown, wall0)
	}
	pub, err := newPublisher(ctx, e)
	if err != nil {
		shutdown()
		return err
	}
	defer pub.close()

	if cfg.warmup > 0 {
		e.logf("fanout: warming up for %s", cfg.warmup)
		if err := publishWarmup(ctx, cfg, pub); err != nil {
			shutdown()
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	e.logf("fanout: publishing %d messages via %s", cfg.messages, cfg.via)
	startPub := e.sample(ctx)
	wire1 := wireBytesIn.Load()
	cpu1 := selfCPU()
	pubStart := time.Now()
	perr := publishPaced(ctx, cfg, pub, 0, cfg.messages, pubStart)
	pubDur := time.Since(pubStart)

	// Drain: wait until every subscriber has every message, or the timeout.
	allDone := make(chan struct{})
	go func() { done.Wait(); close(allDone) }()
	drained := true
	if perr == nil {
		select {
		case <-allDone:
		case <-time.After(cfg.drain):
			drained = false
		case <-ctx.Done():
			drained = false
		}
	}
	endPub := e.sample(ctx)
	wire2 := wireBytesIn.Load()
	cpu2 := selfCPU()
	endAll := endPub
	shutdown()
	wall := time.Since(wall0)

	t := mergeSubscribers(subs)
	expected := int64(len(subs)) * int64(cfg.messages)
	window := time.Duration(t.last - t.first)

	r.add("via", "published via", cfg.via, "")
	r.add("messages", "messages", cfg.messages, "")
	r.add("rate_target", "target rate", cfg.rate, "msg/s (0: max)")
	r.add("publish_s", "publish time", pubDur.Seconds(), "s")
	r.add("publish_rate", "publish rate", perSecond(int64(cfg.messages), pubDur), "msg/s")
	r.add("deliveries", "deliveries", t.delivered, "")
	r.add("deliveries_expected", "deliveries expected", expected, "")
	r.add("delivery_window_s", "delivery window", window.Seconds(), "s")
	r.add("deliveries_per_s", "deliveries/s", perSecond(t.delivered, window), "")
	r.addLatency("latency", "latency", t.hist)
	r.add("lost", "lost", t.lost, "")
	r.add("duplicated", "duplicated", t.dups, "")
	r.add("reordered", "reordered", t.reordered, "")
	if t.invalid > 0 {
		r.add("invalid_seq", "invalid seq", t.invalid, "")
	}
	r.add("subscribers_complete", "subscribers complete", t.complete, "")
	r.add("subscribers_disconnected", "subscribers disconnected", t.disconnected, "")
	if t.disconnectReason != "" {
		r.add("disconnect_reason", "first disconnect", t.disconnectReason, "")
	}
	r.add("drained", "drained in time", drained, "")
	r.add("deflate", "permessage-deflate offered", cfg.deflate, "")
	r.addWire(wire1, wire2, t.delivered)
	r.add("wall_s", "wall time", wall.Seconds(), "s")
	r.addServer("", " (whole run)", startAll, endAll, t.delivered, "delivery")
	r.addServer("_publish", " (publish+drain)", startPub, endPub, t.delivered, "delivery")
	r.addServerState("start", "at start", startAll)
	r.addServerState("end", "at end", endAll)
	r.addClientCPU(cpu1, cpu2, t.delivered, "delivery")
	if perr != nil {
		return fmt.Errorf("publish: %w", perr)
	}
	return writeLatency(cfg.latencyOut, t.hist)
}

// publishWarmup publishes messages with s=-1 at the configured rate for the
// warm-up duration.
func publishWarmup(ctx context.Context, cfg *config, pub publisher) error {
	start := time.Now()
	step := max(cfg.batch, 1)
	for i := 0; time.Since(start) < cfg.warmup && ctx.Err() == nil; i += step {
		if err := waitUntil(ctx, start, i, cfg.rate); err != nil {
			return err
		}
		if err := pub.publish(ctx, -1, step); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// publishPaced publishes messages seq..seq+n-1 in batches of -batch, batch
// k at start + k*batch/rate (as fast as possible when rate is 0).
func publishPaced(ctx context.Context, cfg *config, pub publisher, seq int64, n int, start time.Time) error {
	for i := 0; i < n; i += cfg.batch {
		if err := waitUntil(ctx, start, i, cfg.rate); err != nil {
			return err
		}
		if err := pub.publish(ctx, seq+int64(i), min(cfg.batch, n-i)); err != nil {
			return err
		}
	}
	return nil
}

// waitUntil sleeps until message i is due at rate (no wait for rate 0).
func waitUntil(ctx context.Context, start time.Time, i int, rate float64) error {
	if rate <= 0 {
		return ctx.Err()
	}
	due := start.Add(time.Duration(float64(i) / rate * 1e9))
	if d := time.Until(due); d > 0 {
		if !sleepCtx(ctx, d) {
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// newPublisher opens the publisher -via selects.
func newPublisher(ctx context.Context, e *env) (publisher, error) {
	if e.cfg.via == "push" {
		return newPushPublisher(ctx, e)
	}
	return newAPIPublisher(e.cfg), nil
}
