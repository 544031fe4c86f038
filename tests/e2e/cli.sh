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
	if [ "$rc" = 2 ] && grep -q "invalid value\|unexpected argument\|unrecognized\|needs a value\|is required\|go together" <<<"$err"; then
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
bad "flag without its value" "$AGENT" --interval
bad "FLOWLENS_INTERVAL" env FLOWLENS_INTERVAL=-3s "$AGENT"
bad "FLOWLENS_TC_PRIORITY" env FLOWLENS_TC_PRIORITY=70000 "$AGENT"
bad "collector list with an empty URL" "$AGENT" --collector http://a:1,
bad "collector list with a bad scheme" "$AGENT" --collector http://a:1,ftp://b:2

# The collector's command line.
COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
out=$("$COLLECTOR" --help)
check_eq "collector --help exits 0" "$?" 0
check_true "collector --help shows examples" grep -q "Examples:" <<<"$out"
echo "0123456789abcdef0123" >"$WORK/token"
bad "collector without a token file" "$COLLECTOR"
bad "collector listen" "$COLLECTOR" --token-file "$WORK/token" --listen nowhere
bad "collector max series" "$COLLECTOR" --token-file "$WORK/token" --max-series 0
bad "collector flag without its value" "$COLLECTOR" --token-file "$WORK/token" --max-series
bad "collector ttl" "$COLLECTOR" --token-file "$WORK/token" --series-ttl forever
bad "collector cert without key" "$COLLECTOR" --token-file "$WORK/token" --tls-cert-file x.pem
bad "collector shard with a space" "$COLLECTOR" --token-file "$WORK/token" --shard "a b"
bad "collector cluster name with a quote" "$COLLECTOR" --token-file "$WORK/token" --cluster-name 'x"y'
bad "collector lease without a namespace" "$COLLECTOR" --token-file "$WORK/token" --ha-lease shard-0
bad "collector lease duration" "$COLLECTOR" --token-file "$WORK/token" --ha-lease-duration 1s
bad "collector lease shorter than 3 renewals" "$COLLECTOR" --token-file "$WORK/token" --ha-lease-duration 5s --ha-renew-interval 2s
bad "FLOWLENS_MAX_BODY_BYTES" env FLOWLENS_MAX_BODY_BYTES=-1 "$COLLECTOR" --token-file "$WORK/token"
echo short >"$WORK/short"
err=$("$COLLECTOR" --token-file "$WORK/short" --listen 127.0.0.1:1 2>&1)
check_true "collector refuses a token shorter than 16 characters ($err)" grep -q "at least 16" <<<"$err"
finish
