#!/usr/bin/env bash
# Puts grafana/render's npm packages in place (Grafana's libraries, esbuild, puppeteer-core;
# node_modules from package-lock.json, again only when the lock file changed). Chromium is a
# Debian package (scripts/deps.sh). Prints nothing when all is there.
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "grafana/render/tools.sh: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "dashboard renderer: npm ci (@grafana/data, @grafana/ui, @grafana/prometheus, react, esbuild, puppeteer-core)"
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
