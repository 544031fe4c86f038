#!/usr/bin/env bash
# initramfs.sh KERNEL_DIR RELEASE OUT: an initramfs (gzip'd cpio) that boots a Debian cloud
# kernel straight into the flowlens kernel tests: busybox, this machine's own tools the lab
# needs (bash, iproute2, iptables, nginx, dnsmasq, dig, curl, jq, bpftool, setpriv...) with the
# shared libraries they link, the built agent and test-bpf, the test scripts, and the kernel's
# own modules the lab loads (netfilter, veth, tc) with their dependencies.
set -eu
kdir=$1 rel=$2 out=$3
TOP=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d /tmp/flowlens-initramfs.XXXX)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,proc,sys,dev,tmp,run,etc,var/lib/nginx,var/log/nginx,root}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
mkdir -p "$root/usr/lib64"

# copy_file PATH: PATH (following symlinks to the file) at the same path in the image.
copy_file() {
	local f=$1 real
	[ -e "$root$f" ] && return 0
	mkdir -p "$root$(dirname "$f")"
	if [ -L "$f" ]; then
		real=$(readlink -f "$f")
		copy_file "$real"
		ln -sf "$real" "$root$f"
	else
		cp -a "$f" "$root$f"
	fi
}
# copy_elf PATH...: each binary or library and every library it links (ldd).
copy_elf() {
	local f lib
	for f in "$@"; do
		copy_file "$f"
		for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
			copy_file "$lib"
		done
	done
}
# copy_cmd NAME...: the commands as this machine resolves them.
copy_cmd() {
	local c p
	for c in "$@"; do
		p=$(type -P "$c") || { echo "initramfs.sh: $c not installed" >&2; exit 1; }
		case $p in /bin/* | /sbin/*) p=/usr$p ;; esac
		copy_elf "$p"
	done
}

# Real tools where the lab's scripts rely on their exact options.
copy_cmd bash ip tc sysctl curl jq nginx dnsmasq dig setpriv bpftool kmod mount umount \
	nsenter ps pkill pgrep kill awk sed grep find xargs timeout mktemp seq od head tail sort \
	cut tr sha1sum wc cat ls rm cp mv mkdir chmod chown ln sleep date env id stat dd printf \
	basename dirname readlink tee uniq comm nproc
# iptables with the legacy (x_tables) backend: this machine's iptables-nft 1.8.9 cannot add
# rules on 5.10 (ENOENT); EKS's kube-proxy images pick legacy or nft as the node uses them.
copy_cmd xtables-legacy-multi
for c in iptables ip6tables iptables-save iptables-restore ip6tables-save ip6tables-restore; do
	ln -sf xtables-legacy-multi "$root/usr/sbin/$c"
done
copy_elf /usr/lib/x86_64-linux-gnu/xtables/*.so /usr/lib/x86_64-linux-gnu/libnss_files.so.2 \
	/usr/lib/x86_64-linux-gnu/libnss_dns.so.2
for c in modprobe insmod lsmod depmod rmmod modinfo; do ln -sf ../bin/kmod "$root/usr/sbin/$c"; done
ln -sf bash "$root/usr/bin/sh"
# busybox for the init and any small command not copied above.
cp /bin/busybox "$root/usr/bin/busybox"
for a in $(/bin/busybox --list); do
	[ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
rm -f "$root/usr/bin/init" "$root/usr/bin/linuxrc"
cp /etc/protocols /etc/services "$root/etc/"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\ndnsmasq:x:65533:65534::/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
mkdir -p "$root/etc/netns"

# flowlens: binaries (the BPF objects are in their skeletons) and the tests they run.
mkdir -p "$root/flowlens/build" "$root/flowlens/tests"
build=${KERNEL_TEST_BUILD:-$TOP/build}
bins=("$build/flowlens-agent" "$build/flowlens-collector" "$build/test-bpf")
copy_elf "${bins[@]}"
mv "${bins[@]/#/$root}" "$root/flowlens/build/"
rm -rf "${root:?}${TOP%%/*}/${TOP#/}"
cp -a "$TOP/tests/lab" "$TOP/tests/kernels" "$root/flowlens/tests/"
mkdir -p "$root/flowlens/tests/e2e"
cp "$TOP/tests/e2e/lib.sh" "$root/flowlens/tests/e2e/"

# The kernel's modules the lab needs, with their dependencies, and a fresh modules.dep.
mods=(veth sch_ingress cls_bpf act_gact nf_conntrack nf_conntrack_netlink nf_nat nf_tables
	nft_compat nft_chain_nat nft_ct nft_nat nft_masq xt_nat xt_statistic xt_conntrack
	xt_tcpudp xt_comment xt_mark xt_MASQUERADE xt_addrtype ip_tables ip6_tables
	iptable_nat iptable_filter ip6table_nat ip6table_filter nf_defrag_ipv4 nf_defrag_ipv6)
mdir=$kdir/lib/modules/$rel
mkdir -p "$root/lib/modules/$rel"
cp "$mdir"/modules.order "$mdir"/modules.builtin* "$root/lib/modules/$rel/" 2>/dev/null || true
for m in "${mods[@]}"; do
	modprobe -d "$kdir" -S "$rel" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
	rel_path=${ko#"$kdir"}
	rel_path=${rel_path#/usr}
	mkdir -p "$root$(dirname "$rel_path")"
	cp "$ko" "$root$rel_path"
done
depmod -b "$root" "$rel"

cp "$TOP/tests/kernels/init" "$root/init"
chmod +x "$root/init"
# KERNEL_INITRAMFS_EXTRA=FILE: sourced here (with $root, $kdir, $rel and the copy_* helpers) to
# add to the image; tests/kernels/debian12.sh adds the host end-to-end tests' tools this way.
if [ -n "${KERNEL_INITRAMFS_EXTRA:-}" ]; then
	# shellcheck source=/dev/null
	source "$KERNEL_INITRAMFS_EXTRA"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
