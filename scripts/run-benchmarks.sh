#!/usr/bin/env bash
# Runs the load scenarios of BENCHMARKS.md against this project's server and
# against the ceiling program (cmd/bench-ceiling), each pinned to core 0 with
# the load tool on core 1, and writes one JSON result per line to $OUT
# (default bench-results.jsonl). Every server it starts is stopped by its PID.
#
#   scripts/run-benchmarks.sh            # full set (about 5 minutes)
#   QUICK=1 scripts/run-benchmarks.sh    # smaller counts, for a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-results.jsonl}
BIN=$(mktemp -d)
PID=
trap 'stop_server; rm -rf "$BIN"' EXIT
go build -o "$BIN/caddy-ch" ./cmd/caddy
go build -o "$BIN/ceiling" ./cmd/bench-ceiling
go build -o "$BIN/bench" ./cmd/channels-bench
go build -o "$BIN/webhook" ./cmd/bench-webhook
APP=
: > "$OUT"

scale() { if [ -n "${QUICK:-}" ]; then echo $(( $1 / 10 )); else echo "$1"; fi; }

start_server() { # name -> sets PID, URL, API
	# Caddy listens with SO_REUSEPORT: a leftover server on the port would
	# silently take half the connections.
	if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:(8091|8092|8093) '; then
		echo "port 8091, 8092 or 8093 is already in use: stop that server first" >&2; exit 1
	fi
	case "$1" in
	channels)
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	channels-webhook) # echo answered by the app's webhook (cmd/bench-webhook, also on core 0)
		taskset -c 0 "$BIN/webhook" -listen 127.0.0.1:8093 >"$BIN/webhook.log" 2>&1 &
		APP=$!
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench-webhook.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	ceiling)
		taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8092/socket; API=http://127.0.0.1:8092/socket/api/broadcast ;;
	esac
	for _ in $(seq 50); do
		curl -s -o /dev/null "${API%/socket/api/broadcast}/" && return 0
		sleep 0.1
	done
	echo "server $1 did not start" >&2; cat "$BIN/server.log" >&2; exit 1
}
stop_server() {
	for p in $PID $APP; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PID= APP=
}

run() { # server label scenario flags...
	local server=$1 label=$2; shift 2
	start_server "$server"
	echo "== $server $label: bench $*" >&2
	"$BIN/bench" "$@" -url "$URL" -api "$API" -cpu 1 -server-pid "$PID" -json |
		sed "s|^{|{\"server\":\"$server\",\"label\":\"$label\",|" | tee -a "$OUT"
	stop_server
}

for server in channels ceiling; do
	run $server "fanout 1000x$(scale 1000) max" fanout -sockets 1000 -messages "$(scale 1000)"
	run $server "fanout 1000 x 100/s" fanout -sockets 1000 -messages "$(scale 1000)" -rate 100
	run $server "fanout 5000 x 50/s" fanout -sockets 5000 -messages "$(scale 500)" -rate 50
	for n in 100 500 2000; do
		run $server "fanout $n x 100/s" fanout -sockets $n -messages "$(scale 500)" -rate 100
	done
	run $server "idle 5000" idle -sockets 5000 -hold 10s
	run $server "echo 1000" echo -sockets 1000 -duration 10s -warmup 2s
	run $server "churn 50" churn -concurrency 50 -duration 10s -warmup 1s
done
run channels-webhook "echo 1000 via webhook" echo -sockets 1000 -duration 10s -warmup 2s
echo "results in $OUT" >&2
go run ./scripts/bench-chart -jsonl "$OUT" -rate 100 \
	-title "Fan-out at 100 msg/s: deliveries/s and p99 vs subscribers" -out docs/bench-fanout.png
echo "chart in docs/bench-fanout.png" >&2
