#!/usr/bin/env bash
# One Caddy node at its file-descriptor limit: SOCKETS (default 19,000)
# WebSocket subscribers on one topic, spread over PROCS (default 4) load-tool
# processes that dial from LOCAL_IPS loopback source addresses, and one
# publisher process. Caddy runs on core 0, every load-tool process on core 1.
#
#   (a) idle memory per joined socket: Caddy's VmRSS with every socket
#       joined and HOLD seconds later, minus VmRSS before, over SOCKETS;
#   (b) one broadcast to all of them: publish (the stamp in the payload) to
#       the last delivery, the maximum latency over every process;
#   (c) SOCKETS x RATE msg/s for DURATION seconds: merged p50/p99 and Caddy's
#       CPU per delivery (from its /proc stat just before the publisher
#       starts to the moment the last subscriber process has every message).
#
#   scripts/run-fullnode-bench.sh
#   SOCKETS=2000 PROCS=2 DURATION=5 scripts/run-fullnode-bench.sh   # smoke run
#
# The subscriber processes run "channels-bench fanout -publish=false
# -ready-file F": they join, create F, and wait for the messages; the
# publisher (one more socket, its own subscriber too) starts when every F
# exists. Each subscriber process writes its result (-json) and latency
# histogram (-latency-out); scripts/bench-merge adds them up. Payloads carry
# the publisher's clock, the same machine's as the subscribers'.
# Writes one JSON line per measurement to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
SOCKETS=${SOCKETS:-19000}
PROCS=${PROCS:-4}
LOCAL_IPS=${LOCAL_IPS:-4}
RATE=${RATE:-10}
DURATION=${DURATION:-30}
HOLD=${HOLD:-10}
PORT=${PORT:-8097}
OUT=${OUT:-scripts/results/fullnode-bench-results.jsonl}

# Caddy inherits this shell's limit; the tool raises its own to the hard limit.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((SOCKETS + 200)) ]; then
	echo "ulimit -n is $(ulimit -n): $SOCKETS sockets need about $((SOCKETS + 200)) descriptors in Caddy" >&2; exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "port $PORT is busy" >&2; exit 1; fi

BIN=$(mktemp -d)
CADDY=
SUBS=()
cleanup() {
	for p in "${SUBS[@]}" $CADDY; do kill "$p" 2>/dev/null || true; done
	for p in "${SUBS[@]}" $CADDY; do wait "$p" 2>/dev/null || true; done
	rm -rf "$BIN"
}
trap cleanup EXIT
go build -o "$BIN/caddy" ./cmd/caddy
go build -o "$BIN/bench" ./cmd/channels-bench
go build -o "$BIN/merge" ./scripts/bench-merge
: >"$OUT"

cat >"$BIN/Caddyfile" <<CADDY
{
	admin off
	log {
		level ERROR
	}
}
http://127.0.0.1:$PORT {
	bind 127.0.0.1
	channels {
		path /socket
		api_key bench
		channel bench:* {
			join allow
			handle_in msg broadcast
		}
	}
}
CADDY
taskset -c 0 "$BIN/caddy" run --config "$BIN/Caddyfile" --adapter caddyfile >"$BIN/caddy.log" 2>&1 &
CADDY=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
URL=ws://127.0.0.1:$PORT/socket
API=http://127.0.0.1:$PORT/socket/api/broadcast

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$CADDY/status"; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$CADDY/stat"; } # utime+stime, USER_HZ 100
load() { cut -d' ' -f1-3 /proc/loadavg; }

# subscribe TAG MESSAGES DRAIN: starts PROCS subscriber processes and waits
# until every one has joined all its sockets.
subscribe() {
	local tag=$1 msgs=$2 drain=$3 per=$((SOCKETS / PROCS)) i
	SUBS=()
	for i in $(seq "$PROCS"); do
		rm -f "$BIN/$tag.$i.ready"
		"$BIN/bench" fanout -publish=false -ready-file "$BIN/$tag.$i.ready" -latency-out "$BIN/$tag.$i.lat" \
			-url "$URL" -topic "bench:full-$tag" -sockets "$per" -messages "$msgs" -drain "$drain" \
			-local-ips "$LOCAL_IPS" -concurrency 32 -cpu 1 -server-pid "$CADDY" -json \
			>"$BIN/$tag.$i.json" 2>"$BIN/$tag.$i.log" &
		SUBS+=($!)
	done
	for i in $(seq "$PROCS"); do
		while [ ! -f "$BIN/$tag.$i.ready" ]; do
			if ! kill -0 "${SUBS[$((i - 1))]}" 2>/dev/null; then
				echo "subscriber process $i exited before joining:" >&2; cat "$BIN/$tag.$i.log" "$BIN/$tag.$i.json" >&2; exit 1
			fi
			sleep 0.2
		done
	done
}

# finish TAG: waits for the subscriber processes (so not in a subshell:
# they are this shell's children), prints the merged result.
finish() {
	local tag=$1 ok=0 p lats=() jsons=()
	for p in "${SUBS[@]}"; do wait "$p" || ok=1; done
	SUBS=()
	for i in $(seq "$PROCS"); do lats+=("$BIN/$tag.$i.lat"); jsons+=("$BIN/$tag.$i.json"); done
	[ $ok = 0 ] || { echo "a subscriber process failed:" >&2; tail -n 3 "$BIN/$tag".*.log >&2; }
	(IFS=,; "$BIN/merge" -lat "${lats[*]}" -json "${jsons[*]}")
}

echo "== Caddy pid $CADDY, limit $(awk '/Max open files/ {print $4}' "/proc/$CADDY/limits") descriptors; $SOCKETS sockets in $PROCS processes from $LOCAL_IPS source addresses" >&2
rss0=$(rss_kb)

# (a) and (b): one message to every socket.
subscribe one 1 120s
rss1=$(rss_kb)
sleep "$HOLD"
rss2=$(rss_kb)
fds=$(ls "/proc/$CADDY/fd" | wc -l)
echo "{\"measure\":\"idle\",\"sockets\":$SOCKETS,\"server_fds\":$fds,\"rss_kb_before\":$rss0,\"rss_kb_joined\":$rss1,\"rss_kb_after_hold\":$rss2,\"rss_bytes_per_socket\":$(((rss2 - rss0) * 1024 / SOCKETS)),\"load\":\"$(load)\"}" | tee -a "$OUT"
"$BIN/bench" fanout -url "$URL" -api "$API" -topic bench:full-one -sockets 1 -messages 1 -cpu 1 -json >"$BIN/one.pub.json" 2>"$BIN/one.pub.log"
finish one >"$BIN/one.merged"
jq -c --arg load "$(load)" '{measure: "one broadcast", deliveries, deliveries_expected, lost,
	publish_to_last_delivery_ms: (.latency_max_us / 1000), latency_p50_ms: (.latency_p50_us / 1000),
	latency_p99_ms: (.latency_p99_us / 1000), load: $load}' "$BIN/one.merged" | tee -a "$OUT"

# (c): RATE msg/s for DURATION seconds to every socket.
msgs=$((RATE * DURATION))
subscribe rate "$msgs" "$((DURATION + 120))s"
cpu0=$(cpu_s)
"$BIN/bench" fanout -url "$URL" -api "$API" -topic bench:full-rate -sockets 1 -messages "$msgs" -rate "$RATE" -drain 60s \
	-cpu 1 -json >"$BIN/rate.pub.json" 2>"$BIN/rate.pub.log"
finish rate >"$BIN/rate.merged"
<"$BIN/rate.merged" jq -c --arg load "$(load)" --argjson cpu0 "$cpu0" --argjson rate "$RATE" --argjson sockets "$SOCKETS" \
	'{measure: "\($sockets) x \($rate)/s", deliveries, deliveries_expected, lost, duplicated, reordered, drained,
	deliveries_per_s: (.deliveries / ((.last_delivery_unix_ns - .first_delivery_unix_ns) / 1e9)),
	latency_p50_ms: (.latency_p50_us / 1000), latency_p99_ms: (.latency_p99_us / 1000), latency_max_ms: (.latency_max_us / 1000),
	server_cpu_s: (.server_cpu_total_s_done - $cpu0),
	server_cpu_us_per_delivery: ((.server_cpu_total_s_done - $cpu0) * 1e6 / .deliveries),
	client_cpu_us_per_delivery: (.client_cpu_s * 1e6 / .deliveries), load: $load}' | tee -a "$OUT"
echo "publisher: $(jq -c '{publish_rate, deliveries, lost}' "$BIN/rate.pub.json")" >&2
