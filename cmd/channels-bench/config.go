package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config holds the flags of one run.
type config struct {
	scenario    string
	proto       string
	transport   string // phoenix: websocket or longpoll
	protocol    protocol
	method      string
	url         string
	api         string
	key         string
	topic       string
	sockets     int
	messages    int
	rate        float64
	size        int
	duration    time.Duration
	warmup      time.Duration
	hold        time.Duration
	drain       time.Duration
	timeout     time.Duration
	heartbeat   time.Duration
	serverPID   int
	serverDebug string
	cpu         string
	cpus        []int
	json        bool
	via         string
	batch       int
	topics      int
	inflight    int
	concurrency int
	localIPs    int
	join        bool
	cpuProfile  string
	caFile      string      // -ca: CA certificates trusted for wss:// and https://
	insecure    bool        // -insecure: no certificate verification
	tlsClient   *tls.Config // from caFile and insecure (nil: Go's defaults)
	publish     bool        // fanout: false subscribes only (see fanout_subscribe.go)
	readyFile   string      // fanout -publish=false: created once every subscriber joined
	latencyOut  string      // fanout: write the latency histogram to this file
	deflate     bool        // -deflate: offer permessage-deflate
	payload     string      // -payload: pad, chat or diff (payload_json.go)
}

// defaultURL and defaultAPI are the -url and -api defaults per protocol:
// cmd/channels-bench/bench.Caddyfile for Phoenix, a local Centrifugo on
// port 8094 for Centrifugo.
var (
	defaultURL = map[protocol]string{
		phoenixV2:      "ws://127.0.0.1:8091/socket",
		centrifugoJSON: "ws://127.0.0.1:8094/connection/websocket",
	}
	defaultAPI = map[protocol]string{
		phoenixV2:      "http://127.0.0.1:8091/socket/api/broadcast",
		centrifugoJSON: "http://127.0.0.1:8094/api",
	}
)

// scenarios lists the scenario names with a one-line description.
var scenarios = []struct{ name, desc string }{
	{"fanout", "N subscribers on one topic receive M messages published via the API or a pushing socket"},
	{"idle", "N joined sockets held open: server memory and goroutines per socket"},
	{"echo", "N sockets push echo and wait for the reply (closed loop, or paced with -rate): replies/s and latency"},
	{"churn", "workers loop connect, join, leave, close: cycles/s, server RSS and threads"},
	{"storm", "open N sockets as fast as possible: connects/s and failures"},
}

// usage prints the command line help.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: channels-bench <scenario> [flags]")
	fmt.Fprintln(w, "\nscenarios:")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %-7s %s\n", s.name, s.desc)
	}
	if fs != nil {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// newFlagSet defines every flag on a fresh FlagSet bound to cfg.
func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("channels-bench", flag.ContinueOnError)
	fs.StringVar(&cfg.proto, "proto", "phoenix", "protocol: phoenix (V2) or centrifugo (JSON over WebSocket, server HTTP API)")
	fs.StringVar(&cfg.transport, "transport", "websocket", "phoenix transport of every socket the tool opens: websocket or longpoll")
	fs.StringVar(&cfg.url, "url", "", "socket endpoint; phoenix: \"/websocket?vsn=2.0.0\" is appended (default "+defaultURL[phoenixV2]+"; centrifugo: "+defaultURL[centrifugoJSON]+")")
	fs.StringVar(&cfg.api, "api", "", "publish API URL for fanout -via api (default "+defaultAPI[phoenixV2]+"; centrifugo: the API prefix, "+defaultAPI[centrifugoJSON]+")")
	fs.StringVar(&cfg.key, "key", "bench", "publish API key (phoenix: Authorization: Bearer; centrifugo: X-API-Key)")
	fs.StringVar(&cfg.method, "method", "echo", "echo: event pushed (phoenix) or RPC method called (centrifugo)")
	fs.StringVar(&cfg.topic, "topic", "bench:load", "topic (idle: prefix of the per-socket topics)")
	fs.IntVar(&cfg.sockets, "sockets", 100, "sockets (fanout: subscribers)")
	fs.IntVar(&cfg.messages, "messages", 1000, "fanout: messages to publish")
	fs.Float64Var(&cfg.rate, "rate", 0, "fanout: messages per second (0: as fast as possible); echo: pushes per second across all sockets, paced open loop with at most one in flight per socket (0: closed loop)")
	fs.IntVar(&cfg.size, "size", 64, "payload size in bytes ({\"t\":…,\"s\":…,\"p\":\"…\"} padded)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "echo, churn: measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "unmeasured run before measuring (fanout: messages with s=-1)")
	fs.DurationVar(&cfg.hold, "hold", 10*time.Second, "idle: how long to hold the sockets before the last sample")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "how long to wait for outstanding messages and replies")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "handshake, join and write timeout")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 30*time.Second, "heartbeat interval of otherwise silent sockets (0: none)")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "server process id: CPU time, RSS and threads from /proc")
	fs.StringVar(&cfg.serverDebug, "server-debug", "", "server pprof goroutine URL, e.g. http://127.0.0.1:2019/debug/pprof/goroutine?debug=1")
	fs.StringVar(&cfg.cpu, "cpu", "", "pin this process to a CPU list (e.g. 1 or 1-3,5)")
	fs.BoolVar(&cfg.json, "json", false, "print the result as one JSON object")
	fs.StringVar(&cfg.via, "via", "api", "fanout: publish through the HTTP API (api) or a socket pushing msg (push)")
	fs.IntVar(&cfg.batch, "batch", 1, "fanout -via api: messages per request")
	fs.IntVar(&cfg.topics, "topics", 0, "idle: distinct topics (0: one per socket, 1: all share -topic)")
	fs.IntVar(&cfg.inflight, "inflight", 1, "echo: pushes in flight per socket")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "parallel dials (storm, connect phases); churn: workers")
	fs.IntVar(&cfg.localIPs, "local-ips", 0, "loopback source addresses 127.0.0.1..n (0: one per 25,000 sockets)")
	fs.BoolVar(&cfg.join, "join", false, "storm: join -topic after connecting")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write this tool's CPU profile to the file (go tool pprof)")
	fs.StringVar(&cfg.caFile, "ca", "", "PEM file of the CA certificates trusted for wss:// and https:// (default: the system roots)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "skip TLS certificate verification for wss:// and https://")
	fs.BoolVar(&cfg.publish, "publish", true, "fanout: publish; false only subscribes and waits up to -drain for -messages sent by another process")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "fanout -publish=false: create this file once every subscriber has joined")
	fs.BoolVar(&cfg.deflate, "deflate", false, "offer permessage-deflate on every WebSocket (compressed frames are inflated as they are read)")
	fs.StringVar(&cfg.payload, "payload", payloadPad, "payload body: pad (\"p\" padded with x), chat or diff (realistic JSON of about -size bytes)")
	fs.StringVar(&cfg.latencyOut, "latency-out", "", "fanout: write the latency histogram as JSON to this file (merged by scripts/merge-latency.py)")
	return fs
}

// parseConfig parses the scenario name and its flags.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := newFlagSet(cfg)
	fs.SetOutput(io.Discard)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		usage(stderr, fs)
		return nil, errors.New("missing scenario")
	}
	cfg.scenario = args[0]
	known := false
	for _, s := range scenarios {
		known = known || s.name == cfg.scenario
	}
	if cfg.scenario == "help" {
		usage(stderr, fs)
		return nil, flag.ErrHelp
	}
	if !known {
		usage(stderr, fs)
		return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stderr, fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks the flag values and fills in the protocol's defaults.
func (c *config) validate() error {
	p, err := parseProtocol(c.proto)
	if err != nil {
		return err
	}
	c.protocol = p
	switch {
	case c.transport != "websocket" && c.transport != "longpoll":
		return fmt.Errorf("-transport %q: want websocket or longpoll", c.transport)
	case c.transport == "longpoll" && p != phoenixV2:
		return fmt.Errorf("-transport longpoll is for -proto phoenix only")
	case c.transport == "longpoll" && c.scenario != "fanout" && c.scenario != "idle":
		return fmt.Errorf("-transport longpoll is for the fanout and idle scenarios")
	}
	if c.url == "" {
		c.url = defaultURL[p]
	}
	if c.api == "" {
		c.api = defaultAPI[p]
	}
	switch {
	case c.sockets < 1:
		return errors.New("-sockets must be at least 1")
	case c.messages < 1:
		return errors.New("-messages must be at least 1")
	case c.rate < 0:
		return errors.New("-rate must not be negative")
	case c.size < 0 || c.size > 16<<20:
		return errors.New("-size must be between 0 and 16 MiB")
	case c.duration <= 0, c.hold < 0, c.drain <= 0, c.timeout <= 0, c.warmup < 0, c.heartbeat < 0:
		return errors.New("-duration, -drain and -timeout must be positive; -hold, -warmup and -heartbeat not negative")
	case c.payload != payloadPad && c.payload != payloadChat && c.payload != payloadDiff:
		return fmt.Errorf("-payload %q: want pad, chat or diff", c.payload)
	case c.deflate && c.transport != "websocket":
		return errors.New("-deflate is for -transport websocket")
	case c.via != "api" && c.via != "push":
		return fmt.Errorf("-via %q: want api or push", c.via)
	case c.batch < 1:
		return errors.New("-batch must be at least 1")
	case c.batch > 1 && c.via != "api":
		return errors.New("-batch needs -via api")
	case c.topics < 0:
		return errors.New("-topics must not be negative")
	case c.inflight < 1:
		return errors.New("-inflight must be at least 1")
	case c.scenario == "echo" && c.rate > 0 && c.inflight != 1:
		return errors.New("echo -rate paces one push in flight per socket: -inflight must be 1")
	case c.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case c.localIPs < 0:
		return errors.New("-local-ips must not be negative")
	case c.serverPID < 0:
		return errors.New("-server-pid must not be negative")
	case c.topic == "":
		return errors.New("-topic must not be empty")
	case c.method == "":
		return errors.New("-method must not be empty")
	}
	if c.scenario == "idle" && c.serverPID == 0 {
		return errors.New("idle needs -server-pid")
	}
	if !c.publish && c.scenario != "fanout" {
		return errors.New("-publish=false is for the fanout scenario")
	}
	if c.readyFile != "" && c.publish {
		return errors.New("-ready-file needs -publish=false")
	}
	if c.tlsClient, err = clientTLS(c.caFile, c.insecure); err != nil {
		return err
	}
	if c.cpu != "" {
		cpus, err := parseCPUList(c.cpu)
		if err != nil {
			return fmt.Errorf("-cpu: %w", err)
		}
		c.cpus = cpus
	}
	return nil
}

// parseCPUList parses a Linux CPU list such as "1", "0-2" or "0,2-3".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	seen := map[int]bool{}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range %q", part)
			}
		}
		if b >= 1024 {
			return nil, fmt.Errorf("CPU %d out of range", b)
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	return cpus, nil
}
