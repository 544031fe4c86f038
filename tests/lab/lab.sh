#!/usr/bin/env bash
# shellcheck shell=bash
# The flowlens lab: an EKS-like cluster built from network namespaces on one machine.
#
#   node namespaces  <id>-n1, <id>-n2   ip_forward=1, rp_filter=0, an "ENI" named eth0 each,
#                                       joined by a veth pair (the VPC); 192.168.0.11 / .12
#   pod namespaces   <id>-<pod>          eth0 with a /32, default route via 169.254.1.1 and a
#                                       permanent neighbour for it (VPC CNI style); the host
#                                       side is eni<11 hex> in the node namespace with a /32
#                                       route to the pod
#   pod ranges       node1 10.1.1.0/24 (fd00:1:1::/64), node2 10.1.2.0/24 (fd00:1:2::/64)
#   ClusterIP        kube-proxy style iptables DNAT (KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP)
#
# Source this file, call lab_up, and make sure lab_down runs on exit (lab_up installs a trap
# unless LAB_NO_TRAP=1). Every name carries a per-run id so runs never collide.

LAB_ID=${LAB_ID:-fl$(printf '%04x' $((RANDOM)))$$}
LAB_NODES=()
LAB_PODS=()
declare -gA LAB_POD_NODE LAB_POD_IP LAB_POD_IP6 LAB_POD_VETH LAB_NODE_IP
# Kubernetes identity of the lab's objects, for lab_metadata: pod -> "namespace Kind/name"
# (Kind: Deployment, StatefulSet, DaemonSet, Job, Pod), node -> zone, "vip:port" -> service.
declare -gA LAB_POD_APP LAB_NODE_ZONE LAB_SVC

lab_ns() { echo "${LAB_ID}-$1"; }
lab_exec() { local ns; ns=$(lab_ns "$1"); shift; ip netns exec "$ns" "$@"; }

# eni + 11 hex characters of a hash of the pod's name, like the VPC CNI.
lab_veth_name() { echo "eni$(printf '%s' "$LAB_ID-$1" | sha1sum | cut -c1-11)"; }

lab_node() {
	local n=$1 ns
	ns=$(lab_ns "$n")
	ip netns add "$ns"
	LAB_NODES+=("$n")
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.forwarding=1
}

# Joins node1 and node2 through their "ENIs" (eth0 on both sides).
lab_link_nodes() {
	local a=$1 b=$2
	ip -n "$(lab_ns "$a")" link add eth0 type veth peer name eth0 netns "$(lab_ns "$b")"
	LAB_NODE_IP[$a]=192.168.0.11
	LAB_NODE_IP[$b]=192.168.0.12
	ip -n "$(lab_ns "$a")" addr add 192.168.0.11/24 dev eth0
	ip -n "$(lab_ns "$b")" addr add 192.168.0.12/24 dev eth0
	ip -n "$(lab_ns "$a")" -6 addr add fd00:0:0:ff::11/64 dev eth0 nodad
	ip -n "$(lab_ns "$b")" -6 addr add fd00:0:0:ff::12/64 dev eth0 nodad
	ip -n "$(lab_ns "$a")" link set eth0 up
	ip -n "$(lab_ns "$b")" link set eth0 up
	ip -n "$(lab_ns "$a")" route add 10.1.2.0/24 via 192.168.0.12 dev eth0
	ip -n "$(lab_ns "$b")" route add 10.1.1.0/24 via 192.168.0.11 dev eth0
	ip -n "$(lab_ns "$a")" -6 route add fd00:1:2::/64 via fd00:0:0:ff::12 dev eth0
	ip -n "$(lab_ns "$b")" -6 route add fd00:1:1::/64 via fd00:0:0:ff::11 dev eth0
}

# lab_pod_wire NODE POD IPV4 VETH: the pod's namespace, its eth0 with IPV4/32 and a default
# route via 169.254.1.1 (a permanent neighbour: the host side's MAC), the host side VETH in the
# node. Sets LAB_POD_MAC (the pod's eth0) and LAB_HOST_MAC (VETH) for the caller.
lab_pod_wire() {
	local node=$1 pod=$2 ip4=$3 veth=$4 nns pns
	nns=$(lab_ns "$node")
	pns=$(lab_ns "$pod")
	ip netns add "$pns"
	LAB_PODS+=("$pod")
	LAB_POD_NODE[$pod]=$node
	LAB_POD_IP[$pod]=$ip4
	LAB_POD_VETH[$pod]=$veth
	ip -n "$nns" link add "$veth" type veth peer name eth0 netns "$pns"
	ip -n "$pns" link set lo up
	ip -n "$pns" addr add "$ip4/32" dev eth0
	ip -n "$pns" link set eth0 up
	ip -n "$nns" link set "$veth" up
	LAB_HOST_MAC=$(ip -n "$nns" -o link show "$veth" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
	LAB_POD_MAC=$(ip -n "$pns" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
	ip -n "$pns" route add 169.254.1.1 dev eth0 scope link
	ip -n "$pns" route add default via 169.254.1.1 dev eth0
	ip -n "$pns" neigh add 169.254.1.1 lladdr "$LAB_HOST_MAC" dev eth0 nud permanent
}

# lab_pod NODE POD IPV4 IPV6: a pod wired the VPC CNI way.
lab_pod() {
	local node=$1 pod=$2 ip4=$3 ip6=$4 nns pns veth mac podmac
	nns=$(lab_ns "$node")
	pns=$(lab_ns "$pod")
	veth=$(lab_veth_name "$pod")
	lab_pod_wire "$node" "$pod" "$ip4" "$veth"
	LAB_POD_IP6[$pod]=$ip6
	mac=$LAB_HOST_MAC podmac=$LAB_POD_MAC
	ip -n "$pns" -6 addr add "$ip6/128" dev eth0 nodad
	ip -n "$pns" -6 route add fe80::1 dev eth0
	ip -n "$pns" -6 route add default via fe80::1 dev eth0
	ip -n "$pns" -6 neigh add fe80::1 lladdr "$mac" dev eth0 nud permanent
	ip -n "$nns" route add "$ip4/32" dev "$veth" scope link
	ip -n "$nns" -6 route add "$ip6/128" dev "$veth"
	ip -n "$nns" neigh add "$ip4" lladdr "$podmac" dev "$veth" nud permanent
	ip -n "$nns" -6 neigh add "$ip6" lladdr "$podmac" dev "$veth" nud permanent
}

# lab_branch_pod NODE POD IPV4 VLAN PEER: a pod with its own security groups, wired the way
# the VPC CNI wires a branch ENI: the host side of its veth is vlan<11 hex>, its traffic leaves
# through the branch ENI's interface vlan.eth.VLAN, kept there by policy routing (table
# 100 + VLAN, rules on both interfaces). On EKS vlan.eth.VLAN is an 802.1Q sub-interface of the
# trunk ENI; this machine's kernel has no 8021q, so here it is a veth pair of that name to PEER,
# the other node, which stands for the VPC's end of the branch ENI and routes the pod's /32
# through it.
lab_branch_pod() {
	local node=$1 pod=$2 ip4=$3 vid=$4 peer=$5 nns qns veth vl net
	local table=$((100 + $4))
	nns=$(lab_ns "$node")
	qns=$(lab_ns "$peer")
	veth=vlan$(printf '%s' "$LAB_ID-$pod" | sha1sum | cut -c1-11)
	vl=vlan.eth.$vid
	net=192.168.$table
	lab_pod_wire "$node" "$pod" "$ip4" "$veth"
	ip -n "$nns" link add "$vl" type veth peer name "$vl" netns "$qns"
	ip -n "$nns" addr add "$net.11/24" dev "$vl"
	ip -n "$qns" addr add "$net.12/24" dev "$vl"
	ip -n "$nns" link set "$vl" up
	ip -n "$qns" link set "$vl" up
	ip -n "$nns" route add "$ip4/32" dev "$veth" scope link table "$table"
	ip -n "$nns" route add default via "$net.12" dev "$vl" table "$table"
	ip -n "$nns" rule add iif "$veth" table "$table" priority 10
	ip -n "$nns" rule add iif "$vl" table "$table" priority 10
	ip -n "$nns" neigh add "$ip4" lladdr "$LAB_POD_MAC" dev "$veth" nud permanent
	ip -n "$qns" route add "$ip4/32" via "$net.11" dev "$vl"
}

lab_pod_del() {
	local pod=$1
	ip netns pids "$(lab_ns "$pod")" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$(lab_ns "$pod")" 2>/dev/null
	# The veth pair goes with the namespace; the node's /32 route goes with the veth.
}

# lab_clusterip VIP PORT TARGETPORT POD...: kube-proxy iptables-mode DNAT on every node.
# An IPv6 VIP uses ip6tables and the pods' IPv6 addresses; LAB_PROTO=udp (default tcp).
lab_clusterip() {
	local vip=$1 port=$2 tport=$3 n svc i prob ipt=iptables proto=${LAB_PROTO:-tcp} dst
	shift 3
	local backends=("$@") count=$#
	case $vip in *:*) ipt=ip6tables ;; esac
	svc="KUBE-SVC-$(printf '%s' "$vip:$port/$proto" | sha1sum | cut -c1-16 | tr a-f A-F)"
	for n in "${LAB_NODES[@]}"; do
		lab_exec "$n" $ipt -t nat -N KUBE-SERVICES 2>/dev/null || true
		lab_exec "$n" $ipt -t nat -C PREROUTING -j KUBE-SERVICES 2>/dev/null ||
			lab_exec "$n" $ipt -t nat -A PREROUTING -j KUBE-SERVICES
		lab_exec "$n" $ipt -t nat -C OUTPUT -j KUBE-SERVICES 2>/dev/null ||
			lab_exec "$n" $ipt -t nat -A OUTPUT -j KUBE-SERVICES
		lab_exec "$n" $ipt -t nat -N "$svc"
		lab_exec "$n" $ipt -t nat -A KUBE-SERVICES -d "$vip" -p "$proto" --dport "$port" -j "$svc"
		for i in "${!backends[@]}"; do
			local sep="KUBE-SEP-${svc:9:8}$i" remaining=$((count - i))
			if [ "$ipt" = ip6tables ]; then
				dst="[${LAB_POD_IP6[${backends[$i]}]}]:$tport"
			else
				dst="${LAB_POD_IP[${backends[$i]}]}:$tport"
			fi
			lab_exec "$n" $ipt -t nat -N "$sep"
			lab_exec "$n" $ipt -t nat -A "$sep" -p "$proto" -j DNAT --to-destination "$dst"
			if [ "$remaining" -gt 1 ]; then
				prob=$(awk -v r="$remaining" 'BEGIN { printf "%.5f", 1 / r }')
				lab_exec "$n" $ipt -t nat -A "$svc" -m statistic --mode random \
					--probability "$prob" -j "$sep"
			else
				lab_exec "$n" $ipt -t nat -A "$svc" -j "$sep"
			fi
		done
	done
}

# lab_external NODE NAME IP: a host outside the cluster (an "internet" address) behind NODE;
# every other node routes IP through NODE.
lab_external() {
	local node=$1 name=$2 ip=$3 nns xns veth n
	nns=$(lab_ns "$node")
	xns=$(lab_ns "$name")
	veth="x$(printf '%s' "$LAB_ID-$name" | sha1sum | cut -c1-12)"
	ip netns add "$xns"
	ip -n "$nns" link add "$veth" type veth peer name eth0 netns "$xns"
	ip -n "$xns" link set lo up
	ip -n "$xns" addr add "$ip/32" dev eth0
	ip -n "$xns" link set eth0 up
	ip -n "$nns" link set "$veth" up
	ip -n "$xns" route add 169.254.1.1 dev eth0 scope link
	ip -n "$xns" route add default via 169.254.1.1 dev eth0
	ip -n "$xns" neigh add 169.254.1.1 lladdr \
		"$(ip -n "$nns" -o link show "$veth" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)" \
		dev eth0 nud permanent
	ip -n "$nns" route add "$ip/32" dev "$veth" scope link
	for n in "${LAB_NODES[@]}"; do
		[ "$n" = "$node" ] || ip -n "$(lab_ns "$n")" route add "$ip/32" via "${LAB_NODE_IP[$node]}"
	done
}

# lab_web POD PORT DIR: nginx in the pod serving DIR on PORT (pid file and logs in DIR/..).
lab_web() {
	local pod=$1 port=$2 dir=$3 conf
	conf="$dir.nginx.conf"
	cat >"$conf" <<EOF
user root;
daemon on;
pid $dir.nginx.pid;
error_log $dir.nginx.err;
events { worker_connections 256; }
http { access_log off; server { listen $port; listen [::]:$port; root $dir; } }
EOF
	lab_exec "$pod" nginx -c "$conf"
}

# lab_veth_burst NODE add|del PREFIX FROM TO: veth pairs PREFIX<4 hex> (peer qPREFIX<4 hex>)
# created or deleted in one `ip -batch`, so the kernel sends their events as a burst, as when
# many pods start or stop together. PREFIX: at most 10 characters.
lab_veth_burst() {
	local ns op=$2 p=$3 i
	ns=$(lab_ns "$1")
	for i in $(seq "$4" "$5"); do
		if [ "$op" = add ]; then
			printf 'link add %s%04x type veth peer name q%s%04x\n' "$p" "$i" "$p" "$i"
		else
			printf 'link del %s%04x\n' "$p" "$i"
		fi
	done | ip -n "$ns" -batch -
}

lab_down() {
	local ns
	for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_ID}-"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	done
	for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_ID}-"); do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "/etc/netns/${LAB_ID}-"* 2>/dev/null
	return 0
}

# The standard two-node lab: pods a, b on node n1; c on n2; Service shop/web with ClusterIPs
# 10.100.0.10:80 and [fd00:100::10]:80 -> b, c :8080; Service shop/bulk 10.100.0.11:5201
# (TCP and UDP) -> c.
lab_up() {
	[ "${LAB_NO_TRAP:-0}" = 1 ] || trap lab_down EXIT
	lab_node n1
	lab_node n2
	lab_link_nodes n1 n2
	lab_pod n1 a 10.1.1.2 fd00:1:1::2
	lab_pod n1 b 10.1.1.3 fd00:1:1::3
	lab_pod n2 c 10.1.2.2 fd00:1:2::2
	lab_clusterip 10.100.0.10 80 8080 b c
	lab_clusterip fd00:100::10 80 8080 b c
	lab_clusterip 10.100.0.11 5201 5201 c
	LAB_PROTO=udp lab_clusterip 10.100.0.11 5201 5201 c
	LAB_NODE_ZONE[n1]=lab-zone-a
	LAB_NODE_ZONE[n2]=lab-zone-b
	LAB_POD_APP[a]="shop Deployment/client"
	LAB_POD_APP[b]="shop Deployment/web"
	LAB_POD_APP[c]="shop Deployment/web"
	LAB_SVC[10.100.0.10:80]="shop web 8080"
	LAB_SVC[fd00:100::10:80]="shop web 8080"
	LAB_SVC[10.100.0.11:5201]="shop bulk 5201"
}

# lab_metadata: the lab's pods, services and nodes as `kubectl get pods,svc,nodes,rs -o json`
# would print them (a List), for the collector's --metadata-file. Pods of a Deployment get a
# ReplicaSet "<name>-<hash>" and a pod-template-hash label, like the real controller makes.
lab_metadata() {
	local n p app ns kind name hash uid items=() key
	for n in "${LAB_NODES[@]}"; do
		items+=("$(printf '{"apiVersion":"v1","kind":"Node","metadata":{"name":"%s","labels":{"topology.kubernetes.io/zone":"%s"}},"status":{"addresses":[{"type":"InternalIP","address":"%s"},{"type":"Hostname","address":"%s"}]}}' \
			"$LAB_ID-$n" "${LAB_NODE_ZONE[$n]:-}" "${LAB_NODE_IP[$n]}" "$n")")
	done
	for p in "${LAB_PODS[@]}"; do
		ip netns list | grep -q "^$(lab_ns "$p")\b" || continue
		app=${LAB_POD_APP[$p]:-"default Pod/$p"}
		ns=${app%% *}
		kind=${app#* }
		name=${kind#*/}
		kind=${kind%%/*}
		uid=$(printf '%s' "$LAB_ID-$p" | sha1sum | cut -c1-32)
		case $kind in
		Deployment)
			hash=$(printf '%s' "$name" | sha1sum | cut -c1-10)
			items+=("$(printf '{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"namespace":"%s","name":"%s-%s","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"%s","controller":true}]}}' "$ns" "$name" "$hash" "$name")")
			items+=("$(printf '{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"%s","name":"%s-%s-%s","uid":"%s","labels":{"pod-template-hash":"%s"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"%s-%s","controller":true}]},"spec":{"nodeName":"%s"},"status":{"phase":"Running","podIP":"%s","podIPs":[{"ip":"%s"},{"ip":"%s"}]}}' \
				"$ns" "$name" "$hash" "$p" "$uid" "$hash" "$name" "$hash" "$LAB_ID-${LAB_POD_NODE[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP6[$p]}")")
			;;
		Pod)
			items+=("$(printf '{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"%s","name":"%s","uid":"%s"},"spec":{"nodeName":"%s"},"status":{"phase":"Running","podIP":"%s","podIPs":[{"ip":"%s"},{"ip":"%s"}]}}' \
				"$ns" "$name" "$uid" "$LAB_ID-${LAB_POD_NODE[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP6[$p]}")")
			;;
		*)
			items+=("$(printf '{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"%s","name":"%s-%s","uid":"%s","ownerReferences":[{"apiVersion":"apps/v1","kind":"%s","name":"%s","controller":true}]},"spec":{"nodeName":"%s"},"status":{"phase":"Running","podIP":"%s","podIPs":[{"ip":"%s"},{"ip":"%s"}]}}' \
				"$ns" "$name" "$p" "$uid" "$kind" "$name" "$LAB_ID-${LAB_POD_NODE[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP[$p]}" "${LAB_POD_IP6[$p]}")")
			;;
		esac
	done
	# One Service per namespace/name, with every ClusterIP (dual stack) and port it was given.
	local -A svc_ips svc_ports
	for key in "${!LAB_SVC[@]}"; do
		read -r ns name tport <<<"${LAB_SVC[$key]}"
		svc_ips[$ns/$name]+="${svc_ips[$ns/$name]:+,}\"${key%:*}\""
		svc_ports[$ns/$name]+="${svc_ports[$ns/$name]:+,}{\"port\":${key##*:},\"targetPort\":$tport}"
	done
	for key in "${!svc_ips[@]}"; do
		items+=("$(printf '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"%s","name":"%s"},"spec":{"clusterIP":%s,"clusterIPs":[%s],"ports":[%s]}}' \
			"${key%%/*}" "${key#*/}" "${svc_ips[$key]%%,*}" "${svc_ips[$key]}" "${svc_ports[$key]}")")
	done
	local IFS=,
	printf '{"apiVersion":"v1","kind":"List","items":[%s]}\n' "${items[*]}"
}
