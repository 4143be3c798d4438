#!/usr/bin/env bash
# Server CPU per delivery over TLS (wss:// subscribers, https:// publish API)
# next to plain ws:// at the same offered loads, for this project's server
# (Caddy with "tls internal") and the ceiling program (cmd/bench-ceiling
# -tls-self-signed), and for Centrifugo when CENTRIFUGO_BIN points at a v6
# binary (its own TLS with a certificate made by openssl). Every server runs
# on core 0, the load tool on core 1, as in scripts/run-benchmarks.sh; the
# rounds are interleaved (REPEAT rounds of every scenario on every server).
#
#   scripts/run-tls-bench.sh                 # REPEAT=3, about 6 minutes
#   QUICK=1 REPEAT=1 scripts/run-tls-bench.sh
#   go run ./scripts/bench-summary scripts/results/tls-bench-results.jsonl
#
# Caddy keeps its local CA in the storage directory of the generated
# Caddyfile (this run's temporary directory); the load tool trusts its root,
# pki/authorities/local/root.crt, with -ca. The ceiling's certificate is
# self-signed, so the tool skips verification there (-insecure): the
# handshakes happen while connecting, outside the measured window.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-scripts/results/tls-bench-results.jsonl}
REPEAT=${REPEAT:-3}
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
go build -o "$BIN/ceiling" ./cmd/bench-ceiling
go build -o "$BIN/bench" ./cmd/channels-bench
: >"$OUT"

scale() { if [ -n "${QUICK:-}" ]; then echo $(($1 / 10)); else echo "$1"; fi; }

# The TLS variant of cmd/channels-bench/bench.Caddyfile: same handler, on
# https://127.0.0.1:8444 with Caddy's internal CA, no HTTP redirect server.
cat >"$BIN/tls.Caddyfile" <<CADDY
{
	admin off
	skip_install_trust
	auto_https disable_redirects
	storage file_system {
		root $BIN/caddy-storage
	}
	log {
		level ERROR
	}
}

https://127.0.0.1:8444 {
	bind 127.0.0.1
	tls internal
	channels {
		path /socket
		api_key bench
		channel bench:* {
			join allow
			handle_in echo reply
			handle_in msg broadcast
		}
	}
}
CADDY

SERVERS="channels channels-tls ceiling ceiling-tls"
if [ -n "${CENTRIFUGO_BIN:-}" ]; then
	SERVERS="$SERVERS centrifugo centrifugo-tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$BIN/cf.key" -out "$BIN/cf.crt" 2>/dev/null
	# Centrifugo v6: http_server.tls with PEM files; port 8096 for TLS.
	jq --arg c "$BIN/cf.crt" --arg k "$BIN/cf.key" \
		'.http_server.port = 8096 | .http_server.tls = {enabled: true, cert_pem_file: $c, key_pem_file: $k}' \
		cmd/channels-bench/centrifugo.json >"$BIN/centrifugo-tls.json"
fi

# wait_up URL [curl flags]: until the server answers HTTP(S) at URL.
wait_up() {
	local url=$1; shift
	for _ in $(seq 100); do
		curl -s -o /dev/null "$@" "$url" && return 0
		sleep 0.1
	done
	echo "server at $url did not start" >&2; cat "$BIN/server.log" >&2; exit 1
}

start_server() { # name -> sets PID, URL, API, PROTO, TLSFLAGS
	if ss -ltn 2>/dev/null | grep -qE '127\.0\.0\.1:(8091|8092|8094|8444|8445|8096) '; then
		echo "port 8091, 8092, 8094, 8444, 8445 or 8096 is already in use: stop that server first" >&2; exit 1
	fi
	PROTO=phoenix TLSFLAGS=
	case "$1" in
	channels)
		taskset -c 0 "$BIN/caddy-ch" run --config cmd/channels-bench/bench.Caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8091/socket; API=http://127.0.0.1:8091/socket/api/broadcast
		wait_up http://127.0.0.1:8091/ ;;
	channels-tls)
		taskset -c 0 "$BIN/caddy-ch" run --config "$BIN/tls.Caddyfile" --adapter caddyfile >"$BIN/server.log" 2>&1 &
		PID=$!; URL=wss://127.0.0.1:8444/socket; API=https://127.0.0.1:8444/socket/api/broadcast
		local root=$BIN/caddy-storage/pki/authorities/local/root.crt
		# The root exists once the config loaded; the leaf certificate is
		# obtained in the background: wait for a verified handshake.
		for _ in $(seq 100); do [ -f "$root" ] && break; sleep 0.1; done
		wait_up https://127.0.0.1:8444/ --cacert "$root"
		TLSFLAGS="-ca $root" ;;
	ceiling)
		taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8092 >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8092/socket; API=http://127.0.0.1:8092/socket/api/broadcast
		wait_up http://127.0.0.1:8092/ ;;
	ceiling-tls)
		taskset -c 0 "$BIN/ceiling" -listen 127.0.0.1:8445 -tls-self-signed >"$BIN/server.log" 2>&1 &
		PID=$!; URL=wss://127.0.0.1:8445/socket; API=https://127.0.0.1:8445/socket/api/broadcast
		wait_up https://127.0.0.1:8445/ -k
		TLSFLAGS=-insecure ;;
	centrifugo)
		taskset -c 0 "$CENTRIFUGO_BIN" -c cmd/channels-bench/centrifugo.json >"$BIN/server.log" 2>&1 &
		PID=$!; URL=ws://127.0.0.1:8094/connection/websocket; API=http://127.0.0.1:8094/api; PROTO=centrifugo
		wait_up http://127.0.0.1:8094/ ;;
	centrifugo-tls)
		taskset -c 0 "$CENTRIFUGO_BIN" -c "$BIN/centrifugo-tls.json" >"$BIN/server.log" 2>&1 &
		PID=$!; URL=wss://127.0.0.1:8096/connection/websocket; API=https://127.0.0.1:8096/api; PROTO=centrifugo
		wait_up https://127.0.0.1:8096/ --cacert "$BIN/cf.crt"
		TLSFLAGS="-ca $BIN/cf.crt" ;;
	esac
}

run() { # server label scenario flags...
	local server=$1 label=$2; shift 2
	start_server "$server"
	echo "== $server $label: bench $* $TLSFLAGS (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	# shellcheck disable=SC2086 # TLSFLAGS is a list of flags
	"$BIN/bench" "$@" -proto "$PROTO" -url "$URL" -api "$API" $TLSFLAGS -cpu 1 -server-pid "$PID" -json |
		sed "s|^{|{\"server\":\"$server\",\"label\":\"$label\",\"load1\":$(cut -d' ' -f1 /proc/loadavg),|" | tee -a "$OUT"
	stop_server
}

for _ in $(seq "$REPEAT"); do
	for server in $SERVERS; do
		run "$server" "fanout 1000 x 100/s" fanout -sockets 1000 -messages "$(scale 1000)" -rate 100
		run "$server" "fanout 5000 x 50/s" fanout -sockets 5000 -messages "$(scale 500)" -rate 50
		run "$server" "fanout 1000 x max" fanout -sockets 1000 -messages "$(scale 1000)"
	done
done
echo "results in $OUT; medians: go run ./scripts/bench-summary $OUT" >&2
