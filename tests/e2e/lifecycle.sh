#!/usr/bin/env bash
# Attachments over the agent's life: a crash (SIGKILL) in legacy TC mode leaves filters that
# the next agent recognises and replaces; a foreign filter that holds our priority and handle
# is refused and left alone; a clean exit leaves nothing; in tcx mode a crash leaves nothing.
# Then pod churn and another tool's programs on the same hooks, in tcx where the kernel offers
# it (the agent's own probe) and in legacy TC where it does not (Linux before 6.6, or
# FLOWLENS_TEST_NO_TCX=1 here), with the legacy-TC form of each check.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kernel.sh"
echo "lifecycle.sh: lab $LAB_ID"

lab_up
attach_plan auto || { finish; exit 1; }
MODE=$ATTACH_MODE_WANT
echo "  info  the tcx parts run --attach-mode $ATTACH_ARG, attachments must be $MODE"
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

held() { # IN_ID EG_ID -> hooks of n1 running the agent's programs (tcx links or TC filters)
	agent_hooks n1 "$1" "$2" | grep -c " $MODE\$"
}
if [ "$MODE" = tcx ]; then
	# tcx: links belong to the process; a crash leaves nothing attached.
	agent_start n1 --attach-mode "$ATTACH_ARG" || exit 1
	read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
	check_eq "tcx links held" "$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 6
	check_eq "hooks running the agent's programs (tcx)" "$(held "$IN_ID" "$EG_ID")" 6
	kill -KILL "${AGENT_PID[n1]}"
	wait "${AGENT_PID[n1]}" 2>/dev/null
	unset "AGENT_PID[n1]"
	sleep 0.5
	check_eq "tcx links after SIGKILL" "$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 0
else
	# Legacy TC: the foreign filter at our slot has had its part (above); the agent attaches to
	# every interface from here on, as the tcx runs do. A crash leaves the filters (the kernel
	# holds them, not the process) until the next agent replaces them.
	lab_exec n1 tc filter del dev "$VB" ingress prio 1 handle 0xf10e bpf
	agent_start n1 --attach-mode "$ATTACH_ARG" || exit 1
	read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
	check_eq "TC filters held (legacy TC)" "$(held "$IN_ID" "$EG_ID")" 6
	kill -KILL "${AGENT_PID[n1]}"
	wait "${AGENT_PID[n1]}" 2>/dev/null
	unset "AGENT_PID[n1]"
	check_eq "TC filters after SIGKILL: left for the next agent (legacy TC)" "$(held "$IN_ID" "$EG_ID")" 6
fi
OLD_IN=$IN_ID OLD_EG=$EG_ID

# Pod churn: 20 pods come and go while the agent runs; every veth is attached and then
# forgotten, and the agent holds exactly one ingress and one egress hook per live interface.
agent_start n1 --attach-mode "$ATTACH_ARG" --idle-timeout 1s || exit 1
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
if [ "$MODE" = tc ]; then
	check_eq "legacy TC: the crashed agent's filters replaced by the new agent's" \
		"$(held "$OLD_IN" "$OLD_EG") $(held "$IN_ID" "$EG_ID")" "0 6"
fi
for i in $(seq 1 20); do
	lab_pod n1 "churn$i" "10.1.1.$((100 + i))" "fd00:1:1::$((100 + i))"
	lab_exec "churn$i" ping -c 1 -W 1 "${LAB_POD_IP[a]}" >/dev/null || true
	lab_pod_del "churn$i"
done
sleep 3.5 # drains past the 1 s idle timeout: the vanished veths' flows are read and evicted
check_eq "churn: interfaces attached then forgotten" \
	"$(agent_metric n1 'flowlens_agent_interface_events_total{event="attached"}') $(agent_metric n1 'flowlens_agent_interface_events_total{event="forgotten"}')" \
	"23 20"
if [ "$MODE" = tcx ]; then
	check_eq "churn: links held = 2 per live interface (3)" \
		"$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" 6
fi
check_eq "churn: hooks running the agent's programs = 2 per live interface ($MODE)" \
	"$(agent_hooks n1 "$IN_ID" "$EG_ID" | tr '\n' ' ')" "$(want_hooks n1 "$MODE" | tr '\n' ' ')"
check_true "churn: the agent stays healthy" lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9810/healthz
entries=$(agent_metric n1 'flowlens_agent_flow_table_entries{family="ipv4"}')
check_true "churn: flows of vanished veths evicted (table entries $entries < 40)" test "$entries" -lt 40
agent_stop n1 || fail "agent exit status (churn)"

if [ "$MODE" = tcx ]; then
	# tcx: another tool's tcx programs attached first; flowlens must run ahead of them and
	# leave them attached when it exits.
	BENCH=$TOP/build/flowlens-bench
	coproc OTHER { ip netns exec "$(lab_ns n1)" "$BENCH" attach "$VA" noop tcx; }
	other_pid=$OTHER_PID # bash unsets OTHER_PID once the coprocess has ended
	read -r OTHER_ID _ <&"${OTHER[0]}"
	agent_start n1 --attach-mode "$ATTACH_ARG" || exit 1
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
else
	# Legacy TC: another tool's filters (priority 7) there first; flowlens' (priority 1) must
	# run ahead of them (a hook runs its filters in priority order, as tc lists them) and
	# leave them in place when it exits.
	tc_ids() { # DIR -> program ids of $VA's filters, in the order they run
		lab_exec n1 tc filter show dev "$VA" "$1" | sed -n 's/.* id \([0-9]*\) .*/\1/p' | tr '\n' ' ' | sed 's/ $//'
	}
	for dir in ingress egress; do
		lab_exec n1 tc filter add dev "$VA" "$dir" prio 7 handle 7 bpf da \
			obj "$TOP/build/noop.bpf.o" sec tc
	done
	OTHER_IN=$(tc_ids ingress) OTHER_EG=$(tc_ids egress)
	agent_start n1 --attach-mode "$ATTACH_ARG" || exit 1
	read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
	check_eq "legacy TC ingress: flowlens first, the other tool after" "$(tc_ids ingress)" "$IN_ID $OTHER_IN"
	check_eq "legacy TC egress: flowlens first" "$(tc_ids egress)" "$EG_ID $OTHER_EG"
	agent_stop n1 || fail "agent exit status"
	check_eq "the other tool's filters remain after flowlens exits" \
		"$(tc_ids ingress) $(tc_ids egress)" "$OTHER_IN $OTHER_EG"
fi
finish
