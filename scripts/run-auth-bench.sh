#!/usr/bin/env bash
# The admission and limits benchmarks of BENCHMARKS.md ("Authentication and
# limits"): connect → join → leave → close cycles with no authentication, an
# HS256 token, an ES256 token and the connect webhook, and the echo scenario
# with and without a message limit, against cmd/channels-bench/bench-auth.Caddyfile.
# The server is pinned to core 0, the load tool and cmd/bench-webhook to
# core 1; variants are interleaved, REPEAT rounds (default 3). One JSON
# result per line goes to $OUT (default scripts/results/auth-bench-results.jsonl).
# Every process it starts is stopped by its PID.
#
#   scripts/run-auth-bench.sh
#   REPEAT=1 DURATION=3s scripts/run-auth-bench.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-scripts/results/auth-bench-results.jsonl}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10s}
BIN=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$BIN"
}
trap cleanup EXIT
if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:(8091|8093) '; then
	echo "port 8091 or 8093 is already in use: stop that server first" >&2
	exit 1
fi
go build -o "$BIN/caddy-ch" ./cmd/caddy
go build -o "$BIN/bench" ./cmd/channels-bench
go build -o "$BIN/webhook" ./cmd/bench-webhook
go build -o "$BIN/jwt" ./cmd/channels-jwt
"$BIN/jwt" keygen -alg ES256 -out "$BIN/es" >/dev/null
export BENCH_JWT_SECRET=bench-hs256-secret-0123456789abcdef
export BENCH_ES256_PUB="$BIN/es.pub.pem"
HS=$("$BIN/jwt" sign -secret "$BENCH_JWT_SECRET" -sub bench -ttl 24h)
ES=$("$BIN/jwt" sign -alg ES256 -key "$BIN/es.pem" -sub bench -ttl 24h)

taskset -c 1 "$BIN/webhook" -listen 127.0.0.1:8093 >"$BIN/webhook.log" 2>&1 &
PIDS+=($!)
taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench-auth.Caddyfile >"$BIN/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/8091) 2>/dev/null && break
	sleep 0.1
done
: >"$OUT"

run() { # label, then the tool's arguments
	local label=$1
	shift
	echo "== $label: $*" >&2
	"$BIN/bench" "$@" -json -cpu 1 -server-pid "$SERVER" -topic bench:auth |
		sed "s|^{|{\"label\":\"$label\",|" >>"$OUT"
}

for _ in $(seq "$REPEAT"); do
	run "churn plain" churn -url ws://127.0.0.1:8091/plain -concurrency 50 -duration "$DURATION" -warmup 2s
	run "churn plain with id" churn -url "ws://127.0.0.1:8091/plainid/websocket?user=bench" -concurrency 50 -duration "$DURATION" -warmup 2s
	run "churn hs256" churn -url "ws://127.0.0.1:8091/hs/websocket?token=$HS" -concurrency 50 -duration "$DURATION" -warmup 2s
	run "churn es256" churn -url "ws://127.0.0.1:8091/es/websocket?token=$ES" -concurrency 50 -duration "$DURATION" -warmup 2s
	run "churn connect webhook" churn -url ws://127.0.0.1:8091/hook -concurrency 50 -duration "$DURATION" -warmup 2s
done
for _ in $(seq "$REPEAT"); do
	run "echo 1000" echo -url ws://127.0.0.1:8091/plain -sockets 1000 -duration "$DURATION" -warmup 2s
	run "echo 1000 limited" echo -url ws://127.0.0.1:8091/limited -sockets 1000 -duration "$DURATION" -warmup 2s
	run "echo 1000 @5000/s" echo -url ws://127.0.0.1:8091/plain -sockets 1000 -rate 5000 -duration "$DURATION" -warmup 2s
	run "echo 1000 @5000/s limited" echo -url ws://127.0.0.1:8091/limited -sockets 1000 -rate 5000 -duration "$DURATION" -warmup 2s
done
echo "results in $OUT" >&2
