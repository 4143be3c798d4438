#!/usr/bin/env bash
# Starts a Redis Cluster of three masters with one replica each on loopback
# ports, for the cluster benchmark (scripts/run-cluster-bench.sh) or by hand:
#
#   scripts/redis-cluster.sh start [DIR]   # client ports 17001-17006, cluster bus 17101-17106
#   scripts/redis-cluster.sh stop [DIR]
#   scripts/redis-cluster.sh addrs         # prints the six node addresses
#
# DIR (default: a directory under $TMPDIR named redis-cluster) holds each
# node's nodes.conf, log and PID. BASE (default 17000) moves every port.
# The nodes keep no data on disk (no RDB, no AOF), use a 1000 ms
# cluster-node-timeout and cluster-require-full-coverage no. `start`
# returns once the cluster reports cluster_state:ok.
set -euo pipefail

cmd=${1:-start}
dir=${2:-${TMPDIR:-/tmp}/redis-cluster}
base=${BASE:-17000}

addrs() { for i in 1 2 3 4 5 6; do printf '127.0.0.1:%d ' $((base + i)); done; echo; }

case $cmd in
start)
	for i in 1 2 3 4 5 6; do
		port=$((base + i))
		mkdir -p "$dir/n$i"
		redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/n$i" --save "" --appendonly no \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
			--cluster-port $((base + 100 + i)) --cluster-require-full-coverage no \
			--logfile "$dir/n$i/log" --pidfile "$dir/n$i/pid" --daemonize yes
	done
	for i in 1 2 3 4 5 6; do
		until redis-cli -p $((base + i)) ping >/dev/null 2>&1; do sleep 0.05; done
	done
	# shellcheck disable=SC2046
	redis-cli -p $((base + 1)) --cluster create $(addrs) --cluster-replicas 1 --cluster-yes >"$dir/create.log"
	until redis-cli -p $((base + 1)) cluster info | grep -q cluster_state:ok; do sleep 0.1; done
	;;
stop)
	pids=()
	for i in 1 2 3 4 5 6; do
		[ -f "$dir/n$i/pid" ] && pids+=("$(cat "$dir/n$i/pid")")
	done
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	done
	rm -rf "$dir"
	;;
addrs) addrs ;;
*)
	echo "usage: $0 start|stop|addrs [DIR]" >&2
	exit 2
	;;
esac
