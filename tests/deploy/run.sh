#!/usr/bin/env bash
# Offline checks of everything in deploy/ and grafana/ that Kubernetes or Prometheus reads:
# the Helm chart lints and renders (defaults and the TLS/bring-your-own-secret variant), the
# kustomize base is the chart's current render, every kustomization builds, every rendered
# object passes its Kubernetes / Prometheus Operator schema and a strict TypeScript type
# check (misspelled fields), every rule passes promtool, and the checks can fail.
set -u
cd "$(dirname "$0")/../.."
tests/deploy/tools.sh || exit 1
PATH="$PWD/tests/deploy/.bin:$PATH"
tmp=$(mktemp -d /tmp/flowlens-deploy.XXXXXX)
out=tests/deploy/.out/$$
trap 'rm -rf "$tmp" "$out"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
helm_quiet() { helm "$@" 2> >(grep -v 'found symbolic link' >&2); }

chart=deploy/helm/flowlens
if helm_quiet lint "$chart" >"$tmp/lint" 2>&1; then ok "helm lint"; else cat "$tmp/lint"; bad "helm lint"; fi
helm_quiet template flowlens "$chart" --namespace flowlens >"$tmp/helm-default.yaml" &&
	ok "helm template (defaults): $(grep -c '^kind:' "$tmp/helm-default.yaml") objects" || bad "helm template (defaults)"
helm_quiet template fl "$chart" --namespace observability --set auth.create=false \
	--set auth.secretName=my-token --set collector.tls.secretName=flowlens-tls \
	--set collector.networkPolicy.enabled=false --set collector.podLabels=true \
	--set 'agent.extraArgs={--idle-timeout,2m}' --set agent.seccompProfile=Unconfined \
	--set 'monitoring.labels.release=kps' >"$tmp/helm-tls.yaml" &&
	ok "helm template (TLS, existing Secret, extra args)" || bad "helm template (TLS variant)"
if grep -q 'https://fl-flowlens-collector.observability.svc:9900' "$tmp/helm-tls.yaml" &&
	grep -q 'FLOWLENS_COLLECTOR_CA_FILE' "$tmp/helm-tls.yaml" && ! grep -q '^kind: Secret' "$tmp/helm-tls.yaml"; then
	ok "TLS variant: agents dial https and trust the CA; no Secret created"
else
	bad "TLS variant renders wrong"
fi
# Least privilege, as rendered.
dsa=$(sed -n '/^kind: DaemonSet/,/^---/p' "$tmp/helm-default.yaml")
if grep -q 'privileged: false' <<<"$dsa" && grep -q 'drop: \["ALL"\]' <<<"$dsa" &&
	grep -q 'add: \["BPF", "NET_ADMIN", "PERFMON", "SYS_RESOURCE"\]' <<<"$dsa" &&
	grep -q 'readOnlyRootFilesystem: true' <<<"$dsa" && grep -q 'automountServiceAccountToken: false' <<<"$dsa"; then
	ok "agent: not privileged, ALL dropped, BPF NET_ADMIN PERFMON SYS_RESOURCE only, read-only root, no API token"
else
	bad "agent security context"
fi
# agent.conntrackKfuncs adds CAP_SYS_ADMIN (the agent drops it after load) and nothing else.
if helm template fl "$chart" --set agent.conntrackKfuncs=true 2>/dev/null |
	sed -n '/^kind: DaemonSet/,/^---/p' |
	grep -q 'add: \["BPF", "NET_ADMIN", "PERFMON", "SYS_RESOURCE", "SYS_ADMIN"\]'; then
	ok "agent.conntrackKfuncs=true: SYS_ADMIN added to the four"
else
	bad "agent.conntrackKfuncs=true does not add SYS_ADMIN"
fi
verbs=$(sed -n '/^kind: ClusterRole$/,/^---/p' "$tmp/helm-default.yaml" | grep -c 'verbs: \["get", "list", "watch"\]')
if [ "$verbs" = 3 ] && ! sed -n '/^kind: ClusterRole$/,/^---/p' "$tmp/helm-default.yaml" | grep -qE 'create|update|patch|delete|secrets|\*'; then
	ok "collector RBAC: get/list/watch only, no secrets, no wildcards"
else
	bad "collector RBAC"
fi

# The kustomize base is the chart's render.
cp deploy/kustomize/base/flowlens.yaml "$tmp/base-committed.yaml"
scripts/render-deploy.sh
if cmp -s deploy/kustomize/base/flowlens.yaml "$tmp/base-committed.yaml"; then
	ok "deploy/kustomize/base is the chart's current render"
else
	diff "$tmp/base-committed.yaml" deploy/kustomize/base/flowlens.yaml | head -20
	cp "$tmp/base-committed.yaml" deploy/kustomize/base/flowlens.yaml
	bad "deploy/kustomize/base differs from the chart (run make deploy-manifests)"
fi
for k in deploy/kustomize/base deploy/kustomize/slo grafana; do
	if kubectl kustomize "$k" >"$tmp/kustomize-$(basename "$k").yaml" 2>"$tmp/err"; then
		ok "kubectl kustomize $k"
	else
		bad "kubectl kustomize $k: $(cat "$tmp/err")"
	fi
done
# The example overlay needs the token file a user creates.
cp -r deploy grafana "$tmp/"
# 24 random bytes: kustomize wraps longer base64 over lines, which the API server accepts
# but the schema's "byte" format does not.
openssl rand -hex 24 >"$tmp/deploy/kustomize/overlays/example/token"
if kubectl kustomize "$tmp/deploy/kustomize/overlays/example" >"$tmp/kustomize-example.yaml" 2>"$tmp/err" &&
	grep -q '^kind: Secret' "$tmp/kustomize-example.yaml" && grep -q 'release: kube-prometheus-stack' "$tmp/kustomize-example.yaml"; then
	ok "kubectl kustomize overlays/example: $(grep -c '^kind:' "$tmp/kustomize-example.yaml") objects with the token Secret"
else
	bad "kubectl kustomize overlays/example: $(cat "$tmp/err")"
fi

# Schemas and the type check over every render and the examples.
if node tests/deploy/validate.mjs "$out" "$tmp"/helm-*.yaml "$tmp"/kustomize-*.yaml deploy/examples/amp/prometheus.yaml; then
	ok "schemas (kubernetes-models, prometheus-operator) and strict type check of every object"
else
	bad "schema or type check"
fi
# ...which must catch a misspelled field and a wrong type.
sed 's/imagePullPolicy:/imagePullPolicyy:/' "$tmp/helm-default.yaml" >"$tmp/typo.yaml"
if node tests/deploy/validate.mjs "$out/typo" "$tmp/typo.yaml" >/dev/null 2>&1; then
	bad "a misspelled field (imagePullPolicyy) passes the checks"
else
	ok "a misspelled field (imagePullPolicyy) is caught"
fi
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: "yes"/' "$tmp/helm-default.yaml" >"$tmp/type.yaml"
if node tests/deploy/validate.mjs "$out/type" "$tmp/type.yaml" >/dev/null 2>&1; then
	bad "a string where a boolean belongs passes the checks"
else
	ok "a string where a boolean belongs is caught"
fi

# Every rule: the PrometheusRules' specs (written by validate.mjs) and the plain rule files.
for f in "$out"/rules-*.yaml deploy/prometheus/*.yaml "$chart"/files/health-rules.yaml; do
	if promtool check rules "$f" >"$tmp/err" 2>&1; then
		ok "promtool check rules $(basename "$f"): $(grep -o '[0-9]* rules found' "$tmp/err")"
	else
		cat "$tmp/err"
		bad "promtool check rules $f"
	fi
done

# The Amazon Managed Service for Prometheus example for a plain Prometheus: a valid config
# (remote write with SigV4).
if promtool check config deploy/examples/amp/prometheus-remote-write.yml >"$tmp/err" 2>&1; then
	ok "promtool check config deploy/examples/amp/prometheus-remote-write.yml (SigV4 remote write)"
else
	cat "$tmp/err"
	bad "AMP remote-write example"
fi

echo "deploy: $fails failure(s)"
[ "$fails" = 0 ]
