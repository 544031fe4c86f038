#!/usr/bin/env bash
# End to end: TCP connection outcomes and connect latency, checked in a real Prometheus
# against what the test itself caused: connections its curls made (established), a port with
# nothing listening (refused), SYNs an iptables rule drops (timeout), an iptables rule that
# answers the first data segment with a RST (reset), and a rule that drops every connection's
# first SYN, so that each connects only after the kernel's 1 s SYN retransmit (latency).
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

ok=0 refused=0 timeout=0 reset=0 slow=0
for _ in $(seq 10); do lab_exec a curl -sf -o /dev/null http://10.100.0.10/ && ok=$((ok + 1)); done
for _ in $(seq 4); do lab_exec a curl -s -o /dev/null "http://$B:9999/"; [ $? = 7 ] && refused=$((refused + 1)); done
for _ in $(seq 3); do lab_exec a curl -s -o /dev/null --connect-timeout 1 "http://$B:8082/"; [ $? = 28 ] && timeout=$((timeout + 1)); done
for _ in $(seq 5); do lab_exec a curl -s -o /dev/null "http://$B:8081/"; [ $? = 56 ] && reset=$((reset + 1)); done
for _ in $(seq 3); do lab_exec a curl -sf -o /dev/null "http://$B:8083/" && slow=$((slow + 1)); done
echo "  info  the client's own counts: $ok ok through the ClusterIP, $refused refused, $timeout timed out, $reset reset, $slow slow connects"
sleep 4 # the agents' connect timeout passes for the dropped SYNs
agent_stop n1
agent_stop n2
sleep 7 # the join wait, the new-series hold, Prometheus' scrapes

sel() { # PORT SERVICE REPORTER RESULT
	echo "flowlens_tcp_connections_total{source_workload=\"client\",destination_port=\"$1\",destination_service=\"$2\",reporter=\"$3\",result=\"$4\"}"
}
for r in client server; do
	check_eq "established through Service web:80 ($r) = curls that succeeded" \
		"$(prom_total "$(sel 80 web "$r" established)")" "$ok"
	check_eq "refused: nothing listening on :9999 ($r)" "$(prom_total "$(sel 9999 "" "$r" refused)")" "$refused"
	check_eq "timeout: SYNs dropped on :8082 ($r)" "$(prom_total "$(sel 8082 "" "$r" timeout)")" "$timeout"
	check_eq "reset after the handshake on :8081 ($r)" "$(prom_total "$(sel 8081 "" "$r" reset)")" "$reset"
	check_eq "...which were established first ($r)" "$(prom_total "$(sel 8081 "" "$r" established)")" "$reset"
done
check_eq "no other results on :9999, :8082" \
	"$(prom_query 'count(flowlens_tcp_connections_total{destination_port=~"9999|8082",result!~"refused|timeout"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0

h='flowlens_tcp_connect_duration_seconds_bucket{source_workload="client",reporter="client"'
check_eq "connect latency: every connection through the ClusterIP under 100 ms" \
	"$(prom_total "$h,destination_service=\"web\",le=\"0.1\"}")" "$ok"
check_eq "connect latency: each first SYN dropped -> none under 1 s" \
	"$(prom_total "$h,destination_port=\"8083\",le=\"1\"}")" 0
check_eq "connect latency: ...all within (1 s, 2.5 s] (the kernel's 1 s SYN retransmit)" \
	"$(prom_total "$h,destination_port=\"8083\",le=\"2.5\"}")" "$slow"
check_eq "connect latency count = established on :8083" \
	"$(prom_total 'flowlens_tcp_connect_duration_seconds_count{source_workload="client",reporter="client",destination_port="8083"}')" "$slow"
sum=$(prom_total 'flowlens_tcp_connect_duration_seconds_sum{source_workload="client",reporter="client",destination_port="8083"}')
check_true "connect latency sum on :8083 is $slow x ~1 s ($sum)" test "$sum" -ge "$slow" -a "$sum" -le $((slow * 2))
stack_finish
