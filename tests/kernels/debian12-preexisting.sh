#!/usr/bin/env bash
# A supplement to flows.sh for slow (emulated) guests, run by `make debian12`: flows.sh checks
# that a connection already open when the agent starts is counted with its initiator decided by
# the port heuristic, but its connection lasts 3 s from 1.3 s before the agent's exec, and an
# agent under QEMU's TCG takes ~6 s to attach (the kernel BTF probe, emulated), so there it has
# ended unseen. The same check with a connection that outlasts the agent's start: it separates
# "the feature fails on this kernel" from "the emulated guest is too slow for the test's timing".
# It does not replace flows.sh's result.
# shellcheck source=../e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=../e2e/kernel.sh
source "$(dirname "$0")/../e2e/kernel.sh"
echo "debian12-preexisting.sh: lab $LAB_ID"
lab_up
attach_plan auto || { finish; exit 1; }
A=${LAB_POD_IP[a]} C=${LAB_POD_IP[c]}
lab_exec c iperf3 -s -D -p 5204
sleep 0.3
lab_exec a iperf3 -c "$C" -p 5204 -t 20 -b 20M >/dev/null &
PRE=$!
sleep 1
t0=$(date +%s)
agent_start n1 --attach-mode "$ATTACH_ARG" || exit 1
echo "  info  the agent attached ($ATTACH_MODE_WANT) $(($(date +%s) - t0)) s after its exec, the connection open since 1.3 s before"
check_true "the pre-existing connection is still open when the agent has attached" kill -0 "$PRE"
wait "$PRE" || fail "iperf3 pre-existing connection"
sleep 1.5
agent_stop n1 || fail "agent n1 exit status"
check_eq "pre-existing connection: a is the client, decided by heuristic" \
	"$(jq -rs --arg c "$C" '[.[] | select(.server_port == 5204 and .protocol == "tcp" and .reporter == "client")] | map("\(.client_ip) \(.server_ip) \(.initiator)") | unique | join(",")' "$WORK/n1.jsonl")" \
	"$A $C heuristic"
finish
