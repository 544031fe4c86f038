#!/usr/bin/env bash
# The flowlens demo: a two-node EKS-like lab in network namespaces running a small shop
# (nginx "web" in front of a Python "api" that keeps its count in Redis "db", a DNS server
# as kube-dns, all behind kube-proxy-style ClusterIPs), a client that makes real requests
# (some slow, some failing, some to closed ports), 2% packet loss towards the database, a
# flowlens agent on each node, the collector, and a real Prometheus loaded with the SLO rules
# flowlens-slo generated from deploy/slo and the health rules. It prints where to look and a
# live summary of the service map. Ctrl-C stops it and removes everything. `sudo make demo`.
#
# DEMO_SECONDS=N     stop after N seconds (default 0: run until Ctrl-C)
# DEMO_INTERVAL=D    agent export interval (default 2s)
# DEMO_PROM_PORT=P   Prometheus forwarded to 127.0.0.1:P on this machine (default 19090)
# DEMO_GRAFANA_PORT  where Grafana is started if it is installed (default 3000)
# DEMO_QUIET=1       no live screen (tests): write "$DEMO_READY_FILE" once traffic flows
# DEMO_EXTRA_WORKLOADS=N  N more workloads (nginx pods) in namespaces team-a..team-e, each
#                    calling the next of its namespace, every fifth one another namespace: a
#                    map of ~N+10 workloads (default 0)
# DEMO_GRPC_LOG=F    the gRPC client's own results (a JSON line per round: status and
#                    duration of every call) appended to F (tests)
# DEMO_DASHBOARDS=D  where the dashboards are drawn when no Grafana is installed: D/*.png and
#                    a self-contained D/dashboards.html, every minute (default build/demo-dashboards;
#                    "" to skip; the live screen only)
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
source tests/lab/lab.sh
SECS=${DEMO_SECONDS:-0}
INTERVAL=${DEMO_INTERVAL:-2s}
PROM_PORT=${DEMO_PROM_PORT:-19090}
GRAFANA_PORT=${DEMO_GRAFANA_PORT:-3000}
QUIET=${DEMO_QUIET:-0}
EXTRA=${DEMO_EXTRA_WORKLOADS:-0}
DASHBOARDS=${DEMO_DASHBOARDS-build/demo-dashboards}
GRPC_LOG=${DEMO_GRPC_LOG:-/dev/null}
if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (BPF programs, network namespaces): sudo make demo" >&2
	exit 1
fi
WORK=$(mktemp -d "/tmp/${LAB_ID}-demo.XXXX")
PIDS=()
cleanup() {
	trap '' INT TERM
	echo
	echo "demo: stopping traffic, agents, collector, Prometheus and tearing the lab down"
	# Newest first: traffic stops, agents deliver their last batches to a collector that is
	# still there, then the collector, Prometheus and the shop go.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[$i]}" 2>/dev/null
		wait "${PIDS[$i]}" 2>/dev/null
	done
	lab_down
	rm -rf "$WORK"
	echo "demo: clean"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
say() { [ "$QUIET" = 1 ] || echo "$@"; }

say "demo: building the lab $LAB_ID (nodes n1 in lab-zone-a, n2 in lab-zone-b)"
LAB_NO_TRAP=1 lab_up
# The shop (namespace shop): client (pod a), web = nginx (pods b on n1, c on n2), api (n2),
# db = Redis (n2); kube-system/kube-dns = dnsmasq (n1).
lab_pod n2 api 10.1.2.5 fd00:1:2::5
lab_pod n2 db 10.1.2.6 fd00:1:2::6
lab_pod n1 dns 10.1.1.5 fd00:1:1::5
lab_pod n1 cart 10.1.1.6 fd00:1:1::6
LAB_POD_APP[api]="shop Deployment/api"
LAB_POD_APP[db]="shop StatefulSet/db"
LAB_POD_APP[dns]="kube-system Deployment/coredns"
LAB_POD_APP[cart]="shop Deployment/cart"
lab_clusterip 10.100.0.20 80 8080 api
lab_clusterip 10.100.0.30 6379 6379 db
lab_clusterip 10.100.0.40 80 8080 cart
LAB_PROTO=udp lab_clusterip 10.100.0.53 53 53 dns
LAB_SVC[10.100.0.20:80]="shop api 8080"
LAB_SVC[10.100.0.30:6379]="shop db 6379"
LAB_SVC[10.100.0.40:80]="shop cart 8080"
LAB_SVC[10.100.0.53:53]="kube-system kube-dns 53"

lab_exec db redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --save '' \
	--appendonly no --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
lab_exec api /usr/bin/python3 "$TOP/tests/tools/http_server.py" --port 8080 \
	--redis 10.100.0.30:6379 >"$WORK/api.log" 2>&1 &
PIDS+=($!)
# cart: a gRPC service (python3-grpcio; HTTP/2 without TLS, as inside clusters).
lab_exec cart /usr/bin/python3 "$TOP/tests/tools/grpc_lab.py" server --port 8080 \
	>"$WORK/cart.log" 2>&1 &
PIDS+=($!)
for pod in b c; do
	mkdir -p "$WORK/www-$pod"
	echo "hello from pod $pod" >"$WORK/www-$pod/index.html"
	head -c 500000 /dev/urandom >"$WORK/www-$pod/blob"
	cat >"$WORK/nginx-$pod.conf" <<EOF
user root;
daemon on;
pid $WORK/nginx-$pod.pid;
error_log $WORK/nginx-$pod.err;
events { worker_connections 512; }
http {
  access_log off;
  upstream api { server 10.100.0.20:80; keepalive 16; }
  server {
    listen 8080;
    root $WORK/www-$pod;
    location /api/ {
      proxy_pass http://api/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
	lab_exec "$pod" nginx -c "$WORK/nginx-$pod.conf"
done
lab_exec dns dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
	--listen-address=10.1.1.5 --local=/cluster.local/ \
	--address=/web.shop.svc.cluster.local/10.100.0.10 \
	--address=/api.shop.svc.cluster.local/10.100.0.20 \
	--address=/db.shop.svc.cluster.local/10.100.0.30 \
	--address=/cart.shop.svc.cluster.local/10.100.0.40 >/dev/null 2>&1 &
PIDS+=($!)
# 2% of packets towards the database are lost on node 2 (retransmissions, drops by reason).
lab_exec n2 iptables -I FORWARD -d "${LAB_POD_IP[db]}" -p tcp --dport 6379 \
	-m statistic --mode random --probability 0.02 -j DROP
# An address outside the cluster, behind node 2 (traffic to it is named "world").
lab_external n2 inet 203.0.113.10
mkdir -p "$WORK/www-inet" && echo "the internet" >"$WORK/www-inet/index.html"
lab_web inet 80 "$WORK/www-inet"
# Extra workloads for a bigger map: pod xI (node n1 or n2) is team-<I mod 5>/svc-I.
TEAMS=(team-a team-b team-c team-d team-e)
mkdir -p "$WORK/www-extra" && echo "extra" >"$WORK/www-extra/index.html"
for ((i = 1; i <= EXTRA; i++)); do
	n=$((1 + i % 2))
	lab_pod "n$n" "x$i" "10.1.$n.$((100 + i))" "fd00:1:$n::$(printf '%x' $((256 + i)))"
	LAB_POD_APP[x$i]="${TEAMS[$((i % 5))]} Deployment/svc-$(printf '%02d' "$i")"
	lab_web "x$i" 80 "$WORK/www-extra"
done
# Names for the collector, as `kubectl get pods,svc,nodes,rs -o json` would give them.
lab_metadata >"$WORK/meta.json"

# The collector and Prometheus run in node 1's network namespace (in a cluster: a Deployment).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
ip netns exec "$(lab_ns n1)" "$TOP/build/flowlens-collector" --listen 0.0.0.0:9900 \
	--token-file "$WORK/token" --new-series-hold 5s --shutdown-grace 0 \
	--metadata-file "$WORK/meta.json" --join-wait 8s >"$WORK/collector.log" 2>&1 &
PIDS+=($!)
"$TOP/build/flowlens-slo" deploy/slo/*.yaml -o "$WORK/slo-rules.yaml"
cat >"$WORK/prometheus.yml" <<EOF
global: { scrape_interval: 2s, scrape_timeout: 1s, evaluation_interval: 5s }
rule_files:
  - $WORK/slo-rules.yaml
  - $TOP/deploy/helm/flowlens/files/health-rules.yaml
scrape_configs:
  - job_name: flowlens-collector
    honor_labels: true
    static_configs: [ { targets: ['127.0.0.1:9900'], labels: { cluster: lab } } ]
  - job_name: flowlens-agent
    static_configs:
      - { targets: ['${LAB_NODE_IP[n1]}:9810'], labels: { cluster: lab, node: $LAB_ID-n1 } }
      - { targets: ['${LAB_NODE_IP[n2]}:9810'], labels: { cluster: lab, node: $LAB_ID-n2 } }
EOF
ip netns exec "$(lab_ns n1)" prometheus --config.file="$WORK/prometheus.yml" \
	--storage.tsdb.path="$WORK/prom" --web.listen-address=127.0.0.1:9090 \
	--log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
# Prometheus on this machine's loopback, for a browser or a Grafana: each connection is
# carried into node 1's namespace.
socat TCP-LISTEN:"$PROM_PORT",bind=127.0.0.1,reuseaddr,fork \
	EXEC:"ip netns exec $(lab_ns n1) socat STDIO TCP\:127.0.0.1\:9090" 2>"$WORK/socat.log" &
PIDS+=($!)

for n in n1 n2; do
	FLOWLENS_NODE_NAME="$LAB_ID-$n" ip netns exec "$(lab_ns "$n")" "$TOP/build/flowlens-agent" \
		--interval "$INTERVAL" --listen 0.0.0.0:9810 \
		--collector "http://${LAB_NODE_IP[n1]}:9900" --token-file "$WORK/token" \
		>"$WORK/$n.log" 2>&1 &
	PIDS+=($!)
done
for n in n1 n2; do
	for _ in $(seq 50); do
		lab_exec "$n" curl -sf -o /dev/null http://127.0.0.1:9810/healthz && break
		sleep 0.1
	done
done

# Grafana, when the machine has it: provisioned with the dashboards and this Prometheus.
GRAFANA=""
if command -v grafana-server >/dev/null || [ -x /usr/share/grafana/bin/grafana ]; then
	mkdir -p "$WORK/grafana/data" "$WORK/grafana/provisioning"
	cp -r grafana/provisioning/. "$WORK/grafana/provisioning/"
	home=/usr/share/grafana
	bin=$(command -v grafana-server || echo "$home/bin/grafana server")
	FLOWLENS_DASHBOARDS="$TOP/grafana/dashboards" FLOWLENS_PROMETHEUS_URL="http://127.0.0.1:$PROM_PORT" \
		GF_PATHS_DATA="$WORK/grafana/data" GF_PATHS_PROVISIONING="$WORK/grafana/provisioning" \
		GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$GRAFANA_PORT" \
		GF_AUTH_ANONYMOUS_ENABLED=true GF_AUTH_ANONYMOUS_ORG_ROLE=Viewer \
		$bin --homepath "$home" >"$WORK/grafana.log" 2>&1 &
	PIDS+=($!)
	GRAFANA="http://127.0.0.1:$GRAFANA_PORT/dashboards (folder flowlens; admin/admin to edit)"
fi

# Traffic. The client: the shop's front page, api calls through web (mostly fast; 1 in 24
# slow, 300 ms; 1 in 24 answered 500 by the api), gRPC calls to cart (1 in 20 NOT_FOUND, 1 in
# 20 UNAVAILABLE after 150 ms), a download, DNS lookups (one of an unknown name: NXDOMAIN), and a
# connection to a closed port (refused). Node 1 fetches from the internet host.
(
	urls=(-o /dev/null http://10.100.0.10/ -o /dev/null http://10.100.0.10/blob)
	for _ in $(seq 20); do urls+=(-o /dev/null http://10.100.0.10/api/delay/5/200); done
	urls+=(-o /dev/null http://10.100.0.10/api/delay/300/200 -o /dev/null http://10.100.0.10/api/delay/10/500)
	while :; do
		lab_exec a curl -s "${urls[@]}"
		lab_exec a /usr/bin/python3 "$TOP/tests/tools/grpc_lab.py" client --target 10.100.0.40:80 \
			--plan "5 OK 18,5 NOT_FOUND 1,150 UNAVAILABLE 1" >>"$GRPC_LOG"
		lab_exec a dig @10.100.0.53 api.shop.svc.cluster.local +tries=1 +timeout=1
		lab_exec a dig @10.100.0.53 web.shop.svc.cluster.local AAAA +tries=1 +timeout=1
		lab_exec a dig @10.100.0.53 nope.shop.svc.cluster.local +tries=1 +timeout=1
		lab_exec a curl -s -o /dev/null --connect-timeout 1 "http://${LAB_POD_IP[api]}:9/"
		lab_exec c curl -s -o /dev/null http://203.0.113.10/
		sleep 0.3
	done
) >/dev/null 2>&1 &
PIDS+=($!)

# The extra workloads' calls: each to the next of its namespace (five apart), every fifth to
# the namespace after it as well.
if [ "$EXTRA" -gt 0 ]; then
	(
		while :; do
			for ((i = 1; i <= EXTRA; i++)); do
				to=()
				[ $((i + 5)) -le "$EXTRA" ] && to+=("http://${LAB_POD_IP[x$((i + 5))]}/")
				[ $((i % 5)) = 0 ] && [ $((i + 1)) -le "$EXTRA" ] && to+=("http://${LAB_POD_IP[x$((i + 1))]}/")
				[ ${#to[@]} -gt 0 ] && lab_exec "x$i" curl -s -o /dev/null --max-time 1 "${to[@]}"
			done
			sleep 1
		done
	) >/dev/null 2>&1 &
	PIDS+=($!)
fi

# No Grafana here: draw the dashboards with Grafana's libraries in headless Chromium
# (grafana/render) from this Prometheus, once it has a minute of rates, then every minute.
DRAWN=""
if [ -z "$GRAFANA" ] && [ -n "$DASHBOARDS" ] && [ "$QUIET" != 1 ]; then
	mkdir -p "$DASHBOARDS"
	DRAWN=$(cd "$DASHBOARDS" && pwd)
	(
		r=""
		trap '[ -n "$r" ] && kill -TERM "$r" 2>/dev/null; exit 0' TERM
		t0=$(date +%s)
		# The npm packages and the page's bundle while Prometheus gathers its first minute
		# (a first run builds them: tens of seconds that would delay the first drawing).
		{ grafana/render/tools.sh && node grafana/render/render.mjs --bundle; } >"$WORK/render.log" 2>&1 || exit 0
		wait_s=$((45 - ($(date +%s) - t0)))
		[ "$wait_s" -gt 0 ] && { sleep "$wait_s" & r=$! && wait $r; }
		while :; do
			node grafana/render/render.mjs --prom "http://127.0.0.1:$PROM_PORT" --out "$WORK/drawing" \
				--range 900 grafana/dashboards/*.json >"$WORK/render.log" 2>&1 &
			r=$! && wait $r
			cp "$WORK"/drawing/*.png "$WORK/drawing/dashboards.html" "$DRAWN/" 2>/dev/null
			sleep 60 & r=$! && wait $r
		done
	) &
	PIDS+=($!)
fi

# The flow map's queries, ready to paste into Prometheus (variables at "All", 30s windows).
jq -r 'first(.panels[] | select(.type == "nodeGraph")) | .targets[] | "# \(.refId)\n\(.expr)\n"' \
	grafana/dashboards/flow-map.json |
	sed -e 's/\$__rate_interval/30s/g' -e 's/\$\(cluster\|namespace\|workload\)/.*/g' >"$WORK/flow-map.promql"

prom() { curl -sf --max-time 5 --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null; }
where() {
	echo "Where to look (the lab lives in network namespaces $LAB_ID-*):"
	echo "  Prometheus UI + API   http://127.0.0.1:$PROM_PORT  (rules: Status > Rules; alerts: Alerts)"
	echo "  collector /metrics    sudo ip netns exec $(lab_ns n1) curl -s 127.0.0.1:9900/metrics"
	echo "  an agent's flows      sudo ip netns exec $(lab_ns n1) curl -s -H \"Authorization: Bearer \$(cat $WORK/token)\" 127.0.0.1:9810/v1/flows"
	if [ -n "$GRAFANA" ]; then
		echo "  Grafana               $GRAFANA"
	else
		echo "  Grafana               not installed here. In yours: add a Prometheus data source at"
		echo "                        http://127.0.0.1:$PROM_PORT and import grafana/dashboards/*.json, or"
		echo "                        use grafana/provisioning (FLOWLENS_DASHBOARDS=$TOP/grafana/dashboards,"
		echo "                        FLOWLENS_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT)"
	fi
	if [ -n "$DRAWN" ]; then
		if [ -e "$DRAWN/flowlens-flow-map.png" ]; then
			echo "  dashboards, drawn     $DRAWN/flowlens-flow-map.png (the flow map), services, slos, health .png"
			echo "                        and $DRAWN/dashboards.html (all four; any browser, offline); every minute"
		else
			echo "  dashboards, drawn     $DRAWN/*.png and dashboards.html: the first in about a minute"
		fi
	fi
	echo "  flow map queries      $WORK/flow-map.promql (paste into the Prometheus UI; from"
	echo "                        grafana/dashboards/flow-map.json); the table below is the same map"
}

show() {
	local rate=30s f='reporter="client"'
	printf '\033[H\033[2J'
	echo "flowlens demo (lab $LAB_ID, up $((SECONDS - start)) s): Ctrl-C stops and removes everything"
	echo
	where
	echo
	echo "Service map, last $rate, as the callers saw it (Prometheus):"
	{
		echo -e "SOURCE\tDESTINATION\tSERVICE\tBYTES/S\tREQ/S\tERROR %\tP99 ms\tCONN FAIL/S"
		prom "sum by (source_namespace, source_workload, destination_namespace, destination_workload, destination_service) (rate(flowlens_flow_bytes_total{reporter=~\"client|node\",destination_workload!=\"link-local\"}[$rate])) > 0" |
			jq -r '.data.result // [] | sort_by(-(.value[1] | tonumber)) | .[:14][] |
				[(.metric.source_namespace // ""), .metric.source_workload, (.metric.destination_namespace // ""), .metric.destination_workload, (.metric.destination_service // ""), .value[1]] | join("|")' |
			while IFS='|' read -r sns src dns dst svc bps; do
				local sel="$f,source_workload=\"$src\",destination_workload=\"$dst\",destination_service=\"$svc\""
				rps=$(prom "sum(rate(flowlens_http_requests_total{$sel}[$rate]))" | jq -r '.data.result[0].value[1] // "0"')
				err=$(prom "100 * sum(rate(flowlens_http_requests_total{$sel,status_class=\"5xx\"}[$rate])) / sum(rate(flowlens_http_requests_total{$sel}[$rate]))" | jq -r '.data.result[0].value[1] // "-"')
				p99=$(prom "1000 * histogram_quantile(0.99, sum by (le) (rate(flowlens_http_request_duration_seconds_bucket{$sel}[$rate])))" | jq -r '.data.result[0].value[1] // "-"')
				cf=$(prom "sum(rate(flowlens_tcp_connections_total{$sel,result=~\"refused|timeout\"}[$rate]))" | jq -r '.data.result[0].value[1] // "0"')
				case $err in -|NaN) ;; *) err=$(printf '%.1f' "$err") ;; esac
				case $p99 in -|NaN) p99=- ;; *) p99=$(printf '%.0f' "$p99") ;; esac
				printf '%s\t%s\t%s\t%.0f\t%.1f\t%s\t%s\t%.2f\n' "${sns:+$sns/}$src" "${dns:+$dns/}$dst" "${svc:--}" "$bps" "$rps" "$err" "$p99" "$cf"
			done
	} | column -t -s $'\t' | sed 's/^/  /'
	echo
	echo "SLOs (rules generated by flowlens-slo from deploy/slo/*.yaml):"
	{
		echo -e "SLO\tOBJECTIVE\tSLI 5m\tBUDGET LEFT\tBURN 1h\tALERT"
		prom 'flowlens_slo:objective:ratio' | jq -r '.data.result // [] | .[] | "\(.metric.slo)|\(.value[1])"' | sort |
			while IFS='|' read -r slo obj; do
				sli=$(prom "1 - flowlens_slo:sli_error:ratio_rate5m{slo=\"$slo\"}" | jq -r '.data.result[0].value[1] // "-"')
				left=$(prom "flowlens_slo:period_error_budget_remaining:ratio{slo=\"$slo\"}" | jq -r '.data.result[0].value[1] // "-"')
				burn=$(prom "flowlens_slo:burn_rate:1h{slo=\"$slo\"}" | jq -r '.data.result[0].value[1] // "-"')
				alert=$(prom "ALERTS{alertname=\"FlowlensSLOErrorBudgetBurn\",alertstate=\"firing\",slo=\"$slo\"}" | jq -r '[.data.result // [] | .[].metric.severity] | join(",")')
				pct() { case $1 in -|NaN) echo - ;; *) awk -v v="$1" 'BEGIN { printf "%.2f%%", 100 * v }' ;; esac; }
				x() { case $1 in -|NaN) echo - ;; *) awk -v v="$1" 'BEGIN { printf "%.1fx", v }' ;; esac; }
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$slo" "$(pct "$obj")" "$(pct "$sli")" "$(pct "$left")" "$(x "$burn")" "${alert:--}"
			done
	} | column -t -s $'\t' | sed 's/^/  /'
	echo
	echo "  gRPC: $(prom 'sum by (destination_service, grpc_status) (rate(flowlens_grpc_requests_total{reporter="client"}[30s]))' |
		jq -r '[.data.result // [] | .[] | "\(.metric.destination_service) \(.metric.grpc_status) \(.value[1] | tonumber * 100 | floor / 100)/s"] | join(", ")')"
	echo "  DNS: $(prom 'sum by (rcode) (rate(flowlens_dns_requests_total{reporter="client"}[30s]))' |
		jq -r '[.data.result // [] | .[] | "\(.metric.rcode) \(.value[1] | tonumber * 100 | floor / 100)/s"] | join(", ")')"
	echo "  retransmits/s to db: $(prom 'sum(rate(flowlens_tcp_retransmits_total{destination_workload="db"}[30s]))' | jq -r '.data.result[0].value[1] // "0" | tonumber * 100 | floor / 100')" \
		"  drops/s: $(prom 'sum by (reason) (rate(flowlens_drops_total[30s]))' | jq -r '[.data.result // [] | .[] | "\(.metric.reason) \(.value[1] | tonumber * 100 | floor / 100)"] | join(", ")')"
	echo "  cross-zone bytes/s: $(prom 'sum by (source_zone, destination_zone) (rate(flowlens_zone_bytes_total{reporter="client",source_zone!="",destination_zone!=""}[30s]))' |
		jq -r '[.data.result // [] | .[] | "\(.metric.source_zone)->\(.metric.destination_zone) \(.value[1] | tonumber | floor)"] | join(", ")')"
}

start=$SECONDS
if [ "$QUIET" = 1 ]; then
	where
	echo "$WORK" >"${DEMO_READY_FILE:-$WORK/ready}"
fi
while [ "$SECS" = 0 ] || [ $((SECONDS - start)) -lt "$SECS" ]; do
	sleep 3
	[ "$QUIET" = 1 ] || show
done
say "demo: done after ${SECS}s"
