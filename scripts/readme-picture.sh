#!/usr/bin/env bash
# docs/flow-map.png, the picture the README opens with: the demo's lab and shop (quiet, on
# its own Prometheus port), two minutes of traffic, then the Flow map dashboard drawn by
# grafana/render (Grafana's libraries in headless Chromium) from that Prometheus, its
# workload map panel copied. `sudo make readme-picture`; never edited by hand.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/flowlens-readme.XXXX)
port=$((20000 + RANDOM % 20000))
demo=
cleanup() {
	[ -n "$demo" ] && kill -TERM "$demo" 2>/dev/null && wait "$demo" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
grafana/render/tools.sh
node grafana/render/render.mjs --bundle
DEMO_QUIET=1 DEMO_PROM_PORT=$port DEMO_GRAFANA_PORT=$((port + 1)) DEMO_READY_FILE="$tmp/ready" \
	DEMO_DASHBOARDS="" scripts/demo.sh >"$tmp/demo.log" 2>&1 &
demo=$!
for _ in $(seq 240); do [ -s "$tmp/ready" ] && break; sleep 0.5; done
[ -s "$tmp/ready" ] || { cat "$tmp/demo.log"; echo "readme-picture: the demo did not come up" >&2; exit 1; }
sleep "${PICTURE_AFTER_SECONDS:-120}"
node grafana/render/render.mjs --prom "http://127.0.0.1:$port" --out "$tmp/out" --range 600 \
	grafana/dashboards/flow-map.json
cp "$tmp/out/panels/flowlens-flow-map-1.png" docs/flow-map.png
echo "readme-picture: docs/flow-map.png"
