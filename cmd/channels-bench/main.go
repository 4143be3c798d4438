// Command channels-bench is the load tool of caddy-channels: it speaks the
// Phoenix V2 WebSocket protocol to a running server and measures fan-out
// deliveries, idle memory, echo round trips, connection churn and connect
// storms. See README.md in this directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one scenario and returns the exit code: 0 on success, 1 when
// the run failed (a partial result may still be printed), 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "channels-bench: %v\n", err)
		return 2
	}
	if len(cfg.cpus) > 0 {
		if err := pinCPUs(cfg.cpus); err != nil {
			fmt.Fprintf(stderr, "channels-bench: %v\n", err)
			return 1
		}
	}
	limit, err := raiseNoFile()
	if err != nil {
		fmt.Fprintf(stderr, "channels-bench: %v\n", err)
	}
	need := uint64(cfg.sockets) + 64
	if cfg.scenario == "churn" {
		need = uint64(cfg.concurrency) + 64
	}
	if limit > 0 && need > limit {
		fmt.Fprintf(stderr, "channels-bench: warning: %d sockets need more open files than the limit %d (raise the hard limit with ulimit -Hn)\n", cfg.sockets, limit)
	}

	d, err := newDialer(cfg.url, cfg.protocol, cfg.sockets, cfg.localIPs, cfg.timeout)
	if err == nil {
		d.useTLS(cfg.tlsClient)
		d.countWire(cfg.deflate)
	}
	setPayloadKind(cfg.payload, cfg.size)
	if err == nil && cfg.transport == "longpoll" {
		d.longpoll = true
		d.lpURL, err = longpollURL(cfg.url)
		d.lpTransport = newLPTransport(d)
	}
	if err != nil {
		fmt.Fprintf(stderr, "channels-bench: %v\n", err)
		return 2
	}
	e := &env{cfg: cfg, dialer: d, probe: newServerProbe(cfg.serverPID, cfg.serverDebug), log: stderr, warned: map[string]bool{}}
	if len(cfg.cpus) > 0 {
		pid := "<pid>"
		if cfg.serverPID > 0 {
			pid = fmt.Sprint(cfg.serverPID)
		}
		e.logf("pinned to CPU %s; pin the server to another core, e.g. taskset -pc 0 %s", cfg.cpu, pid)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := &report{}
	r.add("scenario", "scenario", cfg.scenario, "")
	if cfg.protocol != phoenixV2 {
		r.add("proto", "protocol", cfg.protocol.String(), "")
	}
	if cfg.scenario != "churn" {
		r.add("sockets", "sockets", cfg.sockets, "")
	}
	if cfg.scenario == "fanout" || cfg.scenario == "echo" {
		r.add("size", "payload size", cfg.size, "B")
	}
	if cfg.cpu != "" {
		r.add("client_cpus", "client CPUs", cfg.cpu, "")
	}
	if cfg.serverPID > 0 {
		if s := e.sample(ctx); s.OK {
			r.add("server_cpus", "server CPUs", s.CPUs, "")
			if len(cfg.cpus) > 0 && cpuListsOverlap(cfg.cpu, s.CPUs) {
				e.logf("warning: the server may run on this tool's CPUs (%s); pin it with taskset -pc 0 %d", s.CPUs, cfg.serverPID)
			}
		}
	}

	if cfg.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "channels-bench: %v\n", err)
			return 1
		}
		defer stopProfile()
	}

	var runErr error
	switch cfg.scenario {
	case "fanout":
		runErr = runFanout(ctx, e, r)
	case "idle":
		runErr = runIdle(ctx, e, r)
	case "echo":
		runErr = runEcho(ctx, e, r)
	case "churn":
		runErr = runChurn(ctx, e, r)
	case "storm":
		runErr = runStorm(ctx, e, r)
	}
	if runErr != nil {
		r.add("error", "error", runErr.Error(), "")
	}
	if cfg.json {
		err = r.writeJSON(stdout)
	} else {
		err = r.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "channels-bench: write result: %v\n", err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "channels-bench: %v\n", runErr)
		return 1
	}
	return 0
}

// startCPUProfile starts profiling this process into path.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cpuListsOverlap reports whether two CPU lists share a CPU; unparsable
// lists do not overlap.
func cpuListsOverlap(a, b string) bool {
	x, err := parseCPUList(a)
	if err != nil {
		return false
	}
	y, err := parseCPUList(strings.TrimSpace(b))
	if err != nil {
		return false
	}
	set := map[int]bool{}
	for _, c := range x {
		set[c] = true
	}
	for _, c := range y {
		if set[c] {
			return true
		}
	}
	return false
}
