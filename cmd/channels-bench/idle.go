package main

import (
	"context"
	"fmt"
	"strconv"
)

// runIdle runs the idle scenario: open -sockets joined sockets, hold them
// for -hold and report the server's memory (and goroutines) per socket.
func runIdle(ctx context.Context, e *env, r *report) error {
	cfg := e.cfg
	topic := func(i int) string {
		switch cfg.topics {
		case 0:
			return cfg.topic + ":" + strconv.Itoa(i)
		case 1:
			return cfg.topic
		default:
			return cfg.topic + ":" + strconv.Itoa(i%cfg.topics)
		}
	}
	before := e.sample(ctx)
	e.logf("idle: opening %d joined sockets", cfg.sockets)
	o := e.openAll(ctx, cfg.sockets, cfg.concurrency, e.dialJoin(topic))
	clients := o.connected()
	defer closeAll(clients)
	r.addOpen("sockets", "sockets", o)
	if len(clients) == 0 {
		return fmt.Errorf("no socket connected: %w", o.firstErr)
	}
	opened := e.sample(ctx)
	stopHB := e.heartbeats(ctx, clients)
	if cfg.protocol == centrifugoJSON {
		// Centrifugo pings each socket (every 25 s by default) and closes
		// those that do not answer: read and answer until the sockets close.
		for _, c := range clients {
			go pongLoop(c)
		}
	}
	e.logf("idle: holding for %s", cfg.hold)
	sleepCtx(ctx, cfg.hold)
	after := e.sample(ctx)
	stopHB()

	n := int64(len(clients))
	distinct := cfg.topics
	if distinct == 0 || distinct > len(clients) {
		distinct = len(clients)
	}
	r.add("topics", "topics", distinct, "")
	r.add("hold_s", "held", cfg.hold.Seconds(), "s")
	r.addServerState("before", "before", before)
	r.addServerState("opened", "all open", opened)
	r.addServerState("after", "after hold", after)
	if before.OK && after.OK {
		delta := after.RSSKB - before.RSSKB
		r.add("server_rss_delta_kb", "server RSS delta", delta, "kB")
		r.add("server_rss_per_socket_bytes", "server RSS per socket", float64(delta)*1024/float64(n), "B")
		r.add("server_threads_delta", "server threads delta", after.Threads-before.Threads, "")
	}
	if before.Goroutines >= 0 && after.Goroutines >= 0 {
		r.add("server_goroutines_per_socket", "server goroutines per socket",
			float64(after.Goroutines-before.Goroutines)/float64(n), "")
	}
	r.addServer("", "", before, after, n, "socket")
	return ctx.Err()
}

// pongLoop reads a Centrifugo socket until it closes, answering pings
// (nextMessage does) and discarding everything else.
func pongLoop(c *client) {
	for {
		b, err := c.readFrame()
		if err != nil {
			return
		}
		for len(b) > 0 {
			_, b = c.nextMessage(b)
		}
	}
}
