#!/usr/bin/env bash
# The `make debian12` guest (PID 1 of the QEMU guest runs this, tests/kernels/debian12.sh boots
# it): the host end-to-end tests that matter for attach and translation, unchanged, on Debian
# 12's stock 6.1 cloud kernel with Debian 12's own tools. Each test prints its checks; then one
# "RESULT <name> <pass|FAIL|SKIP|TIMEOUT> <seconds> <checks summary>" line per test for the host
# to collect. Exits non-zero if any test did not pass (a skip is not a pass).
# $1: "all", or a comma-separated list of the test names below.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP" || exit 1
# name | environment | script. The last is not one of the host's tests: a supplement to
# flows.sh's pre-existing-connection check with a connection that outlasts the emulated agent's
# start (see that script); its result does not stand in for flows.sh's.
tests=(
	"flows-tc|ATTACH_MODE=tc|tests/e2e/flows.sh"
	"flows|-|tests/e2e/flows.sh"
	"lifecycle|-|tests/e2e/lifecycle.sh"
	"identity-kfunc|XLATE=kfunc|tests/e2e/identity.sh"
	"identity-netlink|XLATE=netlink|tests/e2e/identity.sh"
	"signals|-|tests/e2e/signals.sh"
	"netpol|-|tests/e2e/netpol.sh"
	"demo|-|tests/kernels/debian12-demo.sh"
	"preexisting-long|-|tests/kernels/debian12-preexisting.sh"
)
want=${1:-all}
[ -n "$want" ] || want=all
# On a node kube-proxy has loaded conntrack (a module in Debian's kernel) before the agent starts.
modprobe nf_conntrack
echo "=== Debian $(cat /etc/debian_version) userspace, kernel $(uname -r) ($(nproc) CPUs, $(awk '$1 == "MemTotal:" { printf "%d MiB", $2 / 1024 }' /proc/meminfo))"
echo "    $(iptables -V), $(bash --version | head -1), $(curl --version | head -1 | cut -d' ' -f1-2), $(jq --version), $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3), $(iperf3 --version | head -1 | cut -d' ' -f1-2)"
# For the record (the tests' own time limits assume a real machine; this guest is emulated):
# how long the agent takes from exec to a healthy /healthz here, as agent_start waits for it.
ip netns add d12probe && ip -n d12probe link set lo up
t0=$(date +%s%N)
ip netns exec d12probe "$TOP/build/flowlens-agent" -i 'none*' --listen 127.0.0.1:9819 \
	--interval 1s --log-level info >/tmp/debian12-agent-start.log 2>&1 &
apid=$!
until ip netns exec d12probe curl -sf -o /dev/null http://127.0.0.1:9819/healthz; do
	kill -0 "$apid" 2>/dev/null || break
	sleep 0.05
done
echo "    the agent from exec to a healthy /healthz: $((($(date +%s%N) - t0) / 1000000)) ms"
kill -TERM "$apid" 2>/dev/null
wait "$apid" 2>/dev/null
ip netns del d12probe
rc=0
for t in "${tests[@]}"; do
	IFS='|' read -r name envs script <<<"$t"
	[ "$want" = all ] || [[ ,$want, == *",$name,"* ]] || continue
	[ "$envs" = - ] && envs=
	echo "=== $name: ${envs:+$envs }$script"
	start=$(date +%s)
	# shellcheck disable=SC2086 # envs: VAR=value words
	env $envs KEEP_WORK=1 timeout -k 10 "${DEBIAN12_TEST_TIMEOUT:-1500}" bash "$script" 2>&1 |
		tee "/tmp/debian12-$name.out"
	trc=${PIPESTATUS[0]}
	secs=$(($(date +%s) - start))
	case $trc in
	0) verdict=pass ;;
	77) verdict=SKIP ;;
	124 | 137) verdict=TIMEOUT ;;
	*) verdict=FAIL ;;
	esac
	[ "$trc" = 0 ] || rc=1
	summary=$(grep -E '^  [0-9]+ checks, [0-9]+ failures' "/tmp/debian12-$name.out" | tail -1 | sed 's/^ *//')
	[ "$verdict" = SKIP ] && summary=$(grep -m1 '^SKIP' "/tmp/debian12-$name.out")
	# The test kept its work directory (KEEP_WORK=1): on a failure, the start of each agent's
	# log (the test itself shows only the last lines), then it goes.
	lab=$(sed -n '1s/.*: lab \([a-z0-9]*\).*/\1/p' "/tmp/debian12-$name.out")
	if [ "$trc" != 0 ] && [ -n "$lab" ]; then
		for f in /tmp/"$lab".*/n[0-9].log; do
			[ -f "$f" ] || continue
			echo "  --- first lines of $(basename "$f")"
			head -n 6 "$f" | sed 's/^/  | /'
		done
	fi
	[ -n "$lab" ] && rm -rf /tmp/"$lab".*
	echo "RESULT $name $verdict $secs ${summary:-no summary (exit $trc)}"
	# Whatever a failed test left behind must not change the next one.
	for ns in $(ip netns list | awk '{ print $1 }'); do ip netns del "$ns" 2>/dev/null; done
done
echo "DEBIAN12-UPTIME $(cut -d. -f1 /proc/uptime)"
exit $rc
