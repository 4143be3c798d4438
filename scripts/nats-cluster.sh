#!/usr/bin/env bash
# Starts a three-server NATS cluster with JetStream on loopback ports, for
# the cluster benchmark (scripts/run-cluster-bench.sh) or by hand:
#
#   scripts/nats-cluster.sh start [DIR]   # client ports 18001-18003, routes 18101-18103, monitoring 18201-18203
#   scripts/nats-cluster.sh stop [DIR]
#   scripts/nats-cluster.sh urls          # prints the three client URLs
#
# DIR (default: a directory under $TMPDIR named nats-cluster) holds each
# server's config, JetStream store, log and PID. BASE (default 18000) moves
# every port. `start` returns once every server answers /healthz.
set -euo pipefail

cmd=${1:-start}
dir=${2:-${TMPDIR:-/tmp}/nats-cluster}
base=${BASE:-18000}
bin=${NATS_SERVER:-nats-server}

urls() { for i in 1 2 3; do printf 'nats://127.0.0.1:%d ' $((base + i)); done; echo; }

case $cmd in
start)
	mkdir -p "$dir"
	routes=""
	for i in 1 2 3; do routes+="${routes:+, }nats-route://127.0.0.1:$((base + 100 + i))"; done
	for i in 1 2 3; do
		mkdir -p "$dir/n$i"
		cat >"$dir/n$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((base + i))
http: 127.0.0.1:$((base + 200 + i))
jetstream {
	store_dir: "$dir/n$i/js"
}
cluster {
	name: channels-bench
	listen: 127.0.0.1:$((base + 100 + i))
	routes: [ $routes ]
}
CONF
		"$bin" -c "$dir/n$i/nats.conf" >"$dir/n$i/server.log" 2>&1 &
		echo $! >"$dir/n$i/pid"
	done
	for i in 1 2 3; do
		for _ in $(seq 300); do
			if curl -fs "http://127.0.0.1:$((base + 200 + i))/healthz" >/dev/null 2>&1; then continue 2; fi
			sleep 0.1
		done
		echo "n$i not healthy; see $dir/n$i/server.log" >&2
		exit 1
	done
	urls
	;;
stop)
	for i in 1 2 3; do
		if [ -f "$dir/n$i/pid" ]; then
			pid=$(cat "$dir/n$i/pid")
			kill "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
			rm -f "$dir/n$i/pid"
		fi
	done
	;;
urls) urls ;;
*)
	echo "usage: $0 start|stop|urls [DIR]" >&2
	exit 2
	;;
esac
