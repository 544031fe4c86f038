#!/bin/sh
# The arm64 (Graviton) guest's checks, in busybox sh (no arm64 bash, iproute2 or iptables in
# the image): test-bpf for every object the agent may load on this kernel; then the agent,
# cross-built, with exactly the chart's capabilities, on a pod veth named eni*, and the flows
# it reports against ping's own tallies (5 echo requests, 5 replies). Prints RESULT lines.
TOP=/flowlens
rc=0
modprobe nf_conntrack 2>/dev/null
modprobe nf_conntrack_netlink 2>/dev/null
echo "=== test-bpf on $(uname -r) ($(uname -m))"
if "$TOP/build/test-bpf"; then echo "RESULT test-bpf pass"; else echo "RESULT test-bpf FAIL"; rc=1; fi

echo "=== agent on $(uname -r) ($(uname -m))"
fails=0
ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; fails=$((fails + 1)); }
modprobe veth
modprobe sch_ingress
modprobe cls_bpf
export IP=/usr/bin/ip-iproute2
# A pod: eth0 in its own network namespace, eniarm64pod0 on the host side, VPC CNI routing.
unshare -n sleep 600 &
pod=$!
sleep 0.5
$IP link add eniarm64pod0 type veth peer name eth0pod
$IP link set eth0pod netns "$pod"
for d in all default eniarm64pod0; do echo 1 >/proc/sys/net/ipv6/conf/$d/disable_ipv6; done
$IP addr add 169.254.1.1/32 dev eniarm64pod0
$IP link set eniarm64pod0 up
$IP route add 10.1.1.2/32 dev eniarm64pod0
nsenter -n -t "$pod" sh -c '
	echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
	$IP link set lo up
	$IP link set eth0pod name eth0
	$IP addr add 10.1.1.2/32 dev eth0
	$IP link set eth0 up
	$IP route add 169.254.1.1 dev eth0
	$IP route add default via 169.254.1.1 dev eth0'
hostmac=$(cat /sys/class/net/eniarm64pod0/address)
podmac=$(nsenter -n -t "$pod" $IP -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
nsenter -n -t "$pod" $IP neigh replace 169.254.1.1 lladdr "$hostmac" dev eth0 nud permanent
$IP neigh replace 10.1.1.2 lladdr "$podmac" dev eniarm64pod0 nud permanent
# The chart's container: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_RESOURCE, no_new_privs.
FLOWLENS_INTERFACES="eni*" /usr/bin/setpriv-util-linux --bounding-set -all,+bpf,+net_admin,+perfmon,+sys_resource \
	--inh-caps -all --no-new-privs "$TOP/build/flowlens-agent" --listen 127.0.0.1:9810 \
	--interval 1s --output json >/tmp/flows.jsonl 2>/tmp/agent.log &
agent=$!
up=0
for _ in $(seq 150); do
	if wget -q -O /tmp/metrics http://127.0.0.1:9810/metrics 2>/dev/null; then up=1; break; fi
	kill -0 "$agent" 2>/dev/null || break
	sleep 0.2
done
if [ "$up" = 1 ]; then ok "the agent runs with the chart's capabilities"; else bad "the agent does not start"; cat /tmp/agent.log; fi
grep '^flowlens_agent_feature_info' /tmp/metrics | sed 's/^/  info  /'
grep -q 'flowlens_agent_feature_info{feature="tcx",state="unavailable"' /tmp/metrics &&
	ok "tcx unavailable before 6.6: legacy TC" || bad "tcx state"
grep -q 'flowlens_agent_feature_info{feature="signal_drops",state="on"' /tmp/metrics &&
	ok "drops signal on" || bad "drops signal"
grep -q '^flowlens_agent_interfaces{kind="pod",mode="tc"} 1' /tmp/metrics &&
	ok "the pod interface is attached" || bad "pod interface: $(grep '^flowlens_agent_interfaces' /tmp/metrics | tr '\n' ' ')"
out=$(ping -c 5 -i 0.2 10.1.1.2 2>&1 | grep 'packets transmitted')
echo "  info  ping: $out"
sent=$(echo "$out" | awk '{ print $1 }')
recv=$(echo "$out" | awk '{ print $4 }')
sleep 2.5
kill -TERM "$agent"
wait "$agent"
arc=$?
[ "$arc" = 0 ] && ok "agent exit status 0 (detached)" || bad "agent exit status $arc"
# The pod's view (reporter server: the pod answers): requests in, replies out.
got=$(grep '"protocol":"icmp"' /tmp/flows.jsonl | grep '"server_ip":"10.1.1.2"' |
	sed -n 's/.*"forward":{"packets":\([0-9]*\).*"reply":{"packets":\([0-9]*\).*/\1 \2/p' |
	awk '{ f += $1; r += $2 } END { printf "%d %d", f, r }')
[ "$got" = "$sent $recv" ] && ok "ICMP echo packets (forward, reply) = ping's ($got)" ||
	bad "ICMP echo packets: got '$got', want '$sent $recv'"
kill "$pod" 2>/dev/null
if [ "$fails" = 0 ]; then echo "RESULT agent pass"; else echo "RESULT agent FAIL"; rc=1; tail -20 /tmp/agent.log; head -5 /tmp/flows.jsonl; fi
exit $rc
