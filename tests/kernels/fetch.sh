#!/usr/bin/env bash
# fetch.sh ARCH SUITE...: Debian's cloud kernel packages (the meta package's current image) of
# each SUITE for ARCH, from Debian's archive through apt with a private state directory (the
# system's sources are not touched), unpacked under $KERNEL_CACHE/ARCH/SUITE. Prints one line
# per kernel: "SUITE RELEASE DIR". Cached: a suite whose unpacked tree exists is not fetched
# again unless KERNEL_REFRESH=1.
set -eu
arch=$1
shift
cache=${KERNEL_CACHE:-/var/cache/flowlens-kernels}
apt_dir=$cache/apt-$arch
opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
	-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o "APT::Architecture=$arch"
	-o "APT::Architectures::=$arch" -o APT::Sandbox::User=root -qq)
need_update=0
for suite in "$@"; do
	[ -d "$cache/$arch/$suite/boot" ] && [ "${KERNEL_REFRESH:-0}" != 1 ] || need_update=1
done
if [ "$need_update" = 1 ]; then
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
	for suite in "$@"; do echo "deb http://deb.debian.org/debian $suite main"; done >"$apt_dir/sources.list"
	apt-get "${opts[@]}" update >&2
fi
for suite in "$@"; do
	dir=$cache/$arch/$suite
	if [ ! -d "$dir/boot" ] || [ "${KERNEL_REFRESH:-0}" = 1 ]; then
		# The suite's version of the meta package names the image package it depends on.
		ver=$(apt-cache "${opts[@]}" madison "linux-image-cloud-$arch" |
			awk -v s="$suite" '$0 ~ "/debian " s "/" || $0 ~ " " s "/main" { print $3; exit }')
		[ -n "$ver" ] || { echo "fetch.sh: no linux-image-cloud-$arch in $suite" >&2; exit 1; }
		pkg=$(apt-cache "${opts[@]}" show "linux-image-cloud-$arch=$ver" |
			sed -n 's/^Depends: .*\(linux-image-[^ ,]*-cloud-[^ ,]*\).*/\1/p' | head -1)
		rm -rf "$dir" "$dir.tmp"
		mkdir -p "$dir.tmp"
		(cd "$dir.tmp" && apt-get "${opts[@]}" download "$pkg" >&2 && dpkg-deb -x ./*.deb . && rm ./*.deb)
		# Merged /usr (trixie): modules under usr/lib/modules.
		[ -d "$dir.tmp/lib/modules" ] || { mkdir -p "$dir.tmp/lib" && ln -s ../usr/lib/modules "$dir.tmp/lib/modules"; }
		# modules.dep is made by the package's postinst, which is not run here.
		depmod -b "$dir.tmp" "$(basename "$(ls -d "$dir.tmp"/lib/modules/*/ | head -1)")"
		mv "$dir.tmp" "$dir"
	fi
	rel=$(basename "$(ls -d "$dir"/lib/modules/*/ | head -1)")
	echo "$suite $rel $dir"
done
