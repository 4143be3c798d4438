#!/usr/bin/env bash
# permessage-deflate benchmark: fan-out of realistic JSON (a 1 KB chat
# message and a 10 KB state diff, cmd/channels-bench -payload chat|diff) to
# 1,000 subscribers at 100 msg/s through Caddy, compression off (plain
# server, no offer) against on (`compression` in the channels block,
# -deflate on every subscriber). The server runs on core 0 and the tool
# on core 1, as in scripts/run-benchmarks.sh; every server started is
# stopped by its PID. One JSON result per line goes to $OUT (default
# scripts/results/compression-results.jsonl); the summary prints bytes on
# the wire and server CPU per delivery.
#
#   scripts/run-compression-bench.sh
#   REPEAT=3 LEVEL=5 scripts/run-compression-bench.sh
#   RATE=20 MESSAGES=200 OUT=… scripts/run-compression-bench.sh   # a rate the tool keeps up with when inflating
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-scripts/results/compression-results.jsonl}
MESSAGES=${MESSAGES:-1000}
RATE=${RATE:-100}
SOCKETS=${SOCKETS:-1000}
LEVEL=${LEVEL:-1}
BIN=$(mktemp -d)
PID=
stop_server() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	PID=
}
trap 'stop_server; rm -rf "$BIN"' EXIT
go build -o "$BIN/caddy-ch" ./cmd/caddy
go build -o "$BIN/bench" ./cmd/channels-bench
cp cmd/channels-bench/bench.Caddyfile "$BIN/off.Caddyfile"
sed "s|^\t\tpath /socket$|\t\tpath /socket\n\t\tcompression {\n\t\t\tlevel $LEVEL\n\t\t}|" cmd/channels-bench/bench.Caddyfile >"$BIN/on.Caddyfile"
grep -q "level $LEVEL" "$BIN/on.Caddyfile" || { echo "could not add compression to bench.Caddyfile" >&2; exit 1; }
: >"$OUT"

run() { # mode(off|on) label flags...
	local mode=$1 label=$2; shift 2
	if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:8091 '; then
		echo "port 8091 is already in use: stop that server first" >&2; exit 1
	fi
	taskset -c 0 "$BIN/caddy-ch" run --config "$BIN/$mode.Caddyfile" --adapter caddyfile >"$BIN/server.log" 2>&1 &
	PID=$!
	local up=
	for _ in $(seq 50); do
		if curl -s -o /dev/null http://127.0.0.1:8091/; then up=1; break; fi
		sleep 0.1
	done
	[ -n "$up" ] || { echo "server did not start" >&2; cat "$BIN/server.log" >&2; exit 1; }
	local deflate=
	[ "$mode" = on ] && deflate=-deflate
	echo "== compression $mode, $label (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	"$BIN/bench" fanout -sockets "$SOCKETS" -messages "$MESSAGES" -rate "$RATE" $deflate "$@" \
		-cpu 1 -server-pid "$PID" -json |
		sed "s|^{|{\"compression\":\"$mode\",\"level\":$LEVEL,\"rate\":$RATE,\"label\":\"$label\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",|" | tee -a "$OUT"
	stop_server
}

for _ in $(seq "${REPEAT:-1}"); do
	for mode in off on; do
		run "$mode" "chat 1KB" -payload chat -size 1024
		run "$mode" "diff 10KB" -payload diff -size 10240
	done
done

echo "results in $OUT" >&2
# mode, payload, wire bytes and server (and tool) CPU per delivery, p99.
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'compression':<12}{'payload':<11}{'deliveries':>11}{'wire B/delivery':>17}{'server µs/delivery':>20}{'tool µs/delivery':>18}{'p99 ms':>9}  load")
for r in rows:
    print(f"{r['compression']:<12}{r['label']:<11}{r.get('deliveries',0):>11}{r.get('wire_bytes_per_delivery',0):>17.0f}"
          f"{r.get('server_cpu_us_per_delivery_publish',0):>20.2f}{r.get('client_cpu_us_per_delivery',0):>18.2f}"
          f"{r.get('latency_p99_us',0)/1000:>9.2f}  {r['load']}")
PY
