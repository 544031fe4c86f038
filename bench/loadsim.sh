#!/usr/bin/env bash
# bench/loadsim.sh [NODES...]: one real collector (as the chart runs it: --state-dir, the
# defaults otherwise; STATE=0 without it; COLLECTOR=path another build of it) on 127.0.0.1 fed by flowlens-loadsim for each cluster size (default 250
# 500 1000 2000 nodes, 200 aggregates per agent every 10 s, 60 s each), with the matching
# Kubernetes metadata. Prints the simulator's figures (batches/s, aggregates/s, answers, POST
# latency with and without a /metrics scrape in flight, the collector's CPU and RSS, the
# /metrics size and scrape time). SHARD=K/N: the collector is shard K of N (the agents send it
# only that shard's aggregates, and a batch every interval). A bench, not a test: figures go
# to docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
make -s build/flowlens-collector build/flowlens-loadsim
DURATION=${DURATION:-60} FLOWS=${FLOWS:-200} PODS=${PODS:-30} WORKLOADS=${WORKLOADS:-500}
tmp=$(mktemp -d /tmp/flowlens-loadsim.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
port=$((20000 + RANDOM % 20000))
for n in "${@:-250 500 1000 2000}"; do
	for nodes in $n; do
		build/flowlens-loadsim --metadata "$tmp/meta.json" --nodes "$nodes" --pods "$PODS" \
			--workloads "$WORKLOADS"
		rm -rf "$tmp/state" && mkdir "$tmp/state"
		# Every simulated agent connects from 127.0.0.1: lift the per-address connection cap.
		state=(--state-dir "$tmp/state")
		[ "${STATE:-1}" = 0 ] && state=()
		"${COLLECTOR:-build/flowlens-collector}" --listen "127.0.0.1:$port" --token-file "$tmp/token" \
			--metadata-file "$tmp/meta.json" "${state[@]}" --max-agents 60000 \
			--max-series 1000000 --max-connections 4096 --max-connections-per-ip 4096 \
			--log-level warn >"$tmp/collector.log" 2>&1 &
		pid=$!
		for _ in $(seq 300); do
			curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
			sleep 0.1
		done
		echo "=== $nodes nodes, $PODS pods each, $WORKLOADS workloads, $FLOWS aggregates per agent${SHARD:+, shard $SHARD}"
		[ -n "${PERF:-}" ] && { perf record -g -o "$PERF" -p "$pid" -- sleep "$DURATION" >/dev/null 2>&1 & }
		build/flowlens-loadsim --collector "http://127.0.0.1:$port" --token-file "$tmp/token" \
			--nodes "$nodes" --pods "$PODS" --workloads "$WORKLOADS" --flows "$FLOWS" \
			--interval 10 --duration "$DURATION" --collector-pid "$pid" ${SHARD:+--shard "$SHARD"}
		curl -s "http://127.0.0.1:$port/metrics" | awk '
			/^flowlens_collector_series / { print "collector: series " $2 }
			/^flowlens_collector_batches_total\{result="applied"\}/ { print "collector: batches applied " $2 }'
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		pid=
	done
done
