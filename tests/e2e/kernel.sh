# shellcheck shell=bash
# shellcheck disable=SC2034 # KERNEL_*, ATTACH_*, XLATE_*: set for the tests that source this
# What the kernel offers the agent, as the agent's own probe (agent/probe.c) reports it, and the
# attach and translation modes the tests must therefore run and expect. Sourced after lib.sh
# (uses $AGENT, $WORK, $TOP, LAB_ID, pass/fail).
#
#   kernel_probe        asks the agent (flowlens_agent_feature_info of an agent started for a
#                       moment, as root, in a namespace of its own with no interface to attach)
#                       and sets KERNEL_TCX and KERNEL_KFUNCS (1 or 0); checks that its answer
#                       agrees with the facts its probe reads (kernel BTF: the BPF_TCX_INGRESS
#                       attach type; bpf_skb_ct_lookup in vmlinux or nf_conntrack's module BTF,
#                       which a root agent may open)
#   attach_plan [tcx|tc|auto]   sets ATTACH_ARG (the agent's --attach-mode) and ATTACH_MODE_WANT
#                       (tcx or tc: the mode its attachments must show)
#   xlate_plan [kfunc|netlink|auto]   sets XLATE_ARG (--translation) and XLATE_WANT
#   agent_hooks NODE IN_ID EG_ID   the hooks in NODE's namespace that run the agent's programs,
#                       as the kernel lists them (tcx chains, TC filters): "IFNAME DIR MODE" lines
#   want_hooks NODE MODE [GLOBS]   the same lines for every interface of NODE matching GLOBS
#                       (default: the agent's default --interfaces)
#
# A tcx-less kernel (before 6.6: Debian 12's and AL2023's 6.1) or one without conntrack kfuncs
# is simulated on this one with FLOWLENS_TEST_NO_TCX=1 / FLOWLENS_TEST_NO_KFUNCS=1: the probe's
# answer is overridden and, since the agent's auto mode would still find them here, the agent
# is given the fallback explicitly (--attach-mode tc, --translation netlink). On a kernel that
# really lacks them the agent runs in auto mode, so its own fallback is what is tested.

# Sourced once (lib.sh may source it too): a second source must not forget a probe's answer.
[ -n "${FLOWLENS_KERNEL_SH:-}" ] && return 0
FLOWLENS_KERNEL_SH=1
KERNEL_PROBED=0
KERNEL_TCX=
KERNEL_TCX_REAL=
KERNEL_KFUNCS=
KERNEL_FORCED=

kernel_probe() {
	[ "$KERNEL_PROBED" = 1 ] && return 0
	local ns="${LAB_ID}-kprobe" pid m="" tcx kf btf_tcx=0 btf_kf=0
	# The facts the probe reads, read here first (before the agent's netlink use may load
	# nf_conntrack): names in the kernel's BTF string tables, NUL-separated. An agent that
	# misjudged the kernel would otherwise send every test down the wrong branch unnoticed.
	grep -qazx BPF_TCX_INGRESS /sys/kernel/btf/vmlinux 2>/dev/null && btf_tcx=1
	grep -qazx bpf_skb_ct_lookup /sys/kernel/btf/vmlinux /sys/kernel/btf/nf_conntrack 2>/dev/null && btf_kf=1
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	# Explicit modes: FLOWLENS_ATTACH_MODE / FLOWLENS_TRANSLATION in the environment (the kernel
	# matrix sets them) must not change what the probe is asked.
	ip netns exec "$ns" "${KERNEL_PROBE_AGENT:-$AGENT}" -i 'none*' --listen 127.0.0.1:9819 \
		--attach-mode auto --translation auto --interval 1s --log-level info \
		>"$WORK/kprobe.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		m=$(ip netns exec "$ns" curl -sf --max-time 2 http://127.0.0.1:9819/metrics) && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	tcx=$(sed -n 's/^flowlens_agent_feature_info{feature="tcx",state="\([a-z]*\)".*/\1/p' <<<"$m")
	kf=$(sed -n 's/^flowlens_agent_feature_info{feature="conntrack_kfuncs",state="\([a-z]*\)".*/\1/p' <<<"$m")
	if [ -z "$tcx" ] || [ -z "$kf" ]; then
		fail "kernel probe: the agent did not report its features ($(tail -1 "$WORK/kprobe.log"))"
		return 1
	fi
	KERNEL_TCX=$([ "$tcx" = on ] && echo 1 || echo 0)
	KERNEL_TCX_REAL=$KERNEL_TCX
	KERNEL_KFUNCS=$([ "$kf" = on ] && echo 1 || echo 0)
	check_eq "kernel probe: the agent's tcx and conntrack kfuncs = kernel BTF's" \
		"$KERNEL_TCX $KERNEL_KFUNCS" "$btf_tcx $btf_kf"
	if [ "${FLOWLENS_TEST_NO_TCX:-0}" = 1 ]; then
		KERNEL_TCX=0
		KERNEL_FORCED+=" no-tcx"
	fi
	if [ "${FLOWLENS_TEST_NO_KFUNCS:-0}" = 1 ]; then
		KERNEL_KFUNCS=0
		KERNEL_FORCED+=" no-kfuncs"
	fi
	KERNEL_PROBED=1
	echo "  info  kernel $(uname -r): tcx $tcx, conntrack kfuncs $kf${KERNEL_FORCED:+ (overridden:$KERNEL_FORCED)}"
}

# attach_plan [REQUESTED]: tcx where the kernel offers it. A request for tcx on a kernel
# without it runs auto (whose fallback to legacy TC is then what is tested), not a skip.
attach_plan() {
	local req=${1:-auto}
	kernel_probe || return 1
	case $req in
	tc) ATTACH_ARG=tc ATTACH_MODE_WANT=tc ;;
	tcx | auto)
		if [ "$KERNEL_TCX" = 1 ]; then
			ATTACH_ARG=$req ATTACH_MODE_WANT=tcx
		elif [ "${FLOWLENS_TEST_NO_TCX:-0}" = 1 ]; then
			ATTACH_ARG=tc ATTACH_MODE_WANT=tc
		else
			ATTACH_ARG=auto ATTACH_MODE_WANT=tc
		fi
		;;
	*)
		fail "attach mode '$req': tcx, tc or auto"
		return 1
		;;
	esac
}

# xlate_plan [REQUESTED]: kfunc where the kernel offers the kfuncs, else netlink.
xlate_plan() {
	local req=${1:-auto}
	kernel_probe || return 1
	case $req in
	netlink) XLATE_ARG=netlink XLATE_WANT=netlink ;;
	kfunc | auto)
		if [ "$KERNEL_KFUNCS" = 1 ]; then
			XLATE_ARG=$req XLATE_WANT=kfunc
		elif [ "${FLOWLENS_TEST_NO_KFUNCS:-0}" = 1 ]; then
			XLATE_ARG=netlink XLATE_WANT=netlink
		else
			XLATE_ARG=auto XLATE_WANT=netlink
		fi
		;;
	*)
		fail "translation '$req': kfunc, netlink or auto"
		return 1
		;;
	esac
}

# The interfaces of a node namespace, one name a line.
node_ifaces() {
	ip -n "$(lab_ns "$1")" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
}

# agent_hooks NODE IN_ID EG_ID: "IFNAME ingress|egress tcx|tc" for every hook of NODE's
# interfaces whose tcx chain or TC filters hold the agent's program, sorted.
agent_hooks() {
	local node=$1 in=$2 eg=$3 d dir id
	for d in $(node_ifaces "$node"); do
		for dir in ingress egress; do
			id=$in
			[ "$dir" = egress ] && id=$eg
			if [ "$KERNEL_TCX_REAL" = 1 ]; then
				# (a tcx-less kernel refuses the query; where tcx exists it is asked even
				# when the test runs legacy TC: nothing of ours may be there then)
				lab_exec "$node" "$TOP/build/flowlens-bench" tcx-query "$d" "$dir" 2>/dev/null |
					tr ' ' '\n' | grep -qx "$id" && echo "$d $dir tcx"
			fi
			lab_exec "$node" tc filter show dev "$d" "$dir" 2>/dev/null |
				grep -q " id $id " && echo "$d $dir tc"
		done
	done | sort
}

# want_hooks NODE MODE [GLOBS]: the lines agent_hooks must print for an agent attached in MODE
# to every interface of NODE matching GLOBS (comma-separated shell globs).
want_hooks() {
	local node=$1 mode=$2 globs=${3:-"eni*,eth*,ens*,veth*,vlan[0-9a-f]*"} d g
	local -a gl
	IFS=, read -r -a gl <<<"$globs"
	for d in $(node_ifaces "$node"); do
		for g in "${gl[@]}"; do
			# shellcheck disable=SC2053 # a glob on purpose
			if [[ $d == $g ]]; then
				echo "$d egress $mode"
				echo "$d ingress $mode"
				break
			fi
		done
	done | sort
}

# agent_tp_links PID: "tp_name program_name" of every tracepoint link the process holds (its
# own descriptors: other tests' programs, loaded at the same time, are not counted), sorted.
agent_tp_links() {
	local pid=$1 f tp prog
	for f in /proc/"$pid"/fdinfo/*; do
		[ "$(readlink "/proc/$pid/fd/${f##*/}" 2>/dev/null)" = "anon_inode:bpf_link" ] || continue
		tp=$(awk '$1 == "tp_name:" { print $2 }' "$f" 2>/dev/null)
		[ -n "$tp" ] || continue
		prog=$(awk '$1 == "prog_id:" { print $2 }' "$f")
		echo "$tp $(bpftool -j prog show id "$prog" 2>/dev/null | jq -r .name)"
	done | sort
}
