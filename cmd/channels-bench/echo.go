package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// echoer is one socket of the echo scenario: closed loop (the next push
// follows the reply) or, with -rate, paced (see runPaced).
type echoer struct {
	c          *client
	hist       *Histogram
	buf        []byte
	seq        int64
	lastSent   int64 // unix nanos of the last push
	replies    int64 // measured replies
	total      int64 // every reply, warm-up and drain included
	errors     int64 // replies without the echoed timestamp
	unanswered int64 // pushes still unanswered at the end
	late       int64 // paced: pushes sent late because a reply was pending
	endErr     error
}

// echoWindow is the measured period, in unix nanoseconds.
type echoWindow struct {
	start, end int64 // pushes sent and answered in [start, end] count
	deadline   time.Time
}

// send writes one push (an RPC for Centrifugo) carrying the send time.
func (s *echoer) send(cfg *config, topicJSON, eventJSON []byte) error {
	s.seq++
	s.lastSent = time.Now().UnixNano()
	if s.c.proto == centrifugoJSON {
		s.buf = appendRPC(s.buf[:0], s.c.nextRef(), eventJSON, s.lastSent, s.seq, cfg.size)
	} else {
		s.buf = appendPush(s.buf[:0], s.c.joinRef, s.c.nextRef(), topicJSON, eventJSON, s.lastSent, s.seq, cfg.size)
	}
	return s.c.write(s.buf)
}

// run keeps inflight pushes outstanding until the window ends, then waits
// for the outstanding ones until the deadline.
func (s *echoer) run(cfg *config, topicJSON, eventJSON []byte, w echoWindow) {
	send := func() error { return s.send(cfg, topicJSON, eventJSON) }
	inflight := 0
	for k := 0; k < cfg.inflight; k++ {
		if err := send(); err != nil {
			s.endErr = err
			return
		}
		inflight++
	}
	if err := s.c.ws.SetReadDeadline(w.deadline); err != nil {
		s.endErr = err
		return
	}
	for inflight > 0 && s.endErr == nil {
		b, err := s.c.readFrame()
		if err != nil {
			s.endErr = err
			break
		}
		for len(b) > 0 && inflight > 0 {
			var msg []byte
			if msg, b = s.c.nextMessage(b); msg == nil {
				continue
			}
			now := time.Now().UnixNano()
			if !s.answer(msg, now, w, cfg.inflight == 1) {
				continue
			}
			inflight--
			if now < w.end {
				if err := send(); err != nil {
					s.endErr = err
					break
				}
				inflight++
			}
		}
	}
	s.unanswered = int64(inflight)
}

// answer records one incoming message and reports whether it answered a
// push. A reply carries the echoed timestamp; a Centrifugo RPC answered
// without data (e.g. the built-in ping method) is timed from the last push
// when only one is in flight.
func (s *echoer) answer(msg []byte, now int64, w echoWindow, single bool) bool {
	f := scanFields(msg)
	if !f.HasT {
		if s.c.proto == centrifugoJSON {
			if !isCentrifugoOKReply(msg) {
				s.errors++
				s.total++
				return true
			}
			if single {
				f.T, f.HasT = s.lastSent, true
			}
		} else {
			if isStatusOK(msg) {
				return false // a heartbeat reply or similar
			}
			s.errors++
			s.total++
			return true
		}
	}
	if f.HasT && f.T >= w.start && now <= w.end {
		s.hist.Record(now - f.T)
		s.replies++
	}
	s.total++
	return true
}

// runEcho runs the echo scenario.
func runEcho(ctx context.Context, e *env, r *report) error {
	cfg := e.cfg
	e.logf("echo: connecting %d sockets to %s", cfg.sockets, cfg.topic)
	opened := e.openAll(ctx, cfg.sockets, cfg.concurrency, e.dialJoin(func(int) string { return cfg.topic }))
	r.addOpen("sockets", "sockets", opened)
	clients := opened.connected()
	if len(clients) == 0 {
		return fmt.Errorf("no socket connected: %w", opened.firstErr)
	}
	defer closeAll(clients)

	begin := time.Now()
	measureStart := begin.Add(cfg.warmup)
	measureEnd := measureStart.Add(cfg.duration)
	w := echoWindow{start: measureStart.UnixNano(), end: measureEnd.UnixNano(), deadline: measureEnd.Add(cfg.drain)}
	topicJSON, eventJSON := jsonString(cfg.topic), jsonString(cfg.method)

	echoers := make([]*echoer, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		echoers[i] = &echoer{c: c, hist: newHistogram()}
		wg.Add(1)
		go func(s *echoer) {
			defer wg.Done()
			if cfg.rate > 0 {
				s.runPaced(cfg, topicJSON, eventJSON, w, pace{begin: begin, rate: cfg.rate, index: i, n: len(clients)})
			} else {
				s.run(cfg, topicJSON, eventJSON, w)
			}
		}(echoers[i])
	}
	if cfg.warmup > 0 {
		e.logf("echo: warming up for %s", cfg.warmup)
	}
	sleepCtx(ctx, time.Until(measureStart))
	s0 := e.sample(ctx)
	cpu0 := selfCPU()
	e.logf("echo: measuring for %s", cfg.duration)
	sleepCtx(ctx, time.Until(measureEnd))
	s1 := e.sample(ctx)
	cpu1 := selfCPU()
	if ctx.Err() != nil {
		closeAll(clients) // unblock the readers
	}
	wg.Wait()

	hist := newHistogram()
	var replies, errs, unanswered, late int64
	var failed int
	var reason string
	for _, s := range echoers {
		hist.Merge(s.hist)
		replies += s.replies
		errs += s.errors
		unanswered += s.unanswered
		late += s.late
		if s.endErr != nil {
			failed++
			if reason == "" {
				reason = closeReason(s.endErr)
			}
		}
	}
	r.add("inflight", "in flight per socket", cfg.inflight, "")
	if cfg.rate > 0 {
		r.add("rate_target", "target rate", cfg.rate, "push/s (paced)")
		r.add("late_pushes", "pushes sent late", late, "")
	}
	r.add("duration_s", "measured", cfg.duration.Seconds(), "s")
	r.add("replies", "replies", replies, "")
	r.add("replies_per_s", "replies/s", perSecond(replies, cfg.duration), "")
	r.addLatency("latency", "latency", hist)
	r.add("error_replies", "error replies", errs, "")
	r.add("unanswered", "unanswered at end", unanswered, "")
	r.add("sockets_failed_during_run", "sockets failed during run", failed, "")
	if reason != "" {
		r.add("failure_reason", "first failure", reason, "")
	}
	r.addServer("", "", s0, s1, replies, "reply")
	r.addServerState("end", "at end", s1)
	r.addClientCPU(cpu0, cpu1, replies, "reply")
	return ctx.Err()
}
