#!/usr/bin/env bash
# End to end: gRPC (HTTP/2 without TLS) requests measured off the wire, checked in a real
# Prometheus against the gRPC client's own tally. Real gRPC servers (python3-grpcio) in two
# pods behind a ClusterIP answer after the delay each request asks for (30, 60, 300 ms) with
# the status it asks for (OK, NOT_FOUND, UNAVAILABLE, DEADLINE_EXCEEDED); three channels
# (three HTTP/2 connections) each carry their calls multiplexed, all issued at once, and a
# fourth goes over IPv6. Every status count must equal the client's, every request must land
# in the duration bucket its delay implies, from both reporters. Another channel, to a pod directly, is opened before
# the agents start: its HPACK state cannot be known, so its requests are counted from what
# reads without it (:status 200 is a static-table index) and reported as undecodable.
# Plain HTTP/2 too: nghttpd in a pod on the other node, h2load's own status counts.
source "$(dirname "$0")/lib.sh"
echo "grpc.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi
PY=/usr/bin/python3
if ! "$PY" -c 'import grpc' 2>/dev/null; then
	echo "SKIP: $PY has no grpc module (make deps installs Debian's python3-grpcio)"
	exit 77
fi
GRPC="$TOP/tests/tools/grpc_lab.py"
for tool in nghttpd h2load; do
	if ! command -v $tool >/dev/null; then
		echo "SKIP: $tool not installed (make deps installs Debian's nghttp2-server and nghttp2-client)"
		exit 77
	fi
done

lab_up
lab_exec b "$PY" "$GRPC" server --port 8080 --port 8081 >"$WORK/grpc-b.log" 2>&1 &
lab_exec c "$PY" "$GRPC" server --port 8080 >"$WORK/grpc-c.log" 2>&1 &
mkdir -p "$WORK/www"
head -c 3000 /dev/urandom >"$WORK/www/page"
lab_exec c nghttpd --no-tls -d "$WORK/www" 8082 >"$WORK/nghttpd.log" 2>&1 &
for p in b c; do
	for _ in $(seq 100); do
		lab_exec a "$PY" "$GRPC" client --target "${LAB_POD_IP[$p]}:8080" --plan "0 OK 1" \
			>/dev/null 2>&1 && break
		sleep 0.1
	done
done
# The channel opened before the agents: one call now, the rest once $WORK/go exists.
lab_exec a "$PY" "$GRPC" client --target "${LAB_POD_IP[b]}:8081" --before "$WORK/go" \
	--plan "30 OK 20" >"$WORK/before.json" 2>"$WORK/before.log" &
BEFORE_PID=$!
# Its connection is up and the server has answered on it: the preface and the first call's
# HEADERS go out with the connection's first bytes, and stack_start takes seconds (until
# Prometheus' first scrape) before the agents attach. Were the agents to see them after all,
# the no_preface counts below would fail, not pass.
earlier_ready() { lab_exec a ss -Htni state established '( dport = :8081 )' | grep -c 'bytes_received:[1-9]'; }
check_eq "the earlier channel is connected and answered before the agents start" "$(wait_for 15 1 earlier_ready)" 1
stack_start
stack_agents || exit 1
touch "$WORK/go"

plan="30 OK 12,60 OK 6,30 NOT_FOUND 4,60 UNAVAILABLE 3,300 DEADLINE_EXCEEDED 3"
plan6="30 OK 4,30 NOT_FOUND 2"
lab_exec a "$PY" "$GRPC" client --target 10.100.0.10:80 --channels 3 --plan "$plan" \
	>"$WORK/calls4.json" 2>"$WORK/client.log"
check_eq "the client's calls finished" "$?" 0
# ...and one channel over IPv6 (the Service's IPv6 ClusterIP).
lab_exec a "$PY" "$GRPC" client --target "[fd00:100::10]:80" --plan "$plan6" \
	>"$WORK/calls6.json" 2>"$WORK/client6.log"
check_eq "the IPv6 client's calls finished" "$?" 0
jq -s '{calls: (.[0].calls + .[1].calls)}' "$WORK/calls4.json" "$WORK/calls6.json" >"$WORK/calls.json"
wait "$BEFORE_PID"
check_eq "the earlier channel's calls finished" "$?" 0
# Tally = plan: the calls by status the clients got are the ones they asked for (3 channels
# of $plan, 1 of $plan6), and the earlier channel's 20 OK.
tally() { jq -r --arg s "$1" '[.calls[] | select(.[0] == $s)] | length' "$WORK/calls.json"; }
total=$(jq '.calls | length' "$WORK/calls.json")
echo "  info  the client's own tally: $(jq -c '[.calls[] | .[0]] | group_by(.) | map({(.[0]): length}) | add' "$WORK/calls.json") of $total"
check_eq "the clients made 90 calls (84 over IPv4, 6 over IPv6)" "$total" 90
check_eq "the clients' calls by status = the plan" \
	"$(jq -r '[.calls[] | .[0]] | group_by(.) | map("\(.[0]) \(length)") | join(" ")' "$WORK/calls.json")" \
	"$({ tr ',' '\n' <<<"$plan" | sed 's/^/3 /'; tr ',' '\n' <<<"$plan6" | sed 's/^/1 /'; } |
		awk '{ n[$3] += $1 * $4 } END { for (s in n) print s, n[s] }' | sort | tr '\n' ' ' | sed 's/ $//')"
before=$(jq '[.calls[] | select(.[0] == "OK")] | length' "$WORK/before.json")
check_eq "the earlier channel's client got 20 OK" "$before" 20
# Plain HTTP/2 across nodes: 2 connections, 10 streams at once on each.
h2ok=$(lab_exec a h2load -n 200 -c 2 -m 10 "http://${LAB_POD_IP[c]}:8082/page" 2>&1)
h2nf=$(lab_exec a h2load -n 30 -c 1 -m 10 "http://${LAB_POD_IP[c]}:8082/nope" 2>&1)
h2_2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$h2ok")
h2_4xx=$(sed -n 's/^status codes: .* \([0-9]*\) 4xx.*/\1/p' <<<"$h2nf")
echo "  info  h2load's own counts: $h2_2xx 2xx, $h2_4xx 4xx ($(grep -c 'Application protocol: h2c' <<<"$h2ok$h2nf") runs over h2c)"
check_eq "h2load: 200 answered 2xx and 30 answered 4xx" "$h2_2xx/$h2_4xx" "200/30"
# The agent decodes what its drains hand it: wait for the earlier channel's 20 requests, seen
# at the client's veth and the server's, all no_preface (checked below).
agent_undecodable=$(wait_for 15 40 agent_metric n1 'flowlens_agent_http2_requests_total{decoding="no_preface"}')
agent_ok=$(agent_metric n1 'flowlens_agent_http2_requests_total{decoding="ok"}')
lab_exec n1 curl -sf http://127.0.0.1:9810/metrics |
	grep -E '^flowlens_agent_(http2|samples_total|datapath_events_total\{reason="(h2|samples))' |
	sed 's/^/  info  node 1: /'
agent_stop n1
agent_stop n2

# check_prom WHAT SELECTOR WANT [TIMEOUT_S]: Prometheus' total once it equals WANT (a series
# is exported as 0 during the collector's new-series hold, and a server's report of a client
# on another node waits for the join), or what it holds at the deadline.
web='source_workload="client",destination_workload="web",destination_service="web",destination_port="80"'
for r in client server; do
	# The first check of each reporter waits for its data to have arrived.
	wait=40
	for s in OK NOT_FOUND UNAVAILABLE DEADLINE_EXCEEDED; do
		check_prom "gRPC $s ($r) = the client's count" \
			"flowlens_grpc_requests_total{$web,grpc_status=\"$s\",reporter=\"$r\"}" "$(tally "$s")" $wait
		wait=20
	done
	check_prom "HTTP/2 requests ($r): every call, POST, :status 200" \
		"flowlens_http_requests_total{$web,http_version=\"2\",method=\"POST\",status_class=\"2xx\",reporter=\"$r\"}" "$total"
	# The histogram's count first: once it is complete, so are its buckets (created with it),
	# and the bucket that must hold 0 is read from final data.
	check_prom "($r) gRPC duration count" \
		"flowlens_grpc_request_duration_seconds_count{$web,reporter=\"$r\"}" "$total"
	b="flowlens_grpc_request_duration_seconds_bucket{$web,reporter=\"$r\""
	check_eq "($r) no gRPC request under 25 ms" "$(prom_total "$b,le=\"0.025\"}")" 0
	# The delay is a floor (at most the calls delayed <= le); the client's own time to the
	# status contains what either veth sees (at least the calls it saw done within le).
	for bucket in "0.05 54 the 54 calls delayed 30 ms in (25 ms, 50 ms]" \
		"0.1 81 the 27 delayed 60 ms in (50 ms, 100 ms]" \
		"0.25 81 nothing in (100 ms, 250 ms]" \
		"0.5 90 the 9 delayed 300 ms in (250 ms, 500 ms]"; do
		read -r le most what <<<"$bucket"
		least=$(jq --argjson le "$le" '[.calls[] | select(.[1] <= $le)] | length' "$WORK/calls.json")
		got=$(prom_total "$b,le=\"$le\"}")
		check_true "($r) $what: $got (client-timed at least $least, delay-bounded at most $most)" \
			test "$got" -ge "$least" -a "$got" -le "$most"
	done
	check_prom "($r) HTTP/2 duration count (request to response HEADERS)" \
		"flowlens_http_request_duration_seconds_count{$web,http_version=\"2\",reporter=\"$r\"}" "$total"
done
check_eq "nothing on the gRPC port counted as HTTP/1" \
	"$(prom_query 'sum(flowlens_http_requests_total{http_version="1.1",destination_port=~"80|8080|8081"}) or vector(0)' | jq -r '.data.result[0].value[1]')" 0

plain='source_workload="client",destination_workload="web",destination_port="8082"'
for r in client server; do
	check_prom "plain HTTP/2 ($r): GET 2xx = h2load's count" \
		"flowlens_http_requests_total{$plain,http_version=\"2\",method=\"GET\",status_class=\"2xx\",reporter=\"$r\"}" "$h2_2xx" 40
	check_prom "plain HTTP/2 ($r): GET 4xx = h2load's count" \
		"flowlens_http_requests_total{$plain,http_version=\"2\",method=\"GET\",status_class=\"4xx\",reporter=\"$r\"}" "$h2_4xx"
	# No gRPC series at all is right here (checked after the counts above showed the data).
	check_eq "plain HTTP/2 ($r): no gRPC calls counted" \
		"$(prom_total0 "flowlens_grpc_requests_total{$plain,reporter=\"$r\"}")" 0
done

# The channel opened before the agents: 20 calls after they started, all answered 200.
direct='source_workload="client",destination_workload="web",destination_port="8081"'
for r in client server; do
	check_prom "earlier channel ($r): HTTP/2 requests read without its HPACK table (static :status 200)" \
		"flowlens_http_requests_total{$direct,http_version=\"2\",status_class=\"2xx\",reporter=\"$r\"}" 20
done
# Node 1's agent saw them at the client's veth and the server's: twice, all no_preface.
check_eq "agent: the earlier channel's requests counted as undecodable (no_preface), at both veths" \
	"$agent_undecodable" 40
check_true "agent: the other requests decoded with their tables ($agent_ok)" test "${agent_ok:-0}" -ge 90
stack_finish
