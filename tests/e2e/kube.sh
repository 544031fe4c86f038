#!/usr/bin/env bash
# The collector's Kubernetes watcher against a fake API server that speaks the real shapes
# (tests/tools/fake_apiserver.py): paginated lists, watch streams with ADDED/MODIFIED/DELETED
# and BOOKMARK, a dropped connection, 410 Gone after compaction. Names are checked through the
# collector's own /metrics for batches whose addresses the test chose, including an IP that
# moves from a deleted pod to a new one. Runs inside a network namespace of its own. Then the
# in-cluster path: the collector as in a pod (KUBERNETES_SERVICE_HOST, the service account's
# token file and CA at /var/run/secrets/kubernetes.io/serviceaccount, mounted in a mount
# namespace of its own) against the fake API server serving HTTPS with a certificate of a CA
# made here and accepting only the token file's content: a CA that did not sign it and a wrong
# token are refused (and counted), the rotated right token is read and the names come through.
source "$(dirname "$0")/lib.sh"
echo "kube.sh: lab $LAB_ID"
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
MKBATCH=$TOP/build/mkbatch
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
	echo "SKIP: $PY not installed (make deps installs Debian's python3)"
	exit 77
fi
NS="$LAB_ID-k8s"
ip netns add "$NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }
API=127.0.0.1:16443
KTOKEN=fake-$RANDOM$RANDOM
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
TOKEN=$(cat "$WORK/token")

# The cluster at the start: two nodes in two zones, a Deployment (through its ReplicaSet), a
# StatefulSet, a CronJob's Job, a DaemonSet, a bare pod, a hostNetwork pod, a finished Job
# pod whose IP is free, and a Service. More objects than one list page (--page-size 2).
pod() { # NS NAME IP NODE [OWNERKIND OWNERNAME [HASH]] [PHASE] [HOSTNET]
	local owner="" labels=""
	[ -n "${5:-}" ] && owner=",\"ownerReferences\":[{\"kind\":\"$5\",\"name\":\"$6\",\"controller\":true}]"
	[ -n "${7:-}" ] && labels=",\"labels\":{\"pod-template-hash\":\"$7\"}"
	printf '{"kind":"Pod","apiVersion":"v1","metadata":{"namespace":"%s","name":"%s"%s%s},"spec":{"nodeName":"%s","hostNetwork":%s},"status":{"phase":"%s","podIP":"%s","podIPs":[{"ip":"%s"}]}}' \
		"$1" "$2" "$owner" "$labels" "$4" "${9:-false}" "${8:-Running}" "$3" "$3"
}
node() { printf '{"kind":"Node","apiVersion":"v1","metadata":{"name":"%s","labels":{"topology.kubernetes.io/zone":"%s"}},"status":{"addresses":[{"type":"InternalIP","address":"%s"}]}}' "$1" "$2" "$3"; }
owned() { printf '{"kind":"%s","apiVersion":"apps/v1","metadata":{"namespace":"%s","name":"%s","ownerReferences":[{"kind":"%s","name":"%s","controller":true}]}}' "$1" "$2" "$3" "$4" "$5"; }
cat >"$WORK/state.json" <<EOF
{"kind":"List","items":[
$(node node-1 us-east-1a 192.168.1.1),
$(node node-2 us-east-1b 192.168.1.2),
$(owned ReplicaSet shop web-7d9f8 Deployment web),
$(owned Job batch report-28999 CronJob report),
$(pod shop web-7d9f8-abcde 10.9.0.5 node-1 ReplicaSet web-7d9f8 7d9f8),
$(pod shop db-0 10.9.0.6 node-2 StatefulSet db),
$(pod batch report-28999-xyz 10.9.0.7 node-2 Job report-28999),
$(pod kube-system aws-node-q1 10.9.0.8 node-1 DaemonSet aws-node),
$(pod shop debug 10.9.0.9 node-1),
$(pod kube-system kube-proxy-1 192.168.1.1 node-1 DaemonSet kube-proxy "" Running true),
$(pod shop old-job-pod 10.9.0.20 node-2 Job old "" Succeeded),
$(pod shop api-5c6d7-fghij 10.9.0.10 node-2 ReplicaSet api-5c6d7 5c6d7),
{"kind":"Service","apiVersion":"v1","metadata":{"namespace":"shop","name":"web"},"spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ports":[{"port":80,"targetPort":8080}]}}
]}
EOF
cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake-cluster
  cluster:
    server: http://$API/
contexts:
- name: fake
  context:
    cluster: fake-cluster
    user: fake-user
users:
- name: fake-user
  user:
    token: $KTOKEN
EOF

inns "$PY" "$TOP/tests/tools/fake_apiserver.py" --port "${API#*:}" --state "$WORK/state.json" \
	--token "$KTOKEN" --page-size 2 --pid-file "$WORK/api.pid" >"$WORK/api.log" 2>&1 &
for _ in $(seq 50); do inns curl -s -o /dev/null "http://$API/fake/log" && break; sleep 0.1; done
inns "$COLLECTOR" --listen 127.0.0.1:19900 --token-file "$WORK/token" --kubeconfig "$WORK/kubeconfig" \
	--new-series-hold 0 --shutdown-grace 0 --pod-labels --cluster-cidrs 10.9.0.0/16,10.96.0.0/16 \
	>"$WORK/collector.log" 2>&1 &
COLL_PID=$!
stop_all() {
	local f
	kill "$COLL_PID" 2>/dev/null
	for f in "$WORK/api.pid" "$WORK/api-tls.pid"; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	wait 2>/dev/null
	cleanup
}
trap stop_all EXIT
ready=0
for _ in $(seq 100); do
	inns curl -sf -o /dev/null http://127.0.0.1:19900/readyz && { ready=1; break; }
	sleep 0.1
done
check_eq "collector ready after listing every kind" "$ready" 1

BOOT=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
CPORT=19900 # the port of the collector that send, metrics and series talk to
send() { # NODE END_MS FLOW [--dialed IP,PORT]...
	local node=$1 end=$2
	shift 2
	# (called in $(...): a counter would not survive; the clock only goes up)
	"$MKBATCH" --node "$node" --boot "$BOOT" --seq "$(($(date +%s%N) / 1000))" --end-ms "$end" "$@" >"$WORK/b.bin"
	inns curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: deflate' \
		--data-binary "@$WORK/b.bin" "http://127.0.0.1:$CPORT/v1/batches"
}
metrics() { inns curl -sf "http://127.0.0.1:$CPORT/metrics"; }
kmetric() { metrics | awk -v m="$1" '$1 == m { print $2 }'; } # METRIC_WITH_LABELS
pod_events() { kmetric 'flowlens_collector_kube_events_total{kind="pods"}'; }
pod_errors() { kmetric 'flowlens_collector_kube_errors_total{kind="pods"}'; }
pod_lists() { kmetric 'flowlens_collector_kube_lists_total{kind="pods"}'; }
pod_watches() { inns curl -sf "http://$API/fake/log" | grep -c '^WATCH pods'; }
above() { # N CMD...: 1 once CMD prints a number above N
	local n=$1 v
	shift
	v=$("$@")
	[ "${v:-0}" -gt "$n" ] 2>/dev/null && echo 1 || echo 0
}
series() { # BYTES -> the forward bytes series line carrying that unique value
	metrics | awk -v v="$1" '/^flowlens_flow_bytes_total\{/ && $2 == v && /direction="forward"/'
}
has() { # WHAT LINE PATTERN...
	local what=$1 line=$2 p ok=1
	shift 2
	for p in "$@"; do
		case $line in *"$p"*) ;; *) ok=0; echo "        missing $p in: $line" ;; esac
	done
	check_true "$what" test "$ok" = 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

T=$(now_ms)
check_eq "batch accepted" "$(send node-1 "$T" \
	--flow "10.9.0.5,10.9.0.6,5432,tcp,client,1,1001,1,1" \
	--flow "10.9.0.7,10.9.0.5,8080,tcp,client,1,1002,1,1" --dialed 10.96.0.10,80 \
	--flow "10.9.0.8,10.9.0.9,80,tcp,client,1,1003,1,1" \
	--flow "192.168.1.1,192.168.1.2,10250,tcp,node,1,1004,1,1" \
	--flow "10.9.0.9,203.0.113.7,443,tcp,client,1,1005,1,1" \
	--flow "10.9.0.9,10.9.0.20,80,tcp,client,1,1006,1,1")" 200
has "Deployment through its ReplicaSet; StatefulSet; zone-less labels" "$(series 1001)" \
	'source_namespace="shop",source_workload="web",source_workload_kind="Deployment",source_pod="web-7d9f8-abcde"' \
	'destination_workload="db",destination_workload_kind="StatefulSet",destination_pod="db-0"' \
	'destination_service="",destination_port="5432"'
has "CronJob through its Job; the Service dialed and its port" "$(series 1002)" \
	'source_namespace="batch",source_workload="report",source_workload_kind="CronJob"' \
	'destination_workload="web"' 'destination_service="web",destination_port="80"'
has "DaemonSet; bare pod" "$(series 1003)" \
	'source_workload="aws-node",source_workload_kind="DaemonSet"' \
	'destination_workload="debug",destination_workload_kind="Pod"'
has "nodes: host (the reporter) and remote-node, hostNetwork pods named as their node" "$(series 1004)" \
	'source_workload="node-1",source_workload_kind="host"' \
	'destination_workload="node-2",destination_workload_kind="remote-node"'
has "outside the cluster ranges: world" "$(series 1005)" \
	'destination_workload="world",destination_workload_kind="world"'
has "a finished pod's IP, inside the ranges: unknown" "$(series 1006)" \
	'destination_workload="unknown",destination_workload_kind="unknown"'
zone=$(metrics | grep '^flowlens_zone_bytes_total{source_zone="us-east-1a",destination_zone="us-east-1b",reporter="client"}' | awk '{print $2}')
check_eq "zone bytes us-east-1a -> us-east-1b (1001 forward + the 1-byte reply of b->a)" "$zone" 1002

# Watch events: a new pod, then the IP of a deleted pod reused by another.
api() { inns curl -sf -o /dev/null -X POST "http://$API/fake/$1" ${2:+--data-binary "$2"}; }
api event "{\"type\":\"ADDED\",\"object\":$(pod shop web-7d9f8-new 10.9.0.30 node-2 ReplicaSet web-7d9f8 7d9f8)}"
check_eq "the watch applied the ADDED event" "$(wait_for 10 1 pod_events)" 1
check_eq "batch" "$(send node-2 "$(now_ms)" --flow "10.9.0.30,10.9.0.6,5432,tcp,client,1,2001,1,1")" 200
has "pod ADDED by the watch is named" "$(series 2001)" 'source_workload="web"' 'source_pod="web-7d9f8-new"'
T_BEFORE=$(now_ms)
sleep 0.2
api event "{\"type\":\"DELETED\",\"object\":$(pod shop api-5c6d7-fghij 10.9.0.10 node-2 ReplicaSet api-5c6d7 5c6d7)}"
api event "{\"type\":\"ADDED\",\"object\":$(pod shop cache-0 10.9.0.10 node-1 StatefulSet cache)}"
# (A report is named by who held the address by the end of its interval.)
check_eq "the watch applied the DELETED and ADDED events" "$(wait_for 10 3 pod_events)" 3
T_AFTER=$(now_ms)
check_eq "batch" "$(send node-1 "$T_BEFORE" --flow "10.9.0.9,10.9.0.10,80,tcp,client,1,3001,1,1")" 200
check_eq "batch" "$(send node-1 "$T_AFTER" --flow "10.9.0.9,10.9.0.10,80,tcp,client,1,3002,1,1")" 200
has "reused IP, flow before the delete: the old pod" "$(series 3001)" \
	'destination_workload="api",destination_workload_kind="Deployment",destination_pod="api-5c6d7-fghij"'
has "reused IP, flow after: the new pod" "$(series 3002)" \
	'destination_workload="cache",destination_workload_kind="StatefulSet",destination_pod="cache-0"'

# A bookmark moves the resourceVersion; a dropped stream resumes from it, without a list.
api bookmark
check_eq "the bookmark reached the pods watch" \
	"$(wait_for 10 1 kmetric 'flowlens_collector_kube_bookmarks_total{kind="pods"}')" 1
watches=$(pod_watches)
api drop
check_eq "the dropped watch was resumed" "$(wait_for 10 1 above "$watches" pod_watches)" 1
log=$(inns curl -sf "http://$API/fake/log")
last_watch=$(grep '^WATCH pods' <<<"$log" | tail -1 | awk '{print $3}')
prev_watch=$(grep '^WATCH pods' <<<"$log" | tail -2 | head -1 | awk '{print $3}')
check_true "dropped watch resumed from the bookmark's version ($prev_watch -> $last_watch)" \
	test "$last_watch" -gt "$prev_watch"
check_eq "pods listed once so far (pages of 2: LIST pods 0 once)" "$(grep -c '^LIST pods 0' <<<"$log")" 1
errs=$(metrics | awk '$1 == "flowlens_collector_kube_errors_total{kind=\"pods\"}" { print $2 }')
check_true "the broken stream is counted as an error ($errs)" test "${errs:-0}" -ge 1

# 410 Gone: events are compacted while the watch is down; the collector lists again, and what
# changed meanwhile (a pod deleted during the gap) is applied by the relist.
errs=$(pod_errors)
api pause
api drop
# The stream is cut (the collector counted it) before the delete: it is not sent on it.
check_eq "the collector saw the watch cut" "$(wait_for 10 1 above "$errs" pod_errors)" 1
api event "{\"type\":\"DELETED\",\"object\":$(pod shop debug 10.9.0.9 node-1)}"
api compact
api resume
for _ in $(seq 50); do
	[ "$(inns curl -sf "http://$API/fake/log" | grep -c '^LIST pods 0')" -ge 2 ] && break
	sleep 0.1
done
log=$(inns curl -sf "http://$API/fake/log")
check_true "410 Gone -> pods listed again" test "$(grep -c '^LIST pods 0' <<<"$log")" -ge 2
gone=$(metrics | awk '$1 == "flowlens_collector_kube_gone_total{kind=\"pods\"}" { print $2 }')
check_true "410 counted ($gone)" test "${gone:-0}" -ge 1
check_eq "the relist of pods completed" "$(wait_for 10 2 pod_lists)" 2
# The relist applied the delete before it was counted: a report whose interval (1 s) begins
# now finds the address free.
T=$(($(now_ms) + 1001))
while [ "$(now_ms)" -lt "$T" ]; do sleep 0.05; done
check_eq "batch" "$(send node-1 "$T" --flow "10.9.0.8,10.9.0.9,80,tcp,client,1,4001,1,1")" 200
has "pod deleted while the watch was down: gone after the relist (unknown)" "$(series 4001)" \
	'destination_workload="unknown"'
objs=$(metrics | awk '$1 == "flowlens_collector_metadata_objects{kind=\"pods\"}" { print $2 }')
check_eq "pods known (8 listed, +1 -1 +1 -1 by events)" "$objs" 8

kill -TERM "$COLL_PID" 2>/dev/null
wait "$COLL_PID" 2>/dev/null

# --- In-cluster: the service account's token file and CA, over HTTPS.
# A CA, the API server's certificate for the address it listens on (signed by that CA), and
# another CA that did not sign it.
SAPI=127.0.0.1:16444
PKI=$WORK/pki
mkdir -p "$PKI" "$WORK/sa"
{
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=lab-cluster-ca" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$PKI/ca.key" -out "$PKI/ca.crt" &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
			-keyout "$PKI/api.key" -out "$PKI/api.csr" &&
		printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
			"${SAPI%:*}" >"$PKI/api.ext" &&
		openssl x509 -req -in "$PKI/api.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
			-CAcreateserial -days 1 -extfile "$PKI/api.ext" -out "$PKI/api.crt" &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=some-other-ca" \
			-keyout "$PKI/other.key" -out "$PKI/other.crt"
} >"$WORK/openssl.out" 2>&1 || { cat "$WORK/openssl.out"; fail "openssl"; finish; exit 1; }
# The service account's token as the API server knows it (no newline, as projected tokens).
SA_TOKEN=sa-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$SA_TOKEN" >"$WORK/api-token"
# sa_put FILE CONTENT_FROM: what the pod's service account directory holds, replaced at once
# (a rename, as the kubelet updates projected volumes).
sa_put() { cp "$2" "$WORK/sa/.$1.new" && mv -f "$WORK/sa/.$1.new" "$WORK/sa/$1"; }
# First a CA that did not sign the API server's certificate, and the right token.
sa_put ca.crt "$PKI/other.crt"
sa_put token "$WORK/api-token"
ip netns exec "$NS" "$PY" "$TOP/tests/tools/fake_apiserver.py" --port "${SAPI#*:}" --state "$WORK/state.json" \
	--token-file "$WORK/api-token" --tls-cert "$PKI/api.crt" --tls-key "$PKI/api.key" \
	--pid-file "$WORK/api-tls.pid" >"$WORK/api-tls.log" 2>&1 &
sapi_log() { inns curl -sf --cacert "$PKI/ca.crt" "https://$SAPI/fake/log" | tail -n "+$((SAPI_SEEN + 1))"; }
SAPI_SEEN=0
for _ in $(seq 50); do inns curl -sf -o /dev/null --cacert "$PKI/ca.crt" "https://$SAPI/fake/log" && break; sleep 0.1; done
check_eq "the fake API server refuses plain HTTP" \
	"$(inns curl -s -o /dev/null -w '%{http_code}' "http://$SAPI/api/v1/pods")" 000
check_eq "the fake API server refuses a request without the token" \
	"$(inns curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" "https://$SAPI/api/v1/pods")" 401
check_eq "the fake API server serves the token file's content" "$(inns curl -s -o /dev/null -w '%{http_code}' \
	--cacert "$PKI/ca.crt" -H "Authorization: Bearer $SA_TOKEN" "https://$SAPI/api/v1/pods")" 200
SAPI_SEEN=$(sapi_log | wc -l) # from here on, only the collector's requests
# The collector as in a pod: the service's address in its environment, no kubeconfig, and the
# service account's directory where the kubelet mounts it, in a mount namespace of its own (a
# tmpfs on /run there: the host's /run is untouched). (Not through inns: $! is the collector.)
ip netns exec "$NS" env KUBERNETES_SERVICE_HOST="${SAPI%:*}" KUBERNETES_SERVICE_PORT="${SAPI#*:}" \
	unshare --mount --propagation private sh -c '
		mount -t tmpfs -o size=1m,mode=0755 flowlens-sa /run &&
		mkdir -p /run/secrets/kubernetes.io/serviceaccount &&
		mount --bind "$1" /var/run/secrets/kubernetes.io/serviceaccount &&
		shift && exec "$@"' sh "$WORK/sa" \
	"$COLLECTOR" --listen 127.0.0.1:19901 --token-file "$WORK/token" --in-cluster on \
	--new-series-hold 0 --shutdown-grace 0 --pod-labels --cluster-cidrs 10.9.0.0/16,10.96.0.0/16 \
	>"$WORK/collector-incluster.log" 2>&1 &
COLL_PID=$!
CPORT=19901
logged() { grep -q -- "$1" "$WORK/collector-incluster.log" && echo 1 || echo 0; } # 1 once logged
check_eq "in-cluster: the service's address over HTTPS" \
	"$(wait_for 10 1 logged "kube: watching https://$SAPI")" 1
# 1. The CA does not verify the server: nothing is sent, the failure logged (and counted).
check_eq "in-cluster: a server its CA did not sign is refused" \
	"$(wait_for 10 1 logged 'kube: list pods: SSL peer certificate or SSH remote key was not OK')" 1
check_true "in-cluster: ... and the server saw the handshake fail" grep -q '^TLS handshake failed' <<<"$(sapi_log)"
check_eq "in-cluster: no request got through" "$(sapi_log | grep -c '^LIST\|^DENIED')" 0
# 2. The right CA, a token the API server does not know: refused there, logged here.
printf 'not-%s' "$SA_TOKEN" >"$WORK/wrong-token"
sa_put token "$WORK/wrong-token"
sa_put ca.crt "$PKI/ca.crt"
check_eq "in-cluster: a wrong token is refused (HTTP 401)" \
	"$(wait_for 15 1 logged 'kube: list pods: bad status (HTTP 401)')" 1
check_true "in-cluster: ... by the API server" grep -q '^DENIED GET /api/v1/pods' <<<"$(sapi_log)"
code=$(inns curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CPORT/readyz")
check_true "in-cluster: not ready while the API refuses it ($code)" test "$code" != 200
# 3. The token rotated to the right one: read from the file at the next request.
sa_put token "$WORK/api-token"
ready() { inns curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CPORT/readyz"; }
check_eq "in-cluster: ready once the token file holds the right token" "$(wait_for 30 200 ready)" 200
check_true "in-cluster: every kind listed through the API" \
	test "$(sapi_log | grep -c '^LIST ')" -ge 5
check_true "in-cluster: both refusals counted ($(pod_errors) errors listing pods)" test "$(pod_errors)" -ge 2
check_eq "in-cluster: pods known from the API (the 8 of the state file)" \
	"$(kmetric 'flowlens_collector_metadata_objects{kind="pods"}')" 8
check_eq "batch" "$(send node-1 "$(now_ms)" --flow "10.9.0.5,10.9.0.6,5432,tcp,client,1,5001,1,1")" 200
has "in-cluster: names from the API server" "$(series 5001)" \
	'source_workload="web",source_workload_kind="Deployment",source_pod="web-7d9f8-abcde"' \
	'destination_workload="db",destination_workload_kind="StatefulSet",destination_pod="db-0"'
kill -TERM "$COLL_PID" 2>/dev/null
wait "$COLL_PID" 2>/dev/null
check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
finish
