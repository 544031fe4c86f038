#!/usr/bin/env bash
# image.sh OUT VERSION: the flowlens OCI image for amd64 and arm64, built from Debian packages
# without Docker (`make image` runs it after building both architectures' binaries).
#
# Per architecture: a root file system of only the shared libraries the binaries link (plus
# ca-certificates), unpacked from Debian bookworm's packages by mmdebstrap's "extract" variant
# (no maintainer scripts run, so a foreign architecture needs no emulator), trimmed of docs,
# with /etc/passwd naming the non-root user 65532; flowlens-agent, flowlens-collector and
# flowlens-slo from OUT (amd64) or OUT/arm64 in /usr/bin; an SPDX 2.3 SBOM of every Debian
# package in it at /usr/share/flowlens/sbom.spdx.json. buildah makes each a one-layer OCI image
# (user 65532, the collector as entrypoint; the chart runs the agent as root with four
# capabilities), dated by the commit, and a two-architecture index of both.
#
# Output in OUT/image: flowlens-VERSION.oci.tar (OCI archive with the index; `skopeo copy
# --all oci-archive:... docker://<registry>/flowlens:VERSION` pushes both), sbom-ARCH.spdx.json,
# and sizes.txt. The images stay in the local containers storage as localhost/flowlens:VERSION
# (the index) and localhost/flowlens:VERSION-ARCH, which podman runs; earlier builds' are
# removed from it.
#
# The unpacked root file systems are cached under IMAGE_CACHE (default
# /var/cache/flowlens-image), keyed by suite, architecture and package list; IMAGE_REFRESH=1
# fetches the packages again (security updates).
set -eu
out=${1:?OUT}
version=${2:?VERSION}
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${IMAGE_CACHE:-/var/cache/flowlens-image}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the binaries link (objdump -p ... NEEDED, by package), and the CA bundle for HTTPS.
# libnghttp2-14 (the agent's HPACK decoder) comes in as a dependency of libcurl4.
pkgs=(libbpf1 libelf1 zlib1g libmicrohttpd12 libjson-c5 libmnl0 libprotobuf-c1 libcurl4
	libnetfilter-conntrack3 libyaml-0-2 libssl3 ca-certificates)
archs=(amd64 arm64)
name=localhost/flowlens

# Runs inside mmdebstrap after the packages are unpacked: $1 is the root, $2 where the package
# list goes. The .deb files are still in the root's apt cache here.
if [ "${1:-}" = --extract-hook ]; then
	root=$2 list=$3
	for deb in "$root"/var/cache/apt/archives/*.deb; do
		dpkg-deb -f "$deb" Package Version Architecture Source Homepage |
			awk -F': ' '{ v[$1] = $2 } END {
				src = v["Source"]; sub(/ .*/, "", src); if (src == "") src = v["Package"]
				print v["Package"] "\t" v["Version"] "\t" v["Architecture"] "\t" src "\t" v["Homepage"] }'
	done | sort >"$list"
	# What update-ca-certificates (a maintainer script, not run here) would write.
	mkdir -p "$root/etc/ssl/certs"
	find "$root/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat \
		>"$root/etc/ssl/certs/ca-certificates.crt"
	# No shell, no tools, no debconf (perl), no iconv modules (nothing converts charsets).
	rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,common-licenses,perl5,debconf} \
		"$root"/usr/share/{ca-certificates,pixmaps,menu} "$root"/usr/bin/* "$root"/usr/sbin/* \
		"$root"/etc/{cron.*,logrotate.d,init.d,debconf.conf,ca-certificates*} \
		"$root"/usr/lib/ssl/misc "$root"/usr/lib/*-linux-gnu/gconv "$root"/var/cache/debconf
	printf 'root:x:0:0:root:/root:/nonexistent\nflowlens:x:65532:65532:flowlens:/nonexistent:/nonexistent\n' \
		>"$root/etc/passwd"
	printf 'root:x:0:\nflowlens:x:65532:\n' >"$root/etc/group"
	mkdir -p "$root/tmp" "$root/var/lib/flowlens"
	chmod 1777 "$root/tmp"
	exit 0
fi

for t in mmdebstrap buildah jq; do
	command -v "$t" >/dev/null || { echo "image.sh: $t missing (make deps installs it)" >&2; exit 1; }
done
epoch=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)
revision=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
mkdir -p "$out/image" "$cache"
rm -f "$out/image/sizes.txt" "$out/image/packages.txt"
key=$(printf '%s\n' "$suite" "${pkgs[@]}" "$(sed -n '/^if \[ "${1:-}" = --extract-hook/,/^fi/p' "$0")" |
	sha256sum | cut -c1-12)

bindir() { if [ "$1" = amd64 ]; then echo "$out"; else echo "$out/$1"; fi; }
elf_machine() { # FILE -> amd64 | arm64 | other
	case $(od -An -tx1 -j18 -N2 "$1" | tr -d ' ') in
	3e00) echo amd64 ;;
	b700) echo arm64 ;;
	*) echo other ;;
	esac
}

# Earlier builds' images (and this version's, or an import of its archive by `podman run
# oci-archive:`, which takes the same name) leave the local storage first.
for old in $(buildah images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep "^$name:" || true); do
	buildah manifest rm "$old" >/dev/null 2>&1 || buildah rmi -f "$old" >/dev/null 2>&1 || true
done
buildah manifest create "$name:$version" >/dev/null
for arch in "${archs[@]}"; do
	bin=$(bindir "$arch")
	for b in flowlens-agent flowlens-collector flowlens-slo; do
		[ -x "$bin/$b" ] || { echo "image.sh: $bin/$b missing" >&2; exit 1; }
		[ "$(elf_machine "$bin/$b")" = "$arch" ] ||
			{ echo "image.sh: $bin/$b is not an $arch binary" >&2; exit 1; }
	done
	rootfs=$cache/rootfs-$suite-$arch-$key.tar
	if [ ! -s "$rootfs" ] || [ "${IMAGE_REFRESH:-0}" = 1 ]; then
		echo "image: unpacking Debian $suite ($arch): ${pkgs[*]}"
		SOURCE_DATE_EPOCH=$epoch mmdebstrap --quiet --variant=extract --format=tar --architectures="$arch" \
			--include="$(IFS=,; echo "${pkgs[*]}")" \
			--extract-hook="'$top/scripts/image.sh' --extract-hook \"\$1\" '$rootfs.pkgs.tmp'" \
			"$suite" "$rootfs.tmp" "$mirror"
		mv "$rootfs.pkgs.tmp" "$rootfs.pkgs"
		mv "$rootfs.tmp" "$rootfs"
	fi

	# The SBOM: every Debian package unpacked, and flowlens itself.
	sbom=$out/image/sbom-$arch.spdx.json
	jq -Rn --arg version "$version" --arg arch "$arch" --arg revision "$revision" \
		--arg created "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" --arg suite "$suite" '
		[inputs | split("\t") | {name: .[0], version: .[1], arch: .[2], source: .[3], home: .[4]}] as $debs |
		{
			spdxVersion: "SPDX-2.3", dataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
			name: "flowlens-\($version)-\($arch)",
			documentNamespace: "https://github.com/flowlens/flowlens/sbom/\($revision)/\($arch)",
			creationInfo: {created: $created, creators: ["Tool: flowlens scripts/image.sh"]},
			packages: ([{
				SPDXID: "SPDXRef-flowlens", name: "flowlens", versionInfo: $version,
				downloadLocation: "NOASSERTION", licenseConcluded: "NOASSERTION",
				licenseDeclared: "BSD-2-Clause OR GPL-2.0-only", copyrightText: "NOASSERTION",
				supplier: "Organization: flowlens"
			}] + [$debs[] | {
				SPDXID: "SPDXRef-deb-\(.name | gsub("[^A-Za-z0-9.-]"; "-"))",
				name: .name, versionInfo: .version, supplier: "Organization: Debian",
				downloadLocation: "NOASSERTION", licenseConcluded: "NOASSERTION",
				licenseDeclared: "NOASSERTION", copyrightText: "NOASSERTION",
				sourceInfo: "built from Debian source package \(.source)",
				externalRefs: [{referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
					referenceLocator: "pkg:deb/debian/\(.name)@\(.version | @uri)?arch=\(.arch)&distro=debian-\($suite)"}]
			}]),
			relationships: [$debs[] | {spdxElementId: "SPDXRef-flowlens",
				relationshipType: "DEPENDS_ON",
				relatedSpdxElement: "SPDXRef-deb-\(.name | gsub("[^A-Za-z0-9.-]"; "-"))"}]
		}' <"$rootfs.pkgs" >"$sbom"

	stage=$(mktemp -d)
	mkdir -p "$stage/usr/bin" "$stage/usr/share/flowlens"
	cp "$bin/flowlens-agent" "$bin/flowlens-collector" "$bin/flowlens-slo" "$stage/usr/bin/"
	# Without debug information (the BPF objects are data inside the agent, untouched).
	strip=strip
	[ "$arch" = arm64 ] && strip=aarch64-linux-gnu-strip
	"$strip" --strip-debug "$stage"/usr/bin/*
	cp "$sbom" "$stage/usr/share/flowlens/sbom.spdx.json"
	cp "$top/LICENSE" "$stage/usr/share/flowlens/LICENSE"
	ctr=$(buildah from --quiet --arch "$arch" --os linux scratch)
	buildah add --quiet "$ctr" "$rootfs" / >/dev/null
	buildah copy --quiet "$ctr" "$stage" / >/dev/null
	rm -rf "$stage"
	buildah config --arch "$arch" --os linux --user 65532:65532 --workingdir / \
		--env PATH=/usr/bin:/bin --entrypoint '["/usr/bin/flowlens-collector"]' --cmd '' \
		--label org.opencontainers.image.title=flowlens \
		--label org.opencontainers.image.description="eBPF network flow SLIs for Kubernetes: agent, collector, SLO rule generator" \
		--label org.opencontainers.image.version="$version" \
		--label org.opencontainers.image.revision="$revision" \
		--label org.opencontainers.image.licenses="BSD-2-Clause OR GPL-2.0-only" \
		--label org.opencontainers.image.base.name="debian:$suite (packages unpacked by mmdebstrap)" \
		"$ctr"
	buildah commit --quiet --rm --format oci --timestamp "$epoch" "$ctr" "$name:$version-$arch" >/dev/null
	buildah manifest add --arch "$arch" --os linux "$name:$version" \
		"containers-storage:$name:$version-$arch" >/dev/null
	echo "$arch" "$(wc -l <"$rootfs.pkgs")" >>"$out/image/packages.txt"
done

archive=$out/image/flowlens-$version.oci.tar
rm -f "$archive"
buildah manifest push --quiet --all --format oci "$name:$version" "oci-archive:$archive:flowlens:$version" >/dev/null
# Per architecture: the layer as pulled (compressed) and unpacked, from the archive itself.
idx=$(mktemp -d)
tar -xf "$archive" -C "$idx"
jq -r '.manifests[0].digest' "$idx/index.json" | sed 's/sha256://' | while read -r d; do
	jq -r '.manifests[] | "\(.platform.architecture) \(.digest)"' "$idx/blobs/sha256/$d"
done | while read -r arch digest; do
	m=$idx/blobs/sha256/${digest#sha256:}
	layer=$(jq -r '.layers[0].digest' "$m")
	pulled=$(jq '[.layers[].size] | add' "$m")
	unpacked=$(gzip -dc "$idx/blobs/sha256/${layer#sha256:}" | wc -c)
	printf '%s: %d bytes to pull, %d bytes unpacked, %d Debian packages\n' "$arch" "$pulled" \
		"$unpacked" "$(awk -v a="$arch" '$1 == a { print $2 }' "$out/image/packages.txt")"
done >"$out/image/sizes.txt"
rm -rf "$idx" "$out/image/packages.txt"
echo "image: $archive ($name:$version for ${archs[*]})"
sed 's/^/image:   /' "$out/image/sizes.txt"
