#!/usr/bin/env bash
# make debian12: the README's claims on a stock Debian 12. Boots Debian 12's bookworm cloud
# kernel (6.1: no tcx, nf_conntrack a module) under QEMU with a Debian 12 userspace (this
# machine's Debian 12 packages, copied with their libraries into the kernel matrix's initramfs:
# tests/kernels/debian12-initramfs.sh) and runs, inside the guest, the host end-to-end tests
# for attach and translation unchanged (tests/kernels/debian12-guest.sh): flows.sh (legacy TC
# and the default, the agent's probe choosing), lifecycle.sh, identity.sh (kfunc and netlink),
# signals.sh, netpol.sh; then the README's demo to its drawn dashboards
# (tests/kernels/debian12-demo.sh: scripts/demo.sh with Chromium drawing); plus
# tests/kernels/debian12-preexisting.sh (why: see there). Prints a PASS/FAIL table with each
# test's time and the guest's total; exits non-zero if any test did not pass. The console is
# kept in build/kernels/debian12.log.
#   DEBIAN12_TESTS=flows-tc,netpol   only these (names as in debian12-guest.sh)
#   DEBIAN12_MEM (MiB, default 3072, 6144 with the demo: Chromium and the packages in RAM),
#   DEBIAN12_TIMEOUT (s, the whole guest, default 7200)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1
out=build/kernels
mkdir -p "$out"
log=$out/debian12.log
if [ "$(id -u)" != 0 ]; then
	echo "debian12.sh: needs root (QEMU's initramfs holds root-owned files; the guest is root)"
	exit 1
fi
for c in qemu-system-x86_64 busybox cpio depmod dpkg; do
	command -v "$c" >/dev/null || { echo "debian12.sh: $c missing (make deps installs it)"; exit 1; }
done
for b in flowlens-agent flowlens-collector flowlens-bench test-bpf noop.bpf.o netpol.bpf.o; do
	[ -e "build/$b" ] || { echo "debian12.sh: build/$b missing (make all)"; exit 1; }
done
if ! list=$(tests/kernels/fetch.sh amd64 bookworm); then
	echo "debian12.sh: cannot fetch Debian 12's kernel (deb.debian.org unreachable?)"
	exit 1
fi
read -r _ rel dir <<<"$list"
run=${DEBIAN12_TESTS:-all}
# The demo draws with the renderer's bundle, built here as `make demo` builds it (the guest has
# no network for npm); debian12-initramfs.sh adds the demo's packages only when it runs.
export DEBIAN12_RUN=$run
mem=3072
if [[ ,$run, == *,all,* || ,$run, == *,demo,* ]]; then
	{ grafana/render/tools.sh && node grafana/render/render.mjs --bundle >/dev/null; } ||
		{ echo "debian12.sh: the dashboard renderer's npm packages or bundle could not be built"; exit 1; }
	mem=6144
fi
timeout_s=${DEBIAN12_TIMEOUT:-7200}
echo "=== debian12: Debian 12 userspace on $rel under QEMU ($([ -w /dev/kvm ] && echo "KVM if it starts, else TCG" || echo TCG)), tests: $run"
echo "    console: $log (follow with: tail -f $log)"
start=$(date +%s)
KERNEL_INITRAMFS_EXTRA=$TOP/tests/kernels/debian12-initramfs.sh KERNEL_MEM=${DEBIAN12_MEM:-$mem} \
	KERNEL_BOOT_TIMEOUT=$timeout_s tests/kernels/boot.sh "$dir" "$rel" "$run" "$log"
rc=$?
wall=$(($(date +%s) - start))
grep -E '^=== |^    |^  (ok|FAIL|skip|info)|^SKIP|^RESULT|initramfs|debian12' "$log" | sed 's/^/  /'
[ "$rc" = 124 ] && echo "  FAIL  the guest did not finish within $timeout_s s"
grep -q FLOWLENS-GUEST-START "$log" || { echo "  FAIL  the guest did not start:"; tail -20 "$log" | sed 's/^/  | /'; }

# The table: every test the guest was asked to run, with its result (none: it never reported).
names=(flows-tc flows lifecycle identity-kfunc identity-netlink signals netpol demo preexisting-long)
[ "$run" = all ] || IFS=, read -r -a names <<<"$run"
failed=0
echo "=== debian12: $rel, Debian $(cat /etc/debian_version) userspace"
printf '  %-18s %-8s %6s  %s\n' test result time checks
total=0
for n in "${names[@]}"; do
	line=$(grep "^RESULT $n " "$log" | tail -1)
	if [ -z "$line" ]; then
		printf '  %-18s %-8s %6s  %s\n' "$n" FAIL - "no result: the guest never finished it"
		failed=1
		continue
	fi
	read -r _ _ verdict secs summary <<<"$line"
	[ "$verdict" = pass ] && verdict=PASS || failed=1
	total=$((total + secs))
	[ "$n" = preexisting-long ] && summary="$summary (supplement to flows.sh, not one of the host's tests)"
	printf '  %-18s %-8s %5ss  %s\n' "$n" "$verdict" "$secs" "$summary"
done
uptime=$(sed -n 's/^DEBIAN12-UPTIME \([0-9]*\).*/\1/p' "$log" | tail -1)
echo "  tests ${total} s; guest boot to power-off ${uptime:-?} s; whole run (image build, boot, tests) ${wall} s"
[ "$rc" = 0 ] || failed=1
exit $failed
