#!/usr/bin/env bash
# A highly available collector shard (docs/design/collector-ha.md) through the three failure
# drills of issue 15, with agents on both lab nodes sending every batch to both replicas, a
# Lease on a fake API server choosing the exporter, and a real Prometheus scraping both (the
# flow series' instance set from their shard label, as the chart's ServiceMonitor does):
#   1. the exporter SIGKILLed and its state directory deleted, then started again empty;
#   2. a rolling restart of both replicas (SIGTERM, start, one after the other);
#   3. the exporter cut off from everything (agents, peer, API server, Prometheus) for longer
#      than the agents' buffer for it holds, then healed;
# and before them those of issue 35 (0a-0e below): the API server refusing, freezing and
# dropping the exporter, a zombie exporter, and a follower that gets the agents' batches late
# and takes over inside the cross-node join's wait.
# Ground truth: iptables counters of the traffic that ran through all of it. At the end the
# totals Prometheus holds equal them exactly and resets() sees no reset of any flow series.
# Each takeover and the longest gap between the samples Prometheus stored of the flow series
# in each drill are bounded (below: derived from the Lease settings), and a sampler reading
# both replicas' /metrics from inside their pods checks that never both expose flow series.
source "$(dirname "$0")/lib.sh"
echo "ha.sh: lab $LAB_ID"
for t in prometheus python3; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t not installed (make deps installs it)"
		exit 77
	fi
done
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}

# The timings every bound below is derived from: the Lease (coll_launch), the agents'
# interval (agent_start: 1 s), the collector's housekeeping tick that runs the catch-up
# (1 s), the time a replica waits for a peer's /v1/progress (1 s), Prometheus's scrapes (1 s).
LEASE_S=6 RENEW_S=1 INTERVAL_S=1 TICK_S=1 PEER_WAIT_S=1 SCRAPE_S=1
# The join wait (the collector's default) and drill 0e's late delivery: shorter than the
# agents' buffer for a replica holds (about 20 s), long enough that a takeover right after the
# exporter's join wait falls inside the follower's, were it timed from its own receipt.
JOIN_WAIT_S=25 LATE_S=15
SLACK_S=2 # this 2-vCPU machine is shared and loaded; the test's own polling
# The exporter lost (SIGKILL, partition): the follower sees its last renewal at its next look
# (RENEW), takes the Lease at the first look after LEASE without a change (LEASE + RENEW), the
# next tick asks the lost peer for its progress in vain (TICK + PEER_WAIT), and it exports once
# every agent delivered a batch of an interval that ended after the takeover (INTERVAL):
# 6 + 2 + 2 + 1 = 11 s, 13 s with the slack.
LOST_TAKEOVER_S=$((LEASE_S + 2 * RENEW_S + TICK_S + PEER_WAIT_S + INTERVAL_S + SLACK_S))
# The Lease released (SIGTERM), the agents' queues to the new exporter empty: the next look
# takes it (RENEW), the next tick compares with the draining peer's progress (TICK), a batch
# the peer took just before its SIGTERM may still be on its way here (INTERVAL): 3 s, 5 s.
HANDOVER_S=$((RENEW_S + TICK_S + INTERVAL_S + SLACK_S))
# The longest gap between two samples Prometheus stores of a flow series: the takeover plus
# the old exporter's last scrape before the event and the new one's first after (a scrape
# each): 15 s for a lost exporter, 7 s for a handover.
LOST_GAP_S=$((LOST_TAKEOVER_S + 2 * SCRAPE_S))
HANDOVER_GAP_S=$((HANDOVER_S + 2 * SCRAPE_S))

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
# Drill 0e's connection, new during it (a->c on another port: a new join).
gt_rule n1 iptables GT -s "$A" -d "$C" -p tcp --dport 5202 # 5
gt_rule n1 iptables GT -s "$C" -d "$A" -p tcp --sport 5202 # 6

# coll_start REPLICA: its node's namespace, port 9900, state in $WORK/state-REPLICA; waits
# until it is ready. coll_launch: the same without waiting.
coll_launch() {
	local r=$1
	mkdir -p "$WORK/state-$r"
	ip netns exec "$(lab_ns "$r")" "$COLLECTOR" --listen 0.0.0.0:9900 \
		--token-file "$WORK/token" --metadata-file "$WORK/meta.json" --ip-labels \
		--new-series-hold 2500ms --shutdown-grace 2s --state-dir "$WORK/state-$r" \
		--kubeconfig "$WORK/kubeconfig" --ha-lease flowlens/shard-0 --ha-identity "$r" \
		--ha-lease-duration "${LEASE_S}s" --ha-renew-interval "${RENEW_S}s" --shard 0 \
		--peer-token-file "$WORK/peer-token" --join-wait "${JOIN_WAIT_S}s" \
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
	coll_wait "$1"
}
coll_wait() { # REPLICA: its exit status
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
now_ns() { date +%s%N; }
now_s() { awk -v n="$(now_ns)" 'BEGIN { printf "%.3f\n", n / 1e9 }'; } # with ms
# wait_exporter REPLICA SECONDS: until REPLICA exports (and holds the Lease), by the clock.
wait_exporter() {
	local deadline=$(($(now_ns) + $2 * 1000000000))
	while [ "$(now_ns)" -lt "$deadline" ]; do
		exporting "$1" && [ "$(holder)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# check_takeover WHAT REPLICA BOUND_S: REPLICA exports within BOUND_S of $T0 (ns, set when
# the drill hit the old exporter). Waits up to twice the bound so that a slow takeover shows
# its time. Sets TOOK_AT (s since the epoch) for prom_after.
check_takeover() {
	local ms
	wait_exporter "$2" $(($3 * 2))
	ms=$((($(now_ns) - T0) / 1000000))
	TOOK_AT=$(now_s)
	check_true "$1 in $ms ms (bound $3 s)" \
		test "$(coll_metric "$2" flowlens_collector_ha_exporting)" = 1 -a "$ms" -le $(($3 * 1000))
}
partition() { # REPLICA -I|-D: the pod cut off from everything but itself
	lab_exec "$1" iptables "$2" INPUT ! -i lo -j DROP
	lab_exec "$1" iptables "$2" OUTPUT ! -o lo -j DROP
}
# queued REPLICA: the bytes both agents hold for REPLICA ("N1 N2"); "0 0" once it has every
# batch (an agent whose retries to it are in backoff holds them until its next try).
queued() {
	local m="flowlens_agent_export_destination_queue_bytes{collector=\"http://${IP_OF[$1]}:9900/v1/batches\"}"
	echo "$(agent_metric n1 "$m") $(agent_metric n2 "$m")"
}
sel() { # SRC DST REPORTER DIRECTION [PORT, default 5201]
	echo "flowlens_flow_bytes_total{source_ip=\"$1\",destination_ip=\"$2\",destination_port=\"${5:-5201}\",reporter=\"$3\",direction=\"$4\"}"
}
AC=$(sel "$A" "$C" client forward)
# prom_after T: 1 once Prometheus holds a sample of the a->c series newer than T (s).
prom_after() {
	prom_query "max(timestamp($AC))" |
		jq -r --argjson t "$1" '.data.result[0].value[1] // "0" | tonumber | if . > $t then 1 else 0 end'
}
# prom_positive SELECTOR: 1 once the series' latest sample in Prometheus is above 0 (past the
# new series' hold).
prom_positive() {
	prom_query "$1 > 0" | jq -r 'if (.data.result | length) > 0 then 1 else 0 end'
}
stop_all() {
	local r
	rm -f "$WORK/traffic.on" "$WORK/sampler.on"
	for r in "${!PID_OF[@]}"; do kill -KILL "${PID_OF[$r]}" 2>/dev/null; done
	[ -f "$WORK/api.pid" ] && kill "$(cat "$WORK/api.pid")" 2>/dev/null
	wait "${SAMPLER:-}" 2>/dev/null
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

# Both replicas' /metrics read from inside their pods (the partition leaves lo), one after
# the other, until the end: "MS REPLICA FLOW_SERIES_LINES" per reading.
touch "$WORK/sampler.on"
(
	while [ -f "$WORK/sampler.on" ]; do
		for r in r1 r2; do
			n=$(lab_exec "$r" curl -s --max-time 1 http://127.0.0.1:9900/metrics 2>/dev/null |
				grep -c '^flowlens_flow_')
			echo "$(($(now_ns) / 1000000)) $r ${n:-0}"
		done
		sleep 0.1
	done >"$WORK/samples"
) &
SAMPLER=$!

lab_exec b iperf3 -s -D -p 5201
lab_exec c iperf3 -s -D -p 5201
lab_exec c iperf3 -s -D -p 5202
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
# Past the new series' hold: both series at their values in Prometheus before any drill.
both_positive() { echo "$(prom_positive "$AC") $(prom_positive "$(sel "$A" "$B" client forward)")"; }
check_eq "a->c and a->b in Prometheus past their hold" "$(wait_for 40 "1 1" both_positive)" "1 1"

# --- Drills 0a-0d (issue 35): the API server fails the exporter, which created the Lease.
# An exporter whose hold lapsed while the API refused it, and which then renewed its own
# Lease, re-held (zeroed) series it had shown itself: 505 of 644 series reset on a shard
# whose Lease it had created. Every drill below must leave resets() at 0 (checked at the end,
# with the totals) and its longest gap within its bound.
# The exporter's hold lapses LEASE - 2 x RENEW after its last renewal; once the API answers
# again it renews at its next look (RENEW), the next tick starts catching up (TICK), the peer
# answers its progress (PEER_WAIT); plus the poll that saw the lapse, a scrape each side and
# the slack: 1 + 1 + 1 + 1 + 2 + 2 = 8 s.
BLIP_GAP_S=$((RENEW_S + TICK_S + PEER_WAIT_S + 1 + 2 * SCRAPE_S + SLACK_S))
api_cut() { # REPLICA -I|-D REJECT|DROP: REPLICA's requests to the API server refused or dropped
	local how=(-j DROP)
	[ "$3" = REJECT ] && how=(-j REJECT --reject-with tcp-reset)
	lab_exec "$1" iptables "$2" OUTPUT -d "$N1" -p tcp --dport 16443 "${how[@]}"
}
not_exporting() { exporting "$1" && echo 0 || echo 1; }
exporter_now() { # the replica that holds the Lease and exports, once one does
	local r
	for r in r1 r2; do exporting "$r" && [ "$(holder)" = "$r" ] && { echo "$r"; return; }; done
	echo none
}
wait_exporter_any() { wait_stable 30 2 exporter_now; }

# 0a: refused until the exporter's hold lapses, then answered again before the Lease expires:
# it renews its own Lease (the follower saw the last renewal less than a Lease ago).
echo "drill 0a: the API server refuses $first until its hold lapses"
B0=$(now_s)
api_cut "$first" -I REJECT
T0=$(now_ns)
check_eq "0a: $first stops exporting at its hold horizon" "$(wait_for $((LEASE_S + 2)) 1 not_exporting "$first")" 1
echo "  info  0a: stopped exporting $((($(now_ns) - T0) / 1000000)) ms after the API refused it"
api_cut "$first" -D REJECT
e=$(wait_exporter_any)
check_true "0a: one replica exports again ($e)" test "$e" = r1 -o "$e" = r2
echo "  info  0a: $e exports $((($(now_ns) - T0) / 1000000)) ms after the cut"
check_eq "0a: Prometheus scraped flow series after it" "$(wait_for 20 1 prom_after "$(now_s)")" 1

# 0b: the API server frozen for less than the hold (SIGSTOP: connections hang, nothing
# answers): the exporter keeps its hold or renews it; no reset either way.
echo "drill 0b: the API server frozen for $((LEASE_S / 2)) s"
B1=$(now_s)
kill -STOP "$(cat "$WORK/api.pid")"
sleep "$((LEASE_S / 2))" # the fault's own length, nothing to wait for
kill -CONT "$(cat "$WORK/api.pid")"
e=$(wait_exporter_any)
check_true "0b: one replica exports after the freeze ($e)" test "$e" = r1 -o "$e" = r2
check_eq "0b: Prometheus scraped flow series after it" "$(wait_for 20 1 prom_after "$(now_s)")" 1

# 0c: the exporter's requests dropped for longer than the Lease: the follower takes over (a
# lost exporter's bound); healed, the old exporter finds another holder and stays a follower.
e=$(exporter_now)
[ "$e" = none ] && e=$first
f=${PEER_OF[$e]}
echo "drill 0c: the API server drops $e's requests for $((2 * LEASE_S)) s"
B2=$(now_s)
api_cut "$e" -I DROP
T0=$(now_ns)
check_takeover "0c: $f takes over from the exporter the API dropped" "$f" "$LOST_TAKEOVER_S"
check_eq "0c: Prometheus scraped $f's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
rest=$((2 * LEASE_S * 1000 - ($(now_ns) - T0) / 1000000))
[ "$rest" -gt 0 ] && sleep "$((rest / 1000)).$(printf '%03d' $((rest % 1000)))" # the fault's own length
api_cut "$e" -D DROP
check_eq "0c: $e, healed, does not export (another holds the Lease)" "$(wait_stable 10 3 not_exporting "$e")" 1

# 0d: a zombie: the exporter frozen (SIGSTOP) past its Lease, the follower takes over, then
# the frozen one resumes believing nothing happened: it must show no flow series (the
# sampler's "never both" below) and go back to following.
e=$f f=${PEER_OF[$f]}
echo "drill 0d: $e frozen past its Lease (zombie), then resumed"
B3=$(now_s)
kill -STOP "${PID_OF[$e]}"
T0=$(now_ns)
check_takeover "0d: $f takes over from the frozen exporter" "$f" "$LOST_TAKEOVER_S"
check_eq "0d: Prometheus scraped $f's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
kill -CONT "${PID_OF[$e]}"
check_eq "0d: the resumed zombie $e does not export" "$(wait_stable 10 3 not_exporting "$e")" 1

# 0e: the follower gets the agents' batches late (its ingest cut for LATE_S: the agents queue
# them), a connection across nodes starts meanwhile (its server side waits for the client
# side's report, which never names a Service: it dialed the pod), and the follower takes over
# (the exporter's SIGTERM) once the exporter showed that server side, sooner than a join wait
# after the follower received it. Timed from each replica's receipt, the follower held that
# report back for LATE_S longer than its peer and showed the series at 0 (a reset) or not at
# all (issue 35: 27 series reset).
ex=$f lt=$e # the exporter since 0d, and the follower that gets the batches late
echo "drill 0e: $lt gets the agents' batches $LATE_S s late, a new connection's server side waits for its join, $ex hands over"
B4=$(now_s)
ingest_cut() { # REPLICA -I|-D: the agents' batches (and scrapes) to REPLICA dropped; its peer still answers
	lab_exec "$1" iptables "$2" INPUT -p tcp --dport 9900 ! -i lo ! -s "${IP_OF[${PEER_OF[$1]}]}" -j DROP
}
# What must not happen on the way (the drill is about a late follower, not a lossy one): the
# agents dropping batches for it, it missing any, or copying its peer's state.
late_losses() {
	local url="http://${IP_OF[$lt]}:9900/v1/batches" n
	n="$(agent_metric n1 "flowlens_agent_export_destination_batches_total{collector=\"$url\",result=\"dropped\"}")"
	n="$n $(agent_metric n2 "flowlens_agent_export_destination_batches_total{collector=\"$url\",result=\"dropped\"}")"
	echo "$n $(coll_metric "$lt" flowlens_collector_missed_batches_total) $(coll_metric "$lt" 'flowlens_collector_peer_state_copies_total{result="ok"}')"
}
losses0=$(late_losses)
ingest_cut "$lt" -I
C0=$(now_ns)
touch "$WORK/late.on"
(
	while [ -f "$WORK/late.on" ]; do
		lab_exec a iperf3 -c "$C" -p 5202 -n 100K >/dev/null 2>&1
		sleep 0.5
	done
) &
LATE=$!
sleep "$LATE_S" # the fault's own length
read -r q1 q2 <<<"$(queued "$lt")"
check_true "0e: both agents hold a backlog for $lt at the end of the cut ($q1 and $q2 bytes)" \
	test "${q1:-0}" -gt 0 -a "${q2:-0}" -gt 0
ingest_cut "$lt" -D
check_eq "0e: the agents delivered their backlog to $lt" "$(wait_for 40 "0 0" queued "$lt")" "0 0"
check_eq "0e: no batch dropped for $lt, none missed, no peer copy (n1 n2 dropped, missed, copies)" \
	"$(late_losses)" "$losses0"
ACL=$(sel "$A" "$C" server forward 5202)
check_eq "0e: $ex shows the new connection's server side (above 0: past its join wait and hold)" \
	"$(wait_for $((JOIN_WAIT_S + 20)) 1 prom_positive "$ACL")" 1
echo "  info  0e: $ex showed it $((($(now_ns) - C0) / 1000000)) ms after the cut"
T0=$(now_ns)
kill -TERM "${PID_OF[$ex]}"
check_takeover "0e: $lt takes over from the released Lease" "$lt" "$HANDOVER_S"
# The point of the drill: the takeover falls inside the wait $lt would have timed from its own
# receipt (it got the connection's first report no sooner than LATE_S after the cut).
took_ms=$((($(now_ns) - C0) / 1000000))
check_true "0e: the takeover ($took_ms ms after the cut) falls inside a receipt-timed wait (before $(((LATE_S + JOIN_WAIT_S) * 1000)) ms)" \
	test "$took_ms" -lt $(((LATE_S + JOIN_WAIT_S) * 1000))
coll_wait "$ex"
check_eq "0e: $ex exits 0 after SIGTERM" "$?" 0
TOOK_AT=$(now_s) # samples after this are $lt's: $ex has exited
check_eq "0e: Prometheus scraped $lt's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
# The connection's server side as $lt first showed it: at once, and not below what $ex showed.
late_after() {
	prom_query "max(timestamp($ACL))" |
		jq -r --argjson t "$TOOK_AT" '.data.result[0].value[1] // "0" | tonumber | if . > $t then 1 else 0 end'
}
check_eq "0e: $lt shows the connection's server side after taking over" "$(wait_for 10 1 late_after)" 1
rm -f "$WORK/late.on"
wait "$LATE"
coll_start "$ex" || exit 1
check_eq "the agents delivered what they held for $ex" "$(wait_for 40 "0 0" queued "$ex")" "0 0"
# The drills below start from the exporter there is now.
first=$lt other=$ex

# --- Drill 1: the exporter SIGKILLed, its disk lost.
echo "drill 1: SIGKILL $first and delete its state"
D1=$(now_s)
coll_stop "$first" KILL
T0=$(now_ns)
rm -rf "$WORK/state-$first"
check_takeover "the other replica ($other) takes over" "$other" "$LOST_TAKEOVER_S"
check_eq "Prometheus scraped $other's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
coll_start "$first" || exit 1
check_true "$first started without state and copied its peer's" \
	grep -q "copied a peer's state" "$WORK/$first.log"
check_eq "$first: peer copies ok" "$(coll_metric "$first" 'flowlens_collector_peer_state_copies_total{result="ok"}')" 1
check_true "$first does not export (its peer holds the Lease)" \
	test "$(coll_metric "$first" flowlens_collector_ha_exporting)" = 0
check_eq "the agents delivered what they held for $first" "$(wait_for 40 "0 0" queued "$first")" "0 0"

# --- Drill 2: a rolling restart of both replicas, the exporter first.
echo "drill 2: rolling restart ($other, then $first)"
# (The new exporter waits until it has every batch the old one had: the agents' retries to it
# are not in backoff, they delivered everything they held for it before the SIGTERM.)
D2=$(now_s)
T0=$(now_ns)
kill -TERM "${PID_OF[$other]}" # it drains for its shutdown grace (2 s) meanwhile
check_takeover "$first takes over from the released Lease" "$first" "$HANDOVER_S"
coll_wait "$other"
check_eq "$other exits 0 after SIGTERM" "$?" 0
check_eq "Prometheus scraped $first's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
coll_start "$other" || exit 1
check_eq "the agents delivered what they held for $other" "$(wait_for 40 "0 0" queued "$other")" "0 0"
T0=$(now_ns)
kill -TERM "${PID_OF[$first]}"
check_takeover "$other takes over from the released Lease" "$other" "$HANDOVER_S"
coll_wait "$first"
check_eq "$first exits 0 after SIGTERM" "$?" 0
check_eq "Prometheus scraped $other's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
coll_start "$first" || exit 1
check_eq "the agents delivered what they held for $first" "$(wait_for 40 "0 0" queued "$first")" "0 0"

# --- Drill 3: the exporter ($other) partitioned until the agents' buffer for it overflowed.
echo "drill 3: partition $other until the agents drop batches for it"
D3=$(now_s)
partition "$other" -I
T0=$(now_ns)
check_takeover "$first takes over from the unreachable exporter" "$first" "$LOST_TAKEOVER_S"
check_eq "Prometheus scraped $first's flow series" "$(wait_for 20 1 prom_after "$TOOK_AT")" 1
url_other="http://${IP_OF[$other]}:9900/v1/batches"
dropped_n1() {
	local v
	v=$(agent_metric n1 "flowlens_agent_export_destination_batches_total{collector=\"$url_other\",result=\"dropped\"}")
	[ "${v:-0}" -gt 0 ] && echo 1 || echo 0
}
wait_for 90 1 dropped_n1 >/dev/null
dropped=$(agent_metric n1 "flowlens_agent_export_destination_batches_total{collector=\"$url_other\",result=\"dropped\"}")
check_true "agents dropped batches for the partitioned replica (n1: ${dropped:-none})" test "${dropped:-0}" -gt 0
echo "  info  partitioned for $((($(now_ns) - T0) / 1000000)) ms"
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
check_eq "the agents delivered what they held for $other" "$(wait_for 40 "0 0" queued "$other")" "0 0"
DEND=$(now_s)

# --- The end: traffic stops, the agents deliver everything and exit.
rm -f "$WORK/traffic.on"
wait "$TRAFFIC"
check_eq "the agents delivered everything to r1 before stopping" "$(wait_for 40 "0 0" queued r1)" "0 0"
check_eq "the agents delivered everything to r2 before stopping" "$(wait_for 40 "0 0" queued r2)" "0 0"
agent_stop n1 || fail "agent n1 exit status"
agent_stop n2 || fail "agent n2 exit status"

read -r _ gb1 <<<"$(gt_read n1 iptables GT 1)"
read -r _ gb2 <<<"$(gt_read n1 iptables GT 2)"
read -r _ gb3 <<<"$(gt_read n1 iptables GT 3)"
read -r _ gb4 <<<"$(gt_read n1 iptables GT 4)"
check_true "traffic ran (a->c $gb3 bytes)" test "$gb3" -gt 1000000
# (prom_wait: until Prometheus's total is the ground truth, or what it holds after 40 s.)
check_eq "Prometheus a->b bytes forward (client) = iptables" "$(prom_wait "$(sel "$A" "$B" client forward)" "$gb1")" "$gb1"
check_eq "Prometheus a->b bytes reply (server) = iptables" "$(prom_wait "$(sel "$A" "$B" server reply)" "$gb2")" "$gb2"
check_eq "Prometheus a->c bytes forward (client, node 1) = iptables" "$(prom_wait "$AC" "$gb3")" "$gb3"
check_eq "Prometheus a->c bytes reply (client) = iptables" "$(prom_wait "$(sel "$A" "$C" client reply)" "$gb4")" "$gb4"
check_eq "Prometheus a->c bytes forward (server, node 2) = iptables" "$(prom_wait "$(sel "$A" "$C" server forward)" "$gb3")" "$gb3"
read -r _ gb5 <<<"$(gt_read n1 iptables GT 5)"
read -r _ gb6 <<<"$(gt_read n1 iptables GT 6)"
check_true "drill 0e's connection ran (a->c:5202 $gb5 bytes)" test "$gb5" -gt 100000
check_eq "Prometheus a->c:5202 bytes forward (client, node 1) = iptables" "$(prom_wait "$(sel "$A" "$C" client forward 5202)" "$gb5")" "$gb5"
check_eq "Prometheus a->c:5202 bytes forward (server, node 2) = iptables" "$(prom_wait "$ACL" "$gb5")" "$gb5"
check_eq "Prometheus a->c:5202 bytes reply (server, node 2) = iptables" "$(prom_wait "$(sel "$A" "$C" server reply 5202)" "$gb6")" "$gb6"
check_eq "drill 0e's connection's server side is one series (one name across the handover)" \
	"$(prom_query "count(count_over_time(${ACL}[15m]))" | jq -r '.data.result[0].value[1] // 0')" 1
check_eq "drill 0e's connection's server side never went down (resets())" \
	"$(prom_query "resets(${ACL}[15m])" | jq -r '.data.result[0].value[1] // "absent"')" 0
resets=$(prom_query 'sum(resets(flowlens_flow_bytes_total[15m])) + sum(resets(flowlens_flow_packets_total[15m]))' |
	jq -r '.data.result[0].value[1] // "none"')
check_eq "no reset of any flow series across the drills (resets())" "$resets" 0
if [ "$resets" != 0 ]; then
	# Where: each decrease of a series, with the samples around it (for the logs' timeline).
	prom_query 'flowlens_flow_bytes_total[15m]' | jq -r '.data.result[] | .metric as $m |
		.values as $v | range(1; $v | length) | select(($v[.][1] | tonumber) < ($v[. - 1][1] | tonumber)) |
		"  reset \($m.source_ip)->\($m.destination_ip):\($m.destination_port) \($m.reporter) \($m.direction) at \($v[.][0] | todate): \($v[. - 1][1]) -> \($v[.][1])"' | head -20
fi

# One exporter at a time, from the replicas themselves (the relabel rule makes every flow
# series one instance in Prometheus whoever exported it, so Prometheus cannot tell): a
# replica read exposing flow series between two reads of the other that both did means both
# exported at that instant (a replica cannot lose and retake the Lease within two reads).
rm -f "$WORK/sampler.on"
wait "$SAMPLER"
read -r nsamples both r1_exp r2_exp <<<"$(awk '{ t[NR] = $1; r[NR] = $2; n[NR] = $3; e[$2] += $3 > 0 }
	END { for (i = 2; i < NR; i++) if (n[i - 1] > 0 && n[i] > 0 && n[i + 1] > 0 && r[i - 1] == r[i + 1] && r[i] != r[i - 1]) b++
	      print NR, b + 0, e["r1"] + 0, e["r2"] + 0 }' "$WORK/samples")"
check_true "both replicas' /metrics read throughout ($nsamples reads), each exported at times (r1 $r1_exp, r2 $r2_exp reads)" \
	test "$nsamples" -gt 200 -a "$r1_exp" -gt 0 -a "$r2_exp" -gt 0
check_eq "never both replicas exposed flow series at once (reads)" "$both" 0
check_eq "the a->c series is one series in Prometheus across every handover" \
	"$(prom_query "count($AC)" | jq -r '.data.result[0].value[1] // 0')" 1

# The longest gap between consecutive samples Prometheus stored of any flow series, by the
# drill in which the later sample falls (each drill waits for a fresh sample before the next).
gaps=$(prom_query 'flowlens_flow_bytes_total[15m]' | jq -c '[.data.result[].values | map(.[0]) |
	. as $t | range(1; length) | [$t[.], $t[.] - $t[. - 1]]]')
longest() { # FROM TO -> ms
	jq -r --argjson f "$1" --argjson t "$2" '[.[] | select(.[0] >= $f and .[0] < $t) | .[1]] | max // 0 | . * 1000 | round' <<<"$gaps"
}
g0=$(longest 0 "$B0") g1=$(longest "$D1" "$D2") g2=$(longest "$D2" "$D3") g3=$(longest "$D3" "$DEND")
ga=$(longest "$B0" "$B1") gb=$(longest "$B1" "$B2") gc=$(longest "$B2" "$B3") gd=$(longest "$B3" "$B4")
ge=$(longest "$B4" "$D1")
check_true "drill 0a (API refused the exporter past its hold): longest gap ${ga} ms (bound $BLIP_GAP_S s)" test "$ga" -gt 0 -a "$ga" -le $((BLIP_GAP_S * 1000))
check_true "drill 0b (API frozen $((LEASE_S / 2)) s): longest gap ${gb} ms (bound $BLIP_GAP_S s)" test "$gb" -gt 0 -a "$gb" -le $((BLIP_GAP_S * 1000))
check_true "drill 0c (API dropped the exporter past its Lease): longest gap ${gc} ms (bound $LOST_GAP_S s)" test "$gc" -gt 0 -a "$gc" -le $((LOST_GAP_S * 1000))
check_true "drill 0d (zombie exporter): longest gap ${gd} ms (bound $LOST_GAP_S s)" test "$gd" -gt 0 -a "$gd" -le $((LOST_GAP_S * 1000))
check_true "drill 0e (late follower takes over inside the join wait): longest gap ${ge} ms (bound $HANDOVER_GAP_S s)" test "$ge" -gt 0 -a "$ge" -le $((HANDOVER_GAP_S * 1000))
g4=$(longest "$DEND" 1e10)
echo "  info  longest gaps between samples (ms): before the drills $g0, after them $g4 (scrapes every ${SCRAPE_S} s)"
check_true "drill 1 (SIGKILL): longest gap ${g1} ms (bound $LOST_GAP_S s)" test "$g1" -gt 0 -a "$g1" -le $((LOST_GAP_S * 1000))
check_true "drill 2 (rolling restart): longest gap ${g2} ms (bound $HANDOVER_GAP_S s)" test "$g2" -gt 0 -a "$g2" -le $((HANDOVER_GAP_S * 1000))
check_true "drill 3 (partition): longest gap ${g3} ms (bound $LOST_GAP_S s)" test "$g3" -gt 0 -a "$g3" -le $((LOST_GAP_S * 1000))
check_true "no longer gap outside the drills (bound $HANDOVER_GAP_S s)" \
	test "$g0" -le $((HANDOVER_GAP_S * 1000)) -a "$g4" -le $((HANDOVER_GAP_S * 1000))

for r in r1 r2; do
	coll_stop "$r" TERM || fail "$r exit status"
done
check_eq "sanitizer reports in the logs" "$(cat "$WORK"/r1.log "$WORK"/r2.log | grep -c 'Sanitizer')" 0
finish
