#!/usr/bin/env bash
# Fan-out across two Caddy nodes sharing a broker, next to one node with the
# in-memory engine at the same offered loads. Subscribers connect to node B,
# the load tool publishes through node A's HTTP API, so every delivery on B
# crosses the broker. Node B (or the single node) runs on core 0 and is
# measured (-server-pid); node A and every load-tool process run on core 1;
# the brokers are whatever already runs (not pinned).
#
# In the two-node runs, SUBS_A subscribers on node A (a second load-tool
# process, -publish=false) receive the same messages: node B's p99 minus
# node A's p99 in the same run is the broker round trip's share of the
# latency; B's p99 minus the one-node p99 at the same load is shown too.
#
#   scripts/run-cluster-bench.sh                   # Redis 127.0.0.1:6379, NATS 127.0.0.1:4222, REPEAT=3
#   SUBS=1000 MSGS=1000 RATE=100 REPEAT=1 ENGINES=redis scripts/run-cluster-bench.sh
#   REDIS_URL=redis://10.0.0.5:7000/0 scripts/run-cluster-bench.sh
#   NATS_URLS="nats://127.0.0.1:4222 nats://127.0.0.1:4223 nats://127.0.0.1:4224" ENGINES=nats scripts/run-cluster-bench.sh
#   PUBSUB_REDIS_LINE="$(printf 'pubsub redis cluster %s {\n\t\t\tkey_prefix x:\n\t\t}' "$(scripts/redis-cluster.sh addrs)")" \
#     ENGINES=redis scripts/run-cluster-bench.sh     # a block must span lines in a Caddyfile
#   go run ./scripts/bench-summary scripts/results/cluster-bench-results.jsonl
#
# PUBSUB_REDIS_LINE and PUBSUB_NATS_LINE replace the whole pubsub directive
# (with its block) of both nodes, e.g. for a Redis Cluster or a NATS cluster
# with options; by default each run gets its own key prefix or subject
# prefix. Writes one JSON line per run to $OUT, with "server" (engine) and
# "label" (scenario) for scripts/bench-summary, and prints a comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBS=${SUBS:-1000}
SUBS_A=${SUBS_A:-100}
MSGS=${MSGS:-1000}
RATE=${RATE:-100}
REPEAT=${REPEAT:-3}
ENGINES=${ENGINES:-redis nats}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
NATS_URLS=${NATS_URLS:-nats://127.0.0.1:4222}
PORT_A=${PORT_A:-8098}
PORT_B=${PORT_B:-8099}
OUT=${OUT:-scripts/results/cluster-bench-results.jsonl}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT_A" "$PORT_B"; do
	if tcp_open "$p"; then echo "port $p is busy: stop what listens there first" >&2; exit 1; fi
done

bin=$(mktemp -d)
pids=()
stop_nodes() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	pids=()
}
trap 'stop_nodes; rm -rf "$bin"' EXIT
go build -o "$bin/caddy" ./cmd/caddy
go build -o "$bin/channels-bench" ./cmd/channels-bench
: >"$OUT"

# node PORT CORE PUBSUB_LINE: starts one node pinned to CORE; sets NODE_PID.
node() {
	local port=$1 core=$2 pubsub=$3 file="$bin/Caddyfile.$1"
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
	taskset -c "$core" "$bin/caddy" run --config "$file" --adapter caddyfile >"$bin/node.$port.log" 2>&1 &
	NODE_PID=$!
	pids+=("$NODE_PID")
	for _ in $(seq 100); do tcp_open "$port" && return 0; sleep 0.1; done
	echo "node on $port did not start" >&2; cat "$bin/node.$port.log" >&2; exit 1
}

pubsub_line() { # engine prefix
	case $1 in
	memory) echo "pubsub memory" ;;
	redis)
		if [ -n "${PUBSUB_REDIS_LINE:-}" ]; then echo "$PUBSUB_REDIS_LINE"; else
			printf 'pubsub redis %s {\n\t\t\tkey_prefix %s:\n\t\t}\n' "$REDIS_URL" "$2"
		fi ;;
	nats)
		if [ -n "${PUBSUB_NATS_LINE:-}" ]; then echo "$PUBSUB_NATS_LINE"; else
			printf 'pubsub nats %s {\n\t\t\tprefix %s\n\t\t}\n' "${NATS_URLS//,/ }" "$2"
		fi ;;
	esac
}

# run ENGINE LABEL RATE: one measured fan-out (subscribers on B, publish on A).
run() {
	local engine=$1 label=$2 rate=$3 name port_b sub_a=
	local prefix="bench$$x$RANDOM" topic="bench:cluster-$RANDOM"
	if [ "$engine" = memory ]; then
		name=memory-1node
		node "$PORT_A" 0 "$(pubsub_line memory "$prefix")"
		port_b=$PORT_A
	else
		name=$engine-2nodes
		node "$PORT_A" 1 "$(pubsub_line "$engine" "$prefix")"
		node "$PORT_B" 0 "$(pubsub_line "$engine" "$prefix")"
		port_b=$PORT_B
		rm -f "$bin/a.ready"
		"$bin/channels-bench" fanout -publish=false -ready-file "$bin/a.ready" -url "ws://127.0.0.1:$PORT_A/socket" \
			-topic "$topic" -sockets "$SUBS_A" -messages "$MSGS" -drain 120s -cpu 1 -json >"$bin/a.json" 2>"$bin/a.log" &
		sub_a=$!
		while [ ! -f "$bin/a.ready" ]; do
			kill -0 "$sub_a" 2>/dev/null || { echo "subscribers on A failed:" >&2; cat "$bin/a.log" >&2; exit 1; }
			sleep 0.1
		done
	fi
	local load1
	load1=$(cut -d' ' -f1 /proc/loadavg)
	echo "== $name $label: $SUBS subscribers on B, $MSGS messages at ${rate}/s on A (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	"$bin/channels-bench" fanout -url "ws://127.0.0.1:$port_b/socket" -api "http://127.0.0.1:$PORT_A/socket/api/broadcast" \
		-topic "$topic" -sockets "$SUBS" -messages "$MSGS" -rate "$rate" -cpu 1 -server-pid "$NODE_PID" -json |
		sed "s|^{|{\"server\":\"$name\",\"label\":\"$label\",\"load1\":$load1,|" | tee -a "$OUT"
	if [ -n "$sub_a" ]; then
		wait "$sub_a" || echo "subscribers on A: $(tail -n 1 "$bin/a.log")" >&2
		sed "s|^{|{\"server\":\"$name (subscribers on A)\",\"label\":\"$label\",\"load1\":$load1,|" "$bin/a.json" | tee -a "$OUT"
	fi
	stop_nodes
}

for _ in $(seq "$REPEAT"); do
	for engine in memory $ENGINES; do
		run "$engine" "fanout $SUBS x $RATE/s" "$RATE"
		run "$engine" "fanout $SUBS x max" 0
	done
done

# Medians per engine and scenario, and the ratios the issue asks about.
jq -rs '
	def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
	def r2: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
	group_by(.label) | .[] | . as $g | ($g[0].label) as $lbl |
	([$g[] | select(.server == "memory-1node") | .server_cpu_us_per_delivery_publish] | median) as $cpu_local |
	([$g[] | select(.server == "memory-1node") | .latency_p99_us] | median) as $p99_local |
	"\n\($lbl)  (medians of \([$g[] | select(.server == "memory-1node")] | length) runs)",
	"| engine | server CPU µs/delivery on B | × one node | p50 ms | p99 ms | p99 on A ms | p99 B − A ms | p99 − one node ms | deliveries/s | lost |",
	"|---|---|---|---|---|---|---|---|---|---|",
	($g | map(.server) | unique | map(select(endswith("(subscribers on A)") | not))[] as $s |
		[$g[] | select(.server == $s)] as $runs |
		([$runs[] | .server_cpu_us_per_delivery_publish] | median) as $cpu |
		([$runs[] | .latency_p99_us] | median) as $p99 |
		([$g[] | select(.server == "\($s) (subscribers on A)") | .latency_p99_us] | median) as $p99a |
		"| \($s) | \($cpu | r2) | \(if $cpu_local then ($cpu / $cpu_local | r2) else "n/a" end) | \(([$runs[] | .latency_p50_us] | median) / 1000 | r2) | \($p99 / 1000 | r2) | \(if $p99a then ($p99a / 1000 | r2) else "" end) | \(if $p99a then (($p99 - $p99a) / 1000 | r2) else "" end) | \(if $p99_local then (($p99 - $p99_local) / 1000 | r2) else "n/a" end) | \([$runs[] | .deliveries_per_s] | median | round) | \([$runs[] | .lost] | add) |")
' "$OUT"
