#!/usr/bin/env bash
# The OCI image as a cluster would run it. `make image` builds the two-architecture archive;
# each architecture's layer holds binaries of that architecture and an SBOM naming every Debian
# package unpacked into it; then the agent and the collector run from the archive (what a
# registry pull gives) under podman, with the Helm chart's securityContexts (agent: root with
# only BPF, NET_ADMIN, PERFMON, SYS_RESOURCE, no_new_privs, read-only root, the runtime's
# default seccomp profile, /sys/fs/bpf and /sys/kernel/btf read-only; collector: the image's
# uid 65532, no capabilities, read-only root), in a lab node's network namespace. Their counts
# must equal iptables' for the same traffic.
source "$(dirname "$0")/lib.sh"
echo "image.sh: lab $LAB_ID"
for t in podman buildah mmdebstrap qemu-aarch64; do
	command -v "$t" >/dev/null || { echo "  SKIP  $t not installed (make deps installs it)"; exit 77; }
done
version=$(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)
if ! make -s -C "$TOP" image >"$WORK/make-image.log" 2>&1; then
	fail "make image"
	tail -20 "$WORK/make-image.log"
	finish
	exit 1
fi
archive=$TOP/build/image/flowlens-$version.oci.tar
check_true "make image wrote $(basename "$archive")" test -s "$archive"
sed 's/^/  info  /' "$TOP/build/image/sizes.txt"

# The index and each architecture's image, read from the archive itself.
oci=$WORK/oci
mkdir -p "$oci" && tar -xf "$archive" -C "$oci"
jq_true() { jq -e "$@" >/dev/null; }
blob() { echo "$oci/blobs/sha256/${1#sha256:}"; }
index=$(blob "$(jq -r '.manifests[0].digest' "$oci/index.json")")
check_eq "index: media type" "$(jq -r '.mediaType' "$index")" application/vnd.oci.image.index.v1+json
check_eq "index: platforms" "$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | sort | join(" ")' "$index")" \
	"linux/amd64 linux/arm64"
for arch in amd64 arm64; do
	m=$(blob "$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$index")")
	cfg=$(blob "$(jq -r '.config.digest' "$m")")
	check_eq "$arch: config architecture, user, version label" \
		"$(jq -r '"\(.architecture) \(.config.User) \(.config.Labels["org.opencontainers.image.version"])"' "$cfg")" \
		"$arch 65532:65532 $version"
	root=$WORK/root-$arch
	mkdir -p "$root"
	for l in $(jq -r '.layers[].digest' "$m"); do tar -xzf "$(blob "$l")" -C "$root"; done
	# ELF e_machine: 0x3e x86-64, 0xb7 aarch64.
	want=3e00
	[ "$arch" = arm64 ] && want=b700
	machines=$(for b in flowlens-agent flowlens-collector flowlens-slo; do
		od -An -tx1 -j18 -N2 "$root/usr/bin/$b" | tr -d ' '
	done | sort -u | tr '\n' ' ')
	check_eq "$arch: the three binaries are $arch ELF files" "$machines" "$want "
	# Every library the agent and collector need is in the image: the dynamic loader of the
	# architecture resolves each NEEDED name in the image's library directories.
	triplet=x86_64-linux-gnu
	[ "$arch" = arm64 ] && triplet=aarch64-linux-gnu
	missing=
	for lib in $(for b in flowlens-agent flowlens-collector; do
		objdump -p "$root/usr/bin/$b" 2>/dev/null || aarch64-linux-gnu-objdump -p "$root/usr/bin/$b"
	done | awk '$1 == "NEEDED" { print $2 }' | sort -u); do
		[ -e "$root/usr/lib/$triplet/$lib" ] || [ -e "$root/lib/$triplet/$lib" ] || missing="$missing $lib"
	done
	check_eq "$arch: libraries the binaries need that the image lacks" "${missing:-none}" none
	# And they run there: the image's own loader and libraries (arm64 under qemu-user, its
	# file lookups rooted in the image first).
	runs=$(for b in flowlens-agent flowlens-collector flowlens-slo; do
		if [ "$arch" = amd64 ]; then
			chroot "$root" "/usr/bin/$b" --version 2>&1
		else
			qemu-aarch64 -L "$root" "$root/usr/bin/$b" --version 2>&1
		fi
	done | tr '\n' ' ')
	check_eq "$arch: each binary runs in the image (--version)" "$runs" \
		"flowlens-agent $version flowlens-collector $version flowlens-slo $version "
	# The SBOM names the package of each of those libraries, at the version unpacked.
	sbom=$root/usr/share/flowlens/sbom.spdx.json
	check_eq "$arch: SBOM is SPDX 2.3 and names flowlens $version" \
		"$(jq -r '"\(.spdxVersion) \(.packages[] | select(.name == "flowlens") | .versionInfo)"' "$sbom")" \
		"SPDX-2.3 $version"
	for p in libbpf1 libelf1 libc6 libcurl4 libssl3; do
		v=$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .versionInfo' "$sbom")
		check_true "$arch: SBOM lists $p ($v), arch $arch" jq_true --arg p "$p" --arg a "$arch" \
			'any(.packages[]; .name == $p and (.externalRefs[0].referenceLocator | test("arch=" + $a)))' "$sbom"
	done
	check_true "$arch: CA bundle present (agent -> collector over https)" \
		test -s "$root/etc/ssl/certs/ca-certificates.crt"
	check_true "$arch: no shell in the image" test ! -e "$root/bin/sh" -a ! -e "$root/usr/bin/sh"
done
# The libbpf in the amd64 image is the version the SBOM names: read from the library's file
# name (libbpf.so.X.Y.Z), independent of the SBOM's source (the .deb control fields).
so=$(basename "$(ls "$WORK"/root-amd64/usr/lib/x86_64-linux-gnu/libbpf.so.*.*.* | head -1)")
check_true "amd64: SBOM's libbpf1 version contains the library's own (${so#libbpf.so.})" \
	jq_true --arg v "${so#libbpf.so.}" 'any(.packages[]; .name == "libbpf1" and (.versionInfo | contains($v)))' \
	"$WORK/root-amd64/usr/share/flowlens/sbom.spdx.json"

# Run both from the archive, as pulled.
image=oci-archive:$archive
lab_up
A=${LAB_POD_IP[a]} B=${LAB_POD_IP[b]}
ns=$(lab_ns n1)
mkdir -p "$WORK/www" && head -c 200000 /dev/urandom >"$WORK/www/blob"
lab_web b 8080 "$WORK/www"
gt_init n1 iptables GT FORWARD
gt_rule n1 iptables GT -s "$A" -d "$B" -p tcp --dport 8080 # 1
gt_rule n1 iptables GT -s "$B" -d "$A" -p tcp --sport 8080 # 2

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
mkdir -p "$WORK/coll" "$WORK/agent" "$WORK/state"
cp "$WORK/token" "$WORK/coll/token" && cp "$WORK/token" "$WORK/agent/token"
lab_metadata >"$WORK/coll/meta.json"
chmod 400 "$WORK/coll/token" "$WORK/agent/token"
chown -R 65532:65532 "$WORK/coll" "$WORK/state"
chmod 755 "$WORK"

coll=fl-$LAB_ID-collector agent=fl-$LAB_ID-agent
CONTAINERS+=("$coll" "$agent" "$agent-old")
# runc, not crun: crun refuses this machine's hybrid cgroup v1/v2 layout. Explicit limits,
# lower than this machine's hard limits: podman's defaults (2^20 files) exceed them, and the
# runtime sets them after the capabilities are gone.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ] && nofile=16384
run_opts=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit nproc=1024:1024
	--network "ns:/run/netns/$ns" --read-only --security-opt no-new-privileges)
# The chart's seccompProfile RuntimeDefault, as containerd >= 1.6 (EKS) builds it: the
# container runtime's default profile, with bpf() allowed to CAP_BPF and perf_event_open() to
# CAP_PERFMON. Podman's own default (containers-common 0.50 here) still gates both on
# CAP_SYS_ADMIN, like runtimes before those capabilities existed.
jq '.syscalls |= (map(if (.names | index("bpf")) then .names -= ["bpf", "perf_event_open"] else . end)
	+ [{names: ["bpf"], action: "SCMP_ACT_ALLOW", args: [], includes: {caps: ["CAP_BPF"]}, excludes: {}},
	   {names: ["perf_event_open"], action: "SCMP_ACT_ALLOW", args: [], includes: {caps: ["CAP_PERFMON"]}, excludes: {}}])' \
	/usr/share/containers/seccomp.json >"$WORK/runtime-default.json"
podman run -d --name "$coll" "${run_opts[@]}" --cap-drop all -v "$WORK/coll:/etc/flowlens:ro" -v "$WORK/state:/var/lib/flowlens" \
	"$image" --listen 0.0.0.0:9900 --token-file /etc/flowlens/token \
	--metadata-file /etc/flowlens/meta.json --state-dir /var/lib/flowlens \
	--new-series-hold 0 --shutdown-grace 0 >"$WORK/podman-collector.log" 2>&1 ||
	fail "podman run collector: $(tail -3 "$WORK/podman-collector.log")"
for _ in $(seq 100); do
	lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz && break
	sleep 0.1
done
check_true "collector from the image ready (uid 65532, no capabilities)" \
	lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9900/readyz
cpid=$(podman inspect -f '{{.State.Pid}}' "$coll")
check_eq "collector container: uid, effective and bounding capabilities" \
	"$(awk '$1 == "Uid:" { print $2 }' "/proc/$cpid/status") $(caps_of "$cpid" CapEff) $(caps_of "$cpid" CapBnd)" \
	"65532 0000000000000000 0000000000000000"

# The agent's JSON flow records go to its stdout: podman's log of the container.
agent_caps=(--user 0:0 --cap-drop all --cap-add BPF,NET_ADMIN,PERFMON,SYS_RESOURCE)
# Under a default profile that predates CAP_BPF the agent must stop with a clear error (the
# chart's values say to set seccompProfile Unconfined there).
podman run --rm --name "$agent-old" "${run_opts[@]}" "${agent_caps[@]}" \
	-v /sys/kernel/btf:/sys/kernel/btf:ro --entrypoint /usr/bin/flowlens-agent "$image" \
	--listen 127.0.0.1:9811 >"$WORK/old-seccomp.out" 2>&1
rc=$?
if [ "$rc" != 0 ] && grep -q 'needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON' "$WORK/old-seccomp.out"; then
	pass "agent under a pre-CAP_BPF seccomp profile: exit $rc, says what it needs"
else
	fail "agent under a pre-CAP_BPF seccomp profile: exit $rc, $(tail -1 "$WORK/old-seccomp.out")"
fi
podman run -d --name "$agent" "${run_opts[@]}" "${agent_caps[@]}" \
	--security-opt "seccomp=$WORK/runtime-default.json" \
	-v /sys/fs/bpf:/sys/fs/bpf:ro -v /sys/kernel/btf:/sys/kernel/btf:ro \
	-v "$WORK/agent:/var/run/secrets/flowlens:ro" -e "FLOWLENS_NODE_NAME=$LAB_ID-n1" \
	--entrypoint /usr/bin/flowlens-agent "$image" --interval 1s --listen 127.0.0.1:9810 \
	--output json --collector "http://${LAB_NODE_IP[n1]}:9900" \
	--token-file /var/run/secrets/flowlens/token >"$WORK/podman-agent.log" 2>&1 ||
	fail "podman run agent: $(tail -3 "$WORK/podman-agent.log")"
for _ in $(seq 100); do
	lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9810/healthz && break
	sleep 0.1
done
if ! lab_exec n1 curl -sf -o /dev/null http://127.0.0.1:9810/healthz; then
	fail "agent from the image healthy"
	podman logs "$agent" >"$WORK/n1.log" 2>&1
	finish
	exit 1
fi
pass "agent from the image healthy"
apid=$(podman inspect -f '{{.State.Pid}}' "$agent")
# What the runtime really gave the process (not what the test asked for): podman's defaults
# add a dozen capabilities unless --cap-drop all takes effect, and the agent must run with the
# four alone (privileges.sh checks that each of them is needed).
# A runtime can only grant what it holds: this sandbox's root has no CAP_SYS_RESOURCE (not
# needed on 5.11+, where BPF memory is charged to the cgroup instead of RLIMIT_MEMLOCK).
have=$((CHART_CAPS_MASK & 16#$(caps_of $$ CapBnd)))
[ "$have" = "$CHART_CAPS_MASK" ] ||
	echo "  info  this machine's root lacks some of the chart's four (mask $((CHART_CAPS_MASK & ~have))): not grantable here"
check_eq "agent container: bounding and effective capabilities = exactly the chart's four (those this machine has)" \
	"$((16#$(caps_of "$apid" CapBnd))) $((16#$(caps_of "$apid" CapEff)))" "$have $have"
check_eq "agent container: no_new_privs, seccomp filter on" \
	"$(awk '$1 == "NoNewPrivs:" || $1 == "Seccomp:" { printf "%s ", $2 }' "/proc/$apid/status")" "1 2 "
check_eq "agent: every interface attached" "$(agent_metric n1 flowlens_agent_attach_failures_total)" 0
check_eq "agent: version reported = the image's" \
	"$(lab_exec n1 curl -sf http://127.0.0.1:9810/metrics | sed -n 's/^flowlens_agent_build_info{.*version="\([^"]*\)".*/\1/p')" "$version"

# With a token (the chart always gives one) /v1/flows wants it, even from the node itself.
code() { lab_exec n1 curl -s -o /dev/null -w '%{http_code}' "$@" http://127.0.0.1:9810/v1/flows; }
check_eq "/v1/flows: no token, wrong token, the agent's token" \
	"$(code) $(code -H 'Authorization: Bearer wrong') $(code -H "Authorization: Bearer $(cat "$WORK/token")")" \
	"401 401 200"
check_eq "/v1/flows refusals counted (unauthorized)" \
	"$(agent_metric n1 'flowlens_agent_flows_api_refused_total{reason="unauthorized"}')" 2
for _ in $(seq 8); do lab_exec a curl -s -o /dev/null "http://$B:8080/blob" || fail "curl a->b"; done
sleep 2.5
podman stop -t 30 "$agent" >/dev/null
check_eq "agent container exit status (SIGTERM: final drain, detach)" \
	"$(podman inspect -f '{{.State.ExitCode}}' "$agent")" 0
podman logs "$agent" >"$WORK/agent.out" 2>&1
grep '^{' "$WORK/agent.out" >"$WORK/n1.jsonl"
grep -v '^{' "$WORK/agent.out" >"$WORK/n1.log"
rm -f "$WORK/agent.out"
sleep 0.5
want="$(gt_read n1 iptables GT 1) $(gt_read n1 iptables GT 2)"
check_eq "agent (image): a->b:8080 client-side totals = iptables" \
	"$(flow_sum n1 "$A" "$B" 8080 tcp client)" "$want"
check_collector_gt "collector (image)" 8080 8
read -r IN_ID EG_ID <<<"$(agent_prog_ids n1)"
check_true "agent's programs known from its log ($IN_ID $EG_ID)" test -n "$IN_ID" -a -n "$EG_ID"
check_eq "BPF links left by the agent's container" \
	"$(bpftool link show | grep -cE "prog (${IN_ID:-x}|${EG_ID:-x})\b")" 0
podman logs "$coll" >"$WORK/collector.log" 2>&1
finish
