#!/usr/bin/env bash
# EKS coexistence with the VPC CNI network policy agent on kernels before 6.6 (AL2 5.10,
# AL2023 6.1: legacy TC, no tcx). That agent puts its programs on pod veths at priority 1
# with handle 1 and answers every packet TC_ACT_OK or TC_ACT_SHOT, which ends the chain; at
# one priority the newest filter runs first. Here a stand-in (tests/tools/netpol.bpf.c: the
# same verdicts, TCP to port 9999 denied) arrives after flowlens on pod b's veth:
#  - flowlens puts its filters first again (event-driven), and counts exactly what iptables
#    counts for allowed traffic and for the denied SYNs (it sees them before the policy);
#  - the policy still decides (the denied connection fails), its filters stay, and the drops
#    are counted by reason (tc_egress);
#  - the policy agent re-replacing its filter in place moves nothing;
#  - control: flowlens at priority 2, behind the policy, sees nothing on that veth, which is
#    what the first place is for.
source "$(dirname "$0")/lib.sh"
echo "netpol.sh: lab $LAB_ID"
lab_up
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} VB=${LAB_POD_VETH[b]}
POLICY=$TOP/build/netpol.bpf.o

gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 5201 # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 5201 # 2
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 9999 # 3: denied at b's veth, after this
lab_exec b iperf3 -s -D -p 5201
first_filter() { # DIR -> the name of the first program that runs on b's veth
	lab_exec n1 tc filter show dev "$VB" "$1" | grep -m1 ' bpf .*handle' | grep -o 'flowlens_[a-z]*\|netpol' | head -1
}
policy_add() { # tc filter add|replace
	local dir
	for dir in ingress egress; do
		lab_exec n1 tc filter "$1" dev "$VB" "$dir" prio 1 handle 0x1 bpf da obj "$POLICY" sec tc
	done
}

agent_start n1 --attach-mode tc || exit 1
check_eq "flowlens first on b's veth before the policy" "$(first_filter ingress)" "flowlens_ingres"
policy_add add
sleep 0.5
check_eq "flowlens first again on ingress after the policy's filter arrived" \
	"$(first_filter ingress):$(first_filter egress)" "flowlens_ingres:flowlens_egress"
check_eq "reorders counted" "$(agent_metric n1 flowlens_agent_tc_reorders_total)" 2
check_true "reorder logged" grep -q "had gone ahead of ours at priority 1" "$WORK/n1.log"

lab_exec a iperf3 -c "$B" -p 5201 -n 3M >/dev/null || fail "iperf3 a->b (allowed)"
if lab_exec a curl -s -o /dev/null --connect-timeout 2 "http://$B:9999/"; then
	fail "the denied connection went through: the policy no longer decides"
else
	pass "the policy still denies TCP to 9999 (curl: $?)"
fi
policy_add replace
sleep 0.3
check_eq "the policy agent replacing its filter in place moves nothing" \
	"$(agent_metric n1 flowlens_agent_tc_reorders_total)" 2
sleep 2.5 # two drains
read -r gp1 gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r gp2 gb2 <<<"$(gt_read n1 iptables GT 2)"
read -r gp3 gb3 <<<"$(gt_read n1 iptables GT 3)"
drops=$(agent_metric n1 'flowlens_agent_drops_total{reason="tc_egress"}')
check_true "some SYNs were denied" test "$gp3" -ge 2
check_true "the policy's drops counted by reason tc_egress ($drops >= $gp3)" test "${drops:-0}" -ge "$gp3"
agent_stop n1 || fail "agent exit status"
# The flow log is complete after the final drain of a clean exit.
check_eq "allowed a->b seen at b's veth = iptables (pkts bytes both ways)" \
	"$(flow_sum n1 "$A" "$B" 5201 tcp server)" "$gp1 $gb1 $gp2 $gb2"
check_eq "denied SYNs seen at b's veth before the policy dropped them = iptables" \
	"$(flow_sum n1 "$A" "$B" 9999 tcp server | cut -d' ' -f1,2)" "$gp3 $gb3"
check_eq "after a clean exit only the policy's filters remain" \
	"$(first_filter ingress):$(first_filter egress)" "netpol:netpol"

# Control: behind the policy (priority 2), flowlens sees nothing on b's veth.
agent_start n1 --attach-mode tc --tc-priority 2 || exit 1
lab_exec a iperf3 -c "$B" -p 5201 -n 1M >/dev/null || fail "iperf3 a->b (control)"
sleep 2.5
check_eq "control: at priority 2 behind the policy, nothing seen at b's veth" \
	"$(jq -rs --arg b "$B" '[.[] | select(.server_ip == $b and .reporter == "server")] | length' "$WORK/n1.jsonl")" 0
check_true "control: the same traffic still seen at a's veth" \
	test "$(flow_sum n1 "$A" "$B" 5201 tcp client | cut -d' ' -f1)" -gt 0
agent_stop n1 || fail "agent exit status (control)"
finish
