#!/usr/bin/env bash
# The kernel matrix: the agent's kernel checks (tests/kernels/guest.sh: test-bpf for every
# object the agent may load, and the end-to-end lab with the chart's capabilities) on this
# machine's kernel and on Debian's cloud kernels of the EKS node generations, each booted under
# QEMU: 5.10 (bullseye; Amazon Linux 2), 6.1 (bookworm; AL2023, Bottlerocket) and 6.12 (trixie;
# newer AL2023 and Bottlerocket), and Debian's arm64 6.1 (Graviton) under qemu-system-aarch64
# with the cross-built binaries (tests/kernels/guest-arm64.sh: test-bpf, the agent with the
# chart's capabilities on an eni* veth). KERNELS="bullseye arm64-bookworm" picks some; host is
# this machine.
# Prints a table of what passed; the consoles are kept in build/kernels/.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
out=build/kernels
mkdir -p "$out"
kernels=${KERNELS:-host bullseye bookworm trixie arm64-bookworm}
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: the kernel matrix needs root (BPF, namespaces)"
	exit 77
fi
for c in qemu-system-x86_64 busybox cpio depmod; do
	command -v "$c" >/dev/null || { echo "kernels/run.sh: $c missing (make deps installs it)"; exit 1; }
done
suites=() arm_suites=()
for k in $kernels; do
	case $k in
	host) ;;
	arm64-*) arm_suites+=("${k#arm64-}") ;;
	*) suites+=("$k") ;;
	esac
done
declare -A rel dir
fetch() { # ARCH PREFIX SUITE...
	local arch=$1 prefix=$2 list s r d
	shift 2
	if ! list=$(tests/kernels/fetch.sh "$arch" "$@"); then
		echo "kernels/run.sh: cannot fetch Debian's $arch kernels (deb.debian.org unreachable?)"
		exit 1
	fi
	while read -r s r d; do rel[$prefix$s]=$r dir[$prefix$s]=$d; done <<<"$list"
}
[ ${#suites[@]} -eq 0 ] || fetch amd64 "" "${suites[@]}"
if [ ${#arm_suites[@]} -gt 0 ]; then
	fetch arm64 arm64- "${arm_suites[@]}"
	make -s arm64 || { echo "kernels/run.sh: the arm64 cross build failed"; exit 1; }
fi
failed=0
rows=()
for k in $kernels; do
	log=$out/$k.log
	start=$(date +%s)
	if [ "$k" = host ]; then
		echo "=== kernel matrix: this machine ($(uname -r))"
		tests/kernels/guest.sh >"$log" 2>&1
		rc=$?
		name="$(uname -r) (this machine)"
	else
		echo "=== kernel matrix: $k (${rel[$k]}) under QEMU"
		arch=amd64
		case $k in arm64-*) arch=arm64 ;; esac
		KERNEL_ARCH=$arch tests/kernels/boot.sh "${dir[$k]}" "${rel[$k]}" all "$log"
		rc=$?
		name="${rel[$k]} (Debian ${k#arm64-})"
	fi
	grep -E '^  (ok|FAIL|info)|^test-bpf:|^RESULT|^tests/kernels|initramfs' "$log" | grep -v '^  info  flowlens_agent_feature_info' | sed 's/^/  /'
	[ "$rc" = 124 ] && echo "  FAIL  the guest did not finish within ${KERNEL_BOOT_TIMEOUT:-900} s"
	features=$(sed -n 's/.*flowlens_agent_feature_info{feature="\([a-z_]*\)",state="\([a-z]*\)".*/\1=\2/p' "$log" |
		sort -u | grep -v '=on$' | tr '\n' ' ')
	verdict=pass
	[ "$rc" = 0 ] || { verdict=FAIL; failed=1; }
	rows+=("$(printf '%-44s %-5s %4ss  not on: %s' "$name" "$verdict" $(($(date +%s) - start)) "${features:-none}")")
done
echo "=== kernel matrix"
printf '  %s\n' "${rows[@]}"
exit $failed
