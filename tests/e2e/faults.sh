#!/usr/bin/env bash
# End to end: retransmissions and kernel drops. An iptables `statistic` rule in the client pod
# drops a random 5% of what the server sends it; the rule's own packet counter is the ground
# truth for the drops (reason netfilter_drop), and the server has to retransmit.
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
lab_exec a iptables -A INPUT -p tcp -s "$C" --sport 8080 -m statistic --mode random \
	--probability 0.05 -j DROP
stack_start
stack_agents || exit 1

for _ in $(seq 4); do
	lab_exec a curl -sf -o /dev/null --max-time 60 "http://$C:8080/blob" || fail "download"
done
sleep 2
agent_stop n1
agent_stop n2
sleep 7
dropped=$(lab_exec a iptables -nvxL INPUT | awk '/statistic/ { print $1 }')
echo "  info  the rule dropped $dropped packets"
check_true "packets were dropped" test "${dropped:-0}" -gt 0
sel='source_workload="client",destination_workload="web",destination_port="8080"'
check_eq "drops at the client's side, reason netfilter_drop = the rule's counter" \
	"$(prom_total "flowlens_drops_total{$sel,reporter=\"client\",reason=\"netfilter_drop\"}")" "$dropped"
rtx=$(prom_total "flowlens_tcp_retransmits_total{$sel,reporter=\"server\"}")
check_true "the server retransmitted ($rtx retransmissions for $dropped drops)" test "$rtx" -gt 0
stack_finish
