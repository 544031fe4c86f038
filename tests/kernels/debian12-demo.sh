#!/usr/bin/env bash
# `make demo` on a stock Debian 12 (run by tests/kernels/debian12-guest.sh inside the guest of
# `make debian12`): scripts/demo.sh as a user runs it (its live screen, Chromium drawing the
# dashboards every minute), on Debian 12's 6.1 kernel with Debian 12's packages. `make demo`'s
# first two steps (installing packages, building) happened on the host, for the same Debian 12;
# the guest has no network. Checks, each against what the demo itself does not decide:
#  - the demo comes up and its agents attach through legacy TC on both nodes' ENIs (tc's own
#    listing; 6.1 has no tcx);
#  - its first drawing of the dashboards, and how long after the lab came up (issue 29 asks for
#    the first picture within 90 s on a real machine; this guest is emulated, so it is
#    reported, not bounded);
#  - a drawing in which every panel of every dashboard has data and none fails (the renderer's
#    own verdict over Grafana's libraries; panels whose description says "Empty off AWS", the
#    ENA allowance ones, may be empty), within DEBIAN12_DEMO_LIMIT seconds (default 1200);
#  - the flow map of that drawing holds the shop's calls as the demo's client makes them
#    (client -> web -> api -> db, client -> cart, client -> kube-dns), each with traffic;
#  - Ctrl-C (SIGINT) stops the demo and removes its namespaces.
set -u
cd "$(dirname "$0")/../.." || exit 1
checks=0 fails=0
ok() { checks=$((checks + 1)); echo "  ok    $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "  FAIL  $*"; }
limit=${DEBIAN12_DEMO_LIMIT:-1200}
export LAB_ID=d12demo$$
dash=/tmp/$LAB_ID-dashboards
out=/tmp/$LAB_ID-screen.txt
t0=$(date +%s)
# Its own process group (job control), as in a terminal: Ctrl-C is SIGINT to the whole group.
set -m
# (Chromium under emulation: minutes where a real machine takes seconds.)
RENDER_TIMEOUT_S=${RENDER_TIMEOUT_S:-900} DEMO_DASHBOARDS=$dash DEMO_PROM_PORT=19090 \
	scripts/demo.sh >"$out" 2>&1 &
demo=$!
set +m
stopped=0
stop_demo() {
	[ "$stopped" = 1 ] && return
	stopped=1
	kill -INT -- -"$demo" 2>/dev/null
	for _ in $(seq 600); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$demo" 2>/dev/null
	wait "$demo" 2>/dev/null
}
trap 'stop_demo; rm -rf "$dash" "$out"' EXIT
elapsed() { echo $(($(date +%s) - t0)); }

# Up: the live screen's first frame (printed once the lab, agents, collector and Prometheus run).
t_up=""
while [ "$(elapsed)" -lt "$limit" ] && kill -0 "$demo" 2>/dev/null; do
	grep -q "flowlens demo (lab $LAB_ID" "$out" && { t_up=$(elapsed) && break; }
	sleep 1
done
if [ -z "$t_up" ]; then
	tail -30 "$out" | sed 's/^/  | /'
	bad "the demo did not come up within $limit s"
	echo "  $checks checks, $fails failures"
	exit 1
fi
ok "the demo is up ($t_up s after scripts/demo.sh started: lab, agents, collector, Prometheus)"
works=(/tmp/"$LAB_ID"-demo.*)
work=${works[0]}
for n in n1 n2; do
	f=$(ip netns exec "$LAB_ID-$n" tc filter show dev eth0 ingress 2>/dev/null | grep -c flowlens)
	e=$(ip netns exec "$LAB_ID-$n" tc filter show dev eth0 egress 2>/dev/null | grep -c flowlens)
	if [ "$f" -ge 1 ] && [ "$e" -ge 1 ]; then
		ok "$n: the agent's programs on eth0 by legacy TC (tc filter show: ingress and egress)"
	else
		bad "$n: tc filter show dev eth0 lists flowlens on ingress $f times, egress $e times"
		[ -n "$work" ] && head -20 "$work/$n.log" | sed 's/^/  | /'
	fi
done

# Drawings: each round of the demo's renderer rewrites its log, then copies the PNGs.
png=$dash/flowlens-flow-map.png
first="" clean="" last="" said=""
while [ "$(elapsed)" -lt "$limit" ] && kill -0 "$demo" 2>/dev/null; do
	# What the renderer says meanwhile, when it says something new (every few minutes).
	now_said=$(tail -1 "$work/render.log" 2>/dev/null | cut -c1-160)
	if [ -n "$now_said" ] && [ "$now_said" != "$said" ]; then
		said=$now_said
		echo "  info  renderer at $(elapsed) s: $said"
	fi
	if [ -e "$png" ]; then
		m=$(stat -c %Y "$png")
		if [ "$m" != "$last" ]; then
			last=$m
			verdict=$(grep '^render: [0-9]* problem' "$work/render.log" 2>/dev/null | tail -1)
			if [ -z "$first" ]; then
				first=$(elapsed)
				ok "first drawing of the dashboards $((first - t_up)) s after the demo was up ($first s after start; ${verdict:-no verdict})"
			fi
			echo "  info  drawing at $(elapsed) s: ${verdict:-no verdict}"
			if [ "$verdict" = "render: 0 problem(s); $work/drawing/result.json" ]; then
				clean=$(elapsed)
				cp "$work/drawing/result.json" "/tmp/$LAB_ID-result.json"
				break
			fi
		fi
	fi
	sleep 2
done
[ -n "$first" ] || bad "no drawing of the dashboards within $limit s (render log: $(tail -3 "$work/render.log" 2>/dev/null | tr '\n' ' '))"
if [ -n "$clean" ]; then
	pngs=("$dash"/*.png)
	n=${#pngs[@]}
	ok "a drawing with every panel of every dashboard showing data, none failing, $((clean - t_up)) s after the demo was up ($n PNGs, $(grep -c '^ok' "$work/render.log") panels)"
else
	grep '^FAIL' "$work/render.log" 2>/dev/null | head -10 | sed 's/^/  | /'
	bad "no drawing without failing or empty panels within $limit s"
fi

# The flow map of that drawing against the demo's own client.
if [ -n "$clean" ]; then
	res=/tmp/$LAB_ID-result.json
	for e in "shop/client -> shop/web" "shop/web -> shop/api" "shop/api -> shop/db" \
		"shop/client -> shop/cart" "shop/client -> kube-system/coredns"; do
		v=$(jq -r --arg e "$e" '[.. | objects | select(has("edges")) | .edges[] | select(.id == $e) | .mainStatValue] | first // empty' "$res")
		if [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v > 0) }'; then
			ok "flow map: $e, $(printf '%.2f' "$v") kB/s"
		else
			bad "flow map: no edge $e with traffic (edges: $(jq -r '[.. | objects | select(has("edges")) | .edges[].id] | unique | join(", ")' "$res" | head -c 600))"
		fi
	done
	rm -f "$res"
fi

stop_demo
left=$(ip netns list | grep -c "^$LAB_ID-")
if [ "$left" = 0 ] && grep -q "^demo: clean" "$out"; then
	ok "Ctrl-C stopped the demo and removed its namespaces"
else
	bad "after Ctrl-C: $left namespaces of $LAB_ID left; the demo said: $(tail -2 "$out" | tr '\n' ' ')"
fi
echo "  $checks checks, $fails failures"
[ "$fails" = 0 ]
