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

agent_start n1 || exit 1 # the default --interfaces and --pod-interfaces
check_true "branch pod's veth $veth attached as a pod interface" \
	grep -q "$veth (ifindex [0-9]*): attached, kind pod" "$WORK/n1.log"
check_true "trunk ENI eth0 attached as a node interface" \
	grep -q "eth0 (ifindex [0-9]*): attached, kind node" "$WORK/n1.log"
check_true "branch ENI interface vlan.eth.7 not attached" bash -c "! grep -q 'vlan.eth.7 (ifindex' '$WORK/n1.log'"
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
