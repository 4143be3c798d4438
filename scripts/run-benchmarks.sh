#!/usr/bin/env bash
# Runs the load scenarios of BENCHMARKS.md against this project's server and
# against the ceiling program (cmd/bench-ceiling), each pinned to core 0 with
# the load tool on core 1, and writes one JSON result per line to $OUT
# (default scripts/results/bench-results.jsonl). Every server it starts is stopped by its PID.
# With CENTRIFUGO_BIN pointing at a Centrifugo v6 binary (built elsewhere; not
# part of this repository), the same scenarios run against it too, with
# cmd/channels-bench/centrifugo.json on 127.0.0.1:8094, the load tool in
# -proto centrifugo mode, and cmd/bench-webhook answering its RPC proxy.
#
#   scripts/run-benchmarks.sh            # full set (about 5 minutes)
#   QUICK=1 scripts/run-benchmarks.sh    # smaller counts, for a smoke run
#   CENTRIFUGO_BIN=/path/to/centrifugo REPEAT=3 scripts/run-benchmarks.sh
#   go run ./scripts/bench-summary scripts/results/bench-results.jsonl   # medians, as in BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-scripts/results/bench-results.jsonl}
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
	if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:(8091|8092|8093|8094) '; then
		echo "port 8091, 8092, 8093 or 8094 is already in use: stop that server first" >&2; exit 1
	fi
	PROTO=phoenix
	case "$1" in
	channels)
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	channels-webhook) # echo answered by the app's webhook (cmd/bench-webhook, also on core 0)
		taskset -c 0 "$BIN/webhook" -listen 127.0.0.1:8093 >"$BIN/webhook.log" 2>&1 &
		APP=$!
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench-webhook.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	channels-intercept) # the published event intercepted (one drop if, one set), docs/intercept.md
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench-intercept.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	channels-wd10) # bench.Caddyfile with write_delay 10ms (opt-in coalescing across time)
		sed 's|^\t\tpath /socket$|\t\tpath /socket\n\t\twrite_delay 10ms|' cmd/channels-bench/bench.Caddyfile >"$BIN/wd10.Caddyfile"
		grep -q 'write_delay 10ms' "$BIN/wd10.Caddyfile" || { echo "could not add write_delay to bench.Caddyfile" >&2; exit 1; }
		taskset -c 0 "$BIN/caddy-ch" run --config "$BIN/wd10.Caddyfile" --adapter caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast ;;
	ceiling)
		taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8092/socket; API=http://127.0.0.1:8092/socket/api/broadcast ;;
	centrifugo) # RPC proxy to the same local app as the webhook echo (also on core 0)
		taskset -c 0 "$BIN/webhook" -listen 127.0.0.1:8093 >"$BIN/webhook.log" 2>&1 &
		APP=$!
		taskset -c 0 "$CENTRIFUGO_BIN" -c cmd/channels-bench/centrifugo.json >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8094/connection/websocket; API=http://127.0.0.1:8094/api; PROTO=centrifugo ;;
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
	"$BIN/bench" "$@" -proto "$PROTO" -url "$URL" -api "$API" -cpu 1 -server-pid "$PID" -json |
		sed "s|^{|{\"server\":\"$server\",\"label\":\"$label\",|" | tee -a "$OUT"
	stop_server
}

# Every scenario runs on each server in turn (REPEAT times, interleaved), so
# that noise from other work on the machine spreads over all of them;
# scripts/bench-summary prints the median of the repetitions.
SERVERS="channels ceiling ${CENTRIFUGO_BIN:+centrifugo}"
each() { # label scenario flags...
	local label=$1; shift
	for _ in $(seq "${REPEAT:-1}"); do
		for server in $SERVERS; do run "$server" "$label" "$@"; done
	done
}

each "fanout 1000x$(scale 1000) max" fanout -sockets 1000 -messages "$(scale 1000)"
each "fanout 1000 x 100/s" fanout -sockets 1000 -messages "$(scale 1000)" -rate 100
each "fanout 5000 x 50/s" fanout -sockets 5000 -messages "$(scale 500)" -rate 50
# Variants of this project only: the intercepted event (issue 7) and the
# opt-in write_delay, at the fixed rates above.
for _ in $(seq "${REPEAT:-1}"); do
	for server in channels-intercept channels-wd10; do
		run $server "fanout 1000 x 100/s" fanout -sockets 1000 -messages "$(scale 1000)" -rate 100
		run $server "fanout 5000 x 50/s" fanout -sockets 5000 -messages "$(scale 500)" -rate 50
	done
done
for n in 100 500 2000; do
	each "fanout $n x 100/s" fanout -sockets $n -messages "$(scale 500)" -rate 100
done
each "idle 5000" idle -sockets 5000 -hold 10s
for _ in $(seq "${REPEAT:-1}"); do
	for server in $SERVERS; do
		if [ "$server" = centrifugo ]; then
			# No declarative echo in Centrifugo: its built-in RPC "ping" is
			# answered by the server (no data), "echo" goes through the RPC
			# proxy to the same app as the webhook echo.
			run $server "echo 1000 rpc ping" echo -sockets 1000 -duration 10s -warmup 2s -method ping
			run $server "echo 1000 via rpc proxy" echo -sockets 1000 -duration 10s -warmup 2s
		else
			run $server "echo 1000" echo -sockets 1000 -duration 10s -warmup 2s
		fi
	done
	run channels-webhook "echo 1000 via webhook" echo -sockets 1000 -duration 10s -warmup 2s
done
# The same echoes at one fixed request rate (open loop, -rate), so that the
# declarative reply, the webhook reply and Centrifugo's RPCs are compared at
# the same load rather than each at its own maximum.
ECHO_RATE=5000
for _ in $(seq "${REPEAT:-1}"); do
	for server in $SERVERS; do
		if [ "$server" = centrifugo ]; then
			run $server "echo 1000 @${ECHO_RATE}/s rpc ping" echo -sockets 1000 -rate $ECHO_RATE -duration 10s -warmup 2s -method ping
			run $server "echo 1000 @${ECHO_RATE}/s via rpc proxy" echo -sockets 1000 -rate $ECHO_RATE -duration 10s -warmup 2s
		else
			run $server "echo 1000 @${ECHO_RATE}/s" echo -sockets 1000 -rate $ECHO_RATE -duration 10s -warmup 2s
		fi
	done
	run channels-webhook "echo 1000 @${ECHO_RATE}/s via webhook" echo -sockets 1000 -rate $ECHO_RATE -duration 10s -warmup 2s
done
each "churn 50" churn -concurrency 50 -duration 10s -warmup 1s
echo "results in $OUT" >&2
go run ./scripts/bench-chart -jsonl "$OUT" -rate 100 \
	-title "Fan-out at 100 msg/s: deliveries/s and p99 vs subscribers" -out docs/bench-fanout.png
echo "chart in docs/bench-fanout.png" >&2
