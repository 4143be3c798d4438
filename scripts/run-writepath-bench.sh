#!/usr/bin/env bash
# Measures the socket write path (BENCHMARKS.md, "Write path"): server CPU
# per delivery, frames per write syscall and latency of this project's
# server against the ceiling program, with one writev per batch and with
# -naive (one write syscall per frame), each pinned to core 0 with the load
# tool on core 1. With TLS=1 the same scenarios also run over wss://
# (Caddy with "tls internal", the ceiling with -tls-self-signed). Writes one
# JSON result per line to $OUT; every server it starts is stopped by its PID.
#
#   scripts/run-writepath-bench.sh                  # plain, once
#   REPEAT=3 TLS=1 scripts/run-writepath-bench.sh   # the table in BENCHMARKS.md
#   CADDY_BIN=/path/to/other/caddy scripts/run-writepath-bench.sh  # another build of the server
#   OLD_CADDY_BIN=/path/to/caddy-before SERVERS="channels channels-old" scripts/run-writepath-bench.sh  # before/after
#   SERVERS="channels ceiling-naive" scripts/run-writepath-bench.sh
#   go run ./scripts/bench-summary "$OUT"           # medians
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-scripts/results/writepath-results.jsonl}
BIN=$(mktemp -d)
PID=
trap 'stop_server; rm -rf "$BIN"' EXIT
if [ -n "${CADDY_BIN:-}" ]; then cp "$CADDY_BIN" "$BIN/caddy-ch"; else go build -o "$BIN/caddy-ch" ./cmd/caddy; fi
if [ -n "${OLD_CADDY_BIN:-}" ]; then cp "$OLD_CADDY_BIN" "$BIN/caddy-old"; fi
go build -o "$BIN/ceiling" ./cmd/bench-ceiling
go build -o "$BIN/bench" ./cmd/channels-bench
: > "$OUT"

# Caddy with "tls internal" on 127.0.0.1:8443: bench.Caddyfile's site over
# https, its CA in a private storage directory, no redirect listener.
mkdir -p "$BIN/storage"
sed -e "s|^\tadmin off$|\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\tstorage file_system {\n\t\troot $BIN/storage\n\t}|" \
	-e 's|^http://127.0.0.1:8091 {$|https://127.0.0.1:8443 {\n\ttls internal|' \
	cmd/channels-bench/bench.Caddyfile >"$BIN/tls.Caddyfile"
grep -q 'tls internal' "$BIN/tls.Caddyfile" || { echo "could not make the TLS Caddyfile" >&2; exit 1; }

start_server() { # name -> sets PID, URL, API, HEALTH
	if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:(8091|8092|8443) '; then
		echo "port 8091, 8092 or 8443 is already in use: stop that server first" >&2; exit 1
	fi
	local ws=ws http=http hostport
	case "$1" in
	channels) taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench.Caddyfile >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8091 ;;
	channels-old) taskset -c 0 "$BIN/caddy-old" run --config cmd/channels-bench/bench.Caddyfile >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8091 ;;
	channels-old-tls) taskset -c 0 "$BIN/caddy-old" run --config "$BIN/tls.Caddyfile" --adapter caddyfile >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8443 ws=wss http=https ;;
	channels-tls) taskset -c 0 "$BIN/caddy-ch" run --config "$BIN/tls.Caddyfile" --adapter caddyfile >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8443 ws=wss http=https ;;
	ceiling) taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8092 ;;
	ceiling-naive) taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 -naive >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8092 ;;
	ceiling-tls) taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 -tls-self-signed >"$BIN/server.log" 2>&1 & hostport=127.0.0.1:8092 ws=wss http=https ;;
	*) echo "unknown server $1" >&2; exit 1 ;;
	esac
	PID=$!
	URL=$ws://$hostport/socket API=$http://$hostport/socket/api/broadcast
	for _ in $(seq 100); do
		curl -sk -o /dev/null "$http://$hostport/" && return 0
		sleep 0.1
	done
	echo "server $1 did not start" >&2; cat "$BIN/server.log" >&2; exit 1
}
stop_server() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	PID=
}

run() { # server label scenario flags...
	local server=$1 label=$2; shift 2
	start_server "$server"
	local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
	echo "== $server $label (load $load): bench $*" >&2
	"$BIN/bench" "$@" -url "$URL" -api "$API" -insecure -cpu 1 -server-pid "$PID" -json |
		sed "s|^{|{\"server\":\"$server\",\"label\":\"$label\",\"load\":\"$load\",|" | tee -a "$OUT"
	stop_server
}

SERVERS=${SERVERS:-"channels ceiling ceiling-naive"}
if [ -n "${TLS:-}" ]; then SERVERS="$SERVERS channels-tls ceiling-tls"; fi
for _ in $(seq "${REPEAT:-1}"); do
	for server in $SERVERS; do
		run "$server" "fanout 1000x1000 max" fanout -sockets 1000 -messages 1000
		run "$server" "fanout 1000 x 100/s" fanout -sockets 1000 -messages 1000 -rate 100
		if [ -z "${NO_5000:-}" ]; then
			run "$server" "fanout 5000 x 50/s" fanout -sockets 5000 -messages 500 -rate 50
		fi
	done
done
echo "results in $OUT" >&2
