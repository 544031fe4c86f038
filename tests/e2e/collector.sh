#!/usr/bin/env bash
# End to end through the collector: agents on both lab nodes ship batches to a collector that
# a real Prometheus scrapes. Along the way the collector is restarted mid-transfer (SIGTERM:
# it refuses batches while Prometheus takes its last scrape), the agent->collector path is cut
# for a while, a batch is sent twice, and hostile bodies are thrown at it. At the end the
# totals Prometheus holds equal the iptables ground truth: nothing lost, nothing counted twice.
source "$(dirname "$0")/lib.sh"
echo "collector.sh: lab $LAB_ID"
if ! command -v prometheus >/dev/null; then
	echo "SKIP: prometheus not installed (make deps installs Debian's)"
	exit 77
fi
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
MKBATCH=$TOP/build/mkbatch

lab_up
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]}
N1=${LAB_NODE_IP[n1]}
URL="http://$N1:9900"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
TOKEN=$(cat "$WORK/token")

gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 5201   # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 5201   # 2
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 5201   # 3
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5201   # 4

COLL_PID=
mkdir -p "$WORK/state"
collector_start() {
	ip netns exec "$(lab_ns n1)" "$COLLECTOR" --listen 0.0.0.0:9900 --token-file "$WORK/token" \
		--shutdown-grace 2s --new-series-hold 2500ms --series-ttl 10m --state-dir "$WORK/state" --ip-labels >>"$WORK/collector.log" 2>&1 &
	COLL_PID=$!
	for _ in $(seq 50); do
		lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && return 0
		sleep 0.1
	done
	echo "collector did not become ready"
	cat "$WORK/collector.log"
	return 1
}
collector_stop() { # SIGNAL
	kill "-$1" "$COLL_PID"
	wait "$COLL_PID" 2>/dev/null
	COLL_PID=
}
stop_all() {
	[ -n "$COLL_PID" ] && kill -KILL "$COLL_PID" 2>/dev/null
	[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null
	cleanup
}
trap stop_all EXIT

collector_start || exit 1
prom_start 127.0.0.1:9900

lab_exec b iperf3 -s -D -p 5201
lab_exec c iperf3 -s -D -p 5201
agent_start n1 --collector "$URL" --token-file "$WORK/token" || exit 1
agent_start n2 --collector "$URL" --token-file "$WORK/token" || exit 1

# Steady traffic.
lab_exec a iperf3 -c "$B" -p 5201 -n 3M >/dev/null || fail "iperf3 a->b"
lab_exec a iperf3 -c "$C" -p 5201 -n 2M >/dev/null || fail "iperf3 a->c"

queue_of() { agent_metric "$1" flowlens_agent_export_queue_batches; } # NODE
queues() { echo "$(queue_of n1) $(queue_of n2)"; }
retries() { echo $(($(agent_metric n1 flowlens_agent_export_retries_total) + $(agent_metric n2 flowlens_agent_export_retries_total))); }
above() { # N CMD...: 1 once CMD prints a number above N
	local n=$1 v
	shift
	v=$("$@")
	[ "${v:-0}" -gt "$n" ] 2>/dev/null && echo 1 || echo 0
}
gt_bytes() { read -r _ b <<<"$(gt_read n1 iptables GT "$1")"; echo "$b"; } # RULE

# Restart the collector while a transfer runs.
b3=$(gt_bytes 3)
lab_exec a iperf3 -c "$C" -p 5201 -t 5 -b 30M >/dev/null &
XFER=$!
check_eq "the transfer is under way (1 MB through node 1)" "$(wait_for 10 1 above $((b3 + 1000000)) gt_bytes 3)" 1
collector_stop TERM
check_true "collector refused batches while draining" \
	grep -q "refusing batches" "$WORK/collector.log"
# Down (the port closed) until an agent has tried it again.
check_eq "an agent found the collector down" "$(wait_for 10 1 above "$(retries)" retries)" 1
collector_start || exit 1
wait "$XFER" || fail "iperf3 during restart"

# Cut the path from node 2's agent to the collector for 4 s while traffic flows.
lab_exec n2 iptables -I OUTPUT -d "$N1" -p tcp --dport 9900 -j DROP
lab_exec a iperf3 -c "$C" -p 5201 -n 4M -b 20M >/dev/null || fail "iperf3 during cut"
wait_for 10 1 above 1 queue_of n2 >/dev/null # two intervals' batches held back
check_true "agent on n2 queued batches during the cut" \
	test "$(agent_metric n2 flowlens_agent_export_queue_batches)" -gt 0
lab_exec n2 iptables -D OUTPUT -d "$N1" -p tcp --dport 9900 -j DROP

# The same batch twice: applied once.
"$MKBATCH" --node dup-node --boot 0123456789abcdef0123456789abcdef --seq 7 \
	--flow "10.9.9.1,10.9.9.2,443,tcp,client,3,300,2,200" >"$WORK/dup.bin"
post() { # FILE [CURL ARGS...] -> HTTP status
	local f=$1
	shift
	lab_exec n1 curl -s -o /dev/null -w '%{http_code}' "$@" --data-binary "@$f" \
		"http://127.0.0.1:9900/v1/batches"
}
AUTH=(-H "Authorization: Bearer $TOKEN")
WIRE=(-H "Content-Type: application/x-protobuf" -H "Content-Encoding: deflate")
check_eq "first copy of a batch" "$(post "$WORK/dup.bin" "${AUTH[@]}" "${WIRE[@]}")" 200
check_eq "second copy of the batch" "$(post "$WORK/dup.bin" "${AUTH[@]}" "${WIRE[@]}")" 200
dup_val=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics |
	awk '/^flowlens_flow_bytes_total\{.*source_ip="10.9.9.1".*direction="forward"/ { print $2 }')
check_eq "duplicate batch counted once (held at 0 while new)" "$dup_val" 0
dup_now() {
	lab_exec n1 curl -sf http://127.0.0.1:9900/metrics |
		awk '/^flowlens_flow_bytes_total\{.*source_ip="10.9.9.1".*direction="forward"/ { print $2 }'
}
# Past the 2.5 s hold: 300 (counted twice it would read 600 and the wait would end with it).
check_eq "duplicate batch counted once" "$(wait_for 10 300 dup_now)" 300

# Let the agents deliver everything, then stop them (final drain, flushed on exit).
check_eq "the agents delivered everything they held" "$(wait_for 30 "0 0" queues)" "0 0"
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"
check_eq "n1 agent dropped no batches" "$(grep -c 'not delivered' "$WORK/n1.log")" 0
check_eq "n2 agent dropped no batches" "$(grep -c 'not delivered' "$WORK/n2.log")" 0

# Hostile input: every case gets its status, nothing stored changes.
flows_now() { lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | grep '^flowlens_flow_' | sort; }
# Values settle: unchanged for 3 s, longer than the new-series hold (2.5 s), so no series is
# still held at 0.
before=$(wait_stable 30 3 flows_now)
"$MKBATCH" --node evil --boot ffffffffffffffffffffffffffffffff --seq 1 \
	--flow "10.6.6.6,10.6.6.7,80,tcp,client,1,100,1,100" >"$WORK/good.bin"
head -c 20 "$WORK/good.bin" >"$WORK/truncated.bin"
head -c 300 /dev/urandom >"$WORK/garbage.bin"
head -c 300 /dev/urandom | gzip -c | tail -c +11 >"$WORK/notzlib.bin"
printf 'this is not a protobuf batch at all, just text that compresses' |
	python3 -c 'import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' \
	>"$WORK/notproto.bin" 2>/dev/null || cp "$WORK/garbage.bin" "$WORK/notproto.bin"
"$MKBATCH" --bomb 200000000 >"$WORK/bomb.bin"
head -c 5000000 /dev/urandom >"$WORK/huge.bin"
"$MKBATCH" --node evil --boot ffffffffffffffffffffffffffffffff --seq 2 --version 99 \
	--flow "10.6.6.6,10.6.6.7,80,tcp,client,1,100,1,100" >"$WORK/future-version.bin"
check_eq "no token" "$(post "$WORK/good.bin" "${WIRE[@]}")" 401
check_eq "wrong token" "$(post "$WORK/good.bin" -H "Authorization: Bearer x$TOKEN" "${WIRE[@]}")" 401
check_eq "wrong content type" "$(post "$WORK/good.bin" "${AUTH[@]}" -H "Content-Type: application/json" -H "Content-Encoding: deflate")" 415
check_eq "body over the size limit" "$(post "$WORK/huge.bin" "${AUTH[@]}" "${WIRE[@]}")" 413
check_eq "zip bomb" "$(post "$WORK/bomb.bin" "${AUTH[@]}" "${WIRE[@]}")" 413
check_eq "truncated stream" "$(post "$WORK/truncated.bin" "${AUTH[@]}" "${WIRE[@]}")" 400
check_eq "garbage" "$(post "$WORK/garbage.bin" "${AUTH[@]}" "${WIRE[@]}")" 400
check_eq "valid zlib, not a protobuf" "$(post "$WORK/notproto.bin" "${AUTH[@]}" "${WIRE[@]}")" 400
check_eq "schema version from the future" "$(post "$WORK/future-version.bin" "${AUTH[@]}" "${WIRE[@]}")" 400
after=$(flows_now)
check_true "stored series unchanged by hostile input ($(grep -c . <<<"$before") series)" test "$after" = "$before"
[ "$after" = "$before" ] || diff <(echo "$before") <(echo "$after") | head -20
"$MKBATCH" --node future-agent --boot eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee --seq 1 --future-field \
	--flow "10.7.7.7,10.7.7.8,80,tcp,client,1,111,1,222" >"$WORK/future-field.bin"
check_eq "unknown future field accepted" "$(post "$WORK/future-field.bin" "${AUTH[@]}" "${WIRE[@]}")" 200
for r in unauthorized unsupported_media_type too_large decompressed_too_large malformed unsupported_version duplicate; do
	v=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics |
		awk -v m="flowlens_collector_batches_total{result=\"$r\"}" '$1 == m { print $2 }')
	check_true "batches_total{result=$r} counted ($v)" test "${v:-0}" -gt 0
done

lint=$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | promtool check metrics 2>&1)
check_eq "promtool check metrics (collector)" "$lint" ""

# The same from the raw samples, by hand (each drop is a reset to zero).
raw_total() { # SELECTOR
	prom_query "$1[15m]" | jq '[.data.result[].values | map(.[1] | tonumber) |
		reduce .[] as $v ({prev: 0, sum: 0};
			{prev: $v, sum: (.sum + (if $v >= .prev then $v - .prev else $v end))}) | .sum] | add // 0'
}
sel() { # SRC DST REPORTER DIRECTION METRIC
	echo "flowlens_flow_${5}_total{source_ip=\"$1\",destination_ip=\"$2\",destination_port=\"5201\",protocol=\"tcp\",reporter=\"$3\",direction=\"$4\"}"
}
read -r gp1 gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r gp2 gb2 <<<"$(gt_read n1 iptables GT 2)"
read -r gp3 gb3 <<<"$(gt_read n1 iptables GT 3)"
read -r gp4 gb4 <<<"$(gt_read n1 iptables GT 4)"
# (prom_wait: until Prometheus's total is the ground truth, or what it holds after 40 s.)
check_eq "Prometheus a->b bytes forward (client) = iptables" "$(prom_wait "$(sel "$A" "$B" client forward bytes)" "$gb1")" "$gb1"
check_eq "Prometheus a->b bytes reply (client) = iptables" "$(prom_wait "$(sel "$A" "$B" client reply bytes)" "$gb2")" "$gb2"
check_eq "Prometheus a->b packets forward (server) = iptables" "$(prom_wait "$(sel "$A" "$B" server forward packets)" "$gp1")" "$gp1"
check_eq "Prometheus a->c bytes forward (client, across restart and cut) = iptables" \
	"$(prom_wait "$(sel "$A" "$C" client forward bytes)" "$gb3")" "$gb3"
check_eq "Prometheus a->c bytes reply (client) = iptables" "$(prom_wait "$(sel "$A" "$C" client reply bytes)" "$gb4")" "$gb4"
check_eq "Prometheus a->c bytes forward (server, node 2 through the cut) = iptables" \
	"$(prom_wait "$(sel "$A" "$C" server forward bytes)" "$gb3")" "$gb3"
check_eq "Prometheus a->c packets reply (server) = iptables" "$(prom_wait "$(sel "$A" "$C" server reply packets)" "$gp4")" "$gp4"
check_eq "raw samples agree: a->c bytes forward (client)" \
	"$(raw_total "$(sel "$A" "$C" client forward bytes)")" "$gb3"
inc=$(prom_query "sum(increase($(sel "$A" "$C" client forward bytes)[15m]))" | jq -r '.data.result[0].value[1]')
echo "  info  increase() at query time now, with Prometheus' extrapolation, a->c forward: $inc (ground truth $gb3)"
check_eq "agents known to the collector since its restart (n1, n2, dup-node, future-agent)" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | awk '$1 == "flowlens_collector_agents" { print $2 }')" 4

# A crash (SIGKILL): with --state-dir every acknowledged batch is in the synced log, so the
# restarted collector continues every counter where it was and the total stays exact.
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 5202   # 5
lab_exec b iperf3 -s -D -p 5202
agent_start n1 --collector "$URL" --token-file "$WORK/token" || exit 1
lab_exec a iperf3 -c "$B" -p 5202 -t 8 -b 10M >/dev/null &
XFER=$!
S5202="flowlens_flow_bytes_total{source_ip=\"$A\",destination_ip=\"$B\",destination_port=\"5202\",reporter=\"client\",direction=\"forward\"}"
prom_positive() { prom_query "$S5202 > 0" | jq -r 'if (.data.result | length) > 0 then 1 else 0 end'; }
check_eq "a->b:5202 in Prometheus past its hold" "$(wait_for 20 1 prom_positive)" 1
check_true "the transfer still runs" kill -0 "$XFER"
collector_stop KILL
collector_start || exit 1
wait "$XFER" || fail "iperf3 during crash"
check_eq "n1 agent delivered everything it held" "$(wait_for 30 0 queue_of n1)" 0
agent_stop n1 || fail "agent n1 exit status (crash phase)"
read -r _ gb5 <<<"$(gt_read n1 iptables GT 5)"
crash_total=$(prom_wait "$S5202" "$gb5")
check_eq "Prometheus a->b:5202 bytes across a collector SIGKILL = iptables" "$crash_total" "$gb5"
check_true "the restarted collector replayed its log" grep -q "logged batches replayed" "$WORK/collector.log"

pid=$COLL_PID
kill -TERM "$pid"
wait "$pid"
check_eq "collector exit status after SIGTERM" "$?" 0
COLL_PID=
check_eq "sanitizer reports in the logs" \
	"$(cat "$WORK"/collector.log "$WORK"/n1.log "$WORK"/n2.log | grep -c 'Sanitizer')" 0
finish
