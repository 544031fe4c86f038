#!/usr/bin/env bash
# End to end: retransmissions and kernel drops. An iptables `statistic` rule in the client pod
# drops a random 5% of what the server sends it; the rule's own packet counter is the ground
# truth for the drops (reason netfilter_drop), and the server has to retransmit: the server
# pod's own kernel counters (nstat in its namespace, which carries only this test's
# downloads) are the ground truth for the retransmissions.
source "$(dirname "$0")/lib.sh"
echo "faults.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi

lab_up
C=${LAB_POD_IP[c]}
mkdir -p "$WORK/www-c" && head -c 3000000 /dev/urandom >"$WORK/www-c/blob"
lab_web c 8080 "$WORK/www-c"
# One TCP segment per skb at the sender. flowlens counts tcp_retransmit_skb events, one per
# retransmitted skb, while the kernel's TcpRetransSegs counts segments (tcp_skb_pcount):
# with GSO a retransmitted skb carries a whole hole of up to 64 KiB (seen here: 43 events
# for 615 segments). gso_max_segs 1 on the server pod's interface makes every skb (sent or
# retransmitted) one segment, so that both count the same thing (but for what is listed at
# the check below).
lab_exec c ip link set eth0 gso_max_segs 1
lab_exec a iptables -A INPUT -p tcp -s "$C" --sport 8080 -m statistic --mode random \
	--probability 0.05 -j DROP
stack_start
stack_agents || exit 1

# kc NAME: a counter of the server pod's network namespace (absolute, history untouched).
kc() { lab_exec c nstat -asz "$1" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'; }
KC="TcpRetransSegs TcpExtTCPSynRetrans TcpExtTCPSpuriousRtxHostQueues TcpExtTCPRetransFail"
declare -A k0 k1
for k in $KC; do k0[$k]=$(kc "$k"); done

P_DOWNLOADS=4 SIZE=3000000
got=0
for _ in $(seq $P_DOWNLOADS); do
	size=$(lab_exec a curl -sf -o /dev/null -w '%{size_download}' --max-time 60 "http://$C:8080/blob") &&
		[ "$size" = $SIZE ] && got=$((got + 1))
done
check_eq "the downloads happened ($SIZE bytes each)" "$got" $P_DOWNLOADS
# Every connection of the server closed (a FIN the rule dropped is retransmitted too): from
# here on the server pod's sockets retransmit nothing more.
open_conns() {
	lab_exec c ss -Htn state established state close-wait state last-ack state fin-wait-1 \
		state fin-wait-2 state closing | wc -l
}
check_eq "the server's connections closed" "$(wait_for 30 0 open_conns)" 0
for k in $KC; do k1[$k]=$(($(kc "$k") - k0[$k])); done
echo "  info  the server pod's kernel: $(for k in $KC; do printf '%s %s, ' "$k" "${k1[$k]}"; done)"
# Events the datapath could not count (the insert of the tuple's entry failed: the hash
# bucket's lock not taken) are counted as event_lost; on this machine node 1's agent sees
# every netns's drops, so the count is an upper bound for this flow's.
lost=$(agent_metric n1 'flowlens_agent_datapath_events_total{reason="event_lost"}')
lost=${lost:-0}
# The agents' final drain (SIGTERM) takes every tracepoint count made so far.
agent_stop n1
agent_stop n2

dropped=$(lab_exec a iptables -nvxL INPUT | awk '/statistic/ { print $1 }')
dropped=${dropped:-0}
echo "  info  the rule dropped $dropped packets"
check_true "packets were dropped" test "${dropped:-0}" -gt 0
sel='source_workload="client",destination_workload="web",destination_port="8080"'
got=$(prom_wait "flowlens_drops_total{$sel,reporter=\"client\",reason=\"netfilter_drop\"}" "$dropped")
if [ "$got" = "$dropped" ]; then
	pass "drops at the client's side, reason netfilter_drop = the rule's counter: $got"
else
	# Not exact only by what the datapath counted as lost (seen: 3 of 440, once in ~10 runs).
	check_true "drops at the client's side ($got) = the rule's counter ($dropped) but for events counted lost ($lost)" \
		test "$got" != absent -a "$got" -lt "$dropped" -a $((dropped - ${got/absent/0})) -le "$lost"
fi

# Retransmissions against the sender's kernel. flowlens counts tcp_retransmit_skb events
# (compared by hand with `perf record -e tcp:tcp_retransmit_skb` filtered on the server's
# port, 22 runs: equal every time); the kernel counts segments. Where they differ, and how:
# - TcpRetransSegs also counts SYN-ACKs the server retransmitted (a dropped SYN-ACK:
#   TcpExtTCPSynRetrans; their own tracepoint, which flowlens does not count): taken off.
# - Where the tracepoint carries the call's error (this 6.18 kernel: four arguments in its
#   BTF) it fires for every __tcp_retransmit_skb call, also one that sent nothing because the
#   skb's previous copy was still queued in the host (-EBUSY, counted in
#   TcpExtTCPSpuriousRtxHostQueues). flowlens counted these too (up to 195 extra in a run
#   on a loaded machine, +47%) until its program for such kernels skipped a non-zero error
#   (flowlens_retransmit_err): the upper bound is the kernel's count itself.
# - Older kernels fire it only for calls that sent (TcpRetransSegs also counts a send that
#   failed, TcpExtTCPRetransFail). The other early exits (no memory, no route, a shrunk
#   window) have no counter and did not happen here (perf showed only errors 0 and -EBUSY).
# - Now and then the kernel counts a few segments more than the calls that sent (0 in most
#   runs, 1-4 in some, once 26 of 462 with the machine heavily loaded), though no
#   retransmitted packet on the wire carried more than one segment; not explained, so the
#   lower bound allows 10%.
rtx_rsel="flowlens_tcp_retransmits_total{$sel,reporter=\"server\"}"
want=$((k1[TcpRetransSegs] - k1[TcpExtTCPSynRetrans]))
lo=$((want - k1[TcpExtTCPRetransFail] - (want + 9) / 10)) hi=$want
rtx_in() { # prints "in" once Prometheus' total is within [lo, hi], else the total
	local v
	v=$(prom_total "$rtx_rsel")
	if [ "$v" != absent ] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then echo in; else echo "$v"; fi
}
wait_for 40 in rtx_in >/dev/null
# Within the bounds the total may still be growing (the join wait, the new-series hold).
rtx=$(wait_stable 20 3 prom_total "$rtx_rsel")
check_true "retransmissions by the server ($rtx) within [$lo, $hi]: its kernel's $want segments (TcpRetransSegs - TcpExtTCPSynRetrans), - ${k1[TcpExtTCPRetransFail]} failed sends - 10%; ${k1[TcpExtTCPSpuriousRtxHostQueues]} host-queue give-ups not counted" \
	test "$rtx" -ge "$lo" -a "$rtx" -le "$hi"
check_true "the server retransmitted ($rtx retransmissions for $dropped drops)" test "$rtx" -gt 0
stack_finish
