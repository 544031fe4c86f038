#!/usr/bin/env bash
# Puts grafana/render's npm packages in place (Grafana's libraries, esbuild, puppeteer-core).
# Chromium is a Debian package (scripts/deps.sh). Prints nothing when all is there.
set -eu
cd "$(dirname "$0")"
../../scripts/npm-ci.sh . "dashboard renderer (@grafana/data, @grafana/ui, @grafana/prometheus, react, esbuild, puppeteer-core)"
