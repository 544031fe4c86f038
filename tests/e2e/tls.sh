#!/usr/bin/env bash
# Agent -> collector over HTTPS: the agent verifies the collector's certificate against the
# CA it is given and delivers; without that CA it refuses to talk (and keeps its batches).
# Delivery is checked at the collector's side: it listens only for HTTPS, it applied every
# batch the agent counts as sent, and the bytes of its flow series equal what iptables counted.
source "$(dirname "$0")/lib.sh"
echo "tls.sh: lab $LAB_ID"
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
lab_up
N1=${LAB_NODE_IP[n1]}
A=${LAB_POD_IP[a]} C=${LAB_POD_IP[c]}
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.crt" \
	-days 1 -subj "/CN=flowlens-collector" -addext "subjectAltName=IP:$N1" 2>/dev/null ||
	{ echo "openssl failed"; exit 1; }
# Ground truth: c (node 2) -> a (node 1), counted where the agent on node 2 sees it.
gt_init n2 iptables GT FORWARD
gt_rule n2 iptables GT -s "$C" -d "$A" -p tcp --dport 5201 # 1
gt_rule n2 iptables GT -s "$A" -d "$C" -p tcp --sport 5201 # 2
ip netns exec "$(lab_ns n1)" "$COLLECTOR" --listen 0.0.0.0:9443 --token-file "$WORK/token" \
	--tls-cert-file "$WORK/tls.crt" --tls-key-file "$WORK/tls.key" --shutdown-grace 0 \
	--new-series-hold 0 --ip-labels >"$WORK/collector.log" 2>&1 &
CPID=$!
trap 'kill $CPID 2>/dev/null; cleanup' EXIT
for _ in $(seq 50); do
	lab_exec n1 curl -sf --cacert "$WORK/tls.crt" -o /dev/null "https://$N1:9443/readyz" && break
	sleep 0.1
done
check_eq "plain HTTP is not served on the TLS port" \
	"$(lab_exec n1 curl -s -o /dev/null -w '%{http_code}' "http://$N1:9443/readyz")" 000
check_true "the collector listens for HTTPS only" grep -q "listening on 0.0.0.0:9443 (https)" "$WORK/collector.log"

# The collector's own view, read over HTTPS with the CA.
coll_metrics() { lab_exec n1 curl -sf --cacert "$WORK/tls.crt" "https://$N1:9443/metrics"; }
coll_batches() { # RESULT|"" -> batches_total of that result (every result when "")
	coll_metrics | awk -v r="$1" 'index($1, "flowlens_collector_batches_total{") == 1 &&
		(r == "" || index($1, "result=\"" r "\"")) { s += $2 } END { printf "%d\n", s }'
}
coll_bytes() { # the client side's bytes c->a:5201, both directions
	coll_metrics | awk -v c="$C" -v a="$A" 'index($1, "flowlens_flow_bytes_total{") == 1 &&
		index($1, "source_ip=\"" c "\"") && index($1, "destination_ip=\"" a "\"") &&
		index($1, "destination_port=\"5201\"") && index($1, "reporter=\"client\"") { s += $2 }
		END { printf "%d\n", s }'
}
sent() { agent_metric n2 'flowlens_agent_export_batches_total{result="sent"}'; }
# "equal" once every batch the agent counts as sent is applied (or a retry's duplicate) there.
sent_vs_applied() {
	local s a
	s=$(sent) a=$(($(coll_batches applied) + $(coll_batches duplicate)))
	if [ "${s:-0}" -gt 0 ] && [ "$s" = "$a" ]; then echo equal; else echo "sent ${s:-none}, applied $a"; fi
}

agent_start n2 --collector "https://$N1:9443" --token-file "$WORK/token" \
	--collector-ca-file "$WORK/tls.crt" || exit 1
lab_exec a iperf3 -s -D -p 5201
lab_exec c iperf3 -c "$A" -p 5201 -n 2M >/dev/null || fail "iperf3 c->a"
read -r _ b1 <<<"$(gt_read n2 iptables GT 1)"
read -r _ b2 <<<"$(gt_read n2 iptables GT 2)"
check_true "traffic ran (c->a $b1 bytes)" test "$b1" -gt 1000000
check_eq "the collector's bytes of c->a (client side, both ways) = iptables" \
	"$(wait_for 20 $((b1 + b2)) coll_bytes)" $((b1 + b2))
check_eq "the collector applied every batch the agent sent over TLS" "$(wait_for 10 equal sent_vs_applied)" equal
check_true "batches delivered over TLS ($(sent))" test "$(sent)" -gt 0
agent_stop n2 || fail "agent exit status"

# Without the CA the certificate does not verify: nothing is sent, batches are retried.
before=$(coll_batches "")
agent_start n2 --collector "https://$N1:9443" --token-file "$WORK/token" || exit 1
retried() { [ "$(agent_metric n2 flowlens_agent_export_retries_total)" -ge 2 ] 2>/dev/null && echo 1 || echo 0; }
check_eq "unverified sends are retried (twice or more)" "$(wait_for 15 1 retried)" 1
check_eq "nothing sent to an unverified collector" \
	"$(agent_metric n2 'flowlens_agent_export_batches_total{result="sent"}')" 0
check_true "unverified sends are retried" \
	test "$(agent_metric n2 flowlens_agent_export_retries_total)" -gt 0
check_eq "the collector got no batch from the agent that cannot verify it" "$(coll_batches "")" "$before"
finish
