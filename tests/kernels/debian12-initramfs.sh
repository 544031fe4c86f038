# shellcheck shell=bash disable=SC2154 # root, kdir, rel, TOP: set by initramfs.sh
# Sourced by tests/kernels/initramfs.sh (KERNEL_INITRAMFS_EXTRA) for `make debian12`: on top of
# the kernel matrix's image, what the host end-to-end tests need, taken from this machine
# (Debian 12) as its packages install it: every executable of the packages below with the
# libraries it links, iptables in Debian 12's default backend (nf_tables, as the alternatives
# system points it here), the kernel's whole netfilter and TC module trees, the flowlens
# binaries and BPF objects the tests load, the tests themselves, and an init that runs
# tests/kernels/debian12-guest.sh. Uses $root, $kdir, $rel, $TOP and copy_elf/copy_file.

# The Debian packages whose executables the tests (or the lab) call, whole: the tests get
# Debian's own tools, not busybox's applets of the same name.
d12_pkgs=(bash coreutils util-linux procps iproute2 iptables conntrack iperf3 prometheus
	findutils grep sed mawk diffutils kmod curl jq nginx bpftool gzip iputils-ping psmisc)
for p in "${d12_pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || { echo "debian12-initramfs.sh: Debian package $p not installed (make deps)" >&2; exit 1; }
	while read -r f; do
		case $f in /bin/* | /sbin/*) f=/usr$f ;; esac
		# Only the files themselves (and symlinks to them), not the directories.
		[ -f "$f" ] || continue
		# The matrix's image links busybox's applets where it has no real tool: replace them.
		[ "$(readlink "$root$f" 2>/dev/null)" = busybox ] && rm -f "$root$f"
		copy_elf "$f"
	done < <(dpkg -L "$p" | grep -E '^(/usr)?/s?bin/[^/]+$')
done
# Debian 12's iptables as this machine's alternatives select it (nf_tables on a default
# install), instead of the matrix's legacy backend (which it needs for 5.10).
d12_ipt=$(basename "$(readlink -f /usr/sbin/iptables)")
for c in iptables ip6tables iptables-save iptables-restore ip6tables-save ip6tables-restore; do
	ln -sf "$d12_ipt" "$root/usr/sbin/$c"
done
cp -L /etc/debian_version /etc/os-release "$root/etc/"

# The kernel's netfilter and TC modules, all of them (the tests' rules load what they use:
# REJECT, statistic, conntrack, nf_tables' compat layer...), with their dependencies.
d12_mdir=$kdir/lib/modules/$rel
{
	find "$d12_mdir/kernel/net/netfilter" "$d12_mdir/kernel/net/ipv4/netfilter" \
		"$d12_mdir/kernel/net/ipv6/netfilter" "$d12_mdir/kernel/net/sched" -name '*.ko*'
	find "$d12_mdir/kernel/drivers/net" -name 'veth.ko*'
} | sed 's|.*/||; s|\.ko.*||' | sort -u | while read -r m; do
	modprobe -d "$kdir" -S "$rel" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
	rel_path=${ko#"$kdir"}
	rel_path=${rel_path#/usr}
	[ -e "$root$rel_path" ] && continue
	mkdir -p "$root$(dirname "$rel_path")"
	cp "$ko" "$root$rel_path"
done
depmod -b "$root" "$rel"

# flowlens: the binaries and BPF objects the end-to-end tests use besides the matrix's.
d12_build=${KERNEL_TEST_BUILD:-$TOP/build}
copy_elf "$d12_build/flowlens-bench"
mv "$root$d12_build/flowlens-bench" "$root/flowlens/build/"
rm -rf "${root:?}${TOP%%/*}/${TOP#/}"
cp "$d12_build"/*.bpf.o "$root/flowlens/build/"
mkdir -p "$root/flowlens/tests/e2e"
cp -a "$TOP/tests/e2e/." "$root/flowlens/tests/e2e/"
cp -a "$TOP/tests/tools" "$root/flowlens/tests/"
# shellcheck disable=SC2016 # the init's own words
sed 's|bash /flowlens/tests/kernels/guest.sh "$run"|bash /flowlens/tests/kernels/debian12-guest.sh "$run"|' \
	"$TOP/tests/kernels/init" >"$root/init"
grep -q debian12-guest.sh "$root/init" || { echo "debian12-initramfs.sh: init's guest line not found" >&2; exit 1; }
chmod +x "$root/init"

# The demo (`make demo`'s scripts/demo.sh, tests/kernels/debian12-demo.sh) when it is among the
# tests asked for: the shop's servers and clients (Redis, Python with gRPC and redis-py, dnsmasq, dig, socat),
# Node and Chromium that draw the dashboards, fonts, and the repository files the demo reads.
# Whole packages (every file but documentation), each executable or library with what it links.
d12_copy_pkg() {
	local p f
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || { echo "debian12-initramfs.sh: Debian package $p not installed (make deps)" >&2; exit 1; }
		while read -r f; do
			case $f in /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/* | /usr/share/bug/*) continue ;; esac
			case $f in /bin/* | /sbin/* | /lib/*) f=/usr$f ;; esac
			[ -f "$f" ] || continue
			[ "$(readlink "$root$f" 2>/dev/null)" = busybox ] && rm -f "$root$f"
			if [ -x "$f" ] || [[ $f == *.so || $f == *.so.* ]]; then copy_elf "$f"; else copy_file "$f"; fi
		done < <(dpkg -L "$p")
	done
}
if [[ ,${DEBIAN12_RUN:-all}, == *,all,* || ,${DEBIAN12_RUN:-all}, == *,demo,* ]]; then
	d12_copy_pkg redis-tools redis-server python3-minimal python3.11-minimal libpython3.11-minimal \
		libpython3.11-stdlib python3 python3.11 python3-grpcio python3-protobuf python3-six \
		python3-redis python3-async-timeout python3-deprecated python3-wrapt python3-packaging \
		dnsmasq-base bind9-dnsutils socat bsdextrautils chromium chromium-common \
		fontconfig-config fonts-dejavu-core
	ln -sf python3.11 "$root/usr/bin/python3"
	# Node as this machine has it (its package's node binary; npm for tools.sh's check).
	copy_cmd node
	node_npm=$(readlink -f "$(type -P npm)")
	npm_dir=${node_npm%/bin/npm-cli.js}
	mkdir -p "$root$(dirname "$npm_dir")"
	cp -a "$npm_dir" "$root$npm_dir"
	ln -sf "$node_npm" "$root/usr/bin/npm"
	cp -a /etc/fonts "$root/etc/"
	printf 'redis:x:65532:65534::/nonexistent:/bin/false\n' >>"$root/etc/passwd"
	# The repository's files the demo reads, and the renderer with its bundle already built
	# (the host's `make demo` built it the same way) and the npm packages that draw with it:
	# puppeteer-core and uplot with their dependencies (the guest has no network for npm).
	cp -a "$TOP/scripts" "$TOP/deploy" "$root/flowlens/"
	mkdir -p "$root/flowlens/grafana/render/node_modules" "$root/flowlens/tests/grafana"
	cp -a "$TOP/grafana/dashboards" "$TOP/grafana/provisioning" "$root/flowlens/grafana/"
	[ -e "$TOP/grafana/render/.out/app.js" ] || { echo "debian12-initramfs.sh: the renderer's bundle is not built" >&2; exit 1; }
	# (render.mjs: puppeteer-core to drive Chromium, uplot for the stylesheet it inlines.)
	d12_npm=$(node "$TOP/tests/kernels/npm-closure.mjs" "$TOP/grafana/render" puppeteer-core &&
		node "$TOP/tests/kernels/npm-closure.mjs" "$TOP/grafana/render" uplot) || exit 1
	for d in $d12_npm; do
		mkdir -p "$root/flowlens/grafana/render/$(dirname "$d")"
		cp -a "$TOP/grafana/render/$d" "$root/flowlens/grafana/render/$d"
	done
	for f in .out package.json package-lock.json promql.mjs render.mjs tools.sh src node_modules/.package-lock.json; do
		cp -a "$TOP/grafana/render/$f" "$root/flowlens/grafana/render/$f"
	done
	cp -a "$TOP/tests/grafana/." "$root/flowlens/tests/grafana/"
	copy_elf "$d12_build/flowlens-slo"
	mv "$root$d12_build/flowlens-slo" "$root/flowlens/build/"
	rm -rf "${root:?}${TOP%%/*}/${TOP#/}"
fi
