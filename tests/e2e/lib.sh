#!/usr/bin/env bash
# shellcheck shell=bash
# Helpers for the end-to-end tests: assertions, agents in node namespaces, iptables ground truth.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lab/lab.sh
source "$TOP/tests/lab/lab.sh"
# cleanup (below) takes the lab down; lab_up's own EXIT trap would replace it and leave the
# agents, servers and $WORK behind.
LAB_NO_TRAP=1
AGENT=${FLOWLENS_AGENT:-$TOP/build/flowlens-agent}
WORK=$(mktemp -d "/tmp/${LAB_ID}.XXXX")
FAILS=0
CHECKS=0
declare -gA AGENT_PID
CONTAINERS=() # podman containers the test started (cleanup removes them)

pass() { CHECKS=$((CHECKS + 1)); echo "  ok    $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "  FAIL  $*"; }
# check_eq WHAT GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: got '$2', want '$3'"; fi
}
check_true() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

cleanup() {
	local n f
	[ -n "${PROM_PID:-}" ] && kill "$PROM_PID" 2>/dev/null
	[ -n "${COLL_PID:-}" ] && kill "$COLL_PID" 2>/dev/null
	# The tests' own servers (HTTP, DNS, fake API) write pid files.
	for f in "$WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	for n in "${!AGENT_PID[@]}"; do
		kill -TERM "${AGENT_PID[$n]}" 2>/dev/null
	done
	for n in "${!AGENT_PID[@]}"; do
		wait "${AGENT_PID[$n]}" 2>/dev/null
	done
	for n in "${CONTAINERS[@]}"; do podman rm -f -t 5 "$n" >/dev/null 2>&1; done
	lab_down
	[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# agent_start NODE [ARGS...]: an agent in the node namespace, flow log in $WORK/NODE.jsonl.
agent_start() {
	local node=$1
	shift
	# Not through a shell function: $! must be the agent itself (ip netns exec execs it).
	FLOWLENS_NODE_NAME="$LAB_ID-$node" ip netns exec "$(lab_ns "$node")" "$AGENT" --interval 1s --listen 127.0.0.1:9810 --output json \
		--log-level info "$@" >"$WORK/$node.jsonl" 2>"$WORK/$node.log" &
	AGENT_PID[$node]=$!
	local i
	for i in $(seq 1 100); do
		if lab_exec "$node" curl -sf -o /dev/null http://127.0.0.1:9810/healthz; then
			return 0
		fi
		if ! kill -0 "${AGENT_PID[$node]}" 2>/dev/null; then
			echo "agent on $node died:"
			cat "$WORK/$node.log"
			return 1
		fi
		sleep 0.1
	done
	echo "agent on $node did not become healthy"
	return 1
}

# agent_stop NODE: SIGTERM (final drain, detach); returns the agent's exit status.
agent_stop() {
	local node=$1 rc
	kill -TERM "${AGENT_PID[$node]}"
	wait "${AGENT_PID[$node]}"
	rc=$?
	unset "AGENT_PID[$node]"
	return $rc
}

agent_metric() { # NODE METRIC_WITH_LABELS
	lab_exec "$1" curl -sf http://127.0.0.1:9810/metrics | awk -v m="$2" '$1 == m { print $2 }'
}

# attached_hooks NODE IFNAME: the hooks where the kernel has NODE's agent's programs on IFNAME
# ("tcx:N" per tcx link the agent's process holds, from /proc/PID/fdinfo; "tc:ingress",
# "tc:egress" per flowlens clsact filter), sorted, space-separated; empty when none. Kernel
# state, not the agent's log or metrics.
attached_hooks() {
	local node=$1 ifname=$2 idx pid f hooks=() d
	idx=$(lab_exec "$node" cat "/sys/class/net/$ifname/ifindex" 2>/dev/null) || { echo ""; return; }
	pid=${AGENT_PID[$node]:-}
	if [ -n "$pid" ]; then
		for f in /proc/"$pid"/fdinfo/*; do
			awk -v i="$idx" '$1 == "link_type:" && $2 == "tcx" { t = 1 } $1 == "ifindex:" && $2 == i { x = 1 }
				END { exit !(t && x) }' "$f" 2>/dev/null && hooks+=("tcx:$(basename "$f")")
		done
	fi
	for d in ingress egress; do
		lab_exec "$node" tc filter show dev "$ifname" "$d" 2>/dev/null | grep -q flowlens && hooks+=("tc:$d")
	done
	[ ${#hooks[@]} -eq 0 ] && { echo ""; return; }
	printf '%s\n' "${hooks[@]}" | sed 's/^tcx:[0-9]*/tcx/' | sort | tr '\n' ' ' | sed 's/ $//'
}

agent_prog_ids() { # NODE -> "ingress egress"
	sed -n 's/.*program ids ingress \([0-9]*\) egress \([0-9]*\).*/\1 \2/p' "$WORK/$1.log"
}

# Sum of one aggregate over every interval of a node's flow log:
# flow_sum NODE CLIENT SERVER PORT PROTO REPORTER -> "fwd_pkts fwd_bytes rev_pkts rev_bytes"
flow_sum() {
	jq -rs --arg c "$2" --arg s "$3" --argjson p "$4" --arg pr "$5" --arg r "$6" '
		map(select(.client_ip == $c and .server_ip == $s and .server_port == $p and
			   .protocol == $pr and .reporter == $r)) |
		"\(map(.forward.packets) | add // 0) \(map(.forward.bytes) | add // 0) \(map(.reply.packets) | add // 0) \(map(.reply.bytes) | add // 0)"' \
		"$WORK/$1.jsonl"
}

# Ground truth: counting-only rules (no target) in a chain of their own.
# gt_init NODE TABLE_CMD CHAIN HOOK...: creates CHAIN and jumps to it first from each HOOK.
gt_init() {
	local node=$1 ipt=$2 chain=$3 hook
	shift 3
	lab_exec "$node" "$ipt" -N "$chain"
	for hook in "$@"; do
		lab_exec "$node" "$ipt" -I "$hook" 1 -j "$chain"
	done
}
# gt_rule NODE IPT CHAIN MATCH...: appends a counting rule; its position is its id.
gt_rule() {
	local node=$1 ipt=$2 chain=$3
	shift 3
	lab_exec "$node" "$ipt" -A "$chain" "$@"
}
# gt_read NODE IPT CHAIN N -> "pkts bytes" of the Nth rule (1-based).
gt_read() {
	lab_exec "$1" "$2" -nvxL "$3" | awk -v n="$4" 'NR == n + 2 { print $1, $2 }'
}

# The Helm chart's agent container: root with exactly these capabilities in its bounding set.
CHART_CAPS=-all,+bpf,+net_admin,+perfmon,+sys_resource
# caps_wrapper FILE BOUNDING-SET [AGENT]: a script that runs the agent as the container
# runtime would with that securityContext (bounding set, no inheritable caps, no_new_privs).
caps_wrapper() {
	printf '#!/bin/sh\nexec setpriv --bounding-set %s --inh-caps -all --no-new-privs %s "$@"\n' \
		"$2" "${3:-$TOP/build/flowlens-agent}" >"$1"
	chmod +x "$1"
}

# sum_of METRIC LABEL-MATCH...: the sum of the series in $metrics (an exposition) whose
# labels contain every match.
sum_of() {
	local m=$1
	shift
	awk -v m="$m" -v fs="$*" 'BEGIN { n = split(fs, f, " ") }
		index($0, m "{") == 1 { ok = 1; for (i = 1; i <= n; i++) if (!index($0, f[i])) ok = 0; if (ok) s += $NF }
		END { printf "%d\n", s }' <<<"$metrics"
}

# caps_of PID FIELD: a capability set from /proc (CapEff, CapBnd, ...), in hex.
caps_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# The chart's four: NET_ADMIN 12, SYS_RESOURCE 24, PERFMON 38, BPF 39.
CHART_CAPS_MASK=$(((1 << 12) | (1 << 24) | (1 << 38) | (1 << 39)))

# check_collector_gt WHAT PORT CONNS: the collector on n1 (127.0.0.1:9900) holds, for the
# client side of PORT, the bytes of iptables rules GT 1 + GT 2 on n1 (both directions) and
# CONNS established connections (the client's own count).
check_collector_gt() {
	local b1 b2 metrics
	read -r _ b1 <<<"$(gt_read n1 iptables GT 1)"
	read -r _ b2 <<<"$(gt_read n1 iptables GT 2)"
	metrics=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics)
	check_eq "$1: client-side bytes of port $2 = iptables (both ways)" \
		"$(sum_of flowlens_flow_bytes_total 'reporter="client"' "destination_port=\"$2\"")" "$((b1 + b2))"
	check_eq "$1: established connections = the client's $3" \
		"$(sum_of flowlens_tcp_connections_total 'reporter="client"' 'result="established"')" "$3"
}

finish() {
	local f
	echo "  $CHECKS checks, $FAILS failures"
	if [ "$FAILS" -ne 0 ]; then
		# What CI needs to see to debug a failure it cannot reproduce.
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "  --- last lines of $(basename "$f")"
			tail -n 15 "$f" | sed 's/^/  | /'
		done
	fi
	[ "$FAILS" -eq 0 ]
}

# prom_start TARGET...: a real Prometheus in node 1's namespace scraping TARGETs every second;
# returns once it has scraped them (up == 1). Sets PROM_PID (stopped by cleanup).
# PROM_JOB_EXTRA: YAML lines added to the job (indented 4 spaces), e.g. relabelling.
PROM_PID=
prom_start() {
	local t targets="" scraping=0
	for t in "$@"; do targets="$targets'$t',"; done
	cat >"$WORK/prom.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: flowlens-collector
    static_configs:
      - targets: [${targets%,}]
${PROM_JOB_EXTRA:-}
EOF
	ip netns exec "$(lab_ns n1)" prometheus --config.file="$WORK/prom.yml" \
		--storage.tsdb.path="$WORK/prom" --web.listen-address=127.0.0.1:9090 \
		--log.level=warn >"$WORK/prometheus.log" 2>&1 &
	PROM_PID=$!
	# Prometheus scrapes only some seconds after it reports ready: wait for a real scrape.
	for _ in $(seq 150); do
		if [ "$(prom_query 'min(up{job="flowlens-collector"})' 2>/dev/null | jq -r '.data.result[0].value[1] // empty')" = 1 ]; then
			scraping=1
			break
		fi
		sleep 0.2
	done
	check_eq "Prometheus is scraping the collector" "$scraping" 1
}
prom_query() { # QUERY -> JSON
	lab_exec n1 curl -sf --get http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1"
}
# The run's increase as Prometheus computes it: increase() evaluated at the series' last
# sample, over a range that starts before its first (which is 0: new series are held at zero),
# so that Prometheus has nothing to extrapolate; a restart is a counter reset it absorbs.
# A selector that matches no series prints "absent" (never 0: a missing series must not pass
# a check that wants 0) and returns 1; prom_total0 is for the checks where absent means none.
prom_total() { # SELECTOR
	local t
	t=$(prom_query "$1[15m]" | jq -r '[.data.result[].values[-1][0]] | max // empty')
	[ -n "$t" ] || { echo absent; return 1; }
	lab_exec n1 curl -sf --get http://127.0.0.1:9090/api/v1/query \
		--data-urlencode "query=sum(increase($1[15m]))" --data-urlencode "time=$t" |
		jq -r '.data.result[0].value[1] // "absent" | if . == "absent" then . else tonumber | round end'
}
prom_total0() { # SELECTOR: as prom_total, 0 when no series matches
	local v
	v=$(prom_total "$1") || v=0
	echo "$v"
}

# Polling instead of fixed sleeps. wait_for TIMEOUT_S WANT CMD...: runs CMD every 0.5 s until
# it prints WANT or TIMEOUT_S pass; prints what CMD printed last (the caller compares it, so a
# timeout fails the check with the value it got). Returns 0 when WANT was seen.
wait_for() {
	local timeout=$1 want=$2 got deadline
	shift 2
	deadline=$(($(date +%s%N) / 1000000 + timeout * 1000))
	while :; do
		got=$("$@" 2>/dev/null)
		[ "$got" = "$want" ] && { echo "$got"; return 0; }
		[ $(($(date +%s%N) / 1000000)) -ge "$deadline" ] && { echo "$got"; return 1; }
		sleep 0.5
	done
}
# wait_stable TIMEOUT_S QUIET_S CMD...: runs CMD every 0.5 s until its output (non-empty) has
# not changed for QUIET_S seconds, or TIMEOUT_S pass; prints the last output.
wait_stable() {
	local timeout=$1 quiet=$2 got last="" since now deadline
	shift 2
	now=$(($(date +%s%N) / 1000000))
	deadline=$((now + timeout * 1000))
	since=$now
	while :; do
		got=$("$@" 2>/dev/null)
		now=$(($(date +%s%N) / 1000000))
		if [ "$got" != "$last" ] || [ -z "$got" ]; then
			last=$got since=$now
		elif [ $((now - since)) -ge $((quiet * 1000)) ]; then
			echo "$got"
			return 0
		fi
		[ "$now" -ge "$deadline" ] && { echo "$got"; return 1; }
		sleep 0.5
	done
}
# prom_wait SELECTOR WANT [TIMEOUT_S]: prom_total once Prometheus holds WANT for SELECTOR, or
# what it holds at the deadline (default 40 s: the join wait, the new-series hold and scrapes
# on a loaded machine). Replaces "sleep long enough" before comparing a total to ground truth.
prom_wait() {
	wait_for "${3:-40}" "$2" prom_total "$1"
}
# check_prom WHAT SELECTOR WANT [TIMEOUT_S]: check_eq of prom_wait (default 20 s: the first
# check of a group passes 40, the later ones find their data there already).
check_prom() { check_eq "$1" "$(prom_wait "$2" "$3" "${4:-20}")" "$3"; }

# stack_start [COLLECTOR_ARGS...]: the lab's names (lab_metadata), a collector in node 1
# (waits for /readyz) and a real Prometheus scraping it. Sets COLL_PID, URL; cleanup stops it.
COLL_PID=
stack_start() {
	lab_metadata >"$WORK/meta.json"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
	ip netns exec "$(lab_ns n1)" "${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}" \
		--listen 0.0.0.0:9900 --token-file "$WORK/token" --metadata-file "$WORK/meta.json" \
		--new-series-hold 2500ms --join-wait 4s --shutdown-grace 0 "$@" >"$WORK/collector.log" 2>&1 &
	COLL_PID=$!
	for _ in $(seq 50); do
		lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && break
		sleep 0.1
	done
	prom_start 127.0.0.1:9900
	URL="http://${LAB_NODE_IP[n1]}:9900"
}

# stack_agents [AGENT_ARGS...]: an agent on each node, exporting to the collector.
stack_agents() {
	agent_start n1 --collector "$URL" --token-file "$WORK/token" "$@" || return 1
	agent_start n2 --collector "$URL" --token-file "$WORK/token" "$@"
}

# stack_finish: promtool on the collector's exposition, the collector stopped, no sanitizer
# report in any log, and the summary (the test's exit status).
stack_finish() {
	local lint
	lint=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | promtool check metrics 2>&1)
	check_eq "promtool check metrics" "$lint" ""
	kill -TERM "$COLL_PID" 2>/dev/null
	wait "$COLL_PID" 2>/dev/null
	COLL_PID=
	check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
	finish
}
