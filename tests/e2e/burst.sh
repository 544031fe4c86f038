#!/usr/bin/env bash
# Netlink bursts: hundreds of pod interfaces created (and deleted) at once, as a node full of
# pods starting together does. The agent must end up attached to exactly the live interfaces
# (ground truth: `ip link` and the kernel's own list of BPF links / TC filters), answer HTTP
# with more descriptors open than select() could watch (FD_SETSIZE 1024), and say how often it
# had to resync and reconcile. Counts: BURST_TCX (default 500), BURST_TC (default 1000).
# The first burst runs in tcx where the kernel offers it (the agent's own probe) and in legacy
# TC where it does not (Linux before 6.6, or FLOWLENS_TEST_NO_TCX=1 here).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/kernel.sh"
echo "burst.sh: lab $LAB_ID"

lab_node n1
attach_plan auto || { finish; exit 1; }
MODE=$ATTACH_MODE_WANT
NS=$(lab_ns n1)

veths() { lab_veth_burst n1 "$@"; } # add|del PREFIX FROM TO
live() { ip -n "$NS" -o link show | grep -c ": $1[0-9a-f]*@" ; }
attached() { # sum of flowlens_agent_interfaces over kinds and modes
	lab_exec n1 curl -sf --max-time 5 http://127.0.0.1:9810/metrics |
		awk '$1 ~ /^flowlens_agent_interfaces\{/ { s += $2 } END { print s + 0 }'
}
# wait_attached WANT: up to 90 s for the agent's count to reach WANT
wait_attached() {
	local i n
	for i in $(seq 1 90); do
		n=$(attached)
		[ "$n" = "$1" ] && break
		sleep 1
	done
	echo "$n"
}
tc_filters() { # interfaces with our ingress filter, PREFIX
	local d n=0
	for d in $(ip -n "$NS" -o link show | sed -n "s/^[0-9]*: \($1[0-9a-f]*\)@.*/\1/p"); do
		ip -n "$NS" -o link show dev "$d" >/dev/null 2>&1 || continue
		tc -n "$NS" filter show dev "$d" ingress 2>/dev/null | grep -q flowlens_ && n=$((n + 1))
	done
	echo "$n"
}

N=${BURST_TCX:-500}
agent_start n1 --attach-mode "$ATTACH_ARG" -i 'bx*' || exit 1
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
veths add bx 1 "$N"
want=$(live bx)
check_eq "$MODE: $N interfaces created at once, all attached" "$(wait_attached "$want")" "$want"
check_eq "$MODE: ...all in $MODE mode" "$(lab_exec n1 curl -sf --max-time 5 http://127.0.0.1:9810/metrics |
	awk -v m="mode=\"$MODE\"" '$1 ~ /^flowlens_agent_interfaces\{/ && index($1, m) { s += $2 } END { print s + 0 }')" "$want"
if [ "$MODE" = tcx ]; then
	check_eq "tcx: BPF links = 2 per live interface" \
		"$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" "$((2 * want))"
	pid=${AGENT_PID[n1]}
	fds=$(ls "/proc/$pid/fd" | wc -l)
	check_true "tcx: HTTP answers with $fds descriptors open (> FD_SETSIZE 1024)" \
		bash -c "[ $fds -gt 1024 ] && ip netns exec $NS curl -sf --max-time 5 -o /dev/null http://127.0.0.1:9810/metrics"
else
	# Legacy TC holds no descriptor per interface (the kernel keeps the filters): the same
	# burst, the kernel's filters for it, and HTTP answering through it.
	check_eq "legacy tc: interfaces holding our ingress filter" "$(tc_filters bx)" "$want"
	check_true "legacy tc: HTTP answers with $want interfaces attached" \
		lab_exec n1 curl -sf --max-time 5 -o /dev/null http://127.0.0.1:9810/metrics
fi
veths del bx 1 $((N / 2))
want=$(live bx)
check_eq "$MODE: half deleted at once, the rest attached" "$(wait_attached "$want")" "$want"
if [ "$MODE" = tcx ]; then
	check_eq "tcx: BPF links = 2 per live interface after the deletions" \
		"$(bpftool link show | grep -cE "prog ($IN_ID|$EG_ID)\b")" "$((2 * want))"
else
	check_eq "legacy tc: interfaces holding our ingress filter after the deletions" "$(tc_filters bx)" "$want"
fi
echo "  resyncs after overruns: $(agent_metric n1 flowlens_agent_netlink_overruns_total)," \
	"dump retries: $(agent_metric n1 flowlens_agent_netlink_dump_retries_total)," \
	"reconciles: $(agent_metric n1 'flowlens_agent_reconciles_total{result="ok"}')," \
	"repairs: $(agent_metric n1 flowlens_agent_reconcile_repairs_total)"
agent_stop n1 || fail "agent exit status ($MODE)"
[ "$MODE" = tc ] && check_eq "legacy tc: our filters after a clean exit (first burst)" "$(tc_filters bx)" 0
veths del bx $((N / 2 + 1)) "$N"

N=${BURST_TC:-1000}
agent_start n1 --attach-mode tc -i 'bt*' || exit 1
veths add bt 1 "$N"
want=$(live bt)
check_eq "legacy tc: $N interfaces created at once, all attached" "$(wait_attached "$want")" "$want"
check_eq "legacy tc: interfaces holding our ingress filter" "$(tc_filters bt)" "$want"
pid=${AGENT_PID[n1]}
check_true "legacy tc: HTTP answers" lab_exec n1 curl -sf --max-time 5 -o /dev/null http://127.0.0.1:9810/healthz
echo "  resyncs after overruns: $(agent_metric n1 flowlens_agent_netlink_overruns_total)," \
	"dump retries: $(agent_metric n1 flowlens_agent_netlink_dump_retries_total)," \
	"reconciles: $(agent_metric n1 'flowlens_agent_reconciles_total{result="ok"}')," \
	"repairs: $(agent_metric n1 flowlens_agent_reconcile_repairs_total)"
agent_stop n1 || fail "agent exit status (tc)"
check_eq "legacy tc: our filters after a clean exit" "$(tc_filters bt)" 0
veths del bt 1 "$N"

# The same burst into a notification buffer far too small for it: overruns, resyncs whose
# dumps the kernel flags as interrupted while links keep coming, and the periodic reconcile;
# the end state must still be exact.
N=${BURST_SMALL:-400}
agent_start n1 --attach-mode tc -i 'bs*' --netlink-rcvbuf-bytes 4096 --reconcile-interval 2s || exit 1
veths add bs 1 "$N"
veths del bs 1 $((N / 4))
want=$(live bs)
check_eq "small buffer: $N created, $((N / 4)) deleted, all live attached" "$(wait_attached "$want")" "$want"
check_eq "small buffer: interfaces holding our ingress filter" "$(tc_filters bs)" "$want"
ovr=$(agent_metric n1 flowlens_agent_netlink_overruns_total)
check_true "small buffer: the burst overran the notifications ($ovr resyncs)" test "${ovr:-0}" -gt 0
echo "  dump retries: $(agent_metric n1 flowlens_agent_netlink_dump_retries_total)," \
	"reconciles: $(agent_metric n1 'flowlens_agent_reconciles_total{result="ok"}')," \
	"repairs: $(agent_metric n1 flowlens_agent_reconcile_repairs_total)"
agent_stop n1 || fail "agent exit status (small buffer)"
veths del bs $((N / 4 + 1)) "$N"
finish
