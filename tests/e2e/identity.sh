#!/usr/bin/env bash
# End to end: flows named by workload and Service, both sides of the ClusterIP translation.
# A client pod calls a ClusterIP with two backends on two nodes (kube-proxy-style DNAT); the
# collector names addresses from a metadata file; a real Prometheus scrapes it. Checked
# against iptables counters for the same packets: the bytes under the right source workload,
# destination workload, destination service and dialed port, from both reporters (the
# cross-node server side through the collector's join), per backend pod; a deleted pod whose
# IP is reused by another workload; traffic to an address outside the cluster is "world".
#
# XLATE=kfunc|netlink|auto selects the agents' translation source (default auto). kfunc is
# expected where the agent's own probe says this kernel offers the conntrack kfuncs (6.0+,
# nf_conntrack's BTF readable); elsewhere auto, whose fallback to netlink is then what is
# tested (a request for kfunc there runs auto too). FLOWLENS_TEST_NO_KFUNCS=1: as on such a
# kernel.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kernel.sh"
XLATE=${XLATE:-auto}
echo "identity.sh: lab $LAB_ID, translation $XLATE"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi

lab_up
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]} X=203.0.113.10
A6=${LAB_POD_IP6[a]} B6=${LAB_POD_IP6[b]} C6=${LAB_POD_IP6[c]}
lab_external n2 inet "$X"
for p in b c inet; do
	mkdir -p "$WORK/www-$p"
	head -c 150000 /dev/urandom >"$WORK/www-$p/blob"
	lab_web "$p" $([ "$p" = inet ] && echo 80 || echo 8080) "$WORK/www-$p"
done
# Ground truth on node 1's FORWARD chain: after kube-proxy's DNAT (destination = backend),
# before the reply's reverse translation (source = backend).
gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 8080 # 1 a -> web pod b
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 8080 # 2
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 8080 # 3 a -> web pod c (node 2)
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 8080 # 4
gt_rule n1 iptables GT -s "$A" -d "$X" -p tcp --dport 80   # 5 a -> the internet
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 9090 # 6 a -> the IP's next owner
gt_rule n1 iptables GT -s "$A" -d "$C" -p udp --dport 5201 # 7 a -> Service bulk (UDP)
gt_rule n1 iptables GT -s "$C" -d "$A" -p udp --sport 5201 # 8
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5201 # 9 (iperf3's control connection)
gt_init n1 ip6tables GT6 FORWARD
gt_rule n1 ip6tables GT6 -s "$A6" -d "$B6" -p tcp --dport 8080 # 1 a -> web over IPv6
gt_rule n1 ip6tables GT6 -s "$B6" -d "$A6" -p tcp --sport 8080 # 2
gt_rule n1 ip6tables GT6 -s "$A6" -d "$C6" -p tcp --dport 8080 # 3
gt_rule n1 ip6tables GT6 -s "$C6" -d "$A6" -p tcp --sport 8080 # 4

xlate_plan "$XLATE" || { finish; exit 1; }
echo "  info  translation requested $XLATE: the agents run --translation $XLATE_ARG, must use $XLATE_WANT"
stack_start --pod-labels
stack_agents --translation "$XLATE_ARG" || exit 1
check_eq "agent translation mode" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | sed -n 's/^flowlens_agent_translation_info{mode="\(.*\)"} 1$/\1/p')" \
	"$XLATE_WANT"

# Through the ClusterIP: each curl a new connection, kube-proxy picks a backend at random.
for _ in $(seq 24); do
	lab_exec a curl -sf -o /dev/null http://10.100.0.10/blob || fail "curl ClusterIP"
done
for _ in $(seq 12); do
	lab_exec a curl -sf -o /dev/null 'http://[fd00:100::10]/blob' || fail "curl IPv6 ClusterIP"
done
lab_exec a curl -sf -o /dev/null "http://$X/blob" || fail "curl the internet host"
# UDP through a ClusterIP (iperf3's control connection goes through the TCP one, same backend).
lab_exec c iperf3 -s -D -p 5201
sleep 0.3
lab_exec a iperf3 -u -c 10.100.0.11 -p 5201 -b 20M -n 2M -l 1200 >/dev/null || fail "iperf3 UDP ClusterIP"

# The pod b goes away; its IP goes to a pod of another workload (a StatefulSet) serving 9090.
lab_pod_del b
sleep 1
LAB_POD_APP[d]="shop StatefulSet/cache"
lab_pod n1 d "$B" fd00:1:1::3
mkdir -p "$WORK/www-d" && head -c 80000 /dev/urandom >"$WORK/www-d/blob"
lab_web d 9090 "$WORK/www-d"
lab_metadata >"$WORK/meta.json.new" && mv "$WORK/meta.json.new" "$WORK/meta.json"
for _ in $(seq 30); do
	[ "$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | awk '$1 == "flowlens_collector_metadata_file_loads_total{result=\"ok\"}" { print $2 }')" = 2 ] && break
	sleep 0.2
done
sleep 1.2 # the next batches' intervals begin after the change
for _ in 1 2 3; do
	lab_exec a curl -sf -o /dev/null "http://$B:9090/blob" || fail "curl the new pod"
done
sleep 2
if [ "$XLATE_WANT" = kfunc ]; then
	# Every connection here is complete, so the datapath's one lookup per try (own tuple at
	# ingress, reversed at egress) must have found each translation itself: the netlink
	# complement (for connections whose packets all passed before conntrack) had nothing to do.
	check_eq "kfunc: the datapath translated every connection, no netlink query needed" \
		"$(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="netlink"}')" 0
	check_true "kfunc: ...and translations were found" \
		test "$(agent_metric n1 'flowlens_agent_connections_translated_total{translation="nat"}')" -gt 0
else
	# Netlink: the datapath looks nothing up (its programs are loaded without the kfuncs); every
	# translation comes from user-space conntrack queries.
	check_eq "netlink: no lookup in the datapath" \
		"$(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="datapath"}')" 0
	check_true "netlink: conntrack queried over netlink ($(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="netlink"}'))" \
		test "$(agent_metric n1 'flowlens_agent_conntrack_lookups_total{source="netlink"}')" -gt 0
	check_true "netlink: ...and translations were found" \
		test "$(agent_metric n1 'flowlens_agent_connections_translated_total{translation="nat"}')" -gt 0
fi
agent_stop n1
agent_stop n2
sleep 6 # the join wait, then Prometheus' next scrapes

read -r _ b1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ b2 <<<"$(gt_read n1 iptables GT 2)"
read -r _ b3 <<<"$(gt_read n1 iptables GT 3)"
read -r _ b4 <<<"$(gt_read n1 iptables GT 4)"
read -r _ b5 <<<"$(gt_read n1 iptables GT 5)"
read -r p6 b6 <<<"$(gt_read n1 iptables GT 6)"
read -r _ u1 <<<"$(gt_read n1 iptables GT 7)"
read -r _ u2 <<<"$(gt_read n1 iptables GT 8)"
read -r _ t2 <<<"$(gt_read n1 iptables GT 9)"
read -r _ v1 <<<"$(gt_read n1 ip6tables GT6 1)"
read -r _ v2 <<<"$(gt_read n1 ip6tables GT6 2)"
read -r _ v3 <<<"$(gt_read n1 ip6tables GT6 3)"
read -r _ v4 <<<"$(gt_read n1 ip6tables GT6 4)"
echo "  info  ground truth: a->b $b1/$b2 B, a->c $b3/$b4 B, IPv6 a->b $v1/$v2 B, a->c $v3/$v4 B,"
echo "        a->internet $b5 B, a->new pod $b6 B, UDP a->bulk $u1/$u2 B"
check_true "both backends were used (IPv4 and IPv6)" test "$b1" -gt 0 -a "$b3" -gt 0 -a "$v1" -gt 0 -a "$v3" -gt 0

web='source_namespace="shop",source_workload="client",source_workload_kind="Deployment",destination_namespace="shop",destination_workload="web",destination_workload_kind="Deployment",destination_service="web",destination_port="80",protocol="tcp"'
for r in client server; do
	check_eq "client -> Service web:80 forward bytes (IPv4 + IPv6), reporter $r" \
		"$(prom_total "flowlens_flow_bytes_total{$web,reporter=\"$r\",direction=\"forward\"}")" $((b1 + b3 + v1 + v3))
	check_eq "client -> Service web:80 reply bytes (IPv4 + IPv6), reporter $r" \
		"$(prom_total "flowlens_flow_bytes_total{$web,reporter=\"$r\",direction=\"reply\"}")" $((b2 + b4 + v2 + v4))
	bulk='source_workload="client",destination_workload="web",destination_service="bulk",destination_port="5201",protocol="udp"'
	check_eq "client -> Service bulk:5201 over UDP forward bytes, reporter $r" \
		"$(prom_total "flowlens_flow_bytes_total{$bulk,reporter=\"$r\",direction=\"forward\"}")" "$u1"
	check_eq "client -> Service bulk:5201 over UDP reply bytes, reporter $r" \
		"$(prom_total "flowlens_flow_bytes_total{$bulk,reporter=\"$r\",direction=\"reply\"}")" "$u2"
done
podc=$(jq -r '.items[] | select(.kind == "Pod" and .status.podIP == "'"$C"'") | .metadata.name' "$WORK/meta.json")
# (the UDP service's backend is pod c too: its bytes are not under Service web)
check_eq "server side of the backend on the other node (joined with the client's report)" \
	"$(prom_total "flowlens_flow_bytes_total{$web,reporter=\"server\",direction=\"forward\",destination_pod=\"$podc\"}")" $((b3 + v3))
check_eq "server side of the backend on the client's node" \
	"$(prom_total "flowlens_flow_bytes_total{$web,reporter=\"server\",direction=\"forward\",destination_pod=~\"web-.*-b\"}")" $((b1 + v1))
check_eq "client side, per backend pod (the translation's backend)" \
	"$(prom_total "flowlens_flow_bytes_total{$web,reporter=\"client\",direction=\"forward\",destination_pod=\"$podc\"}")" $((b3 + v3))
check_eq "no untranslated series of the ClusterIP's connections (first packets included)" \
	"$(prom_query 'count(flowlens_flow_bytes_total{source_workload="client",destination_workload="web",destination_port="8080"} or flowlens_flow_bytes_total{source_workload="client",destination_service="web",destination_workload!="web"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0
check_eq "traffic to the internet is world" \
	"$(prom_total 'flowlens_flow_bytes_total{source_workload="client",destination_workload_kind="world",destination_port="80",reporter="client",direction="forward"}')" "$b5"
check_eq "the reused IP is named by its new pod" \
	"$(prom_total 'flowlens_flow_bytes_total{source_workload="client",destination_workload="cache",destination_workload_kind="StatefulSet",destination_service="",destination_port="9090",reporter="client",direction="forward"}')" "$b6"
check_eq "...and packets" \
	"$(prom_total 'flowlens_flow_packets_total{source_workload="client",destination_workload="cache",destination_port="9090",reporter="client",direction="forward"}')" "$p6"
check_eq "nothing of the new pod's traffic is named by the old workload" \
	"$(prom_query 'count(flowlens_flow_bytes_total{destination_workload="web",destination_port="9090"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0
zone=$(prom_total 'flowlens_zone_bytes_total{source_zone="lab-zone-b",destination_zone="lab-zone-a",reporter="client"}')
check_eq "zone bytes lab-zone-b -> lab-zone-a (everything pod c sent to pod a)" "$zone" $((b4 + v4 + u2 + t2))
join=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | awk '$1 == "flowlens_collector_join_total{result=\"joined\"}" { print $2 }')
check_true "server-side reports joined with the client side's ($join)" test "${join:-0}" -gt 0
stack_finish
