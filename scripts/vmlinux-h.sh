#!/usr/bin/env bash
# Regenerates bpf/vmlinux/vmlinux.h.xz, the kernel types the BPF programs are compiled against,
# from a pinned kernel's BTF instead of the build machine's: Debian bookworm's cloud kernel
# (6.1, the kernel of Amazon Linux 2023), downloaded with tests/kernels/fetch.sh, its vmlinux
# taken out of the compressed bzImage, its BTF dumped as C. The objects are CO-RE: field
# offsets are relocated at load time, so they run on 5.10 to 6.18 and on arm64 alike (the
# kernel matrix checks it). Run by hand when the programs need a type that 6.1 lacks; the
# build only decompresses the committed file.
set -eu
cd "$(dirname "$0")/.."
read -r _ rel dir < <(tests/kernels/fetch.sh amd64 bookworm)
vmlinuz=$dir/boot/vmlinuz-$rel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernel is one compressed stream inside the bzImage: try each format's magic at each of
# its offsets until one decompresses to an ELF file.
found=0
for fmt in lz4 zstd xz gzip; do
	case $fmt in
	lz4) magic=$'\x02\x21\x4c\x18' dec=(lz4 -dc) ;;
	zstd) magic=$'\x28\xb5\x2f\xfd' dec=(zstd -dcq) ;;
	xz) magic=$'\xfd\x37\x7a\x58\x5a\x00' dec=(xz -dc) ;;
	gzip) magic=$'\x1f\x8b\x08' dec=(gzip -dc) ;;
	esac
	for off in $(LC_ALL=C grep -aboF "$magic" "$vmlinuz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$vmlinuz" | "${dec[@]}" >"$tmp/vmlinux" 2>/dev/null || true
		if [ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			found=1
			break 2
		fi
	done
done
[ "$found" = 1 ] || { echo "vmlinux-h.sh: no vmlinux found in $vmlinuz" >&2; exit 1; }
bpftool btf dump file "$tmp/vmlinux" format c >"$tmp/vmlinux.h"
xz -9 -c "$tmp/vmlinux.h" >bpf/vmlinux/vmlinux.h.xz
{
	echo "kernel: $rel (Debian bookworm, linux-image-$rel)"
	echo "sha256 of vmlinux.h: $(sha256sum <"$tmp/vmlinux.h" | cut -d' ' -f1)"
} >bpf/vmlinux/SOURCE
cat bpf/vmlinux/SOURCE
