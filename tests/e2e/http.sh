#!/usr/bin/env bash
# End to end: HTTP/1.x requests measured without a proxy, checked in a real Prometheus against
# the test's own ground truth. Servers in two pods behind a ClusterIP answer after the delays
# the test asks for (30, 60, 300 ms) with the statuses it asks for (200, 500); a client makes a
# known number of keep-alive requests and counts the statuses it got. Every request must land
# in the histogram bucket its delay implies, and the counts by status class must equal the
# client's. Garbage and binary payloads on the same ports must add nothing.
source "$(dirname "$0")/lib.sh"
echo "http.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
	echo "SKIP: $PY not installed (make deps installs Debian's python3)"
	exit 77
fi

lab_up
for p in b c; do
	lab_exec "$p" "$PY" "$TOP/tests/tools/http_server.py" --port 8080 --pid-file "$WORK/http-$p.pid" \
		>"$WORK/http-$p.log" 2>&1 &
done
stack_start
for p in b c; do
	for _ in $(seq 50); do lab_exec a curl -s -o /dev/null "http://${LAB_POD_IP[$p]}:8080/delay/0" && break; sleep 0.1; done
done
stack_agents || exit 1

# keepalive N PATH: N requests on one connection through the ClusterIP; prints each one's
# status and the client's own time to the first byte of the answer.
keepalive() {
	local n=$1 path=$2 args=() i
	for i in $(seq "$n"); do args+=(-o /dev/null "http://10.100.0.10$path"); done
	lab_exec a curl -s -w '%{http_code} %{time_starttransfer}\n' "${args[@]}"
}
codes=$(
	for _ in 1 2 3; do keepalive 10 /delay/30/200; done
	for _ in 1 2; do keepalive 10 /delay/60/200; done
	keepalive 6 /delay/300/500
	keepalive 4 /delay/300/503
)
n2xx=$(grep -c '^2' <<<"$codes")
n5xx=$(grep -c '^5' <<<"$codes")
echo "  info  the client's own counts: $n2xx 2xx, $n5xx 5xx (of $(wc -l <<<"$codes") requests)"
# Tally = plan: every request answered with the status it asked for.
check_eq "the client got 50 2xx and 10 5xx" "$n2xx/$n5xx" "50/10"
check_eq "the client's statuses = the plan (200 x 50, 500 x 6, 503 x 4)" \
	"$(awk '{ print $1 }' <<<"$codes" | sort | uniq -c | awk '{ printf "%s x %s, ", $2, $1 }')" \
	"200 x 50, 500 x 6, 503 x 4, "
# Not HTTP: a line of garbage, a TLS ClientHello, random bytes; straight to the pods' port.
sent=0
lab_exec a bash -c "printf 'garbage\r\n\r\n' >/dev/tcp/${LAB_POD_IP[b]}/8080" 2>/dev/null && sent=$((sent + 1))
lab_exec a bash -c "printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03GET ' >/dev/tcp/${LAB_POD_IP[b]}/8080" 2>/dev/null && sent=$((sent + 1))
lab_exec a bash -c "head -c 3000 /dev/urandom >/dev/tcp/${LAB_POD_IP[c]}/8080" 2>/dev/null && sent=$((sent + 1))
check_eq "the three non-HTTP payloads were sent (connected and written)" "$sent" 3
# The servers have answered (or given up on) the payloads and closed their connections, so
# every packet of them has passed the veths; the agents' final drain (SIGTERM) takes the rest.
open_conns() {
	local p
	for p in b c; do
		lab_exec "$p" ss -Htn state established state close-wait state last-ack \
			state fin-wait-1 state fin-wait-2 state closing '( sport = :8080 )'
	done | wc -l
}
check_eq "the servers closed every connection" "$(wait_for 15 0 open_conns)" 0
agent_stop n1
agent_stop n2

# check_prom WHAT SELECTOR WANT [TIMEOUT_S]: Prometheus' total once it equals WANT (a series
# is exported as 0 during the collector's new-series hold, and a server's report of a client
# on another node waits for the join), or what it holds at the deadline.

web='source_workload="client",destination_workload="web",destination_service="web",destination_port="80"'
for r in client server; do
	# The first check of each reporter waits for its data to have arrived.
	check_prom "2xx requests ($r) = the client's count" \
		"flowlens_http_requests_total{$web,method=\"GET\",status_class=\"2xx\",reporter=\"$r\"}" "$n2xx" 40
	check_prom "5xx requests ($r) = the client's count" \
		"flowlens_http_requests_total{$web,method=\"GET\",status_class=\"5xx\",reporter=\"$r\"}" "$n5xx"
	# The histogram's count first: once it is complete, so are its buckets (the same series
	# set, created together), and a bucket that must hold 0 is read from final data.
	check_prom "($r) count" "flowlens_http_request_duration_seconds_count{$web,reporter=\"$r\"}" 60
	b="flowlens_http_request_duration_seconds_bucket{$web,reporter=\"$r\""
	# Two independent bounds per bucket. The delay is a floor: a request delayed more than
	# le cannot be in it (at most: the requests delayed <= le). The client's own time to the
	# first byte contains what either veth sees: a request the client saw answered within le
	# must be in it (at least). Without scheduling hiccups the two are equal: 0, 30, 50, 50, 60.
	check_eq "($r) none under 25 ms" "$(prom_total "$b,le=\"0.025\"}")" 0
	for bucket in "0.05 30 the 30 requests delayed 30 ms in (25 ms, 50 ms]" \
		"0.1 50 the 20 delayed 60 ms in (50 ms, 100 ms]" \
		"0.25 50 nothing in (100 ms, 250 ms]" \
		"0.5 60 the 10 delayed 300 ms in (250 ms, 500 ms]"; do
		read -r le most what <<<"$bucket"
		least=$(awk -v le="$le" '$2 <= le { n++ } END { print n + 0 }' <<<"$codes")
		got=$(prom_total "$b,le=\"$le\"}")
		check_true "($r) $what: $got (client-timed at least $least, delay-bounded at most $most)" \
			test "$got" -ge "$least" -a "$got" -le "$most"
	done
done
# The non-HTTP payloads reached the agents (their connections were counted), so that nothing
# counted for them means the parsers rejected them, not that they were never seen.
check_prom "the non-HTTP payloads' connections to the pods' :8080 (client)" \
	'flowlens_tcp_connections_total{source_workload="client",destination_port="8080",reporter="client",result="established"}' "$sent"
check_eq "nothing else counted as HTTP (garbage, TLS, random bytes)" \
	"$(prom_query 'sum(flowlens_http_requests_total{destination_port="8080"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0
stack_finish
