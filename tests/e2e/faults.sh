#!/usr/bin/env bash
# End to end: retransmissions and kernel drops. An iptables `statistic` rule in the client pod
# drops a random 5% of what the server sends it; the rule's own packet counter is the ground
# truth for the drops (reason netfilter_drop), and the server has to retransmit.
source "$(dirname "$0")/lib.sh"
echo "faults.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}

lab_up
C=${LAB_POD_IP[c]}
mkdir -p "$WORK/www-c" && head -c 3000000 /dev/urandom >"$WORK/www-c/blob"
lab_web c 8080 "$WORK/www-c"
lab_exec a iptables -A INPUT -p tcp -s "$C" --sport 8080 -m statistic --mode random \
	--probability 0.05 -j DROP
lab_metadata >"$WORK/meta.json"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
ip netns exec "$(lab_ns n1)" "$COLLECTOR" --listen 0.0.0.0:9900 --token-file "$WORK/token" \
	--metadata-file "$WORK/meta.json" --new-series-hold 2500ms --join-wait 4s \
	--shutdown-grace 0 >"$WORK/collector.log" 2>&1 &
COLL_PID=$!
stop_all() {
	kill "$COLL_PID" 2>/dev/null
	cleanup
}
trap stop_all EXIT
for _ in $(seq 50); do lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && break; sleep 0.1; done
prom_start 127.0.0.1:9900
URL="http://${LAB_NODE_IP[n1]}:9900"
agent_start n1 --collector "$URL" --token-file "$WORK/token" || exit 1
agent_start n2 --collector "$URL" --token-file "$WORK/token" || exit 1

for _ in $(seq 4); do
	lab_exec a curl -sf -o /dev/null --max-time 60 "http://$C:8080/blob" || fail "download"
done
sleep 2
agent_stop n1
agent_stop n2
sleep 7
dropped=$(lab_exec a iptables -nvxL INPUT | awk '/statistic/ { print $1 }')
echo "  info  the rule dropped $dropped packets"
check_true "packets were dropped" test "${dropped:-0}" -gt 0
sel='source_workload="client",destination_workload="web",destination_port="8080"'
check_eq "drops at the client's side, reason netfilter_drop = the rule's counter" \
	"$(prom_total "flowlens_drops_total{$sel,reporter=\"client\",reason=\"netfilter_drop\"}")" "$dropped"
rtx=$(prom_total "flowlens_tcp_retransmits_total{$sel,reporter=\"server\"}")
check_true "the server retransmitted ($rtx retransmissions for $dropped drops)" test "$rtx" -gt 0
lint=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | promtool check metrics 2>&1)
check_eq "promtool check metrics" "$lint" ""
kill -TERM "$COLL_PID" 2>/dev/null
wait "$COLL_PID" 2>/dev/null
check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
finish
