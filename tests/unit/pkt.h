/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Crafted Ethernet frames for BPF_PROG_TEST_RUN tests and benchmarks. */
#ifndef FLOWLENS_TEST_PKT_H
#define FLOWLENS_TEST_PKT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

struct pkt_spec {
	int family; /* AF_INET or AF_INET6; 0 means ARP */
	uint8_t proto;
	const char *src;
	const char *dst;
	uint16_t sport; /* for ICMP echo: the identifier */
	uint16_t dport;
	uint8_t tcp_flags;
	uint8_t icmp_type;
	int vlan_tags; /* 0, 1 or 2 */
	int ip_opt_words; /* IPv4 options, in 32-bit words */
	int v6_hbh; /* prepend a hop-by-hop extension header */
	uint16_t frag_off; /* IPv4 fragment offset in 8-byte units (non-first fragment) */
	int payload;
	const char *data; /* payload bytes (payload = strlen when set), else 0xab filler */
	int data_len; /* when set: copy this many bytes of data (binary payloads) */
};

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Writes the frame into buf (at least 1600 bytes) and returns its length. */
static inline int pkt_build(uint8_t *buf, const struct pkt_spec *s)
{
	uint8_t *p = buf;
	uint8_t *l4;
	int l4len = 0;

	memset(buf, 0, 1600);
	memcpy(p, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	p += 12;
	for (int i = 0; i < s->vlan_tags; i++) {
		pkt_put16(p, i == 0 && s->vlan_tags == 2 ? 0x88a8 : 0x8100);
		pkt_put16(p + 2, (uint16_t)(100 + i));
		p += 4;
	}
	if (s->family == 0) {
		pkt_put16(p, 0x0806);
		p += 2;
		memset(p, 0x11, 28);
		return (int)(p + 28 - buf);
	}
	pkt_put16(p, s->family == AF_INET ? 0x0800 : 0x86dd);
	p += 2;

	switch (s->proto) {
	case 6:
		l4len = 20;
		break;
	case 17:
	case 1:
	case 58:
		l4len = 8;
		break;
	default:
		l4len = 0;
	}

	if (s->family == AF_INET) {
		int ihl = 5 + s->ip_opt_words;
		int tot = ihl * 4 + l4len + s->payload;

		p[0] = (uint8_t)(0x40 | ihl);
		pkt_put16(p + 2, (uint16_t)tot);
		pkt_put16(p + 6, s->frag_off);
		p[8] = 64;
		p[9] = s->proto;
		inet_pton(AF_INET, s->src, p + 12);
		inet_pton(AF_INET, s->dst, p + 16);
		for (int i = 0; i < s->ip_opt_words * 4; i++)
			p[20 + i] = 1; /* NOP options */
		l4 = p + ihl * 4;
	} else {
		int ext = s->v6_hbh ? 8 : 0;

		p[0] = 0x60;
		pkt_put16(p + 4, (uint16_t)(ext + l4len + s->payload));
		p[6] = s->v6_hbh ? 0 : s->proto;
		p[7] = 64;
		inet_pton(AF_INET6, s->src, p + 8);
		inet_pton(AF_INET6, s->dst, p + 24);
		l4 = p + 40;
		if (s->v6_hbh) {
			l4[0] = s->proto;
			l4[1] = 0;
			l4[2] = 1; /* PadN */
			l4[3] = 4;
			l4 += 8;
		}
	}

	switch (s->proto) {
	case 6:
		pkt_put16(l4, s->sport);
		pkt_put16(l4 + 2, s->dport);
		l4[12] = 5 << 4;
		l4[13] = s->tcp_flags;
		break;
	case 17:
		pkt_put16(l4, s->sport);
		pkt_put16(l4 + 2, s->dport);
		pkt_put16(l4 + 4, (uint16_t)(8 + s->payload));
		break;
	case 1:
	case 58:
		l4[0] = s->icmp_type;
		pkt_put16(l4 + 4, s->sport);
		break;
	}
	memset(l4 + l4len, 0xab, (size_t)s->payload);
	if (s->data && s->data_len)
		memcpy(l4 + l4len, s->data, (size_t)s->data_len);
	else if (s->data)
		memcpy(l4 + l4len, s->data,
		       strlen(s->data) < (size_t)s->payload ? strlen(s->data) : (size_t)s->payload);
	return (int)(l4 + l4len + s->payload - buf);
}

#endif
