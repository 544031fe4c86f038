#!/usr/bin/env bash
# boot.sh KERNEL_DIR RELEASE RUN LOG: boots the kernel under QEMU with the flowlens initramfs,
# runs the guest tests RUN, copies the console to LOG, and exits with the guest tests' status
# (or 124 when the guest did not finish within KERNEL_BOOT_TIMEOUT). amd64 guests use KVM
# (-cpu host) where /dev/kvm is usable, else TCG (-cpu max); a QEMU that cannot start a guest
# under KVM is retried under TCG (seen on a CI machine: its nested KVM refused MSR 0x10a and
# QEMU aborted before the guest's first line, with -cpu max for every kernel and with -cpu
# host for 6.1 and 6.12, not 5.10).
# KERNEL_ARCH=arm64: an arm64 kernel on qemu-system-aarch64 with the cross-built binaries
# (KERNEL_TEST_BUILD, default build/arm64). KERNEL_MEM: the guest's memory in MiB (default 2048).
set -u
kdir=$1 rel=$2 run=$3 log=$4
TOP=$(cd "$(dirname "$0")/../.." && pwd)
img=$(mktemp /tmp/flowlens-initramfs.XXXX.cpio.gz)
trap 'rm -f "$img"' EXIT
if [ "${KERNEL_ARCH:-amd64}" = arm64 ]; then
	"$TOP/tests/kernels/initramfs-arm64.sh" "$kdir" "$rel" "${KERNEL_TEST_BUILD:-$TOP/build/arm64}" "$img" || exit 1
	qemu=(qemu-system-aarch64 -machine virt -cpu max)
	console=ttyAMA0
else
	"$TOP/tests/kernels/initramfs.sh" "$kdir" "$rel" "$img" || exit 1
	qemu=(qemu-system-x86_64 -machine q35,accel=tcg -cpu max)
	[ -w /dev/kvm ] && qemu=(qemu-system-x86_64 -machine q35,accel=kvm -cpu host)
	console=ttyS0
fi
boot() {
	timeout "${KERNEL_BOOT_TIMEOUT:-900}" "${qemu[@]}" -smp "${KERNEL_SMP:-2}" -m "${KERNEL_MEM:-2048}" \
		-nographic -no-reboot -nodefaults -serial stdio -kernel "$kdir/boot/vmlinuz-$rel" \
		-initrd "$img" -append "console=$console panic=-1 quiet loglevel=4 flowlens.run=$run" \
		</dev/null >"$log" 2>&1
}
boot
rc=$?
if [[ ${qemu[*]} == *accel=kvm* ]] && [ "$rc" != 124 ] && ! grep -q FLOWLENS-GUEST-START "$log"; then
	echo "tests/kernels: QEMU could not start the guest under KVM ($(head -c 300 "$log" | tr '\n' ' ')); retrying under TCG"
	qemu=(qemu-system-x86_64 -machine q35,accel=tcg -cpu max)
	boot
	rc=$?
fi
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
grc=$(sed -n 's/^FLOWLENS-GUEST-RC=\([0-9]*\).*/\1/p' "$log" | tail -1)
if [ -n "$grc" ]; then exit "$grc"; fi
[ "$rc" = 124 ] && exit 124
exit 1
