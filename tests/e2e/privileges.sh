#!/usr/bin/env bash
# Least privilege, as the Helm chart grants it, proven on the real programs:
#  - the agent as root with only CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_RESOURCE in its
#    bounding set and no_new_privs (the DaemonSet's securityContext) loads every program,
#    attaches everywhere, and its counts reach the collector exactly (iptables ground truth;
#    curl's own count of connections);
#  - the collector as uid 65532 with no capabilities at all (the Deployment's) serves them;
#  - the agent keeps exactly those four (effective and permitted, from /proc) once started,
#    and given CAP_SYS_ADMIN as well (chart value agent.conntrackKfuncs) it drops it itself
#    after loading;
#  - without any one of CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON the agent refuses to start with an
#    error naming the capabilities: none of the three is superfluous.
# (CAP_SYS_RESOURCE is for RLIMIT_MEMLOCK on kernels before 5.11, which this one is not.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kernel.sh"
echo "privileges.sh: lab $LAB_ID"
lab_up
# Translations: kfunc where the agent's probe finds the kfuncs (as root), netlink elsewhere
# (FLOWLENS_TEST_NO_KFUNCS=1: as on such a kernel).
xlate_plan auto || { finish; exit 1; }
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]}
mkdir -p "$WORK/www" && head -c 300000 /dev/urandom >"$WORK/www/blob"
lab_web b 8080 "$WORK/www"
gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 8080 # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 8080 # 2

caps_wrapper "$WORK/agent-chart" "$CHART_CAPS"

# The collector: uid/gid 65532, no capabilities, its files readable the way a mounted Secret
# with fsGroup would make them.
chmod 755 "$WORK"
lab_metadata >"$WORK/meta.json"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
mkdir -p "$WORK/state"
# Each side reads its own copy of the Secret as its pod would: the collector's owned by its
# fsGroup, the agent's by root with mode 0400 (the chart's defaultMode). Without
# CAP_DAC_OVERRIDE the agent could read no other.
cp "$WORK/token" "$WORK/agent-token"
chmod 400 "$WORK/token" "$WORK/agent-token"
chown 65532:65532 "$WORK/token" "$WORK/meta.json" "$WORK/state"
ip netns exec "$(lab_ns n1)" setpriv --reuid 65532 --regid 65532 --clear-groups \
	--bounding-set -all --inh-caps -all --no-new-privs "$TOP/build/flowlens-collector" \
	--listen 0.0.0.0:9900 --token-file "$WORK/token" --metadata-file "$WORK/meta.json" \
	--state-dir "$WORK/state" --new-series-hold 0 --shutdown-grace 0 >"$WORK/collector.log" 2>&1 &
COLL_PID=$!
for _ in $(seq 50); do
	lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && break
	sleep 0.1
done
check_true "collector ready as uid 65532 without capabilities" \
	lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz
check_eq "collector: uid, effective and bounding capabilities" \
	"$(awk '$1 == "Uid:" { print $2 }' "/proc/$COLL_PID/status") $(caps_of "$COLL_PID" CapEff) $(caps_of "$COLL_PID" CapBnd)" \
	"65532 0000000000000000 0000000000000000"

AGENT_ROOT=$AGENT
AGENT=$WORK/agent-chart
agent_start n1 --collector "http://${LAB_NODE_IP[n1]}:9900" --token-file "$WORK/agent-token" \
	--translation "$XLATE_ARG" || exit 1
pid=${AGENT_PID[n1]}
# Exactly the four (not merely within the bounding set the wrapper imposed): the running agent
# neither lacks one it needs nor holds more; nothing inheritable or ambient for its children.
caps_set() { # PID -> "CapEff CapPrm CapInh CapAmb"
	echo "$(caps_of "$1" CapEff) $(caps_of "$1" CapPrm) $(caps_of "$1" CapInh) $(caps_of "$1" CapAmb)"
}
# (Of the four, those this test's own process can grant: a harness without one in its bounding
# set, CAP_SYS_RESOURCE in some sandboxes, passes on what it has.)
KEEP=$(printf %016x $((CHART_CAPS_MASK & 16#$(caps_of $$ CapBnd))))
NONE=0000000000000000
[ "$KEEP" = "$(printf %016x "$CHART_CAPS_MASK")" ] ||
	echo "  info  this harness cannot grant all of the chart's four: expecting $KEEP of $(printf %016x "$CHART_CAPS_MASK")"
check_eq "agent: effective, permitted, inheritable, ambient capabilities = the chart's BPF, NET_ADMIN, PERFMON, SYS_RESOURCE; none; none" \
	"$(caps_set "$pid")" "$KEEP $KEEP $NONE $NONE"
check_eq "agent: no_new_privs" "$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$pid/status")" 1
check_eq "agent: every interface attached" "$(agent_metric n1 flowlens_agent_attach_failures_total)" 0
# The conntrack kfuncs need CAP_SYS_ADMIN where nf_conntrack is a module (its BTF); without
# it the agent translates from conntrack netlink, and says why (the kernel matrix runs both).
if [ "$XLATE_WANT" = netlink ]; then
	check_eq "agent: translations from conntrack netlink (the probe found no conntrack kfuncs)" \
		"$(agent_metric n1 'flowlens_agent_translation_info{mode="netlink"}')" 1
elif [ -e /sys/module/nf_conntrack/initstate ]; then
	check_eq "agent: translations from conntrack netlink (kfuncs in a module need CAP_SYS_ADMIN)" \
		"$(agent_metric n1 'flowlens_agent_translation_info{mode="netlink"}')" 1
else
	check_eq "agent: conntrack lookups in the datapath (kfunc)" \
		"$(agent_metric n1 'flowlens_agent_translation_info{mode="kfunc"}')" 1
fi
# The agent's tracepoint programs (tcp_retransmit_skb, kfree_skb) and their links: the links
# this process holds (its descriptors), so programs other tests load meanwhile never count.
# Where tcp_retransmit_skb carries the attempt's result (an int after the skb in its BTF
# prototype) the agent loads the program that skips tries that sent nothing.
rtx_prog=flowlens_retransmit
bpftool btf dump file /sys/kernel/btf/vmlinux format c 2>/dev/null |
	grep -q 'btf_trace_tcp_retransmit_skb)(void \*, const struct sock \*, const struct sk_buff \*, int)' &&
	rtx_prog=flowlens_retransmit_err
check_eq "agent: tracepoint programs loaded and linked (retransmits, drops)" \
	"$(agent_tp_links "$pid" | tr '\n' ' ')" "kfree_skb flowlens_drop tcp_retransmit_skb $rtx_prog "

for _ in $(seq 10); do lab_exec a curl -s -o /dev/null "http://$B:8080/blob" || fail "curl a->b"; done
sleep 2.5
agent_stop n1 || fail "agent exit status"
sleep 0.5
check_collector_gt collector 8080 10

# agent.conntrackKfuncs: CAP_SYS_ADMIN as well, to load (module BTF); gone once loaded.
caps_wrapper "$WORK/agent-chart-sysadmin" "$CHART_CAPS,+sys_admin" "$AGENT_ROOT"
AGENT=$WORK/agent-chart-sysadmin
agent_start n1 --translation "$XLATE_ARG" || exit 1
pid=${AGENT_PID[n1]}
check_eq "agent with CAP_SYS_ADMIN granted: in its bounding set" \
	"$(((16#$(caps_of "$pid" CapBnd) >> 21) & 1))" 1
check_eq "agent with CAP_SYS_ADMIN granted: dropped after load, the chart's four kept" \
	"$(caps_set "$pid")" "$KEEP $KEEP $NONE $NONE"
check_eq "agent with CAP_SYS_ADMIN granted: translations $XLATE_WANT (with it, kfuncs even from a module)" \
	"$(agent_metric n1 "flowlens_agent_translation_info{mode=\"$XLATE_WANT\"}")" 1
agent_stop n1 || fail "agent exit status (CAP_SYS_ADMIN granted)"
AGENT=$AGENT_ROOT

for missing in bpf net_admin perfmon; do
	set=$CHART_CAPS
	caps_wrapper "$WORK/agent-no-$missing" "${set/,+$missing/}"
	timeout 20 ip netns exec "$(lab_ns n1)" "$WORK/agent-no-$missing" --listen 127.0.0.1:9811 \
		>"$WORK/no-$missing.out" 2>&1
	rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q 'needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON' "$WORK/no-$missing.out"; then
		pass "without CAP_${missing^^} the agent refuses to start (exit $rc) and says what it needs"
	else
		fail "without CAP_${missing^^}: exit $rc, $(tail -1 "$WORK/no-$missing.out")"
	fi
done
finish
