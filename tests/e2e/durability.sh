#!/usr/bin/env bash
# The collector's state (--state-dir) under disk faults and damage. Ground truth: the batches
# the sender got 200 for, each carrying 1,000 bytes of one flow; after every fault and restart
# the exported counter must be 1,000 x the batches acknowledged, exactly (nothing acknowledged
# lost, nothing applied twice):
#   a full disk (a small tmpfs): appends that fail are refused (503), never acknowledged; the
#   agent's retries after the disk has room are applied once; kill -9 restores exactly;
#   one flipped bit in the 10th of 100 logged batches costs that batch and nothing else;
#   a damaged snapshot (a flipped bit, truncated, empty) is moved aside and the collector
#   starts, loudly, instead of crash-looping.
source "$(dirname "$0")/lib.sh"
echo "durability.sh: lab $LAB_ID"

COLLECTOR=${FLOWLENS_COLLECTOR_BIN:-$TOP/build/flowlens-collector}
MKBATCH=$TOP/build/mkbatch
lab_node n1
NS=$(lab_ns n1)
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN" >"$WORK/token"
BOOT=0123456789abcdef0123456789abcdef
MNT=
umount_state() { [ -n "$MNT" ] && umount "$MNT" 2>/dev/null; MNT=; }
trap 'umount_state; cleanup' EXIT

coll_start() { # STATE_DIR [ARGS...]
	local dir=$1
	shift
	ip netns exec "$NS" "$COLLECTOR" --listen 127.0.0.1:9900 --token-file "$WORK/token" \
		--new-series-hold 0 --shutdown-grace 0 --ip-labels --state-dir "$dir" \
		--snapshot-interval 1h "$@" >>"$WORK/collector.log" 2>&1 &
	COLL_PID=$!
	local i
	for i in $(seq 1 100); do
		ip netns exec "$NS" curl -sf -o /dev/null http://127.0.0.1:9900/healthz && return 0
		kill -0 "$COLL_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
coll_kill() { # SIGNAL
	kill "-$1" "$COLL_PID" 2>/dev/null
	wait "$COLL_PID" 2>/dev/null
	COLL_PID=
}
coll_metric() {
	ip netns exec "$NS" curl -sf http://127.0.0.1:9900/metrics | awk -v m="$1" '$1 == m { print $2 }'
}
# The forward bytes of the test flow 10.1.1.2 -> 10.1.1.3:5432, as exported.
flow_bytes() {
	ip netns exec "$NS" curl -sf http://127.0.0.1:9900/metrics |
		awk '/^flowlens_flow_bytes_total\{/ && /source_ip="10.1.1.2"/ && /direction="forward"/ { s += $2 } END { print s + 0 }'
}
# Batches: seq N carries 1,000 bytes of the test flow and, as padding the log has to hold,
# PAD connections of their own.
mk() { # SEQ PAD
	"$MKBATCH" --node dur --boot $BOOT --seq "$1" --join-flows "$2" \
		--flow 10.1.1.2,10.1.1.3,5432,tcp,client,1,1000,0,0 >"$WORK/b$1.bin"
}
post() { # SEQ -> status
	ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: deflate' \
		--data-binary "@$WORK/b$1.bin" http://127.0.0.1:9900/v1/batches
}
send() { # FROM TO: posts each; appends the acknowledged seqs to $WORK/acked
	local s st
	for s in $(seq "$1" "$2"); do
		st=$(post "$s")
		[ "$st" = 200 ] && echo "$s" >>"$WORK/acked"
		[ "$st" = 200 ] || [ "$st" = 503 ] || echo "  unexpected status $st for seq $s"
	done
}
acked_bytes() { echo $(($(sort -un "$WORK/acked" | wc -l) * 1000)); }

# --- 1. A full disk: a 64 KiB tmpfs holds about 100 of the 200 batches.
MNT=$WORK/small
mkdir -p "$MNT"
mount -t tmpfs -o size=64k tmpfs "$MNT"
for s in $(seq 1 200); do mk "$s" 200; done
: >"$WORK/acked"
coll_start "$MNT" || { fail "collector start"; exit 1; }
send 1 200
n_ok=$(sort -un "$WORK/acked" | wc -l)
check_true "full disk: some batches acknowledged ($n_ok), the rest refused" test "$n_ok" -gt 20 -a "$n_ok" -lt 200
check_eq "full disk: each refusal counted as not_durable" \
	"$(coll_metric 'flowlens_collector_batches_total{result="not_durable"}')" "$((200 - n_ok))"
check_eq "full disk: exported = acknowledged" "$(flow_bytes)" "$(acked_bytes)"
coll_kill KILL
coll_start "$MNT" || fail "restart on a full disk"
check_eq "full disk, kill -9, restart: every acknowledged batch restored, exactly" "$(flow_bytes)" "$(acked_bytes)"
# Room again: the agent's retries of everything it still holds (all 200; the acknowledged
# ones it would not resend, but a resend must not count twice).
mount -o remount,size=64m "$MNT"
sleep 2 # the collector's next tick repairs the log with a snapshot
send 1 200
check_eq "disk has room again: all 200 applied once each" "$(flow_bytes)" 200000
coll_kill KILL
coll_start "$MNT" || fail "restart after the disk had room"
check_eq "kill -9 again: 200,000 bytes restored" "$(flow_bytes)" 200000
coll_kill TERM
umount_state

# --- 2. One flipped bit in the 10th of 100 logged batches.
STATE=$WORK/state2
mkdir -p "$STATE"
: >"$WORK/acked"
coll_start "$STATE" || { fail "collector start"; exit 1; }
for s in $(seq 1 100); do mk "$s" 0; done
send 1 100
coll_kill KILL
python3 - "$STATE/wal" <<'EOF'
import struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
off = 0
for i in range(9):  # skip 9 records: header 24 bytes, body length at offset 4
    off += 24 + struct.unpack_from("<I", data, off + 4)[0]
data[off + 24 + 10] ^= 0x01  # one bit inside the 10th record's body
open(path, "wb").write(data)
EOF
coll_start "$STATE" || fail "restart with a damaged log record"
check_eq "bit flip in record 10 of 100: 99 batches restored (9 before the fix)" "$(flow_bytes)" 99000
check_eq "the damaged stretch is reported" \
	"$(coll_metric 'flowlens_collector_state_restore_corrupt{part="log_records"}')" 1
send 1 100
check_eq "the agent's resends of all 100 change nothing" "$(flow_bytes)" 99000
coll_kill TERM

# --- 3. A damaged snapshot: one flipped bit, truncated, empty.
for damage in bitflip truncate empty; do
	STATE=$WORK/state-$damage
	mkdir -p "$STATE"
	coll_start "$STATE" || { fail "collector start"; exit 1; }
	: >"$WORK/acked"
	send 1 10
	coll_kill TERM # writes the snapshot, empties the log
	size=$(stat -c %s "$STATE/snapshot")
	case $damage in
	bitflip) printf '\x55' | dd of="$STATE/snapshot" bs=1 seek=$((size / 2)) conv=notrunc status=none ;;
	truncate) truncate -s $((size / 2)) "$STATE/snapshot" ;;
	empty) : >"$STATE/snapshot" ;;
	esac
	if coll_start "$STATE"; then
		pass "snapshot $damage: the collector starts (crash loop before the fix)"
		check_eq "snapshot $damage: reported" "$(coll_metric 'flowlens_collector_state_restore_corrupt{part="snapshot"}')" 1
		check_true "snapshot $damage: kept aside for inspection" compgen -G "$STATE/snapshot.corrupt-*"
		check_eq "snapshot $damage: ready" \
			"$(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9900/readyz)" 200
		coll_kill TERM
	else
		fail "snapshot $damage: the collector did not start"
	fi
done
check_eq "no sanitizer reports in the logs" "$(cat "$WORK"/*.log | grep -c 'Sanitizer')" 0
finish
