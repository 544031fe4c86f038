#!/usr/bin/env bash
# Soak: agents on both lab nodes and the collector (--state-dir) with a real Prometheus, for
# SOAK_SECONDS (default 600), under churn of SOAK_PODS pod interfaces (default 1,000: created
# and deleted in rounds), steady TCP flows, HTTP requests through a ClusterIP and DNS queries
# to a real dnsmasq; the collector is restarted twice (SIGTERM) and killed once (SIGKILL).
# Checked against ground truth: after every churn round the agent is attached to exactly the
# live interfaces (`ip link`); its descriptors and RSS are flat after warm-up; the collector's
# descriptors are flat across its last life; at the end the totals Prometheus holds equal
# the iptables counters and the HTTP client's own request count.
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
	kill "-$1" "$COLL_PID"
	wait "$COLL_PID" 2>/dev/null
	COLL_PID=
}
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

# Load, until $WORK/stop appears: TCP transfers, HTTP through the ClusterIP, DNS queries.
load() {
	while [ ! -e "$WORK/stop" ]; do
		lab_exec a iperf3 -c "$C" -p 5201 -n 2M -b 20M >/dev/null 2>&1
		sleep 1
	done &
	while [ ! -e "$WORK/stop" ]; do
		if lab_exec a curl -s -o /dev/null --max-time 2 http://10.100.0.10/; then
			echo ok >>"$WORK/http.count"
		else
			echo fail >>"$WORK/http.count"
		fi
		sleep 0.2
	done &
	while [ ! -e "$WORK/stop" ]; do
		lab_exec a dig @"$C" web.shop.svc.cluster.local +tries=1 +timeout=1 >/dev/null 2>&1
		sleep 0.5
	done &
}
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

touch "$WORK/stop"
sleep 6 # the load loops end; the agents' last intervals
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"
sleep 5 # past the hold, scrapes
sel() { # REPORTER DIRECTION
	echo "flowlens_flow_bytes_total{source_ip=\"$A\",destination_ip=\"$C\",destination_port=\"5201\",protocol=\"tcp\",reporter=\"$1\",direction=\"$2\"}"
}
read -r _ gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ gb2 <<<"$(gt_read n1 iptables GT 2)"
check_eq "Prometheus a->c bytes forward (client) over the soak = iptables" "$(prom_total "$(sel client forward)")" "$gb1"
check_eq "Prometheus a->c bytes reply (client) = iptables" "$(prom_total "$(sel client reply)")" "$gb2"
check_eq "Prometheus a->c bytes forward (server, node 2) = iptables" "$(prom_total "$(sel server forward)")" "$gb1"
http_ok=$(grep -c '^ok' "$WORK/http.count")
check_eq "Prometheus HTTP requests from a (client side) = the client's own count" \
	"$(prom_total "flowlens_http_requests_total{source_ip=\"$A\",reporter=\"client\"}")" "$http_ok"
kill -TERM "$COLL_PID"
wait "$COLL_PID"
check_eq "collector exit status after SIGTERM" "$?" 0
COLL_PID=
check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
finish
