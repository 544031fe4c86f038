#!/usr/bin/env bash
# A highly available collector shard (docs/design/collector-ha.md) through the three failure
# drills of issue 15, with agents on both lab nodes sending every batch to both replicas, a
# Lease on a fake API server choosing the exporter, and a real Prometheus scraping both (the
# flow series' instance set from their shard label, as the chart's ServiceMonitor does):
#   1. the exporter SIGKILLed and its state directory deleted, then started again empty;
#   2. a rolling restart of both replicas (SIGTERM, start, one after the other);
#   3. the exporter cut off from everything (agents, peer, API server, Prometheus) for longer
#      than the agents' buffer for it holds, then healed.
# Ground truth: iptables counters of the traffic that ran through all of it. At the end the
# totals Prometheus holds equal them exactly and resets() sees no reset of any flow series.
source "$(dirname "$0")/lib.sh"
echo "ha.sh: lab $LAB_ID"
for t in prometheus python3; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t not installed (make deps installs it)"
		exit 77
	fi
done
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}

lab_up
# The replicas are pods, one on each node (the chart's anti-affinity).
lab_pod n1 r1 10.1.1.20 fd00:1:1::20
lab_pod n2 r2 10.1.2.20 fd00:1:2::20
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]} C=${LAB_POD_IP[c]}
N1=${LAB_NODE_IP[n1]}
declare -A IP_OF=([r1]=10.1.1.20 [r2]=10.1.2.20) PEER_OF=([r1]=r2 [r2]=r1)
declare -A PID_OF=()
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
# The replicas' own token (the chart's peer-token Secret): agents cannot read a shard's state.
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/peer-token"
lab_metadata >"$WORK/meta.json"

# The API server (Leases only here; names come from the metadata file), reachable from both.
KTOKEN=fake-$RANDOM$RANDOM
echo '{"kind":"List","items":[]}' >"$WORK/api-state.json"
cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: lab
clusters:
- name: lab
  cluster:
    server: http://$N1:16443
contexts:
- name: lab
  context: {cluster: lab, user: lab}
users:
- name: lab
  user: {token: $KTOKEN}
EOF
lab_exec n1 python3 "$TOP/tests/tools/fake_apiserver.py" --address 0.0.0.0 --port 16443 \
	--state "$WORK/api-state.json" --token "$KTOKEN" --pid-file "$WORK/api.pid" >"$WORK/api.log" 2>&1 &
for _ in $(seq 50); do lab_exec n1 curl -s -o /dev/null "http://$N1:16443/fake/log" && break; sleep 0.1; done
LEASE_URL=http://$N1:16443/apis/coordination.k8s.io/v1/namespaces/flowlens/leases/shard-0
holder() { lab_exec n1 curl -sf --max-time 2 -H "Authorization: Bearer $KTOKEN" "$LEASE_URL" | jq -r '.spec.holderIdentity // ""'; }

gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 5201 # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 5201 # 2
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 5201 # 3
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5201 # 4

# coll_start REPLICA: its node's namespace, port 9900, state in $WORK/state-REPLICA; waits
# until it is ready. coll_launch: the same without waiting.
coll_launch() {
	local r=$1
	mkdir -p "$WORK/state-$r"
	ip netns exec "$(lab_ns "$r")" "$COLLECTOR" --listen 0.0.0.0:9900 \
		--token-file "$WORK/token" --metadata-file "$WORK/meta.json" --ip-labels \
		--new-series-hold 2500ms --shutdown-grace 2s --state-dir "$WORK/state-$r" \
		--kubeconfig "$WORK/kubeconfig" --ha-lease flowlens/shard-0 --ha-identity "$r" \
		--ha-lease-duration 6s --ha-renew-interval 1s --shard 0 --peer-token-file "$WORK/peer-token" \
		--peers "http://${IP_OF[${PEER_OF[$r]}]}:9900" >>"$WORK/$r.log" 2>&1 &
	PID_OF[$r]=$!
}
coll_ready() {
	local r=$1 i
	for i in $(seq 150); do
		lab_exec "$r" curl -sf -o /dev/null http://127.0.0.1:9900/readyz && return 0
		kill -0 "${PID_OF[$r]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "collector $r did not become ready:"
	tail -n 20 "$WORK/$r.log"
	return 1
}
coll_start() { coll_launch "$1" && coll_ready "$1"; }
coll_stop() { # REPLICA SIGNAL
	kill "-$2" "${PID_OF[$1]}" 2>/dev/null
	wait "${PID_OF[$1]}" 2>/dev/null
	local rc=$?
	unset "PID_OF[$1]"
	return $rc
}
coll_metric() { # REPLICA METRIC_WITH_LABELS
	lab_exec "$1" curl -sf --max-time 2 http://127.0.0.1:9900/metrics |
		awk -v m="$2" '$1 == m { print $2 }'
}
exporting() { [ "$(coll_metric "$1" flowlens_collector_ha_exporting)" = 1 ]; }
# wait_exporter REPLICA SECONDS: until REPLICA exports (and holds the Lease).
wait_exporter() {
	local i
	for i in $(seq $(($2 * 5))); do
		exporting "$1" && [ "$(holder)" = "$1" ] && return 0
		sleep 0.2
	done
	return 1
}
partition() { # REPLICA -I|-D: the pod cut off from everything but itself
	lab_exec "$1" iptables "$2" INPUT ! -i lo -j DROP
	lab_exec "$1" iptables "$2" OUTPUT ! -o lo -j DROP
}
stop_all() {
	local r
	[ -f "$WORK/traffic.on" ] && rm -f "$WORK/traffic.on"
	for r in "${!PID_OF[@]}"; do kill -KILL "${PID_OF[$r]}" 2>/dev/null; done
	[ -f "$WORK/api.pid" ] && kill "$(cat "$WORK/api.pid")" 2>/dev/null
	cleanup
}
trap stop_all EXIT

# A new shard: both start at once, find each other empty, and start without waiting.
coll_launch r1
coll_launch r2
coll_ready r1 || exit 1
coll_ready r2 || exit 1
first=
for _ in $(seq 50); do
	first=$(holder)
	[ -n "$first" ] && wait_exporter "$first" 5 && break
	sleep 0.2
done
check_true "one replica holds the Lease and exports ($first)" test -n "$first"
other=${PEER_OF[$first]:-r2}
check_eq "the other replica ($other) does not export flow series" \
	"$(lab_exec "$other" curl -sf http://127.0.0.1:9900/metrics | grep -c '^flowlens_flow_')" 0

state_status() { # TOKEN_FILE|"" -> HTTP status of GET /v1/state from node 1
	local auth=()
	[ -n "$1" ] && auth=(-H "Authorization: Bearer $(cat "$1")")
	lab_exec n1 curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://${IP_OF[$first]}:9900/v1/state"
}
check_eq "a replica's state: refused without a token" "$(state_status "")" 401
check_eq "a replica's state: refused with the agents' token" "$(state_status "$WORK/token")" 401
check_eq "a replica's state: served with the peers' token" "$(state_status "$WORK/peer-token")" 200

PROM_JOB_EXTRA='    metric_relabel_configs:
      - source_labels: [shard]
        regex: "(.+)"
        target_label: instance
        replacement: "shard-$1"'
prom_start "${IP_OF[r1]}:9900" "${IP_OF[r2]}:9900"

lab_exec b iperf3 -s -D -p 5201
lab_exec c iperf3 -s -D -p 5201
COLLECTORS="http://${IP_OF[r1]}:9900,http://${IP_OF[r2]}:9900"
# A buffer of 16 KiB per replica: about 20 s of batches (a restart fits), drill 3 outlasts it.
agent_start n1 --collector "$COLLECTORS" --token-file "$WORK/token" --export-buffer-bytes 16384 || exit 1
agent_start n2 --collector "$COLLECTORS" --token-file "$WORK/token" --export-buffer-bytes 16384 || exit 1

# Traffic through every drill: short transfers a->b (same node) and a->c (across nodes).
touch "$WORK/traffic.on"
(
	while [ -f "$WORK/traffic.on" ]; do
		lab_exec a iperf3 -c "$C" -p 5201 -n 300K >/dev/null 2>&1
		lab_exec a iperf3 -c "$B" -p 5201 -n 200K >/dev/null 2>&1
		sleep 0.3
	done
) &
TRAFFIC=$!
sleep 6 # past the new series' hold, several scrapes

# --- Drill 1: the exporter SIGKILLed, its disk lost.
echo "drill 1: SIGKILL $first and delete its state"
coll_stop "$first" KILL
rm -rf "$WORK/state-$first"
t0=$(date +%s%N)
check_true "the other replica ($other) takes over" wait_exporter "$other" 30
echo "  info  $other exported $((($(date +%s%N) - t0) / 1000000)) ms after the kill (lease 6 s)"
sleep 2
coll_start "$first" || exit 1
check_true "$first started without state and copied its peer's" \
	grep -q "copied a peer's state" "$WORK/$first.log"
check_eq "$first: peer copies ok" "$(coll_metric "$first" 'flowlens_collector_peer_state_copies_total{result="ok"}')" 1
check_true "$first does not export (its peer holds the Lease)" \
	test "$(coll_metric "$first" flowlens_collector_ha_exporting)" = 0
sleep 4

# --- Drill 2: a rolling restart of both replicas, the exporter first.
echo "drill 2: rolling restart ($other, then $first)"
# (The new exporter waits until it has every batch the old one had: seconds when an agent's
# retries to it were in backoff. The Lease itself moves within a renew interval.)
t0=$(date +%s%N)
coll_stop "$other" TERM
check_eq "$other exits 0 after SIGTERM" "$?" 0
check_true "$first takes over from the released Lease" wait_exporter "$first" 20
echo "  info  $first exported $((($(date +%s%N) - t0) / 1000000)) ms after the SIGTERM"
coll_start "$other" || exit 1
sleep 3
t0=$(date +%s%N)
coll_stop "$first" TERM
check_eq "$first exits 0 after SIGTERM" "$?" 0
check_true "$other takes over from the released Lease" wait_exporter "$other" 20
echo "  info  $other exported $((($(date +%s%N) - t0) / 1000000)) ms after the SIGTERM"
coll_start "$first" || exit 1
sleep 4

# --- Drill 3: the exporter ($other) partitioned for longer than the agents' buffer.
echo "drill 3: partition $other for 40 s"
partition "$other" -I
check_true "$first takes over from the unreachable exporter" wait_exporter "$first" 30
sleep 33
url_other="http://${IP_OF[$other]}:9900/v1/batches"
dropped=$(agent_metric n1 "flowlens_agent_export_destination_batches_total{collector=\"$url_other\",result=\"dropped\"}")
check_true "agents dropped batches for the partitioned replica (n1: ${dropped:-none})" test "${dropped:-0}" -gt 0
partition "$other" -D
healed=0
for _ in $(seq 100); do
	[ "$(coll_metric "$other" 'flowlens_collector_peer_state_copies_total{result="ok"}')" -ge 1 ] 2>/dev/null &&
		grep -q "batches were missed" "$WORK/$other.log" && { healed=1; break; }
	sleep 0.2
done
check_true "$other noticed the missed batches and copied its peer's state" test "$healed" = 1
check_true "$other counted missed batches" test "$(coll_metric "$other" flowlens_collector_missed_batches_total)" -gt 0
check_true "$first still exports" exporting "$first"
sleep 3

# --- The end: traffic stops, the agents deliver everything and exit, two more scrapes.
rm -f "$WORK/traffic.on"
wait "$TRAFFIC"
sleep 2
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"
sleep 5

sel() { # SRC DST REPORTER DIRECTION
	echo "flowlens_flow_bytes_total{source_ip=\"$1\",destination_ip=\"$2\",destination_port=\"5201\",reporter=\"$3\",direction=\"$4\"}"
}
read -r _ gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ gb2 <<<"$(gt_read n1 iptables GT 2)"
read -r _ gb3 <<<"$(gt_read n1 iptables GT 3)"
read -r _ gb4 <<<"$(gt_read n1 iptables GT 4)"
check_true "traffic ran (a->c $gb3 bytes)" test "$gb3" -gt 1000000
check_eq "Prometheus a->b bytes forward (client) = iptables" "$(prom_total "$(sel "$A" "$B" client forward)")" "$gb1"
check_eq "Prometheus a->b bytes reply (server) = iptables" "$(prom_total "$(sel "$A" "$B" server reply)")" "$gb2"
check_eq "Prometheus a->c bytes forward (client, node 1) = iptables" "$(prom_total "$(sel "$A" "$C" client forward)")" "$gb3"
check_eq "Prometheus a->c bytes reply (client) = iptables" "$(prom_total "$(sel "$A" "$C" client reply)")" "$gb4"
check_eq "Prometheus a->c bytes forward (server, node 2) = iptables" "$(prom_total "$(sel "$A" "$C" server forward)")" "$gb3"
resets=$(prom_query 'sum(resets(flowlens_flow_bytes_total[15m])) + sum(resets(flowlens_flow_packets_total[15m]))' |
	jq -r '.data.result[0].value[1] // "none"')
check_eq "no reset of any flow series across the three drills (resets())" "$resets" 0
if [ "$resets" != 0 ]; then
	# Where: each decrease of a series, with the samples around it (for the logs' timeline).
	prom_query 'flowlens_flow_bytes_total[15m]' | jq -r '.data.result[] | .metric as $m |
		.values as $v | range(1; $v | length) | select(($v[.][1] | tonumber) < ($v[. - 1][1] | tonumber)) |
		"  reset \($m.source_ip)->\($m.destination_ip):\($m.destination_port) \($m.reporter) \($m.direction) at \($v[.][0] | todate): \($v[. - 1][1]) -> \($v[.][1])"' | head -20
fi
series=$(prom_query 'count(count by (instance) (flowlens_flow_bytes_total))' | jq -r '.data.result[0].value[1] // 0')
check_eq "flow series under one instance (the shard) whichever replica exported" "$series" 1
gap=$(prom_query "$(sel "$A" "$C" client forward)[15m]" |
	jq '[.data.result[0].values | map(.[0]) | . as $t | range(1; length) | $t[.] - $t[. - 1]] | max')
echo "  info  the longest gap between samples of one flow series: ${gap} s (scrapes every 1 s)"

for r in r1 r2; do
	coll_stop "$r" TERM || fail "$r exit status"
done
check_eq "sanitizer reports in the logs" "$(cat "$WORK"/r1.log "$WORK"/r2.log | grep -c 'Sanitizer')" 0
finish
