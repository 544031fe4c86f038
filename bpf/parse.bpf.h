/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bounded packet parser for the TC programs: Ethernet (up to two VLAN tags), IPv4, IPv6 (a
 * bounded walk of extension headers), TCP, UDP, ICMP, ICMPv6. Every read is preceded by a
 * bounds check against data_end.
 */
#ifndef FLOWLENS_PARSE_BPF_H
#define FLOWLENS_PARSE_BPF_H

#include "flow.h"

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58
#define IPV6_EXT_MAX 4

enum parse_result {
	PARSE_OK = 0,
	PARSE_TRUNCATED,
	PARSE_NON_IP,
	PARSE_FRAGMENT, /* OK, but a non-first fragment: no ports */
	PARSE_EXT_LIMIT,
};

struct parsed {
	__u32 l3_off;
	__u32 l3_len; /* IPv4 total length, or IPv6 payload length + 40 */
	__u32 l4_off;
	__u32 payload_off; /* TCP: after the options; UDP: after the header */
	__u8 tcp_flags;
	__u8 ipv4;
};

static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto, struct fl_key *key,
				    struct parsed *p)
{
	switch (proto) {
	case IPPROTO_TCP_: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return PARSE_TRUNCATED;
		key->sport = bpf_ntohs(th->source);
		key->dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
		p->payload_off = p->l4_off + (__u32)(((__u8 *)th)[12] >> 4) * 4;
		return PARSE_OK;
	}
	case IPPROTO_UDP_: {
		struct udphdr *uh = l4;

		p->payload_off = p->l4_off + 8;
		if ((void *)(uh + 1) > data_end)
			return PARSE_TRUNCATED;
		key->sport = bpf_ntohs(uh->source);
		key->dport = bpf_ntohs(uh->dest);
		return PARSE_OK;
	}
	case IPPROTO_ICMP_:
	case IPPROTO_ICMPV6_: {
		__u8 echo_req = proto == IPPROTO_ICMP_ ? 8 : 128;
		__u8 echo_rep = proto == IPPROTO_ICMP_ ? 0 : 129;
		__u8 *b = l4;

		if (b + 8 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		if (b[0] == echo_req)
			key->sport = bpf_ntohs(*(__be16 *)(b + 4));
		else if (b[0] == echo_rep)
			key->dport = bpf_ntohs(*(__be16 *)(b + 4));
		else
			key->sport = (__u16)(b[0] << 8 | b[1]);
		return PARSE_OK;
	}
	default:
		/* Other protocols are flows keyed by addresses and protocol number only. */
		return PARSE_OK;
	}
}

/*
 * Fill key (addresses, ports, protocol) from the frame in [data, data_end). The caller has
 * zeroed key and sets ifindex and dir.
 */
static __always_inline int parse_packet(void *data, void *data_end, struct fl_key *key,
					struct parsed *p)
{
	struct ethhdr *eth = data;
	void *pos = eth + 1;
	__be16 h_proto;

	if (pos > data_end)
		return PARSE_TRUNCATED;
	h_proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = pos;

		if (h_proto != bpf_htons(ETH_P_8021Q_) && h_proto != bpf_htons(ETH_P_8021AD_))
			break;
		if ((void *)(vh + 1) > data_end)
			return PARSE_TRUNCATED;
		h_proto = vh->h_vlan_encapsulated_proto;
		pos = vh + 1;
	}
	p->l3_off = (__u32)(pos - data);

	if (h_proto == bpf_htons(ETH_P_IP_)) {
		struct iphdr *ip = pos;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return PARSE_TRUNCATED;
		if (ip->version != 4 || ip->ihl < 5)
			return PARSE_TRUNCATED;
		ihl = (__u32)ip->ihl * 4;
		p->ipv4 = 1;
		key->proto = ip->protocol;
		key->saddr[2] = bpf_htonl(0x0000ffff);
		key->daddr[2] = bpf_htonl(0x0000ffff);
		key->saddr[3] = ip->saddr;
		key->daddr[3] = ip->daddr;
		if (ip->frag_off & bpf_htons(0x1fff))
			return PARSE_FRAGMENT;
		pos += ihl;
		if (pos > data_end)
			return PARSE_TRUNCATED;
		p->l3_len = bpf_ntohs(ip->tot_len);
		p->l4_off = (__u32)(pos - data);
		return parse_l4(pos, data_end, key->proto, key, p);
	}

	if (h_proto == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr *ip6 = pos;
		__u8 nexthdr;

		if ((void *)(ip6 + 1) > data_end)
			return PARSE_TRUNCATED;
		if (ip6->version != 6)
			return PARSE_TRUNCATED;
		nexthdr = ip6->nexthdr;
		__builtin_memcpy(key->saddr, &ip6->saddr, 16);
		__builtin_memcpy(key->daddr, &ip6->daddr, 16);
		pos = ip6 + 1;

#pragma unroll
		for (int i = 0; i < IPV6_EXT_MAX; i++) {
			__u8 *h = pos;
			__u32 len;

			switch (nexthdr) {
			case 0: /* hop-by-hop */
			case 43: /* routing */
			case 60: /* destination options */
				if (h + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				len = ((__u32)h[1] + 1) * 8;
				break;
			case 51: /* AH */
				if (h + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				len = ((__u32)h[1] + 2) * 4;
				break;
			case 44: /* fragment */
				if (h + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				if (*(__be16 *)(h + 2) & bpf_htons(0xfff8)) {
					key->proto = h[0];
					return PARSE_FRAGMENT;
				}
				len = 8;
				break;
			default:
				key->proto = nexthdr;
				p->l3_len = (__u32)bpf_ntohs(ip6->payload_len) + 40;
				p->l4_off = (__u32)(pos - data);
				return parse_l4(pos, data_end, nexthdr, key, p);
			}
			nexthdr = h[0];
			pos += len;
		}
		key->proto = nexthdr;
		return PARSE_EXT_LIMIT;
	}

	return PARSE_NON_IP;
}

#endif
