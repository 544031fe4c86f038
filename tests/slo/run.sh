#!/usr/bin/env bash
# SLO generator: the rules it writes pass `promtool check rules`, behave as the burn-rate
# method says under `promtool test rules` (tests/slo/rules_test.yaml), the committed rules in
# deploy/ are what it writes today, and bad SLO files are refused with the line at fault.
set -u
cd "$(dirname "$0")/../.."
SLO=build/flowlens-slo
tmp=$(mktemp -d /tmp/flowlens-slo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# 1. Generated rules: valid, and they behave.
cp tests/slo/rules_test.yaml "$tmp/"
if $SLO tests/slo/web.slo.yaml -o "$tmp/rules.yaml" && promtool check rules "$tmp/rules.yaml" >/dev/null; then
	ok "generated rules pass promtool check rules"
else
	bad "generated rules do not pass promtool check rules"
fi
if promtool test rules "$tmp/rules_test.yaml" >"$tmp/out" 2>&1; then
	ok "promtool test rules: steady traffic, 10% burst (page at minute 9), slow burn (ticket only), latency bucket"
else
	cat "$tmp/out"
	bad "promtool test rules"
fi
# The tests must be able to fail: the same tests against rules for a 500ms threshold (the
# latency test's slow share is then 1%, not 5%) and against a 99% objective (nothing pages).
for mutation in 's/threshold: 250ms/threshold: 500ms/|the wrong latency bucket' \
	's/objective: 99.9/objective: 99/|another objective'; do
	sed "${mutation%%|*}" tests/slo/web.slo.yaml >"$tmp/mutant.yaml"
	$SLO "$tmp/mutant.yaml" -o "$tmp/rules.yaml"
	if promtool test rules "$tmp/rules_test.yaml" >/dev/null 2>&1; then
		bad "rule tests pass against rules for ${mutation#*|}"
	else
		ok "rule tests fail against rules for ${mutation#*|}"
	fi
done

# gRPC: availability from status codes (the default error set), latency from its histogram.
cp tests/slo/grpc_rules_test.yaml "$tmp/"
if $SLO tests/slo/cart.slo.yaml -o "$tmp/grpc-rules.yaml" && promtool check rules "$tmp/grpc-rules.yaml" >/dev/null &&
	promtool test rules "$tmp/grpc_rules_test.yaml" >"$tmp/out" 2>&1; then
	ok "gRPC SLO: UNAVAILABLE burst pages at minute 9, NOT_FOUND (a caller's status) burns nothing, latency SLI"
else
	cat "$tmp/out"
	bad "gRPC SLO: promtool test rules"
fi
# ...and fail when NOT_FOUND is made an error.
sed 's/  objective: 99.9/  objective: 99.9\n  errors: [NOT_FOUND, UNAVAILABLE]/' tests/slo/cart.slo.yaml >"$tmp/mutant.yaml"
$SLO "$tmp/mutant.yaml" -o "$tmp/grpc-rules.yaml"
if grep -q 'grpc_status=~"NOT_FOUND|UNAVAILABLE"' "$tmp/grpc-rules.yaml" &&
	! promtool test rules "$tmp/grpc_rules_test.yaml" >/dev/null 2>&1; then
	ok "gRPC rule tests fail against rules that count NOT_FOUND"
else
	bad "gRPC rule tests pass against rules that count NOT_FOUND (or errors: was not applied)"
fi

# Without the per-cluster sums the two-cluster test must fail (west's traffic dilutes east).
$SLO tests/slo/web.slo.yaml -o "$tmp/rules.yaml"
sed -i 's/sum by (cluster) (/sum(/g' "$tmp/rules.yaml"
if promtool test rules "$tmp/rules_test.yaml" >/dev/null 2>&1; then
	bad "rule tests pass against rules that sum clusters together"
else
	ok "rule tests fail against rules that sum clusters together"
fi

# 2. Every SLO file in deploy/slo: valid rules in both formats, and the committed copies are
# current (make slo-rules rewrites them).
if $SLO deploy/slo/*.yaml -o "$tmp/deploy-rules.yaml" && promtool check rules "$tmp/deploy-rules.yaml" >/dev/null; then
	ok "deploy/slo rules pass promtool check rules"
else
	bad "deploy/slo rules"
fi
if cmp -s "$tmp/deploy-rules.yaml" deploy/prometheus/slo-rules.yaml; then
	ok "deploy/prometheus/slo-rules.yaml is current"
else
	bad "deploy/prometheus/slo-rules.yaml differs from what flowlens-slo writes (run make slo-rules)"
fi
$SLO -f prometheusrule --name flowlens-slos deploy/slo/*.yaml -o "$tmp/pr.yaml"
if cmp -s "$tmp/pr.yaml" deploy/kustomize/slo/prometheusrule.yaml; then
	ok "deploy/kustomize/slo/prometheusrule.yaml is current"
else
	bad "deploy/kustomize/slo/prometheusrule.yaml differs from what flowlens-slo writes (run make slo-rules)"
fi

# 3. Bad files: refused (exit 1), nothing written, and the message names the line.
expect_refused() { # NAME EXPECTED-MESSAGE-PART CONTENT
	local name=$1 want=$2 content=$3 f="$tmp/$1.yaml"
	printf '%s\n' "$content" >"$f"
	rm -f "$tmp/none.yaml"
	if $SLO "$f" -o "$tmp/none.yaml" 2>"$tmp/err"; then
		bad "$name: accepted"
	elif ! grep -qF -- "$f:$want" "$tmp/err"; then
		bad "$name: message '$(cat "$tmp/err")' lacks '$f:$want'"
	elif [ -e "$tmp/none.yaml" ]; then
		bad "$name: refused but wrote output"
	else
		ok "$name refused: $(cat "$tmp/err")"
	fi
}
expect_refused not-yaml '3: not YAML: while parsing a flow sequence' $'service: web\nnamespace: shop\navailability: [from: http\n'
expect_refused unknown-key '4: unknown key "objectve"' $'service: web\nnamespace: shop\navailability:\n  objectve: 99.9\n  from: http'
expect_refused duplicate '3: service appears twice' $'service: web\nnamespace: shop\nservice: db\navailability: {from: http, objective: 99}'
expect_refused both-targets '2: give either service or workload' $'service: web\nworkload: web\nnamespace: shop'
expect_refused no-target '1: name the service' $'namespace: shop\navailability: {from: http, objective: 99}'
expect_refused no-namespace '1: namespace is required' $'service: web\navailability: {from: http, objective: 99}'
expect_refused no-objective '1: no objective' $'service: web\nnamespace: shop'
expect_refused objective-range '5: objective "100"' $'service: web\nnamespace: shop\navailability:\n  from: http\n  objective: 100'
expect_refused objective-text '4: objective "high"' $'service: web\nnamespace: shop\navailability:\n  objective: high\n  from: http'
expect_refused bad-from '4: from must be http, grpc, tcp or dns' $'service: web\nnamespace: shop\navailability:\n  from: smtp\n  objective: 99'
expect_refused bad-grpc-error '6: "OK" is not a gRPC error status' $'service: web\nnamespace: shop\navailability:\n  from: grpc\n  objective: 99\n  errors: [UNAVAILABLE, OK]'
expect_refused errors-not-grpc '5: errors is for from: grpc only' $'service: web\nnamespace: shop\navailability:\n  from: http\n  errors: [UNAVAILABLE]\n  objective: 99'
expect_refused missing-from '3: availability needs from' $'service: web\nnamespace: shop\navailability:\n  objective: 99'
expect_refused not-a-bound '6: latency threshold 0.3s is not a histogram bucket bound' $'service: web\nnamespace: shop\navailability: {from: http, objective: 99.9}\n# 300ms is not a bound\n\nlatency:\n  from: http\n  threshold: 300ms\n  objective: 99'
expect_refused no-threshold '4: latency needs a threshold' $'service: web\nnamespace: shop\n\nlatency:\n  from: http\n  objective: 99'
expect_refused threshold-on-availability '5: unknown key "threshold"' $'service: web\nnamespace: shop\navailability:\n  from: http\n  threshold: 1s\n  objective: 99'
expect_refused bad-name '1: service "Web Frontend" is not a valid name' $'service: Web Frontend\nnamespace: shop'
expect_refused injection '2: namespace "shop"}" is not a valid name' $'service: web\nnamespace: \'shop"}\''
expect_refused bad-period '3: period "2m"' $'service: web\nnamespace: shop\nperiod: 2m\navailability: {from: http, objective: 99}'
expect_refused reserved-label '5: label "severity" is set by the generator' $'service: web\nnamespace: shop\navailability: {from: http, objective: 99}\nlabels:\n  severity: low'
expect_refused not-a-mapping '1: an SLO file must be a mapping' $'- service: web'
expect_refused empty '1: empty file' ''
# A custom bucket list makes another threshold legal.
printf 'service: web\nnamespace: shop\nlatency: {from: tcp, threshold: 300ms, objective: 99}\nbuckets: [0.1, 0.3, 1]\n' >"$tmp/custom.yaml"
if $SLO "$tmp/custom.yaml" | grep -q 'le="0.3"'; then
	ok "a threshold that is one of the file's own buckets is accepted (le=\"0.3\")"
else
	bad "custom buckets"
fi
if $SLO "$tmp/custom.yaml" "$tmp/custom.yaml" >/dev/null 2>"$tmp/err"; then
	bad "two SLO files with one name accepted"
else
	ok "two SLO files with one name refused: $(cat "$tmp/err")"
fi

echo "slo: $fails failure(s)"
[ "$fails" = 0 ]
