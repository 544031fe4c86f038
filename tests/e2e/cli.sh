#!/usr/bin/env bash
# The agent's command line: --help with examples, bad values refused with a clear message and
# a non-zero exit, FLOWLENS_* environment equivalents.
source "$(dirname "$0")/lib.sh"
echo "cli.sh"

out=$("$AGENT" --help)
check_eq "--help exits 0" "$?" 0
check_true "--help shows examples" grep -q "Examples:" <<<"$out"
check_true "--help names the environment variables" grep -q "FLOWLENS_INTERFACES" <<<"$out"
bad() { # WHAT ARGS... : must exit 2 and say what was wrong
	local what=$1 err rc
	shift
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" = 2 ] && grep -q "invalid value\|unexpected argument\|unrecognized" <<<"$err"; then
		pass "$what refused: $err"
	else
		fail "$what: exit $rc, message '$err'"
	fi
}
bad "interval 0" "$AGENT" --interval 0
bad "interval garbage" "$AGENT" --interval soon
bad "listen without port" "$AGENT" --listen 127.0.0.1
bad "attach mode" "$AGENT" --attach-mode xdp
bad "table size" "$AGENT" --flow-table-size 0
bad "unknown flag" "$AGENT" --frobnicate
bad "FLOWLENS_INTERVAL" env FLOWLENS_INTERVAL=-3s "$AGENT"
bad "FLOWLENS_TC_PRIORITY" env FLOWLENS_TC_PRIORITY=70000 "$AGENT"
finish
