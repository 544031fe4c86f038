/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Tracepoints: TCP retransmissions and kernel drops with their reason, by tuple. Optional. */
#ifndef FLOWLENS_EVENTS_BPF_H
#define FLOWLENS_EVENTS_BPF_H

/*
 * One event for k's entry, made if missing. The insert can fail other than by a race with
 * another CPU's insert (then the entry is there): the hash bucket's lock not taken (busy on
 * this CPU: -EBUSY; on 6.15+, whose bucket locks give up after a timeout, a holder whose vCPU
 * stalled: -ETIMEDOUT). Such an event is lost, and counted (FL_CNT_EVENT_LOST).
 */
static __always_inline void bump(void *map, const struct fl_event_key *k)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, k);

	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(map, k, &one, BPF_NOEXIST)) {
		if ((v = bpf_map_lookup_elem(map, k)))
			__sync_fetch_and_add(v, 1);
		else
			count(FL_CNT_EVENT_LOST);
	}
}

/* A retransmission by sk, counted under the socket's own tuple (saddr = its address). */
static __always_inline int count_retransmit(const struct sock *sk)
{
	struct fl_event_key k = {};
	__u16 family;

	if (!sk)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family == 2 /* AF_INET */) {
		k.saddr[2] = k.daddr[2] = bpf_htonl(0xffff);
		k.saddr[3] = sk->__sk_common.skc_rcv_saddr;
		k.daddr[3] = sk->__sk_common.skc_daddr;
	} else if (family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&k.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&k.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return 0;
	}
	k.sport = sk->__sk_common.skc_num;
	k.dport = bpf_ntohs(sk->__sk_common.skc_dport);
	k.proto = IPPROTO_TCP;
	k.gen = event_gen;
	bump(&retrans, &k);
	return 0;
}

/* A dropped packet's addresses and ports, counted in the drops map under its reason. */
static __always_inline int count_drop(struct sk_buff *skb, __u32 reason)
{
	unsigned char *head;
	__u16 nh, th, proto;
	struct fl_event_key k = {};
	__u8 ver;

	if (!skb)
		return 0;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	th = BPF_CORE_READ(skb, transport_header);
	proto = BPF_CORE_READ(skb, protocol);
	if (nh == 0xffff || bpf_probe_read_kernel(&ver, 1, head + nh))
		return 0;
	if (proto == bpf_htons(ETH_P_IP_) && (ver >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		k.saddr[2] = k.daddr[2] = bpf_htonl(0xffff);
		k.saddr[3] = ip.saddr;
		k.daddr[3] = ip.daddr;
		k.proto = ip.protocol;
		if (th == 0xffff || th <= nh)
			th = nh + (__u16)(ip.ihl * 4);
	} else if (proto == bpf_htons(ETH_P_IPV6_) && (ver >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		__builtin_memcpy(k.saddr, &ip6.saddr, 16);
		__builtin_memcpy(k.daddr, &ip6.daddr, 16);
		k.proto = ip6.nexthdr;
		if (th == 0xffff || th <= nh)
			th = nh + 40;
	} else {
		return 0;
	}
	if (k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_probe_read_kernel(ports, sizeof(ports), head + th) == 0) {
			k.sport = bpf_ntohs(ports[0]);
			k.dport = bpf_ntohs(ports[1]);
		}
	}
	k.reason = reason;
	k.gen = event_gen;
	bump(&drops, &k);
	return 0;
}

#endif
