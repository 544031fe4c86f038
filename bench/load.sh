#!/usr/bin/env bash
# Benchmark (not a test): what the agent costs an HTTP service. wrk in pod a drives short
# keep-alive requests through the ClusterIP to nginx in pods b and c, alternating runs without
# and with agents (every signal on) on both nodes; reports requests/s and p99 latency per run
# and the agents' CPU and resident memory. Then the agent's memory with 100k active flows.
# BENCH_SECONDS (default 10) per run, BENCH_ROUNDS (default 3) pairs of runs.
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
source tests/lab/lab.sh
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WORK=$(mktemp -d "/tmp/${LAB_ID}-bench.XXXX")
APIDS=()
stop_agents() {
	local p
	for p in "${APIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${APIDS[@]}"; do wait "$p" 2>/dev/null; done
	APIDS=()
}
cleanup() { stop_agents; lab_down; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
LAB_NO_TRAP=1 lab_up
for p in b c; do
	mkdir -p "$WORK/www-$p" && echo "hello from $p" >"$WORK/www-$p/index.html"
	lab_web "$p" 8080 "$WORK/www-$p"
done
start_agents() { # ARGS...
	local n
	for n in n1 n2; do
		FLOWLENS_NODE_NAME="$n" ip netns exec "$(lab_ns "$n")" "$TOP/build/flowlens-agent" \
			--listen 127.0.0.1:9810 --interval 10s "$@" >"$WORK/$n.log" 2>&1 &
		APIDS+=($!)
	done
	for n in n1 n2; do
		for _ in $(seq 50); do lab_exec "$n" curl -sf -o /dev/null http://127.0.0.1:9810/healthz && break; sleep 0.1; done
	done
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
run_wrk() { # -> "rps p99"
	lab_exec a wrk -t2 -c32 -d"${SECS}s" --latency http://10.100.0.10/ 2>/dev/null |
		awk '/Requests\/sec/ { r = $2 } /^ +99%/ { p = $2 } END { print r, p }'
}
echo "== HTTP load: wrk -t2 -c32 through ClusterIP 10.100.0.10 (nginx in b and c), ${SECS}s runs"
printf '%-8s %-14s %12s %10s %14s %12s\n' round agents req/s p99 "agent CPU %" "agent RSS"
hz=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
	read -r rps p99 <<<"$(run_wrk)"
	printf '%-8s %-14s %12s %10s %14s %12s\n' "$r" none "$rps" "$p99" - -
	start_agents
	t0=$(cpu_ticks "${APIDS[0]}")
	read -r rps p99 <<<"$(run_wrk)"
	t1=$(cpu_ticks "${APIDS[0]}")
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$SECS" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
	printf '%-8s %-14s %12s %10s %14s %12s\n' "$r" "all signals" "$rps" "$p99" "$cpu" "$(rss_kib "${APIDS[0]}") KiB"
	stop_agents
done

echo
echo "== agent memory with active flows (UDP from pod a to 50,000 ports of pod c per source port;"
echo "   node 1 sees each flow at a's veth and at its ENI: two kernel entries per flow)"
start_agents --flow-table-size 262144 --idle-timeout 5m
echo "node 1 agent: RSS $(rss_kib "${APIDS[0]}") KiB with no flows"
for sport in 40001 40002; do
	lab_exec a /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[2])))
for dport in range(10000, 60000):
    s.sendto(b"x", (sys.argv[1], dport))
' "${LAB_POD_IP[c]}" "$sport"
	sleep 12
	entries=$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics |
		awk '$1 == "flowlens_agent_flow_table_entries{family=\"ipv4\"}" { print $2 }')
	echo "node 1 agent: $entries kernel flow entries, RSS $(rss_kib "${APIDS[0]}") KiB"
done
