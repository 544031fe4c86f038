#!/usr/bin/env bash
# Security groups for pods (VPC CNI branch ENIs): a pod whose host-side veth is vlan<hex> and
# whose traffic leaves the node through the branch ENI's interface vlan.eth.N (lab_branch_pod;
# without 8021q here it is not a VLAN device, and the 802.1Q frames a trunk ENI carries are
# covered by test-bpf's VLAN frames). The agent with its default interface patterns attaches to
# the veth as a pod interface, leaves vlan.eth.N alone, and counts the pod's flows exactly
# (iptables on the node for the same traffic), each once.
source "$(dirname "$0")/lib.sh"
echo "branch.sh: lab $LAB_ID"
lab_up
lab_branch_pod n1 d 10.1.1.9 7 n2
D=${LAB_POD_IP[d]} C=${LAB_POD_IP[c]}
veth=${LAB_POD_VETH[d]}
mkdir -p "$WORK/www" && head -c 150000 /dev/urandom >"$WORK/www/blob"
lab_web c 8080 "$WORK/www"
gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$D" -d "$C" -p tcp --dport 8080 # 1
gt_rule n1 iptables GT -s "$C" -d "$D" -p tcp --sport 8080 # 2

# The default --interfaces and --pod-interfaces; listening on every address of both families,
# as the chart's dual-stack default does.
agent_start n1 --listen '[::]:9810' || exit 1
# /v1/flows shows every flow's addresses: without --token-file only clients on this host get
# it; /metrics stays open to Prometheus.
N1=${LAB_NODE_IP[n1]}
check_eq "/v1/flows from a pod over IPv4 (no token configured): refused" \
	"$(lab_exec a curl -s -o /dev/null -w '%{http_code}' "http://$N1:9810/v1/flows")" 403
check_eq "/v1/flows from a pod over IPv6: refused" \
	"$(lab_exec a curl -s -o /dev/null -w '%{http_code}' "http://[fd00:0:0:ff::11]:9810/v1/flows")" 403
check_eq "/metrics from a pod over IPv4 and IPv6" \
	"$(lab_exec a curl -s -o /dev/null -w '%{http_code}' "http://$N1:9810/metrics") $(lab_exec a curl -s -o /dev/null -w '%{http_code}' "http://[fd00:0:0:ff::11]:9810/metrics")" "200 200"
check_eq "/v1/flows on the node itself (127.0.0.1, ::1)" \
	"$(lab_exec n1 curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9810/v1/flows) $(lab_exec n1 curl -s -o /dev/null -w '%{http_code}' 'http://[::1]:9810/v1/flows')" "200 200"
check_eq "refusals counted (not_loopback)" \
	"$(agent_metric n1 'flowlens_agent_flows_api_refused_total{reason="not_loopback"}')" 2
# What the kernel holds (tcx links of the agent's process, or clsact filters), not the log.
check_true "branch pod's veth $veth: both hooks attached ($(attached_hooks n1 "$veth"))" \
	bash -c "[ '$(attached_hooks n1 "$veth")' = 'tcx tcx' ] || [ '$(attached_hooks n1 "$veth")' = 'tc:egress tc:ingress' ]"
check_true "trunk ENI eth0: both hooks attached ($(attached_hooks n1 eth0))" \
	bash -c "[ '$(attached_hooks n1 eth0)' = 'tcx tcx' ] || [ '$(attached_hooks n1 eth0)' = 'tc:egress tc:ingress' ]"
check_eq "branch ENI interface vlan.eth.7: nothing attached" "$(attached_hooks n1 vlan.eth.7)" ""
check_true "...and the pod veth's kind is pod" \
	grep -q "$veth (ifindex [0-9]*): attached, kind pod" "$WORK/n1.log"
# The traffic really crosses the branch ENI: its own counters move.
rx0=$(lab_exec n1 cat /sys/class/net/vlan.eth.7/statistics/rx_packets)
for _ in $(seq 6); do lab_exec d curl -s -m 10 -o /dev/null "http://$C:8080/blob" || fail "curl d->c"; done
rx1=$(lab_exec n1 cat /sys/class/net/vlan.eth.7/statistics/rx_packets)
check_true "replies arrived through vlan.eth.7 ($((rx1 - rx0)) packets)" test $((rx1 - rx0)) -gt 50
sleep 2.5
agent_stop n1 || fail "agent exit status"
want="$(gt_read n1 iptables GT 1) $(gt_read n1 iptables GT 2)"
check_eq "d->c:8080 client-side totals (every record, every interface) = iptables" \
	"$(flow_sum n1 "$D" "$C" 8080 tcp client)" "$want"
check_eq "records of the flow by interface kind" \
	"$(jq -r --arg d "$D" 'select(.client_ip == $d) | .interface_kind' "$WORK/n1.jsonl" | sort -u | tr '\n' ' ')" "pod "
check_eq "connections established (curl's 6)" \
	"$(jq -s --arg d "$D" 'map(select(.client_ip == $d and .reporter == "client") | .tcp_connections.established) | add' "$WORK/n1.jsonl")" 6
finish
