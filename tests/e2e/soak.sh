#!/usr/bin/env bash
# Soak: agents on both lab nodes and the collector (--state-dir) with a real Prometheus, for
# SOAK_SECONDS (default 600), under churn of SOAK_PODS pod interfaces (default 1,000: created
# and deleted in rounds), steady TCP flows, HTTP requests through a ClusterIP and DNS queries
# to a real dnsmasq; the collector is restarted twice (SIGTERM) and killed once (SIGKILL).
# Checked against ground truth: after every churn round the agent is attached to exactly the
# live interfaces (`ip link`); its descriptors and RSS are flat after warm-up; the collector's
# descriptors are flat across its last life; at the end the totals Prometheus holds equal
# the iptables counters, the HTTP client's own request count and dig's own tally of answers.
# Every traffic source is checked to have run as planned (its own tally of successes, none
# failed) before its metric is compared, and the restarts to have happened (Prometheus saw the
# collector's counters reset). The schedule (10 rounds of churn, restarts after rounds 3, 5 and
# 7) is spread over SOAK_SECONDS, so a short soak (CI) still churns every pod and restarts; a
# round takes its own time too (~9 s for 100 pods on 2 vCPUs), so below ~100 s the soak runs
# longer than SOAK_SECONDS rather than churning less.
source "$(dirname "$0")/lib.sh"
echo "soak.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null || ! command -v dnsmasq >/dev/null; then
	echo "SKIP: prometheus or dnsmasq not installed (make deps installs them)"
	exit 77
fi
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_PODS=${SOAK_PODS:-1000}
ROUNDS=10
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}

lab_up
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]}
N1NS=$(lab_ns n1)
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 5201 # 1
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5201 # 2
mkdir -p "$WORK/state" "$WORK/www"
echo hello >"$WORK/www/index.html"

collector_start() {
	ip netns exec "$N1NS" "$COLLECTOR" --listen 0.0.0.0:9900 --token-file "$WORK/token" \
		--shutdown-grace 2s --new-series-hold 2500ms --series-ttl 15m --state-dir "$WORK/state" \
		--metadata-file "$WORK/meta.json" --ip-labels >>"$WORK/collector.log" 2>&1 &
	COLL_PID=$!
	for _ in $(seq 100); do
		lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && return 0
		sleep 0.1
	done
	return 1
}
collector_stop() { # SIGNAL
	local rc
	kill "-$1" "$COLL_PID"
	wait "$COLL_PID" 2>/dev/null
	rc=$?
	COLL_PID=
	# After SIGTERM a clean exit; after SIGKILL, killed by it (128 + 9).
	check_eq "collector exit status after SIG$1" "$rc" "$([ "$1" = KILL ] && echo 137 || echo 0)"
	RESTARTS=$((RESTARTS + 1))
}
RESTARTS=0
lab_metadata >"$WORK/meta.json"
collector_start || { fail "collector start"; finish; exit 1; }
prom_start 127.0.0.1:9900
URL="http://${LAB_NODE_IP[n1]}:9900"
lab_exec c iperf3 -s -D -p 5201
lab_web b 8080 "$WORK/www"
lab_web c 8080 "$WORK/www"
lab_exec c dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address="$C" --port=53 --address=/web.shop.svc.cluster.local/10.100.0.10 \
	--pid-file="$WORK/dnsmasq.pid" --log-facility=/dev/null &
agent_start n1 --collector "$URL" --token-file "$WORK/token" --reconcile-interval 10s || exit 1
agent_start n2 --collector "$URL" --token-file "$WORK/token" --reconcile-interval 10s || exit 1
APID=${AGENT_PID[n1]}

# Load, until $WORK/stop appears: TCP transfers, HTTP through the ClusterIP, DNS queries. Each
# loop keeps its own tally of what it did ("ok" or "fail", one line per try; dig: the status it
# got, or "noanswer").
LOAD_PIDS=()
load() {
	while [ ! -e "$WORK/stop" ]; do
		if lab_exec a iperf3 -c "$C" -p 5201 -n 2M -b 20M >/dev/null 2>>"$WORK/iperf3.err"; then
			echo ok >>"$WORK/iperf3.count"
		else
			echo fail >>"$WORK/iperf3.count"
		fi
		sleep 1
	done &
	LOAD_PIDS+=($!)
	while [ ! -e "$WORK/stop" ]; do
		if lab_exec a curl -s -o /dev/null --max-time 2 http://10.100.0.10/; then
			echo ok >>"$WORK/http.count"
		else
			echo fail >>"$WORK/http.count"
		fi
		sleep 0.2
	done &
	LOAD_PIDS+=($!)
	while [ ! -e "$WORK/stop" ]; do
		local out st
		if out=$(lab_exec a dig @"$C" web.shop.svc.cluster.local A +tries=1 +timeout=1 2>/dev/null); then
			st=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
			echo "${st:-unparsed}" >>"$WORK/dns.count"
		else
			echo noanswer >>"$WORK/dns.count"
		fi
		sleep 0.5
	done &
	LOAD_PIDS+=($!)
}
load_start=$(date +%s)
load

# Churn in rounds: SOAK_PODS/ROUNDS pod interfaces created at once, then deleted at once.
per=$((SOAK_PODS / ROUNDS))
churn() { # ROUND add|del: pods enis<round>xxxx (peers qenis..., not matched by the agent)
	lab_veth_burst n1 "$2" "enis$(printf %02x "$1")" 1 "$per"
}
live() { # interfaces matching the agent's default globs
	ip -n "$N1NS" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -cE '^(eni|eth|ens|veth)'
}
attached() {
	lab_exec n1 curl -sf --max-time 5 http://127.0.0.1:9810/metrics |
		awk '$1 ~ /^flowlens_agent_interfaces\{/ { s += $2 } END { print s + 0 }'
}
settle() { # up to 60 s for attached == live; prints "attached live"
	local n w
	for _ in $(seq 60); do
		n=$(attached)
		w=$(live)
		[ "$n" = "$w" ] && break
		sleep 1
	done
	echo "$n $w"
}
fds() { ls "/proc/$1/fd" | wc -l; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

start=$(date +%s)
round_s=$((SOAK_SECONDS / ROUNDS))
mismatch=0
for r in $(seq 1 $ROUNDS); do
	churn "$r" add
	read -r n w <<<"$(settle)"
	[ "$n" = "$w" ] || { mismatch=$((mismatch + 1)); echo "  round $r after add: attached $n, live $w"; }
	churn "$r" del
	read -r n w <<<"$(settle)"
	[ "$n" = "$w" ] || { mismatch=$((mismatch + 1)); echo "  round $r after delete: attached $n, live $w"; }
	case $r in
	2) warm_fds=$(fds "$APID") warm_rss=$(rss_kb "$APID") ;;
	3 | 5)
		if [ "${SOAK_RESTARTS:-1}" = 1 ]; then
			collector_stop TERM
			collector_start || fail "collector restart (round $r)"
		fi
		;;
	7)
		if [ "${SOAK_RESTARTS:-1}" = 1 ]; then
			collector_stop KILL
			collector_start || fail "collector restart after SIGKILL"
		fi
		cfds0=$(fds "$COLL_PID")
		;;
	esac
	echo "  round $r: $((r * per)) pods churned, agent fds $(fds "$APID") rss $(rss_kb "$APID") kB," \
		"collector fds $(fds "$COLL_PID") rss $(rss_kb "$COLL_PID") kB, $(($(date +%s) - start)) s"
	# Pace the rounds over SOAK_SECONDS.
	left=$((start + r * round_s - $(date +%s)))
	[ "$left" -gt 0 ] && sleep "$left"
done
check_eq "$SOAK_PODS pods churned in $ROUNDS rounds: attachments = live interfaces after every burst" "$mismatch" 0
end_fds=$(fds "$APID")
end_rss=$(rss_kb "$APID")
check_true "agent descriptors flat after warm-up ($warm_fds -> $end_fds; an HTTP client may hold one)" \
	test "$end_fds" -le $((warm_fds + 2))
check_true "agent RSS flat after warm-up ($warm_rss -> $end_rss kB, < +8 MiB)" test $((end_rss - warm_rss)) -lt 8192
check_true "collector descriptors flat over its last life ($cfds0 -> $(fds "$COLL_PID"))" \
	test "$(fds "$COLL_PID")" -le $((cfds0 + 8))
echo "  info  reconciles $(agent_metric n1 'flowlens_agent_reconciles_total{result="ok"}'), repairs" \
	"$(agent_metric n1 flowlens_agent_reconcile_repairs_total) (events that raced a reconcile's dump count too)"

churned=$(agent_metric n1 'flowlens_agent_interface_events_total{event="forgotten"}')
check_true "churn happened: the agent forgot ${churned:-no} interfaces (>= $SOAK_PODS churned)" \
	test "${churned:-0}" -ge "$SOAK_PODS"

touch "$WORK/stop"
wait "${LOAD_PIDS[@]}" # the load loops end (each finishes its current try)
load_s=$(($(date +%s) - load_start))
sleep 1.5 # the last ACKs and FINs
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"

# The traffic ran as planned: each loop, paced by its sleep, made at least a third of the tries
# its pace allows over the $load_s s of load if each try took up to a second more (a loaded
# machine), and no try failed. Only then are the metrics compared with its tally.
tally() { grep -c "^$2\$" "$WORK/$1.count" 2>/dev/null; } # LOOP WHAT -> count
iperf_ok=$(tally iperf3 ok) iperf_fail=$(tally iperf3 fail)
http_ok=$(tally http ok) http_fail=$(tally http fail)
dns_ok=$(tally dns NOERROR) dns_all=$(wc -l <"$WORK/dns.count" 2>/dev/null || echo 0)
echo "  info  over $load_s s of load: iperf3 $iperf_ok ok, $iperf_fail failed; curl $http_ok ok," \
	"$http_fail failed; dig $dns_ok NOERROR of $dns_all ($(sort "$WORK/dns.count" 2>/dev/null | uniq -c | tr -s ' \n' ' '))"
plan() { # PACE_S -> the least number of tries expected
	awk -v t="$load_s" -v p="$1" 'BEGIN { printf "%d\n", t / (p + 1) / 3 + 1 }'
}
check_true "iperf3 loop ran: $iperf_ok transfers of 2 MiB (>= $(plan 1)), $iperf_fail failed" \
	test "$iperf_ok" -ge "$(plan 1)" -a "$iperf_fail" = 0
check_true "curl loop ran: $http_ok requests (>= $(plan 0.2)), $http_fail failed" \
	test "$http_ok" -ge "$(plan 0.2)" -a "$http_fail" = 0
check_true "dig loop ran: $dns_ok NOERROR answers (>= $(plan 0.5)), of $dns_all queries" \
	test "$dns_ok" -ge "$(plan 0.5)" -a "$dns_ok" = "$dns_all"
[ -s "$WORK/iperf3.err" ] && sed 's/^/  iperf3: /' "$WORK/iperf3.err" | sort | uniq -c | head -5
sel() { # REPORTER DIRECTION
	echo "flowlens_flow_bytes_total{source_ip=\"$A\",destination_ip=\"$C\",destination_port=\"5201\",protocol=\"tcp\",reporter=\"$1\",direction=\"$2\"}"
}
read -r _ gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ gb2 <<<"$(gt_read n1 iptables GT 2)"
check_true "iptables saw at least the payload of the $iperf_ok transfers ($gb1 B >= $iperf_ok x 2 MiB)" \
	test "$gb1" -ge $((iperf_ok * 2097152)) -a "$iperf_ok" -gt 0
# (prom_wait: until Prometheus holds the total or 40 s pass: the agents' last batches, the
# new-series hold, scrapes)
check_eq "Prometheus a->c bytes forward (client) over the soak = iptables" "$(prom_wait "$(sel client forward)" "$gb1")" "$gb1"
check_eq "Prometheus a->c bytes reply (client) = iptables" "$(prom_wait "$(sel client reply)" "$gb2")" "$gb2"
check_eq "Prometheus a->c bytes forward (server, node 2) = iptables" "$(prom_wait "$(sel server forward)" "$gb1")" "$gb1"
check_eq "Prometheus HTTP requests from a (client side) = the client's own count" \
	"$(prom_wait "flowlens_http_requests_total{source_ip=\"$A\",reporter=\"client\"}" "$http_ok")" "$http_ok"
dns() { # REPORTER [RCODE MATCH]
	echo "flowlens_dns_requests_total{source_ip=\"$A\",destination_ip=\"$C\",qtype=\"A\",reporter=\"$1\"${2:+,$2}}"
}
for r in client server; do
	check_eq "Prometheus DNS NOERROR answers to a ($r side) = dig's own count" \
		"$(prom_wait "$(dns "$r" 'rcode="NOERROR"')" "$dns_ok")" "$dns_ok"
	check_eq "Prometheus DNS queries from a, any rcode ($r side) = dig's queries" \
		"$(prom_wait "$(dns "$r")" "$dns_all")" "$dns_all"
done
# The restarts happened (the collector's own counters started again from zero, as Prometheus
# saw them): two SIGTERMs and one SIGKILL.
want_restarts=0
[ "${SOAK_RESTARTS:-1}" = 1 ] && want_restarts=3
check_eq "collector restarts seen by Prometheus (its batch counter reset)" \
	"$(prom_query 'sum(resets(flowlens_collector_batches_total{result="applied"}[1h]))' | jq -r '.data.result[0].value[1] // "absent"')" \
	"$want_restarts"
check_eq "collector restarts made by the schedule" "$RESTARTS" "$want_restarts"
kill -TERM "$COLL_PID"
wait "$COLL_PID"
check_eq "collector exit status after SIGTERM" "$?" 0
COLL_PID=
check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
finish
