#!/usr/bin/env bash
# The flowlens demo: a two-node EKS-like lab in network namespaces, a flowlens agent on each
# node shipping to a collector, a real Prometheus scraping the collector, real traffic (a web
# tier behind a ClusterIP, bulk transfers, node-to-node traffic), and a live view of the flows
# the agents saw and of what Prometheus holds. Run through `sudo make demo`.
#
# DEMO_SECONDS=N   how long to run (default 60; 0 = until Ctrl-C)
# DEMO_INTERVAL=D  agent export interval (default 2s)
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
source tests/lab/lab.sh
SECS=${DEMO_SECONDS:-60}
INTERVAL=${DEMO_INTERVAL:-2s}
if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (BPF programs, network namespaces): sudo make demo" >&2
	exit 1
fi
WORK=$(mktemp -d "/tmp/${LAB_ID}-demo.XXXX")
PIDS=()
cleanup() {
	echo
	echo "demo: stopping agents and tearing the lab down"
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	lab_down
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "demo: building the lab $LAB_ID (nodes n1, n2; pods a, b on n1, c on n2)"
LAB_NO_TRAP=1 lab_up

# Web tier: nginx in pods b and c on 8080, reached through ClusterIP 10.100.0.10:80.
for pod in b c; do
	mkdir -p "$WORK/www-$pod"
	echo "hello from pod $pod" >"$WORK/www-$pod/index.html"
	head -c 2000000 /dev/urandom >"$WORK/www-$pod/blob"
	cat >"$WORK/nginx-$pod.conf" <<EOF
user root;
daemon on;
pid $WORK/nginx-$pod.pid;
error_log $WORK/nginx-$pod.err;
events { worker_connections 256; }
http { access_log off; server { listen 8080; root $WORK/www-$pod; } }
EOF
	lab_exec "$pod" nginx -c "$WORK/nginx-$pod.conf"
done
# A "db" in pod c (an iperf3 server standing in for bulk reads), and one on node 2's host network.
lab_exec c iperf3 -s -D -p 5432
lab_exec n2 iperf3 -s -D -p 5201

# An "api" whose answers are sometimes slow or failing (the test server: /delay/MS/STATUS),
# behind ClusterIP 10.100.0.20:80, and a DNS server (dnsmasq) behind 10.100.0.53:53.
lab_pod n2 api 10.1.2.5 fd00:1:2::5
lab_pod n1 dns 10.1.1.5 fd00:1:1::5
LAB_POD_APP[api]="shop Deployment/api"
LAB_POD_APP[dns]="kube-system Deployment/coredns"
lab_clusterip 10.100.0.20 80 8080 api
LAB_PROTO=udp lab_clusterip 10.100.0.53 53 53 dns
LAB_SVC[10.100.0.20:80]="shop api 8080"
LAB_SVC[10.100.0.53:53]="kube-system kube-dns 53"
lab_exec api /usr/bin/python3 "$TOP/tests/tools/http_server.py" --port 8080 >/dev/null 2>&1 &
PIDS+=($!)
lab_exec dns dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=10.1.1.5 --local=/cluster.local/ \
	--address=/web.shop.svc.cluster.local/10.100.0.10 \
	--address=/api.shop.svc.cluster.local/10.100.0.20 >/dev/null 2>&1 &
PIDS+=($!)

# An address outside the cluster, behind node 2 (traffic to it is named "world").
lab_external n2 inet 203.0.113.10
mkdir -p "$WORK/www-inet" && echo "the internet" >"$WORK/www-inet/index.html"
lab_web inet 80 "$WORK/www-inet"
# Names for the collector: the lab as `kubectl get pods,svc,nodes,rs -o json` would show it
# (namespace shop: Deployment client = pod a, Deployment web = pods b and c, Service web).
lab_metadata >"$WORK/meta.json"

# The collector and Prometheus run in node 1's network namespace (in a cluster: a Deployment).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
ip netns exec "$(lab_ns n1)" "$TOP/build/flowlens-collector" --listen 0.0.0.0:9900 \
	--token-file "$WORK/token" --new-series-hold 5s --shutdown-grace 0 \
	--metadata-file "$WORK/meta.json" --join-wait 8s \
	>"$WORK/collector.log" 2>&1 &
PIDS+=($!)
printf '%s\n' "global: { scrape_interval: 2s, scrape_timeout: 1s }" \
	"scrape_configs:" \
	"  - job_name: flowlens-collector" \
	"    static_configs: [ { targets: ['127.0.0.1:9900'] } ]" \
	"  - job_name: flowlens-agent" \
	"    static_configs: [ { targets: ['${LAB_NODE_IP[n1]}:9810', '${LAB_NODE_IP[n2]}:9810'] } ]" \
	>"$WORK/prometheus.yml"
if command -v prometheus >/dev/null; then
	ip netns exec "$(lab_ns n1)" prometheus --config.file="$WORK/prometheus.yml" \
		--storage.tsdb.path="$WORK/prom" --web.listen-address=127.0.0.1:9090 \
		--log.level=warn >"$WORK/prometheus.log" 2>&1 &
	PIDS+=($!)
fi

for n in n1 n2; do
	FLOWLENS_NODE_NAME="$LAB_ID-$n" ip netns exec "$(lab_ns "$n")" "$TOP/build/flowlens-agent" \
		--interval "$INTERVAL" --listen 0.0.0.0:9810 --output json \
		--collector "http://${LAB_NODE_IP[n1]}:9900" --token-file "$WORK/token" \
		>"$WORK/$n.jsonl" 2>"$WORK/$n.log" &
	PIDS+=($!)
done
for n in n1 n2; do
	for _ in $(seq 50); do
		lab_exec "$n" curl -sf -o /dev/null http://127.0.0.1:9810/healthz && break
		sleep 0.1
	done
done
grep -h "attached\|flowlens-agent" "$WORK"/n*.log | sed 's/^/  /'
echo "While it runs, look yourself (from another terminal):"
echo "  sudo ip netns exec $(lab_ns n1) curl -s 127.0.0.1:9900/metrics          # the collector"
echo "  sudo ip netns exec $(lab_ns n1) curl -s 127.0.0.1:9810/v1/flows         # node 1's agent"
echo "  sudo ip netns exec $(lab_ns n1) curl -s '127.0.0.1:9090/api/v1/query?query=flowlens_collector_agents'"
sleep 3

# Traffic: keep-alive requests through the ClusterIP, a blob download pod-to-pod, bulk
# reads from the "db", node-to-node transfers, and pings.
(
	while :; do
		lab_exec a curl -s -o /dev/null http://10.100.0.10/ http://10.100.0.10/ http://10.100.0.10/blob
		lab_exec a curl -s -o /dev/null "http://${LAB_POD_IP[b]}:8080/blob"
		lab_exec c curl -s -o /dev/null http://203.0.113.10/
		sleep 0.5
	done
) >/dev/null 2>&1 &
PIDS+=($!)
# The api's clients: mostly fast, some slow, a few 500s; DNS lookups, some of unknown names.
(
	urls=()
	for _ in $(seq 8); do urls+=(-o /dev/null http://10.100.0.20/delay/5/200); done
	urls+=(-o /dev/null http://10.100.0.20/delay/150/200 -o /dev/null http://10.100.0.20/delay/20/500)
	while :; do
		lab_exec a curl -s "${urls[@]}"
		lab_exec b curl -s -o /dev/null http://10.100.0.20/delay/40/200
		lab_exec a dig @10.100.0.53 api.shop.svc.cluster.local +tries=1 +timeout=1
		lab_exec a dig @10.100.0.53 nope.shop.svc.cluster.local +tries=1 +timeout=1
		lab_exec a curl -s -o /dev/null --connect-timeout 1 "http://${LAB_POD_IP[api]}:9/"
		sleep 0.3
	done
) >/dev/null 2>&1 &
PIDS+=($!)
(
	while :; do
		lab_exec a iperf3 -c "${LAB_POD_IP[c]}" -p 5432 -n 4M -R
		lab_exec n1 iperf3 -c "${LAB_NODE_IP[n2]}" -p 5201 -n 2M
		lab_exec b ping -c 2 -i 0.3 "${LAB_POD_IP[c]}"
		sleep 1
	done
) >/dev/null 2>&1 &
PIDS+=($!)

show() {
	local n
	printf '\033[H\033[2J'
	echo "flowlens demo (lab $LAB_ID) - flows of the last ${INTERVAL} interval per node; Ctrl-C to stop"
	echo "client = the side that initiated; reporter: client/server = seen at that pod's veth, node = only on the ENI"
	echo
	for n in n1 n2; do
		echo "node $n  (curl http://127.0.0.1:9810/v1/flows inside netns $(lab_ns "$n"))"
		lab_exec "$n" curl -sf http://127.0.0.1:9810/v1/flows | jq -r '
			["REPORTER","PROTO","CLIENT","SERVER","PORT","DIALED","PKTS>","BYTES>","<PKTS","<BYTES","INITIATOR"],
			(.flows | map(select(.client_ip | test("^fe80|^::") | not)) | sort_by(-(.forward.bytes + .reply.bytes))[:14][] |
			 [.reporter, .protocol, .client_ip, .server_ip, .server_port,
			  (if .dialed_ip then "\(.dialed_ip):\(.dialed_port)" else "-" end),
			  .forward.packets, .forward.bytes, .reply.packets, .reply.bytes, .initiator]) | @tsv' |
			column -t -s $'\t' | sed 's/^/  /'
		echo
	done
	echo "agent health: $(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | grep -E '^flowlens_agent_(interfaces|flow_table_entries|datapath_events_total\{reason="table_full"\})' | tr '\n' ' ')"
	echo
	echo "Prometheus (scraping the collector): the service map, bytes/s over 30 s, client-side view"
	lab_exec n1 curl -sf --get http://127.0.0.1:9090/api/v1/query --data-urlencode \
		'query=topk(10, sum by (source_namespace, source_workload, destination_namespace, destination_workload, destination_workload_kind, destination_service, destination_port, protocol) (rate(flowlens_flow_bytes_total{reporter=~"client|node"}[30s])))' 2>/dev/null |
		jq -r '["SOURCE","DESTINATION","KIND","SERVICE","PORT","PROTO","BYTES/S"],
			(.data.result // [] | .[] | [
			 (if .metric.source_namespace then "\(.metric.source_namespace)/" else "" end) + .metric.source_workload,
			 (if .metric.destination_namespace then "\(.metric.destination_namespace)/" else "" end) + .metric.destination_workload,
			 .metric.destination_workload_kind, (.metric.destination_service // "-"), .metric.destination_port,
			 .metric.protocol, (.value[1] | tonumber | floor)]) | @tsv' 2>/dev/null |
		column -t -s $'\t' | sed 's/^/  /'
	echo
	echo "SLIs from Prometheus (last 30 s, client-side view): the service map with RED metrics"
	prom() { lab_exec n1 curl -sf --get http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" 2>/dev/null; }
	{
		echo -e "SOURCE\tSERVICE\tREQ/S\tERROR %\tP99 ms\tCONNECT FAIL/S"
		prom 'sum by (source_workload, destination_service) (rate(flowlens_http_requests_total{reporter="client"}[30s]))' |
			jq -r '.data.result // [] | .[] | "\(.metric.source_workload)|\(.metric.destination_service // "")|\(.value[1])"' |
			while IFS='|' read -r src svc rps; do
				err=$(prom "100 * sum(rate(flowlens_http_requests_total{reporter=\"client\",source_workload=\"$src\",destination_service=\"$svc\",status_class=\"5xx\"}[30s])) / sum(rate(flowlens_http_requests_total{reporter=\"client\",source_workload=\"$src\",destination_service=\"$svc\"}[30s]))" | jq -r '.data.result[0].value[1] // "0"')
				p99=$(prom "1000 * histogram_quantile(0.99, sum by (le) (rate(flowlens_http_request_duration_seconds_bucket{reporter=\"client\",source_workload=\"$src\",destination_service=\"$svc\"}[30s])))" | jq -r '.data.result[0].value[1] // "-"')
				cf=$(prom "sum(rate(flowlens_tcp_connections_total{reporter=\"client\",source_workload=\"$src\",destination_service=\"$svc\",result=~\"refused|timeout|reset\"}[30s]))" | jq -r '.data.result[0].value[1] // "0"')
				case $p99 in -|NaN|"") p99=- ;; *) p99=$(printf '%.1f' "$p99") ;; esac
				printf '%s\t%s\t%.1f\t%.1f\t%s\t%.2f\n' "$src" "${svc:-(pod directly)}" "$rps" "$err" "$p99" "$cf"
			done
	} | column -t -s $'\t' | sed 's/^/  /'
	echo "  DNS (client side): $(prom 'sum by (rcode) (rate(flowlens_dns_requests_total{reporter="client"}[30s]))' |
		jq -r '[.data.result // [] | .[] | "\(.metric.rcode) \(.value[1] | tonumber * 100 | floor / 100)/s"] | join(", ")')"
	echo "  cross-zone bytes/s: $(lab_exec n1 curl -sf --get http://127.0.0.1:9090/api/v1/query --data-urlencode \
		'query=sum by (source_zone, destination_zone) (rate(flowlens_zone_bytes_total{reporter="client",source_zone!="",destination_zone!=""}[30s]))' 2>/dev/null |
		jq -r '[.data.result // [] | .[] | "\(.metric.source_zone)->\(.metric.destination_zone) \(.value[1] | tonumber | floor)"] | join(", ")')"
	echo "  look yourself: sudo ip netns exec $(lab_ns n1) curl -s 127.0.0.1:9900/metrics (collector), :9090 (Prometheus), :9810/v1/flows (agent)"
	echo "  collector: $(lab_exec n1 curl -sf http://127.0.0.1:9900/metrics | awk '/^flowlens_collector_(batches_total\{result="applied"\}|series |agents )/ { printf "%s  ", $0 }')"
}

start=$SECONDS
while [ "$SECS" = 0 ] || [ $((SECONDS - start)) -lt "$SECS" ]; do
	sleep 2
	show
done
echo "demo: done after ${SECS}s (DEMO_SECONDS=0 runs until Ctrl-C)"
