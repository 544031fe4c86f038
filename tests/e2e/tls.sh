#!/usr/bin/env bash
# Agent -> collector over HTTPS: the agent verifies the collector's certificate against the
# CA it is given and delivers; without that CA it refuses to talk (and keeps its batches).
source "$(dirname "$0")/lib.sh"
echo "tls.sh: lab $LAB_ID"
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
lab_up
N1=${LAB_NODE_IP[n1]}
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.crt" \
	-days 1 -subj "/CN=flowlens-collector" -addext "subjectAltName=IP:$N1" 2>/dev/null ||
	{ echo "openssl failed"; exit 1; }
ip netns exec "$(lab_ns n1)" "$COLLECTOR" --listen 0.0.0.0:9443 --token-file "$WORK/token" \
	--tls-cert-file "$WORK/tls.crt" --tls-key-file "$WORK/tls.key" --shutdown-grace 0 \
	--new-series-hold 0 >"$WORK/collector.log" 2>&1 &
CPID=$!
trap 'kill $CPID 2>/dev/null; cleanup' EXIT
for _ in $(seq 50); do
	lab_exec n1 curl -sf --cacert "$WORK/tls.crt" -o /dev/null "https://$N1:9443/readyz" && break
	sleep 0.1
done
check_eq "plain HTTP is not served on the TLS port" \
	"$(lab_exec n1 curl -s -o /dev/null -w '%{http_code}' "http://$N1:9443/readyz")" 000

agent_start n2 --collector "https://$N1:9443" --token-file "$WORK/token" \
	--collector-ca-file "$WORK/tls.crt" || exit 1
sleep 2.5
check_true "batches delivered over TLS ($(agent_metric n2 'flowlens_agent_export_batches_total{result="sent"}'))" \
	test "$(agent_metric n2 'flowlens_agent_export_batches_total{result="sent"}')" -gt 0
agent_stop n2 || fail "agent exit status"

# Without the CA the certificate does not verify: nothing is sent, batches are retried.
agent_start n2 --collector "https://$N1:9443" --token-file "$WORK/token" || exit 1
sleep 2.5
check_eq "nothing sent to an unverified collector" \
	"$(agent_metric n2 'flowlens_agent_export_batches_total{result="sent"}')" 0
check_true "unverified sends are retried" \
	test "$(agent_metric n2 flowlens_agent_export_retries_total)" -gt 0
finish
