#!/usr/bin/env bash
# Benchmark (not a test): what ClusterIP translation costs the agent per new connection, by
# source: conntrack kfuncs in the datapath vs conntrack netlink queries from user space (the
# path where nf_conntrack is a module and the agent has no CAP_SYS_ADMIN). In the lab, wrk
# opens new connections (Connection: close) from pod a to ClusterIP 10.100.0.10:80 for
# CT_SECONDS (default 10) with the agent in each mode, rotated CT_ROUNDS (default 5) times;
# the figure is the agent's own CPU time (utime + stime, load to one drain after the traffic)
# per new connection, and what it is at 1,000 new connections per second. The kfunc path's
# own cost is in the datapath, per packet (bench/run, docs/benchmarks.md), not here.
source "$(dirname "$0")/../tests/e2e/lib.sh"
SECS=${CT_SECONDS:-10}
ROUNDS=${CT_ROUNDS:-5}
command -v wrk >/dev/null || { echo "bench/conntrack.sh: wrk missing (make deps)"; exit 1; }
lab_up
mkdir -p "$WORK/www" && echo ok >"$WORK/www/index.html"
lab_web b 8080 "$WORK/www"
lab_web c 8080 "$WORK/www"
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
printf '%-8s %6s %10s %8s %14s %14s %16s\n' mode round conns conn/s "agent CPU ms" "us/connection" "lookups dp/nl"
declare -A all_us
for r in $(seq "$ROUNDS"); do
	for mode in kfunc netlink; do
		agent_start n1 --translation "$mode" --interval 10s --output none || exit 1
		pid=${AGENT_PID[n1]}
		t0=$(cpu_ticks "$pid")
		n=$(lab_exec a wrk -t 1 -c 8 -d "${SECS}s" -H 'Connection: close' http://10.100.0.10/ 2>/dev/null |
			awk '/requests in/ { print $1 }')
		sleep 11 # one drain after the load, where netlink queries run
		t1=$(cpu_ticks "$pid")
		dp=$(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="datapath"}')
		nl=$(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="netlink"}')
		agent_stop n1 >/dev/null
		ms=$(((t1 - t0) * 1000 / hz))
		us=$(awk -v ms="$ms" -v n="$n" 'BEGIN { printf "%.1f", ms * 1000 / n }')
		all_us[$mode]="${all_us[$mode]:-} $us"
		printf '%-8s %6d %10d %8.0f %14d %14s %16s\n' "$mode" "$r" "$n" "$(awk -v n="$n" -v s="$SECS" 'BEGIN { print n / s }')" "$ms" "$us" "$dp/$nl"
	done
done
for mode in kfunc netlink; do
	# shellcheck disable=SC2086
	printf '%s\n' ${all_us[$mode]} | sort -g | awk -v m="$mode" '{ v[NR] = $1 } END {
		med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%-8s median %.1f us of agent CPU per new connection (%.1f to %.1f) = %.2f%% of one CPU at 1,000 new connections/s\n", m, med, v[1], v[NR], med * 1000 / 1e6 * 100 }'
done
finish
