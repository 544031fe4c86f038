#!/usr/bin/env bash
# The kernel matrix's checks for the running kernel (PID 1 of the QEMU guest runs this; on this
# machine tests/kernels/run.sh does): test-bpf for every object the agent may load here, then
# the end-to-end lab (tests/kernels/lab.sh). Prints one "RESULT <name> <pass|FAIL>" line per
# part for the host to collect; exits non-zero if any part failed.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
rc=0
# On a node kube-proxy has loaded conntrack (a module on Debian's, AL2023's and Bottlerocket's
# kernels) long before the agent starts; its kfuncs exist only once it is loaded.
modprobe nf_conntrack 2>/dev/null
echo "=== test-bpf on $(uname -r)"
if "$TOP/build/test-bpf"; then echo "RESULT test-bpf pass"; else echo "RESULT test-bpf FAIL"; rc=1; fi
echo "=== lab on $(uname -r)"
if bash "$TOP/tests/kernels/lab.sh"; then echo "RESULT lab pass"; else echo "RESULT lab FAIL"; rc=1; fi
exit $rc
