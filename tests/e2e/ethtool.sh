#!/usr/bin/env bash
# Node interface driver counters (--ethtool-stats; on EKS the ENA allowance counters). The
# lab's "ENI" is a veth, whose driver has its own ethtool statistics: with an XDP_PASS program
# on it, rx_queue_0_xdp_packets counts every frame it receives. The agent exports the names
# it is given for node interfaces only, equal to what ethtool -S (an independent reader of the
# same kernel interface) shows once the traffic stopped, and moving by at least the packets
# the test sent; names the driver lacks give no series.
source "$(dirname "$0")/lib.sh"
echo "ethtool.sh: lab $LAB_ID"
command -v ethtool >/dev/null || { echo "  SKIP  ethtool not installed (make deps installs it)"; exit 77; }
lab_up
N1=${LAB_NODE_IP[n1]}
lab_exec n1 ip link set dev eth0 xdpdrv obj "$TOP/build/xdp_pass.bpf.o" sec xdp ||
	{ fail "XDP_PASS on n1's eth0"; finish; exit 1; }
ethtool_stat() { lab_exec n1 ethtool -S "$1" | awk -v k="$2:" '$1 == k { print $2 }'; }
metric() { agent_metric n1 "flowlens_node_ethtool_stat_total{interface=\"$1\",stat=\"$2\"}"; }

agent_start n1 --ethtool-stats peer_ifindex,rx_queue_0_xdp_packets,no_such_counter || exit 1
before=$(ethtool_stat eth0 rx_queue_0_xdp_packets)
lab_exec n2 ping -q -c 200 -i 0.002 "$N1" >/dev/null || fail "ping n2 -> n1"
sleep 2.5 # two drains after the traffic
now=$(ethtool_stat eth0 rx_queue_0_xdp_packets)
check_eq "eth0 rx_queue_0_xdp_packets: the agent's = ethtool -S" "$(metric eth0 rx_queue_0_xdp_packets)" "$now"
check_true "...and it moved by at least the 200 echo requests ($((now - before)))" test $((now - before)) -ge 200
# peer_ifindex: the other end of n1's eth0 is n2's eth0.
check_eq "eth0 peer_ifindex = n2's eth0 ifindex" "$(metric eth0 peer_ifindex)" \
	"$(lab_exec n2 cat /sys/class/net/eth0/ifindex)"
check_eq "series of a counter the driver lacks" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | grep -c 'stat="no_such_counter"')" 0
check_eq "series for pod interfaces (not read)" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | grep '^flowlens_node_ethtool_stat_total' | grep -vc 'interface="eth0"')" 0
check_eq "read errors" "$(agent_metric n1 flowlens_agent_ethtool_errors_total)" 0
agent_stop n1 || fail "agent exit status"
# The default names are the ENA driver's: none on a veth, so no series and no errors.
agent_start n1 || exit 1
sleep 1.5
check_eq "default (ENA allowance counters) on a veth: no series" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | grep -c '^flowlens_node_ethtool_stat_total')" 0
check_eq "default: read errors" "$(agent_metric n1 flowlens_agent_ethtool_errors_total)" 0
agent_stop n1 || fail "agent exit status"
lab_exec n1 ip link set dev eth0 xdpdrv off
finish
