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
if helm_quiet lint --strict "$chart" >"$tmp/lint" 2>&1; then ok "helm lint --strict"; else cat "$tmp/lint"; bad "helm lint --strict"; fi
helm_quiet template flowlens "$chart" --namespace flowlens >"$tmp/helm-default.yaml" &&
	ok "helm template (defaults): $(grep -c '^kind:' "$tmp/helm-default.yaml") objects" || bad "helm template (defaults)"
helm_quiet template fl "$chart" --namespace observability --set auth.create=false \
	--set auth.secretName=my-token --set collector.tls.secretName=flowlens-tls \
	--set collector.networkPolicy.enabled=false --set collector.podLabels=true \
	--set 'agent.extraArgs={--idle-timeout,2m}' --set agent.seccompProfile=Unconfined \
	--set 'monitoring.labels.release=kps' >"$tmp/helm-tls.yaml" &&
	ok "helm template (TLS, existing Secret, extra args)" || bad "helm template (TLS variant)"
if grep -q 'https://fl-flowlens-collector-0.fl-flowlens-collector-peers.observability.svc:9900,https://fl-flowlens-collector-1.fl-flowlens-collector-peers.observability.svc:9900' "$tmp/helm-tls.yaml" &&
	grep -q 'FLOWLENS_COLLECTOR_CA_FILE' "$tmp/helm-tls.yaml" && grep -q 'FLOWLENS_PEER_CA_FILE' "$tmp/helm-tls.yaml" &&
	[ "$(grep -A2 '^kind: Secret' "$tmp/helm-tls.yaml" | grep '^  name:' | tr -d ' ')" = "name:fl-flowlens-collector-peer-token" ]; then
	ok "TLS variant: agents dial both replicas over https and trust the CA, so do the peers; no agents' token Secret created"
else
	bad "TLS variant renders wrong"
fi
# Without the Prometheus Operator's API (AMP managed scraper, ADOT, CloudWatch agent) nothing
# of monitoring.coreos.com is rendered and the scrape annotations are; with it, the reverse.
mon_kinds() { grep -cE '^kind: (PodMonitor|ServiceMonitor|PrometheusRule)$' "$1"; }
helm_quiet template flowlens "$chart" --namespace flowlens --api-versions monitoring.coreos.com/v1 \
	>"$tmp/helm-operator.yaml" || bad "helm template (Prometheus Operator API present)"
if [ "$(mon_kinds "$tmp/helm-default.yaml")" = 0 ] &&
	[ "$(grep -c 'prometheus.io/scrape: "true"' "$tmp/helm-default.yaml")" = 2 ] &&
	[ "$(mon_kinds "$tmp/helm-operator.yaml")" = 3 ] && ! grep -q 'prometheus.io/scrape' "$tmp/helm-operator.yaml"; then
	ok "monitoring: no CRDs -> 0 operator objects + scrape annotations (agent pods, collector Service); CRDs -> 3 objects, no annotations"
else
	bad "monitoring gating: default $(mon_kinds "$tmp/helm-default.yaml") objects, with the API $(mon_kinds "$tmp/helm-operator.yaml")"
fi
if [ "$(helm_quiet template fl "$chart" --set monitoring.prometheusOperator=true | grep -cE '^kind: (PodMonitor|ServiceMonitor|PrometheusRule)$')" = 3 ]; then
	ok "monitoring.prometheusOperator=true forces the 3 objects"
else
	bad "monitoring.prometheusOperator=true"
fi
# High availability by default (docs/design/collector-ha.md): a StatefulSet of 2 with a
# headless Service for the agents and the peers, a Lease Role on exactly its Lease, a PDB, the
# replicas apart, the ServiceMonitor making the shard's flow series one series; replicas=1:
# none of it, the agents dial the Service.
sts=$(sed -n '/^kind: StatefulSet/,/^---/p' "$tmp/helm-default.yaml")
role=$(sed -n '/^kind: Role$/,/^---/p' "$tmp/helm-default.yaml")
if grep -q 'replicas: 2' <<<"$sts" && grep -q 'podManagementPolicy: Parallel' <<<"$sts" &&
	grep -A1 'name: FLOWLENS_HA_LEASE' <<<"$sts" | grep -q 'value: "flowlens/flowlens-collector"' &&
	grep -A3 'name: FLOWLENS_HA_IDENTITY' <<<"$sts" | grep -q 'fieldPath: metadata.name' &&
	grep -q 'topologyKey: topology.kubernetes.io/zone' <<<"$sts" &&
	grep -A1 'resourceNames:' <<<"$role" | grep -q -- '- "flowlens-collector"' && grep -q '"coordination.k8s.io"' <<<"$role" &&
	! grep -qE 'verbs:.*(list|watch|delete|patch)' <<<"$role" &&
	grep -q '^kind: PodDisruptionBudget' "$tmp/helm-default.yaml" &&
	grep -q 'clusterIP: None' "$tmp/helm-default.yaml" && ! grep -q '^kind: Deployment' "$tmp/helm-default.yaml" &&
	grep -A3 'sourceLabels: \[shard\]' "$tmp/helm-operator.yaml" | grep -q 'targetLabel: instance' &&
	grep -q 'secretName: flowlens-collector-peer-token' <<<"$sts" &&
	! sed -n '/^kind: DaemonSet/,/^---/p' "$tmp/helm-default.yaml" | grep -q 'peer-token' &&
	grep -q 'secretName: mine' <<<"$(helm_quiet template fl "$chart" --set auth.peerSecretName=mine)" &&
	! grep -q 'name: fl-flowlens-collector-peer-token$' <<<"$(helm_quiet template fl "$chart" --set auth.peerSecretName=mine)"; then
	ok "HA layout: StatefulSet of 2 (Parallel), Lease env and identity, zone anti-affinity, a Role on the one Lease, PDB, headless Service, shard relabelling, a peer token the agents do not mount (or auth.peerSecretName)"
else
	bad "HA layout renders wrong"
fi
two=$(helm_quiet template fl "$chart" --set collector.shards=2)
if [ "$(grep -c '^kind: StatefulSet' <<<"$two")" = 2 ] && [ "$(grep -c '^kind: PodDisruptionBudget' <<<"$two")" = 2 ] &&
	grep -A1 'name: FLOWLENS_COLLECTOR$' <<<"$two" | grep -q 'value: "http://fl-flowlens-collector-0-0.fl-flowlens-collector-0-peers.default.svc:9900,http://fl-flowlens-collector-0-1.fl-flowlens-collector-0-peers.default.svc:9900;http://fl-flowlens-collector-1-0.fl-flowlens-collector-1-peers.default.svc:9900,http://fl-flowlens-collector-1-1' &&
	grep -A1 'name: FLOWLENS_SHARD$' <<<"$two" | grep -q 'value: "1"' &&
	grep -A1 'name: FLOWLENS_HA_LEASE$' <<<"$two" | grep -q 'default/fl-flowlens-collector-1"' &&
	[ "$(grep -c 'flowlens.io/shard: "1"' <<<"$two")" -ge 4 ]; then
	ok "shards=2: a StatefulSet, PDB, peers Service and Lease per shard; agents get both shards' replicas (';' between shards)"
else
	bad "collector.shards=2 renders wrong"
fi
one=$(helm_quiet template fl "$chart" --set collector.replicas=1)
if ! grep -qE '^kind: (Role|PodDisruptionBudget)$' <<<"$one" && ! grep -q FLOWLENS_HA_LEASE <<<"$one" &&
	grep -A1 'name: FLOWLENS_COLLECTOR$' <<<"$one" | grep -q 'value: "http://fl-flowlens-collector.default.svc:9900"'; then
	ok "replicas=1: no Lease, Role or PDB; agents dial the Service"
else
	bad "replicas=1 renders HA parts"
fi
if helm_quiet template fl "$chart" --set collector.persistence.enabled=true | grep -q 'volumeClaimTemplates:' &&
	! grep -q 'volumeClaimTemplates:' "$tmp/helm-default.yaml"; then
	ok "collector.persistence.enabled: a claim per replica (default: emptyDir, a new pod copies its peer)"
else
	bad "collector.persistence"
fi
# Upgrading from the last chart before high availability (commit d8a9a16): what a
# `helm upgrade` changes, object by object. Only the collector's Deployment goes (replaced by
# the StatefulSet); no immutable field of a kept object changes (the DaemonSet's selector); the
# Secret, the ServiceAccounts and the collector Service keep their names, and the Service
# still selects the collector pods (scrape configs keep working).
base=d8a9a167c0566539b44e43b46a17cbd5a3e80c9f
objs() { awk '/^kind:/ { k = $2 } /^  name:/ && k { print k "/" $2; k = "" }' "$1" | sort -u; }
if git cat-file -e "$base" 2>/dev/null; then
	mkdir -p "$tmp/old"
	git archive "$base" deploy/helm/flowlens grafana/dashboards | tar -x -C "$tmp/old"
	rm -f "$tmp/old/deploy/helm/flowlens/dashboards"
	ln -s ../../../grafana/dashboards "$tmp/old/deploy/helm/flowlens/dashboards"
	helm_quiet template flowlens "$tmp/old/deploy/helm/flowlens" --namespace flowlens --set auth.token=0123456789abcdef0123 >"$tmp/old.yaml"
	helm_quiet template flowlens "$chart" --namespace flowlens --set auth.token=0123456789abcdef0123 >"$tmp/new.yaml"
	gone=$(comm -23 <(objs "$tmp/old.yaml") <(objs "$tmp/new.yaml") | tr '\n' ' ')
	added=$(comm -13 <(objs "$tmp/old.yaml") <(objs "$tmp/new.yaml") | tr '\n' ' ')
	sel() { sed -n "/^kind: $2/,/^---/p" "$1" | sed -n '/^  selector:/,/^  [a-z]/p'; }
	if [ "$gone" = "Deployment/flowlens-collector " ] &&
		[ "$added" = "PodDisruptionBudget/flowlens-collector Role/flowlens-collector-lease RoleBinding/flowlens-collector-lease Secret/flowlens-collector-peer-token Service/flowlens-collector-peers StatefulSet/flowlens-collector " ] &&
		[ "$(sel "$tmp/old.yaml" DaemonSet)" = "$(sel "$tmp/new.yaml" DaemonSet)" ] &&
		[ "$(sed -n '/^kind: Service$/,/^---/p' "$tmp/old.yaml" | grep -A3 '^  selector:')" = "$(sed -n '/^kind: Service$/,/^---/p' "$tmp/new.yaml" | grep -A3 '^  selector:' | head -4)" ]; then
		ok "upgrade from $base: only the collector Deployment goes; added: $added; DaemonSet selector and the collector Service's selector unchanged"
	else
		bad "upgrade from $base: gone '$gone', added '$added'"
	fi
else
	# Not a skip: the upgrade check is what keeps `helm upgrade` from breaking installs.
	bad "upgrade diff: commit $base is not in this clone (a shallow clone? git fetch --unshallow)"
fi
# Fargate nodes run no DaemonSets: the agent must not be scheduled there.
if sed -n '/^kind: DaemonSet/,/^---/p' "$tmp/helm-default.yaml" |
	grep -A3 'key: eks.amazonaws.com/compute-type' | grep -q 'operator: NotIn' &&
	sed -n '/^kind: DaemonSet/,/^---/p' "$tmp/helm-default.yaml" | grep -A5 'key: eks.amazonaws.com/compute-type' | grep -q -- '- fargate'; then
	ok "agent: node affinity excludes eks.amazonaws.com/compute-type=fargate"
else
	bad "agent: no Fargate exclusion"
fi
# Listen addresses: dual-stack by default, any literal bracketed once.
listen_of() { helm_quiet template fl "$chart" "$@" | grep -A1 'name: FLOWLENS_LISTEN' | sed -n 's/.*value: "\(.*\)"/\1/p' | tr '\n' ' '; }
got="$(listen_of) / $(listen_of --set agent.listenAddress=0.0.0.0 --set collector.listenAddress=fd00::1)"
if [ "$got" = "[::]:9810 [::]:9900  / 0.0.0.0:9810 [fd00::1]:9900 " ]; then
	ok "listen addresses: [::] (both families) by default; 0.0.0.0 and fd00::1 as given"
else
	bad "listen addresses: $got"
fi
if grep -q 'ipFamilyPolicy: PreferDualStack' "$tmp/helm-default.yaml"; then
	ok "collector Service: PreferDualStack"
else
	bad "collector Service family policy"
fi
# A bring-your-own token renders the same Secret every time (GitOps: helm template, Argo CD).
secret_of() { helm_quiet template fl "$chart" "$@" --show-only templates/secret.yaml | sed -n 's/^  token: //p'; }
t1=$(secret_of --set auth.token=0123456789abcdef0123) t2=$(secret_of --set auth.token=0123456789abcdef0123)
if [ -n "$t1" ] && [ "$t1" = "$t2" ] && [ "$(echo "$t1" | base64 -d)" = 0123456789abcdef0123 ]; then
	ok "auth.token: the same Secret on every render"
else
	bad "auth.token renders '$t1' then '$t2'"
fi
# The schema rejects misspelled values and wrong choices.
for bad_value in agent.intervall=5s agent.attachMode=xdp auth.token=short collector.tuning.shutdowngrace=1s; do
	if helm_quiet template fl "$chart" --set "$bad_value" >/dev/null 2>"$tmp/err"; then
		bad "values.schema.json accepts $bad_value"
	else
		ok "values.schema.json rejects $bad_value: $(grep -m1 -o '[a-zA-Z.]*: .*' "$tmp/err" | tail -1 | cut -c1-70)"
	fi
done
# Every flag of both binaries is reachable from the values: as an environment variable the
# chart sets, from a named value or agent/collector.tuning (all set here), or named below as
# set otherwise.
helm_quiet template fl "$chart" --set collector.tls.secretName=t --set collector.podLabels=true --set clusterName=c1 \
	--set collector.ipLabels=true --set collector.clusterCIDRs=10.0.0.0/8 \
	$(for k in $(sed -n '/^  tuning:/,/^  [a-z]/s/^    \([a-zA-Z]*\):.*/\1/p' "$chart/values.yaml"); do
		case $k in
		*Timeout | *Interval | *Grace | *Hold | *Protect | *Wait | *History | *Duration) v=1s ;;
		*Buckets) v=0.1 ;;
		flowSlots) v=off ;;
		ethtoolStats) v=bw_in_allowance_exceeded ;;
		*) v=1 ;;
		esac
		grep -q "^    $k:" <(sed -n '/^agent:/,/^collector:/p' "$chart/values.yaml") &&
			echo "--set agent.tuning.$k=$v" || echo "--set collector.tuning.$k=$v"
	done) >"$tmp/helm-all.yaml" 2>"$tmp/err" || bad "helm template with every tuning value: $(grep -v symbolic "$tmp/err")"
unreachable=
for bin in agent collector; do
	kind=DaemonSet
	[ $bin = collector ] && kind=StatefulSet
	envs=$(sed -n "/^kind: $kind/,/^---/p" "$tmp/helm-all.yaml" | sed -n 's/.*- name: \(FLOWLENS_[A-Z_]*\)/\1/p')
	for flag in $(build/flowlens-$bin --help 2>&1 | grep -oE '^ +(-[a-z], )?--[a-z0-9-]+' | sed 's/.*--//'); do
		case "$bin:$flag" in
		*:help | agent:output | collector:metadata-file | collector:kubeconfig) continue ;;
		esac
		v=FLOWLENS_$(echo "$flag" | tr 'a-z-' 'A-Z_')
		grep -qx "$v" <<<"$envs" || unreachable="$unreachable $bin:--$flag"
	done
done
if [ -z "$unreachable" ]; then
	ok "every agent and collector flag is reachable from the values (--help, minus --output, --metadata-file, --kubeconfig)"
else
	bad "flags the chart cannot set:$unreachable"
fi
# values.yaml, the schema and the generated README agree.
if node scripts/chart-readme.mjs --check 2>"$tmp/err"; then
	ok "deploy/helm/flowlens/README.md lists every value with its default and description (current)"
else
	bad "$(cat "$tmp/err")"
fi
# NOTES.txt (helm template does not print it: rendered through a copy of the chart that
# includes it in a manifest) says what was chosen for the cluster it is installed in.
cp -rL "$chart" "$tmp/notes-chart"
{
	echo '{{- define "notes" }}'
	cat "$chart/templates/NOTES.txt"
	echo '{{- end }}'
	echo 'notes: {{ include "notes" . | toJson }}'
} >"$tmp/notes-chart/templates/notes.yaml"
notes() { helm_quiet template fl "$tmp/notes-chart" --show-only templates/notes.yaml "$@" | sed -n 's/^notes: //p' | jq -r .; }
n_plain=$(notes) n_op=$(notes --api-versions monitoring.coreos.com/v1 --set auth.token=0123456789abcdef0123)
if grep -q 'prometheus.io/scrape annotations' <<<"$n_plain" && grep -q 'set auth.token or auth.secretName' <<<"$n_plain" &&
	grep -q 'a PodMonitor (agents), a ServiceMonitor' <<<"$n_op" && ! grep -q 'set auth.token' <<<"$n_op" &&
	grep -q 'kubectl -n default get ds/fl-flowlens-agent' <<<"$n_plain"; then
	ok "NOTES.txt: scrape annotations vs operator objects, the GitOps token advice only without auth.token"
else
	printf '%s\n---\n%s\n' "$n_plain" "$n_op" | head -40
	bad "NOTES.txt"
fi
# A packaged chart, versioned.
if helm_quiet package "$chart" --version 0.1.0 --app-version 0.1.0 -d "$tmp/pkg" >/dev/null &&
	tar -xzOf "$tmp/pkg/flowlens-0.1.0.tgz" flowlens/Chart.yaml | grep -q '^appVersion: 0.1.0' &&
	tar -tzf "$tmp/pkg/flowlens-0.1.0.tgz" | grep -q 'flowlens/values.schema.json' &&
	tar -tzf "$tmp/pkg/flowlens-0.1.0.tgz" | grep -q 'flowlens/templates/NOTES.txt'; then
	ok "helm package: flowlens-0.1.0.tgz with appVersion, schema and NOTES"
else
	bad "helm package"
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

# The kustomize base and the Prometheus Operator resources are the chart's render.
for f in deploy/kustomize/base/flowlens.yaml deploy/kustomize/prometheus-operator/monitoring.yaml \
	deploy/helm/flowlens/README.md; do
	cp "$f" "$tmp/committed-$(basename "$f")"
done
scripts/render-deploy.sh
for f in deploy/kustomize/base/flowlens.yaml deploy/kustomize/prometheus-operator/monitoring.yaml \
	deploy/helm/flowlens/README.md; do
	if cmp -s "$f" "$tmp/committed-$(basename "$f")"; then
		ok "$f is the chart's current render"
	else
		diff "$tmp/committed-$(basename "$f")" "$f" | head -20
		cp "$tmp/committed-$(basename "$f")" "$f"
		bad "$f differs from the chart (run make deploy-manifests)"
	fi
done
for k in deploy/kustomize/base deploy/kustomize/prometheus-operator deploy/kustomize/slo grafana; do
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
openssl rand -hex 24 >"$tmp/deploy/kustomize/overlays/example/peer-token"
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

# The health alerts with logic of their own, on synthetic series.
if promtool test rules tests/deploy/health_test.yaml >"$tmp/err" 2>&1; then
	ok "promtool test rules tests/deploy/health_test.yaml (ENA allowance alert)"
else
	cat "$tmp/err"
	bad "health rules unit tests"
fi

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
