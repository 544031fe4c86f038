#!/usr/bin/env bash
# Tracepoint counts are taken exactly once, even while they are being counted: a UDP flood on
# three 5-tuples into an iptables DROP rule (about 10^5 drops a second on three keys of the
# drops map) for EVENTS_SECONDS (default 12) while the agent drains every 100 ms; the agent's
# flowlens_agent_drops_total{reason="netfilter_drop"} must equal the rule's packet counter.
# (Taking a key with lookup-and-delete while the tracepoint program adds to it lost counts:
# the program's add landed in the deleted element.)
source "$(dirname "$0")/lib.sh"
echo "events.sh: lab $LAB_ID"
command -v socat >/dev/null || { echo "SKIP: socat not installed (make deps installs it)"; exit 77; }
lab_up
C=${LAB_POD_IP[c]}
lab_exec c iptables -A INPUT -p udp --dport 9999 -j DROP
agent_start n1 --interval 100ms --signals drops --output none || exit 1
senders=()
for p in 40000 40001 40002; do
	timeout "${EVENTS_SECONDS:-12}" ip netns exec "$(lab_ns a)" socat -u -b 32 /dev/zero \
		"UDP4-SENDTO:$C:9999,sourceport=$p" 2>/dev/null &
	senders+=($!)
done
wait "${senders[@]}"
sleep 1
got=$(agent_metric n1 'flowlens_agent_drops_total{reason="netfilter_drop"}')
agent_stop n1 || fail "agent exit status"
dropped=$(lab_exec c iptables -nvxL INPUT | awk '/dpt:9999/ { print $1 }')
echo "  info  the rule dropped $dropped datagrams"
check_true "a flood of drops ($dropped)" test "${dropped:-0}" -gt 10000
check_eq "agent drops (netfilter_drop) = the rule's counter, drained every 100 ms" "${got:-0}" "$dropped"
finish
