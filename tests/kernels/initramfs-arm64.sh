#!/usr/bin/env bash
# initramfs-arm64.sh KERNEL_DIR RELEASE BUILD OUT: the arm64 (Graviton) guest's initramfs:
# Debian's arm64 busybox and setpriv (downloaded, not installed), the cross-built agent,
# collector and test-bpf from BUILD with the arm64 libraries they link (multiarch, from
# /usr/lib/aarch64-linux-gnu), the kernel's modules for veth, TC and conntrack, and
# tests/kernels/guest-arm64.sh as what init runs.
set -eu
kdir=$1 rel=$2 build=$3 out=$4
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KERNEL_CACHE:-/var/cache/flowlens-kernels}/arm64-tools
root=$(mktemp -d /tmp/flowlens-initramfs.XXXX)
trap 'rm -rf "$root"' EXIT
libdir=/usr/lib/aarch64-linux-gnu

mkdir -p "$cache" "$root"/{usr/bin,usr/sbin,usr/lib,proc,sys,dev,tmp,run,etc,root}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
# Debian's arm64 busybox (static), setpriv (util-linux; for the chart's bounding set) and ip
# (iproute2; busybox's cannot move a link into a namespace), with the libraries they need
# that this machine has no arm64 copy of.
(
	cd "$cache"
	for p in busybox-static util-linux libcap-ng0 iproute2 libbsd0 libmd0 libcap2; do
		ls "${p}"_*_arm64.deb >/dev/null 2>&1 || apt-get -qq download "$p:arm64" 2>/dev/null
	done
	mkdir -p x
	for d in ./*.deb; do dpkg-deb -x "$d" x; done
)
cp "$cache/x/bin/busybox" "$root/usr/bin/busybox"
# Not under their applet names: busybox sh would run its own applets instead.
cp "$cache/x/usr/bin/setpriv" "$root/usr/bin/setpriv-util-linux"
cp "$cache/x/bin/ip" "$root/usr/bin/ip-iproute2"
mkdir -p "$root$libdir"

# The binaries and, recursively, the arm64 libraries they need (ldd cannot run them here).
copy_needed() {
	local f lib
	for lib in $(aarch64-linux-gnu-objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'); do
		[ -e "$root$libdir/$lib" ] && continue
		f=$(readlink -f "$libdir/$lib")
		[ -e "$f" ] || f=$(readlink -f "$cache/x/usr/lib/aarch64-linux-gnu/$lib")
		[ -e "$f" ] || f=$(readlink -f "$cache/x/lib/aarch64-linux-gnu/$lib")
		[ -e "$f" ] || { echo "initramfs-arm64.sh: $lib (arm64) missing" >&2; exit 1; }
		cp "$f" "$root$libdir/$lib"
		copy_needed "$root$libdir/$lib"
	done
}
mkdir -p "$root/flowlens/build" "$root/flowlens/tests/kernels"
for b in flowlens-agent flowlens-collector test-bpf; do
	cp "$build/$b" "$root/flowlens/build/"
	copy_needed "$root/flowlens/build/$b"
done
copy_needed "$root/usr/bin/setpriv-util-linux"
copy_needed "$root/usr/bin/ip-iproute2"
cp -L /usr/lib/ld-linux-aarch64.so.1 "$root/usr/lib/ld-linux-aarch64.so.1" 2>/dev/null ||
	cp -L "$libdir/ld-linux-aarch64.so.1" "$root/usr/lib/ld-linux-aarch64.so.1"
for a in $(/bin/busybox --list); do
	[ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
rm -f "$root/usr/bin/init" "$root/usr/bin/linuxrc"
# The kernel asks /sbin/modprobe for modules it autoloads (qdiscs, netlink families).
ln -s ../bin/busybox "$root/usr/sbin/modprobe"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

mdir=$kdir/lib/modules/$rel
mkdir -p "$root/lib/modules/$rel"
for m in veth sch_ingress cls_bpf nf_conntrack nf_conntrack_netlink; do
	modprobe -d "$kdir" -S "$rel" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
	rel_path=${ko#"$kdir"}
	mkdir -p "$root$(dirname "$rel_path")"
	cp "$ko" "$root$rel_path"
done
cp "$mdir"/modules.order "$mdir"/modules.builtin* "$root/lib/modules/$rel/" 2>/dev/null || true
depmod -b "$root" "$rel"
cp "$TOP/tests/kernels/guest-arm64.sh" "$root/flowlens/tests/kernels/"
sed 's|bash /flowlens/tests/kernels/guest.sh "$run"|sh /flowlens/tests/kernels/guest-arm64.sh|' \
	"$TOP/tests/kernels/init" >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
