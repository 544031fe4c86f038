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
	__u8 tcp_flags;
};

static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto, struct fl_key *key,
				    struct parsed *p)
{
	__u8 *b = l4;

	switch (proto) {
	case IPPROTO_TCP_:
		if (b + 20 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		key->sport = (__u16)(b[0] << 8 | b[1]);
		key->dport = (__u16)(b[2] << 8 | b[3]);
		p->tcp_flags = b[13];
		return PARSE_OK;
	case IPPROTO_UDP_:
		if (b + 8 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		key->sport = (__u16)(b[0] << 8 | b[1]);
		key->dport = (__u16)(b[2] << 8 | b[3]);
		return PARSE_OK;
	case IPPROTO_ICMP_:
	case IPPROTO_ICMPV6_: {
		__u8 echo_req = proto == IPPROTO_ICMP_ ? 8 : 128;
		__u8 echo_rep = proto == IPPROTO_ICMP_ ? 0 : 129;

		if (b + 8 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		if (b[0] == echo_req)
			key->sport = (__u16)(b[4] << 8 | b[5]);
		else if (b[0] == echo_rep)
			key->dport = (__u16)(b[4] << 8 | b[5]);
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
	__u8 *pos = data;
	__u16 h_proto;

	if (pos + ETH_HLEN_ > (__u8 *)data_end)
		return PARSE_TRUNCATED;
	h_proto = (__u16)(pos[12] << 8 | pos[13]);
	pos += ETH_HLEN_;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (h_proto != ETH_P_8021Q_ && h_proto != ETH_P_8021AD_)
			break;
		if (pos + 4 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		h_proto = (__u16)(pos[2] << 8 | pos[3]);
		pos += 4;
	}
	p->l3_off = (__u32)(pos - (__u8 *)data);

	if (h_proto == ETH_P_IP_) {
		__u32 ihl;
		__u16 frag;

		if (pos + 20 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		if ((pos[0] >> 4) != 4)
			return PARSE_TRUNCATED;
		ihl = (__u32)(pos[0] & 0x0f) * 4;
		if (ihl < 20)
			return PARSE_TRUNCATED;
		key->proto = pos[9];
		key->saddr[2] = bpf_htonl(0x0000ffff);
		key->daddr[2] = bpf_htonl(0x0000ffff);
		__builtin_memcpy(&key->saddr[3], pos + 12, 4);
		__builtin_memcpy(&key->daddr[3], pos + 16, 4);
		frag = (__u16)((pos[6] & 0x1f) << 8 | pos[7]);
		if (frag)
			return PARSE_FRAGMENT;
		if (ihl > 60)
			return PARSE_TRUNCATED;
		pos += ihl;
		if (pos > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		return parse_l4(pos, data_end, key->proto, key, p);
	}

	if (h_proto == ETH_P_IPV6_) {
		__u8 nexthdr;

		if (pos + 40 > (__u8 *)data_end)
			return PARSE_TRUNCATED;
		if ((pos[0] >> 4) != 6)
			return PARSE_TRUNCATED;
		nexthdr = pos[6];
		__builtin_memcpy(key->saddr, pos + 8, 16);
		__builtin_memcpy(key->daddr, pos + 24, 16);
		pos += 40;

#pragma unroll
		for (int i = 0; i < IPV6_EXT_MAX; i++) {
			__u32 len;

			switch (nexthdr) {
			case 0: /* hop-by-hop */
			case 43: /* routing */
			case 60: /* destination options */
				if (pos + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				len = ((__u32)pos[1] + 1) * 8;
				break;
			case 51: /* AH */
				if (pos + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				len = ((__u32)pos[1] + 2) * 4;
				break;
			case 44: /* fragment */
				if (pos + 8 > (__u8 *)data_end)
					return PARSE_TRUNCATED;
				if ((pos[2] << 8 | pos[3]) & 0xfff8) {
					key->proto = pos[0];
					return PARSE_FRAGMENT;
				}
				len = 8;
				break;
			default:
				key->proto = nexthdr;
				return parse_l4(pos, data_end, nexthdr, key, p);
			}
			nexthdr = pos[0];
			pos += len;
		}
		key->proto = nexthdr;
		return PARSE_EXT_LIMIT;
	}

	return PARSE_NON_IP;
}

#endif
