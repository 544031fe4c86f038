#!/usr/bin/env bash
# End to end: TCP connection outcomes and connect latency, checked in a real Prometheus
# against what the test itself caused: connections its curls made (established), a port with
# nothing listening (refused), SYNs an iptables rule drops (timeout), an iptables rule that
# answers the first data segment with a RST (reset), and a rule that drops every connection's
# first SYN, so that each connects only after the kernel's 1 s SYN retransmit (latency).
# Every fault is first checked to have happened as planned (the client's own tally and the
# iptables rules' counters), so a fault that was never injected cannot pass as 0 = 0.
source "$(dirname "$0")/lib.sh"
echo "signals.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi

lab_up
B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]}
for p in b c; do
	mkdir -p "$WORK/www-$p" && echo hello >"$WORK/www-$p/index.html"
done
lab_web b 8080 "$WORK/www-b"
lab_web c 8080 "$WORK/www-c"
for port in 8081 8083; do
	sed "s/listen 8080; listen \[::\]:8080;/listen $port;/" "$WORK/www-b.nginx.conf" |
		sed "s/nginx.pid/nginx-$port.pid/" >"$WORK/b-$port.conf"
	lab_exec b nginx -c "$WORK/b-$port.conf"
done
# In pod b: SYNs to 8082 vanish; the first data segment to 8081 is answered with a RST; every
# second SYN to 8083 (each connection's first) is dropped.
lab_exec b iptables -A INPUT -p tcp --dport 8082 --syn -j DROP
lab_exec b iptables -A INPUT -p tcp --dport 8081 --tcp-flags PSH PSH -j REJECT --reject-with tcp-reset
lab_exec b iptables -A INPUT -p tcp --dport 8083 --syn -m statistic --mode nth --every 2 --packet 0 -j DROP
stack_start
stack_agents --tcp-connect-timeout 3s || exit 1

# The plan: how many connections of each outcome the test makes.
P_OK=10 P_REFUSED=4 P_TIMEOUT=3 P_RESET=5 P_SLOW=3
ok=0 refused=0 timeout=0 reset=0 slow=0
for _ in $(seq $P_OK); do lab_exec a curl -sf -o /dev/null http://10.100.0.10/ && ok=$((ok + 1)); done
for _ in $(seq $P_REFUSED); do lab_exec a curl -s -o /dev/null "http://$B:9999/"; [ $? = 7 ] && refused=$((refused + 1)); done
for _ in $(seq $P_TIMEOUT); do lab_exec a curl -s -o /dev/null --connect-timeout 1 "http://$B:8082/"; [ $? = 28 ] && timeout=$((timeout + 1)); done
for _ in $(seq $P_RESET); do lab_exec a curl -s -o /dev/null "http://$B:8081/"; [ $? = 56 ] && reset=$((reset + 1)); done
# Slow: connected, and only after the kernel's SYN retransmit (1 s): the first SYN was dropped.
for _ in $(seq $P_SLOW); do
	t=$(lab_exec a curl -sf -o /dev/null -w '%{time_connect}' "http://$B:8083/") &&
		awk -v t="$t" 'BEGIN { exit !(t >= 1) }' && slow=$((slow + 1))
done
echo "  info  the client's own counts: $ok ok through the ClusterIP, $refused refused, $timeout timed out, $reset reset, $slow slow connects"
# Tally = plan: each fault really happened, or the check names the one that did not.
check_eq "fault plan: curls through the ClusterIP that succeeded" "$ok" $P_OK
check_eq "fault plan: connections refused on :9999 (curl exit 7)" "$refused" $P_REFUSED
check_eq "fault plan: connects to :8082 timed out, SYNs dropped (curl exit 28)" "$timeout" $P_TIMEOUT
check_eq "fault plan: connections to :8081 reset after the request (curl exit 56)" "$reset" $P_RESET
check_eq "fault plan: connects to :8083 after a dropped first SYN (>= 1 s)" "$slow" $P_SLOW
rule() { # PORT: the packets pod b's rule for PORT matched, "absent" without one
	lab_exec b iptables -nvxL INPUT | awk -v p="dpt:$1" '$0 ~ p "( |$)" { n = $1 } END { print n == "" ? "absent" : n }'
}
r8082=$(rule 8082)
check_true "fault plan: pod b's rule dropping SYNs to :8082 dropped $r8082 (>= $P_TIMEOUT)" \
	test "$r8082" != absent -a "${r8082/absent/0}" -ge $P_TIMEOUT
check_eq "fault plan: pod b's rule resetting :8081 after the request answered" "$(rule 8081)" $P_RESET
check_eq "fault plan: pod b's rule dropping each first SYN to :8083 dropped" "$(rule 8083)" $P_SLOW

# The agents call a connect a timeout 3 s after its first SYN: node 1's agent has seen each
# dropped connect at the client's veth and at the server's (both pods are on node 1).
seen=$(wait_for 15 $((2 * timeout)) agent_metric n1 'flowlens_agent_tcp_connections_total{result="timeout"}')
echo "  info  node 1's agent counted $seen connect timeouts (want $((2 * timeout)): at both veths)"
agent_stop n1
agent_stop n2

sel() { # PORT SERVICE REPORTER RESULT
	echo "flowlens_tcp_connections_total{source_workload=\"client\",destination_port=\"$1\",destination_service=\"$2\",reporter=\"$3\",result=\"$4\"}"
}
# check_prom WHAT SELECTOR WANT [TIMEOUT_S]: Prometheus' total once it equals WANT (a series
# is exported as 0 during the collector's new-series hold, and a server's report of a client
# on another node waits for the join), or what it holds at the deadline.
for r in client server; do
	# The first check of each reporter waits for its data to have arrived.
	check_prom "established through Service web:80 ($r) = curls that succeeded" "$(sel 80 web "$r" established)" "$ok" 40
	check_prom "refused: nothing listening on :9999 ($r)" "$(sel 9999 "" "$r" refused)" "$refused"
	check_prom "timeout: SYNs dropped on :8082 ($r)" "$(sel 8082 "" "$r" timeout)" "$timeout"
	check_prom "reset after the handshake on :8081 ($r)" "$(sel 8081 "" "$r" reset)" "$reset"
	check_prom "...which were established first ($r)" "$(sel 8081 "" "$r" established)" "$reset"
done
check_eq "no other results on :9999, :8082" \
	"$(prom_query 'count(flowlens_tcp_connections_total{destination_port=~"9999|8082",result!~"refused|timeout"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0

h='flowlens_tcp_connect_duration_seconds_bucket{source_workload="client",reporter="client"'
check_prom "connect latency: every connection through the ClusterIP under 100 ms" \
	"$h,destination_service=\"web\",le=\"0.1\"}" "$ok"
check_prom "connect latency count = established on :8083" \
	'flowlens_tcp_connect_duration_seconds_count{source_workload="client",reporter="client",destination_port="8083"}' "$slow"
# The same histogram's other series now hold their final values: read them once.
check_eq "connect latency: each first SYN dropped -> none under 1 s" \
	"$(prom_total "$h,destination_port=\"8083\",le=\"1\"}")" 0
check_eq "connect latency: ...all within (1 s, 2.5 s] (the kernel's 1 s SYN retransmit)" \
	"$(prom_total "$h,destination_port=\"8083\",le=\"2.5\"}")" "$slow"
sum=$(prom_total 'flowlens_tcp_connect_duration_seconds_sum{source_workload="client",reporter="client",destination_port="8083"}')
check_true "connect latency sum on :8083 is $slow x ~1 s ($sum)" test "$sum" -ge "$slow" -a "$sum" -le $((slow * 2))
stack_finish
