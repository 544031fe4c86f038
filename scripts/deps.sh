#!/usr/bin/env bash
# Installs every Debian package that building flowlens, its demo and its tests need.
# Idempotent: when everything is installed already it changes nothing and needs no network.
set -eu
PKGS=(
	# build
	make gcc clang llvm pkg-config git bpftool libbpf-dev libelf-dev zlib1g-dev
	libmicrohttpd-dev libjson-c-dev libmnl-dev uthash-dev clang-format libnghttp2-dev
	libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libclang-rt-dev
	libnetfilter-conntrack-dev libyaml-dev libssl-dev xz-utils
	# the image (make image) and running it (tests)
	mmdebstrap buildah podman runc qemu-user
	# lab, demo and tests
	iproute2 iptables ethtool iperf3 curl jq iputils-ping nginx-light prometheus procps openssl
	bsdextrautils conntrack python3 dnsmasq-base bind9-dnsutils wrk
	# HTTP/2 and gRPC in the lab: a gRPC server and client, nghttpd and h2load
	python3-grpcio nghttp2-client nghttp2-server
	# the kernel matrix: Debian's cloud kernels booted under QEMU from an initramfs
	qemu-system-x86 busybox-static kmod cpio
	# the demo's shop (Redis behind a Python api) and its Prometheus forward
	redis-server python3-redis socat
	# offline checks of deploy/ and grafana/ (npm packages, Helm from a zip)
	unzip
	# the dashboards drawn headless with Grafana's libraries (grafana/render, demo and tests)
	chromium chromium-driver fonts-dejavu-core
)
# Node.js for the deploy and dashboard checks: Debian's, unless the machine has one already
# (installing Debian's npm next to another Node.js would conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	PKGS+=(nodejs npm)
fi
# The kernel matrix's arm64 (Graviton) guest: a cross compiler, arm64 builds of the libraries
# the binaries link (multiarch), and QEMU for aarch64.
PKGS+=(qemu-system-arm crossbuild-essential-arm64)
ARM64_LIBS=(libbpf-dev libelf-dev zlib1g-dev libmicrohttpd-dev libjson-c-dev libmnl-dev
	libnetfilter-conntrack-dev libprotobuf-c-dev libcurl4-openssl-dev libyaml-dev libssl-dev libnghttp2-dev)
for p in "${ARM64_LIBS[@]}"; do PKGS+=("$p:arm64"); done
# verify: every command, library and module the build, the demo and the tests use is really
# there (a package can be marked installed with a file gone, an install can half-fail); names
# each missing one and fails, so `make test` stops here instead of passing with skips.
verify() {
	local c gone=() m
	m=$(uname -m)
	for c in make gcc clang llc pkg-config git bpftool protoc-c clang-format xz ip tc iptables \
		ethtool iperf3 curl jq ping nginx prometheus promtool ps openssl column conntrack \
		python3 dnsmasq dig wrk h2load nghttpd nghttp qemu-system-x86_64 qemu-system-aarch64 \
		qemu-aarch64 busybox depmod modprobe cpio redis-server socat unzip chromium chromedriver \
		node npm mmdebstrap buildah podman runc aarch64-linux-gnu-gcc setpriv nsenter timeout; do
		command -v "$c" >/dev/null || gone+=("$c")
	done
	for c in libbpf libelf zlib libmicrohttpd json-c libmnl libnghttp2 libprotobuf-c libcurl \
		libnetfilter_conntrack yaml-0.1 libcrypto; do
		pkg-config --exists "$c" || gone+=("pkg-config:$c")
		PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --exists "$c" ||
			gone+=("pkg-config:$c:arm64")
	done
	[ -e /usr/include/uthash.h ] || gone+=(/usr/include/uthash.h)
	[ -e "$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-$m.a" ] ||
		gone+=("libclang_rt.fuzzer-$m.a (libclang-rt-dev)")
	/usr/bin/python3 -c 'import grpc, redis' 2>/dev/null || gone+=("/usr/bin/python3: grpc, redis")
	fc-list 2>/dev/null | grep -qi dejavu || [ -d /usr/share/fonts/truetype/dejavu ] ||
		gone+=(fonts-dejavu-core)
	if [ ${#gone[@]} -ne 0 ]; then
		echo "deps: missing after install: ${gone[*]}" >&2
		echo "deps: reinstall the package that provides each (apt-get install --reinstall ...)" >&2
		exit 1
	fi
}

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	verify
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root (sudo make deps)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -qq
# Debian's prometheus package would start a server on :9090 at install on systems with an
# init; the lab starts its own when it needs one.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
verify
