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

ask() { # SERVER NAME TYPE [DIG OPTIONS] -> the status dig saw, or "timeout"
	local out
	if out=$(lab_exec a dig @"$1" "$2" "$3" +tries=1 +timeout=1 "${@:4}" 2>/dev/null); then
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out"
	else
		echo timeout
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
# Not DNS on port 53: garbage and a truncated header must add nothing.
lab_exec a bash -c 'printf "garbage" >/dev/udp/10.100.0.53/53'
lab_exec a bash -c 'printf "\x12\x34\x01" >/dev/udp/10.100.0.53/53'
sleep 4 # the agents' DNS timeout
agent_stop n1
agent_stop n2
sleep 7 # the join wait, the new-series hold, Prometheus' scrapes

q() { # SERVICE RCODE QTYPE REPORTER
	prom_total "flowlens_dns_requests_total{source_workload=\"client\",destination_service=\"$1\",rcode=\"$2\",qtype=\"$3\",reporter=\"$4\"}"
}
for r in client server; do
	check_eq "NOERROR A over UDP and TCP ($r)" "$(q kube-dns NOERROR A "$r")" $((a_ok + tcp_ok))
	check_eq "...of which over TCP ($r)" \
		"$(prom_total "flowlens_dns_requests_total{source_workload=\"client\",destination_service=\"kube-dns\",protocol=\"tcp\",rcode=\"NOERROR\",reporter=\"$r\"}")" "$tcp_ok"
	check_eq "$aaaa AAAA ($r)" "$(q kube-dns "$aaaa" AAAA "$r")" 5
	check_eq "NXDOMAIN A ($r)" "$(q kube-dns NXDOMAIN A "$r")" "$nx"
	check_eq "timeout A ($r)" "$(q dns-blackhole timeout A "$r")" "$to"
	check_eq "answered queries in the duration histogram ($r)" \
		"$(prom_total "flowlens_dns_request_duration_seconds_count{source_workload=\"client\",destination_service=\"kube-dns\",reporter=\"$r\"}")" \
		$((a_ok + tcp_ok + 5 + nx))
done
check_eq "the destination is the DNS pod's workload" \
	"$(prom_total 'flowlens_dns_requests_total{source_workload="client",destination_workload="coredns",destination_namespace="kube-system",qtype="A",rcode="NOERROR",reporter="client"}')" $((a_ok + tcp_ok))
check_eq "nothing else counted as DNS" \
	"$(prom_query 'sum(flowlens_dns_requests_total) or vector(0)' | jq -r '.data.result[0].value[1]')" $((2 * (a_ok + tcp_ok + 5 + nx + to)))
# dnsmasq answers from memory: every answer within 100 ms of its query.
check_eq "answers within 100 ms (client)" \
	"$(prom_total 'flowlens_dns_request_duration_seconds_bucket{source_workload="client",destination_service="kube-dns",reporter="client",le="0.1"}')" \
	$((a_ok + tcp_ok + 5 + nx))
stack_finish
