#!/usr/bin/env bash
# Grafana dashboards: the committed JSON is what grafana/generate.mjs writes, every dashboard
# type-checks against @grafana/schema (and a misspelled field would not), the ConfigMaps
# build, and the renderer draws panels by Grafana's rules. That every panel's queries return
# data, and every dashboard drawn from them, is checked against the demo's Prometheus by
# tests/e2e/demo.sh.
set -u
cd "$(dirname "$0")/../.."
tests/deploy/tools.sh || exit 1
out=tests/deploy/.out/grafana-$$
tmp=$(mktemp -d /tmp/flowlens-grafana.XXXXXX)
trap 'rm -rf "$tmp" "$out"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

cp -r grafana/dashboards "$tmp/committed"
node grafana/generate.mjs
if diff -r "$tmp/committed" grafana/dashboards >"$tmp/diff"; then
	ok "grafana/dashboards is what grafana/generate.mjs writes"
else
	head -20 "$tmp/diff"
	rm -rf grafana/dashboards && cp -r "$tmp/committed" grafana/dashboards
	bad "grafana/dashboards differs from the generator (run make dashboards)"
fi
if node tests/grafana/typecheck.mjs "$out" grafana/dashboards/*.json; then
	ok "dashboards type-check against @grafana/schema"
else
	bad "dashboard type check"
fi
sed 's/"gridPos"/"gridPoss"/' grafana/dashboards/services.json >"$tmp/typo.json"
if node tests/grafana/typecheck.mjs "$out/typo" "$tmp/typo.json" >/dev/null 2>&1; then
	bad "a misspelled panel field (gridPoss) passes the type check"
else
	ok "a misspelled panel field (gridPoss) fails the type check"
fi
n=$(ls grafana/dashboards/*.json | wc -l)
if PATH="$PWD/tests/deploy/.bin:$PATH" kubectl kustomize grafana >"$tmp/cm.yaml" &&
	[ "$(grep -c 'grafana_dashboard: "1"' "$tmp/cm.yaml")" = "$n" ]; then
	ok "kubectl kustomize grafana: $n ConfigMaps labelled grafana_dashboard: \"1\""
else
	bad "grafana ConfigMaps"
fi
# The renderer (grafana/render: Grafana's libraries in Chromium) on hand-made answers: the rules
# it draws panels by, the organize-renamed Node Graph that drew an empty map among them.
if grafana/render/tools.sh && node tests/grafana/render-test.mjs "$tmp/render" >"$tmp/render.log" 2>&1; then
	ok "renderer: $(grep -c '^ok' "$tmp/render.log") rules as Grafana draws them (Node Graph field names, errors, NaN gaps)"
else
	cat "$tmp/render.log"
	bad "renderer rules (tests/grafana/render-test.mjs)"
fi
echo "grafana: $fails failure(s)"
[ "$fails" = 0 ]
