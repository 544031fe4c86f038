#!/usr/bin/env bash
# Attachments over the agent's life: a crash (SIGKILL) in legacy TC mode leaves filters that
# the next agent recognises and replaces; a foreign filter that holds our priority and handle
# is refused and left alone; a clean exit leaves nothing; in tcx mode a crash leaves nothing.
source "$(dirname "$0")/lib.sh"
echo "lifecycle.sh: lab $LAB_ID"

lab_up
VA=${LAB_POD_VETH[a]} VB=${LAB_POD_VETH[b]}
tc_ours() { # NODE DEV DIR -> number of flowlens filters
	lab_exec "$1" tc filter show dev "$2" "$3" | grep -c 'flowlens_'
}

# A foreign program at exactly our priority and handle on b's veth.
lab_exec n1 tc qdisc add dev "$VB" clsact
lab_exec n1 tc filter add dev "$VB" ingress prio 1 handle 0xf10e bpf da \
	obj "$TOP/build/noop.bpf.o" sec tc

agent_start n1 --attach-mode tc || exit 1
check_eq "filters on a's veth (ingress+egress)" \
	"$(($(tc_ours n1 "$VA" ingress) + $(tc_ours n1 "$VA" egress)))" 2
check_eq "attach refused where a foreign filter holds our slot" \
	"$(agent_metric n1 flowlens_agent_attach_failures_total)" 1
check_true "refusal logged" grep -q "$VB.*attach failed" "$WORK/n1.log"

# Crash: the filters stay behind.
kill -KILL "${AGENT_PID[n1]}"
wait "${AGENT_PID[n1]}" 2>/dev/null
unset "AGENT_PID[n1]"
check_eq "stale filters after SIGKILL" "$(tc_ours n1 "$VA" ingress)" 1

# Restarted as the chart runs it (no CAP_SYS_ADMIN: the stale filter is recognised by the name
# in the filter dump, not by asking the kernel about its program, which needs CAP_SYS_ADMIN).
caps_wrapper "$WORK/agent-chart" "$CHART_CAPS" "$AGENT"
AGENT_ROOT=$AGENT
AGENT=$WORK/agent-chart
agent_start n1 --attach-mode tc || exit 1
AGENT=$AGENT_ROOT
check_true "stale filter recognised and replaced (chart's capabilities)" grep -q "replacing a stale flowlens filter" "$WORK/n1.log"
check_eq "one filter per hook after restart" "$(tc_ours n1 "$VA" ingress) $(tc_ours n1 "$VA" egress)" "1 1"
read -r IN_ID _ <<<"$(agent_prog_ids n1)"
check_true "the running agent's program is the one attached" \
	bash -c "ip netns exec $(lab_ns n1) tc filter show dev $VA ingress | grep -q 'id $IN_ID '"
agent_stop n1 || fail "agent exit status"
check_eq "flowlens filters after clean exit" \
	"$(($(tc_ours n1 "$VA" ingress) + $(tc_ours n1 "$VA" egress) + $(tc_ours n1 eth0 ingress)))" 0
check_true "the foreign filter is intact" \
	bash -c "ip netns exec $(lab_ns n1) tc filter show dev $VB ingress | grep -q 'noop.bpf.o'"

# tcx: links belong to the process; a crash leaves nothing attached.
agent_start n1 --attach-mode tcx || exit 1
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
check_eq "tcx links held" "$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 6
kill -KILL "${AGENT_PID[n1]}"
wait "${AGENT_PID[n1]}" 2>/dev/null
unset "AGENT_PID[n1]"
sleep 0.5
check_eq "tcx links after SIGKILL" "$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 0

# Pod churn: 20 pods come and go while the agent runs; every veth is attached and then
# forgotten, and the agent holds exactly one ingress and one egress link per live interface.
agent_start n1 --attach-mode tcx --idle-timeout 1s || exit 1
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
for i in $(seq 1 20); do
	lab_pod n1 "churn$i" "10.1.1.$((100 + i))" "fd00:1:1::$((100 + i))"
	lab_exec "churn$i" ping -c 1 -W 1 "${LAB_POD_IP[a]}" >/dev/null || true
	lab_pod_del "churn$i"
done
sleep 3.5 # drains past the 1 s idle timeout: the vanished veths' flows are read and evicted
check_eq "churn: interfaces attached then forgotten" \
	"$(agent_metric n1 'flowlens_agent_interface_events_total{event="attached"}') $(agent_metric n1 'flowlens_agent_interface_events_total{event="forgotten"}')" \
	"23 20"
check_eq "churn: links held = 2 per live interface (3)" \
	"$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 6
check_true "churn: the agent stays healthy" lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9810/healthz
entries=$(agent_metric n1 'flowlens_agent_flow_table_entries{family="ipv4"}')
check_true "churn: flows of vanished veths evicted (table entries $entries < 40)" test "$entries" -lt 40
agent_stop n1 || fail "agent exit status (churn)"

# tcx: another tool's tcx programs attached first; flowlens must run ahead of them and leave
# them attached when it exits.
BENCH=$TOP/build/flowlens-bench
coproc OTHER { ip netns exec "$(lab_ns n1)" "$BENCH" attach "$VA" noop tcx; }
other_pid=$OTHER_PID # bash unsets OTHER_PID once the coprocess has ended
read -r OTHER_ID _ <&"${OTHER[0]}"
agent_start n1 --attach-mode tcx || exit 1
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
check_eq "tcx ingress chain: flowlens first, the other tool after" \
	"$(lab_exec n1 "$BENCH" tcx-query "$VA" ingress)" "$IN_ID $OTHER_ID"
check_eq "tcx egress chain: flowlens first" \
	"$(lab_exec n1 "$BENCH" tcx-query "$VA" egress)" "$EG_ID $OTHER_ID"
agent_stop n1 || fail "agent exit status"
check_eq "the other tool's tcx programs remain after flowlens exits" \
	"$(lab_exec n1 "$BENCH" tcx-query "$VA" ingress) $(lab_exec n1 "$BENCH" tcx-query "$VA" egress)" \
	"$OTHER_ID $OTHER_ID"
kill "$other_pid" 2>/dev/null
wait "$other_pid" 2>/dev/null
finish
