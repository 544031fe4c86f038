#!/usr/bin/env bash
# End to end: DNS over UDP through a ClusterIP, checked in a real Prometheus against the
# client's own results. A real DNS server (dnsmasq) in a pod behind ClusterIP 10.100.0.53
# answers NOERROR for a name it knows and NXDOMAIN for others; a second ClusterIP leads to a
# pod that drops every query (timeouts). dig, one try per query, tells what it got.
source "$(dirname "$0")/lib.sh"
echo "dns.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null || ! command -v dnsmasq >/dev/null || ! command -v dig >/dev/null; then
	echo "SKIP: prometheus, dnsmasq or dig not installed (make deps installs them)"
	exit 77
fi

lab_up
lab_pod n2 dns 10.1.2.3 fd00:1:2::3
lab_pod n2 dns2 10.1.2.4 fd00:1:2::4
LAB_POD_APP[dns]="kube-system Deployment/coredns"
LAB_POD_APP[dns2]="kube-system Deployment/blackhole"
LAB_PROTO=udp lab_clusterip 10.100.0.53 53 53 dns
lab_clusterip 10.100.0.53 53 53 dns
LAB_PROTO=udp lab_clusterip 10.100.0.54 53 53 dns2
LAB_SVC[10.100.0.53:53]="kube-system kube-dns 53"
LAB_SVC[10.100.0.54:53]="kube-system dns-blackhole 53"
lab_exec dns2 iptables -A INPUT -p udp --dport 53 -j DROP
lab_exec dns dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=10.1.2.3 --port=53 --local=/cluster.local/ \
	--address=/web.shop.svc.cluster.local/10.100.0.10 --pid-file="$WORK/dnsmasq.pid" \
	--log-facility="$WORK/dnsmasq.log" &
for _ in $(seq 50); do lab_exec a dig @10.100.0.53 web.shop.svc.cluster.local +tries=1 +timeout=1 >/dev/null && break; sleep 0.1; done
stack_start
stack_agents --dns-timeout 2s || exit 1

ask() { # SERVER NAME TYPE [DIG OPTIONS] -> the status dig saw, "timeout" or "error"
	local out
	if out=$(lab_exec a dig @"$1" "$2" "$3" +tries=1 +timeout=1 "${@:4}" 2>&1); then
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out"
	elif grep -q 'timed out' <<<"$out"; then
		echo timeout # no answer at all, as planned (not e.g. "connection refused")
	else
		echo error
	fi
}
resA=$(for _ in $(seq 12); do ask 10.100.0.53 web.shop.svc.cluster.local A; done)
resAAAA=$(for _ in $(seq 5); do ask 10.100.0.53 web.shop.svc.cluster.local AAAA; done)
resNX=$(for _ in $(seq 7); do ask 10.100.0.53 nope.shop.svc.cluster.local A; done)
resTO=$(for _ in $(seq 3); do ask 10.100.0.54 web.shop.svc.cluster.local A; done)
resTCP=$(for _ in $(seq 4); do ask 10.100.0.53 web.shop.svc.cluster.local A +tcp; done)
a_ok=$(grep -c '^NOERROR' <<<"$resA")
aaaa=$(sort -u <<<"$resAAAA")
nx=$(grep -c '^NXDOMAIN' <<<"$resNX")
to=$(grep -c '^timeout' <<<"$resTO")
echo "  info  dig's own results: A $a_ok NOERROR, AAAA $(tr '\n' ' ' <<<"$resAAAA"), $nx NXDOMAIN, $to without an answer"
tcp_ok=$(grep -c '^NOERROR' <<<"$resTCP")
check_eq "dig: 12 A answered, 5 AAAA with one status, 7 NXDOMAIN, 3 timeouts, 4 over TCP" \
	"$a_ok/$(wc -l <<<"$aaaa")/$nx/$to/$tcp_ok" "12/1/7/3/4"
# ...and the timeouts are the blackhole's doing: its rule dropped each query (one try each).
check_eq "the blackhole pod's rule dropped the 3 queries" \
	"$(lab_exec dns2 iptables -nvxL INPUT | awk '/udp dpt:53/ { n = $1 } END { print n == "" ? "absent" : n }')" 3
# Not DNS on port 53: garbage and a truncated header must add nothing.
sent=0
lab_exec a bash -c 'printf "garbage" >/dev/udp/10.100.0.53/53' && sent=$((sent + 1))
lab_exec a bash -c 'printf "\x12\x34\x01" >/dev/udp/10.100.0.53/53' && sent=$((sent + 1))
check_eq "the two non-DNS datagrams were sent" "$sent" 2

# check_prom WHAT SELECTOR WANT [TIMEOUT_S]: Prometheus' total once it equals WANT (a series
# is exported as 0 during the collector's new-series hold, and a server's report of a client
# on another node waits for the join), or what it holds at the deadline.
q() { # SERVICE RCODE QTYPE REPORTER
	echo "flowlens_dns_requests_total{source_workload=\"client\",destination_service=\"$1\",rcode=\"$2\",qtype=\"$3\",reporter=\"$4\"}"
}
# An agent calls a query a timeout in the first drain --dns-timeout (2 s) after it: wait for
# the timeouts themselves, at both reporters, before stopping the agents (a stopped agent
# does not time out what is still waiting).
for r in client server; do
	check_prom "timeout A ($r), before the agents stop" "$(q dns-blackhole timeout A "$r")" "$to" 40
done
agent_stop n1
agent_stop n2

for r in client server; do
	check_prom "NOERROR A over UDP and TCP ($r)" "$(q kube-dns NOERROR A "$r")" $((a_ok + tcp_ok)) 40
	check_prom "...of which over TCP ($r)" \
		"flowlens_dns_requests_total{source_workload=\"client\",destination_service=\"kube-dns\",protocol=\"tcp\",rcode=\"NOERROR\",reporter=\"$r\"}" "$tcp_ok"
	check_prom "$aaaa AAAA ($r)" "$(q kube-dns "$aaaa" AAAA "$r")" 5
	check_prom "NXDOMAIN A ($r)" "$(q kube-dns NXDOMAIN A "$r")" "$nx"
	check_prom "timeout A ($r)" "$(q dns-blackhole timeout A "$r")" "$to"
	check_prom "answered queries in the duration histogram ($r)" \
		"flowlens_dns_request_duration_seconds_count{source_workload=\"client\",destination_service=\"kube-dns\",reporter=\"$r\"}" \
		$((a_ok + tcp_ok + 5 + nx))
done
check_prom "the destination is the DNS pod's workload" \
	'flowlens_dns_requests_total{source_workload="client",destination_workload="coredns",destination_namespace="kube-system",qtype="A",rcode="NOERROR",reporter="client"}' $((a_ok + tcp_ok))
# The non-DNS datagrams reached the agent (one packet each, besides one per query over UDP),
# so that nothing counted for them means the parser rejected them, not that they were unseen.
check_prom "UDP packets from the client to kube-dns: the queries over UDP and the $sent non-DNS" \
	'flowlens_flow_packets_total{source_workload="client",destination_service="kube-dns",protocol="udp",direction="forward",reporter="client"}' \
	$((a_ok + 5 + nx + sent))
check_eq "nothing else counted as DNS" \
	"$(prom_query 'sum(flowlens_dns_requests_total) or vector(0)' | jq -r '.data.result[0].value[1]')" $((2 * (a_ok + tcp_ok + 5 + nx + to)))
# dnsmasq answers from memory: every answer within 100 ms of its query.
check_prom "answers within 100 ms (client)" \
	'flowlens_dns_request_duration_seconds_bucket{source_workload="client",destination_service="kube-dns",reporter="client",le="0.1"}' \
	$((a_ok + tcp_ok + 5 + nx))
stack_finish
