#!/usr/bin/env bash
# Fan-out across two Caddy nodes sharing a broker, next to one node with the
# in-memory engine. Subscribers connect to node B, the load tool publishes
# through node A's HTTP API, so every delivery crosses the broker.
#
#   scripts/run-cluster-bench.sh            # Redis on 127.0.0.1:6379, NATS on 127.0.0.1:4222
#   SUBS=1000 MSGS=1000 RATE=100 scripts/run-cluster-bench.sh
#
# Writes one JSON line per run to scripts/results/cluster-bench-results.jsonl. All processes
# share the machine's cores (no pinning): the figures compare engines on
# the same machine, not against the single-core figures of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBS=${SUBS:-1000}
MSGS=${MSGS:-1000}
RATE=${RATE:-100}
PORT_A=${PORT_A:-8094}
PORT_B=${PORT_B:-8095}
OUT=${OUT:-scripts/results/cluster-bench-results.jsonl}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT_A" "$PORT_B"; do
	if tcp_open "$p"; then echo "port $p is busy: stop what listens there first" >&2; exit 1; fi
done

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/caddy" ./cmd/caddy
go build -o "$bin/channels-bench" ./cmd/channels-bench

pids=()
stop_nodes() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	pids=()
}
trap 'stop_nodes; rm -rf "$bin"' EXIT

# node PORT PUBSUB_LINE: starts one node.
node() {
	local port=$1 pubsub=$2 file="$bin/Caddyfile.$1"
	cat >"$file" <<CADDY
{
	admin off
	log {
		level ERROR
	}
}
http://127.0.0.1:$port {
	bind 127.0.0.1
	channels {
		path /socket
		api_key bench
		$pubsub
		channel bench:* {
			join allow
			handle_in msg broadcast
		}
	}
}
CADDY
	"$bin/caddy" run --config "$file" --adapter caddyfile >"$bin/node.$port.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do tcp_open "$port" && return 0; sleep 0.1; done
	echo "node on $port did not start" >&2; cat "$bin/node.$port.log" >&2; exit 1
}

# run NAME: fan-out with subscribers on B and publishes on A.
run() {
	local name=$1
	echo "== $name: $SUBS subscribers on node B, $MSGS messages at $RATE/s published on node A"
	"$bin/channels-bench" fanout -url "ws://127.0.0.1:$PORT_B/socket" -api "http://127.0.0.1:$PORT_A/socket/api/broadcast" \
		-topic "bench:cluster-$name-$$" -sockets "$SUBS" -messages "$MSGS" -rate "$RATE" -json |
		sed "s/^{/{\"engine\":\"$name\",/" | tee -a "$OUT"
}

prefix="bench$$"
# One node, memory engine: A and B are the same node.
node "$PORT_A" "pubsub memory"
PORT_B_SAVED=$PORT_B; PORT_B=$PORT_A
run memory-1node
PORT_B=$PORT_B_SAVED
stop_nodes

for engine in redis nats; do
	case $engine in
	redis) line="pubsub redis redis://127.0.0.1:6379/0 {
			key_prefix $prefix:
		}" ;;
	nats) line="pubsub nats nats://127.0.0.1:4222 {
			prefix $prefix
		}" ;;
	esac
	node "$PORT_A" "$line"
	node "$PORT_B" "$line"
	run "$engine-2nodes"
	stop_nodes
done
