#!/usr/bin/env bash
# scripts/npm-ci.sh DIR WHAT: the npm packages of DIR (node_modules from its package-lock.json,
# installed again only when the lock file changed); WHAT says what they are when installing.
set -eu
cd "$1"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "$1: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "$2: npm ci"
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
