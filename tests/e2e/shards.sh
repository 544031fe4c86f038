#!/usr/bin/env bash
# Collector shards (docs/design/collector-ha.md): agents on both lab nodes split every
# interval's aggregates between two collectors by server address (--collector "A;B"). Ground
# truth: iptables counters of transfers to two backends on two nodes, one of them also through
# a ClusterIP whose translation happens on the client's node. Checked on the collectors'
# /metrics after the agents have delivered everything and exited:
#   - both shards hold flows, and every server address's series are in exactly one shard,
#     both reporters (client and server side) included;
#   - the totals over both shards equal iptables (nothing lost, nothing in two shards);
#   - the server side of the ClusterIP connection is named by the Service its client dialed:
#     the cross-node join happened inside the shard that holds the backend.
source "$(dirname "$0")/lib.sh"
echo "shards.sh: lab $LAB_ID"
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}

lab_up
lab_pod n1 s0 10.1.1.20 fd00:1:1::20
lab_pod n2 s1 10.1.2.20 fd00:1:2::20
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]}
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
lab_metadata >"$WORK/meta.json"

gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 5201 # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 5201 # 2
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 5201 # 3 (direct and via the ClusterIP)
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5201 # 4

declare -A PID_OF=()
for s in 0 1; do
	ip netns exec "$(lab_ns "s$s")" "$COLLECTOR" --listen 0.0.0.0:9900 --token-file "$WORK/token" \
		--metadata-file "$WORK/meta.json" --ip-labels --new-series-hold 0 --shutdown-grace 0 \
		--join-wait 4s --shard "$s" >"$WORK/s$s.log" 2>&1 &
	PID_OF[$s]=$!
done
stop_all() {
	local s
	for s in "${!PID_OF[@]}"; do kill -KILL "${PID_OF[$s]}" 2>/dev/null; done
	cleanup
}
trap stop_all EXIT
for s in 0 1; do
	for _ in $(seq 50); do
		lab_exec "s$s" curl -sf -o /dev/null http://127.0.0.1:9900/readyz && break
		sleep 0.1
	done
done

lab_exec b iperf3 -s -D -p 5201
lab_exec c iperf3 -s -D -p 5201
SHARDS="http://10.1.1.20:9900;http://10.1.2.20:9900"
agent_start n1 --collector "$SHARDS" --token-file "$WORK/token" || exit 1
agent_start n2 --collector "$SHARDS" --token-file "$WORK/token" || exit 1
lab_exec a iperf3 -c "$B" -p 5201 -n 2M >/dev/null || fail "iperf3 a->b"
lab_exec a iperf3 -c "$C" -p 5201 -n 3M >/dev/null || fail "iperf3 a->c"
lab_exec a iperf3 -c 10.100.0.11 -p 5201 -n 1M >/dev/null || fail "iperf3 a->bulk ClusterIP"
sleep 2
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"
sleep 5 # past --join-wait: every server-side report applied

m0=$(lab_exec s0 curl -sf http://127.0.0.1:9900/metrics)
m1=$(lab_exec s1 curl -sf http://127.0.0.1:9900/metrics)
flows() { grep '^flowlens_flow_bytes_total{' | grep -v 'destination_port="9900"'; }
for s in 0 1; do
	m=m$s
	check_true "shard $s holds flows and labels them shard=\"$s\"" \
		grep -q "^flowlens_flow_bytes_total{shard=\"$s\",.*destination_port=\"5201\"" <<<"${!m}"
done
for ip in "$B" "$C"; do
	in0=$(flows <<<"$m0" | grep -c "destination_ip=\"$ip\"")
	in1=$(flows <<<"$m1" | grep -c "destination_ip=\"$ip\"")
	check_true "server $ip in exactly one shard (series: $in0 and $in1)" \
		test $((in0 > 0)) -ne $((in1 > 0))
	for r in client server; do
		metrics=$( ( [ "$in0" -gt 0 ] && echo "$m0" ) || echo "$m1")
		check_true "server $ip: its $r side is in that shard" \
			grep -q "destination_ip=\"$ip\".*reporter=\"$r\"" <<<"$metrics"
	done
done
read -r _ gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ gb2 <<<"$(gt_read n1 iptables GT 2)"
read -r _ gb3 <<<"$(gt_read n1 iptables GT 3)"
read -r _ gb4 <<<"$(gt_read n1 iptables GT 4)"
metrics="$m0
$m1"
check_eq "both shards: client-side bytes to b = iptables (both ways)" \
	"$(sum_of flowlens_flow_bytes_total 'reporter="client"' "destination_ip=\"$B\"" 'destination_port="5201"')" "$((gb1 + gb2))"
check_eq "both shards: client-side bytes to c, direct and through the ClusterIP = iptables" \
	"$(sum_of flowlens_flow_bytes_total 'reporter="client"' "destination_ip=\"$C\"" 'destination_port="5201"')" "$((gb3 + gb4))"
check_eq "both shards: server-side bytes at c = iptables" \
	"$(sum_of flowlens_flow_bytes_total 'reporter="server"' "destination_ip=\"$C\"" 'destination_port="5201"')" "$((gb3 + gb4))"
check_true "c's server side names the Service its client dialed (joined in c's shard)" \
	test "$(grep 'destination_service="bulk"' <<<"$metrics" | grep "destination_ip=\"$C\"" | grep -c 'reporter="server"')" -gt 0
joined=$(awk '$1 == "flowlens_collector_join_total{result=\"joined\"}" { s += $2 } END { print s + 0 }' <<<"$metrics")
check_true "cross-node joins made ($joined)" test "$joined" -gt 0
for s in 0 1; do
	check_true "shard $s got batches from both agents" \
		test "$(awk '$1 == "flowlens_collector_agents" { print $2 }' <<<"$(lab_exec "s$s" curl -sf http://127.0.0.1:9900/metrics)")" = 2
done
for s in 0 1; do
	kill -TERM "${PID_OF[$s]}"
	wait "${PID_OF[$s]}"
	check_eq "shard $s exits 0 after SIGTERM" "$?" 0
	unset "PID_OF[$s]"
done
finish
