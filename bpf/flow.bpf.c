// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow accounting on the TC hooks of pod veths and node ENIs.
 *
 * Hot path: a packet of the flow its CPU counted last at this hook is recognised from a few
 * header fields and added to a per-CPU slot with plain stores (cache.bpf.h); any other packet
 * takes one bounded parse, one hash lookup (IPv4 and IPv6 have a table each) and atomic adds
 * in place. A shared table rather than a per-CPU one: its memory does not grow with the
 * number of CPUs (a per-CPU table of 64k flows costs 350 MB on a 96-vCPU node), and a flow's
 * packets mostly stay on one CPU, so the atomics rarely contend. A flow's first packet
 * inserts; a full table hands the packet to user space through a ring buffer and counts it.
 * The programs never change a packet's fate: they return TC_ACT_UNSPEC, which is also TCX_NEXT.
 *
 * This file holds the entry programs; each feature is a header with its purpose on its first
 * line: maps.bpf.h (every map and load-time knob), parse.bpf.h (headers), account.bpf.h
 * (counting into the flow table), conntrack.bpf.h (translations), http.bpf.h, h2.bpf.h,
 * dns.bpf.h and events.bpf.h (retransmissions, drops).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "parse.bpf.h"
#include "maps.bpf.h"
#include "conntrack.bpf.h"
#include "account.bpf.h"
#include "cache.bpf.h"
#include "h2.bpf.h"
#include "http.bpf.h"
#include "dns.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A flow's entry in its family's table, or NULL. */
static __always_inline struct fl_stats *flow_find(const struct fl_key *key, int ipv4)
{
	struct fl_key4 k4;

	if (!ipv4)
		return bpf_map_lookup_elem(&flows6, key);
	key4_from(key, &k4);
	return bpf_map_lookup_elem(&flows4, &k4);
}

/*
 * One packet at one hook: parse, count it in its flow (inserting the flow when new), ask
 * conntrack about the flow's translation while it is young, and look at HTTP and DNS
 * payloads when those signals are on. The packet's fate is never changed.
 */
static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct parsed p = {};
	struct fl_key key __attribute__((aligned(8))); /* compared as 64-bit words (cache.bpf.h) */
	struct fl_stats *v;
	__u64 jiffies;
	__u32 bytes;
	int ret;

	/* A packet of the flow in its CPU's slot costs only this (cache.bpf.h). */
	if (cache_hit(skb, dir))
		return TC_ACT_UNSPEC_;

	/* Parse; headers beyond the linear area are made readable and parsed again. */
	__builtin_memset(&key, 0, sizeof(key));
	ret = parse_packet(data, data_end, &key, &p);
	if (ret == PARSE_TRUNCATED && skb->len > (__u32)(data_end - data)) {
		count(FL_CNT_PULLED);
		if (bpf_skb_pull_data(skb, skb->len < 128 ? skb->len : 128) == 0) {
			data = (void *)(long)skb->data;
			data_end = (void *)(long)skb->data_end;
			__builtin_memset(&key, 0, sizeof(key));
			ret = parse_packet(data, data_end, &key, &p);
		}
	}
	switch (ret) {
	case PARSE_OK:
		break;
	case PARSE_FRAGMENT:
		count(FL_CNT_FRAGMENT);
		break;
	case PARSE_EXT_LIMIT:
		count(FL_CNT_IPV6_EXT_LIMIT);
		break;
	case PARSE_NON_IP:
		count(FL_CNT_NON_IP);
		return TC_ACT_UNSPEC_;
	default:
		count(FL_CNT_TRUNCATED);
		return TC_ACT_UNSPEC_;
	}

	key.ifindex = skb->ifindex;
	key.dir = dir;
	bytes = skb->len - p.l3_off;
	jiffies = bpf_jiffies64();

	if (p.ipv4) {
		struct fl_key4 k4;

		key4_from(&key, &k4);
		v = bpf_map_lookup_elem(&flows4, &k4);
		if (!v)
			flow_insert4(skb, &k4, &key, bytes, p.tcp_flags);
	} else {
		v = bpf_map_lookup_elem(&flows6, &key);
		if (!v)
			flow_insert6(skb, &key, bytes, p.tcp_flags);
	}
	if (v) {
		account(v, bytes, p.tcp_flags, jiffies);
		/* A connection's first packets: until conntrack answers (or FL_CT_TRIES misses). */
		if (v->ct < FL_CT_TRIES)
			v->ct = ct_step(skb, &key, p.ipv4, v->ct);
	}
	if (http_enabled && key.proto == IPPROTO_TCP && ret == PARSE_OK) {
		__u8 l7 = v ? v->l7 : 0;

		if (l7 < FL_L7_TRIES || l7 == FL_L7_HTTP)
			l7 = http_step(skb, &key, &p, v);
		/* HTTP/2: also the segment that found it */
		if (l7 == FL_L7_H2_CLIENT || l7 == FL_L7_H2_SERVER) {
			/* A flow entry inserted by this packet keeps what it carries too. */
			if (!v)
				v = flow_find(&key, p.ipv4);
			if (v && v->l7 < FL_L7_HTTP)
				v->l7 = l7;
			h2_step(skb, &key, &p, l7);
		}
	}
	if (dns_enabled && (key.proto == IPPROTO_UDP || key.proto == IPPROTO_TCP) &&
	    ret == PARSE_OK && (key.dport == 53 || key.sport == 53))
		dns_step(skb, &key, &p);
	if (v && ret == PARSE_OK)
		cache_take(&key, &p, v);
	return TC_ACT_UNSPEC_;
}

SEC("tc")
int flowlens_ingress(struct __sk_buff *skb)
{
	return handle(skb, FL_DIR_INGRESS);
}

SEC("tc")
int flowlens_egress(struct __sk_buff *skb)
{
	return handle(skb, FL_DIR_EGRESS);
}

/* A socket retransmits a segment (tracepoint: attached only when the signal is on). */
SEC("tp_btf/tcp_retransmit_skb")
int flowlens_retransmit(__u64 *ctx)
{
	return count_retransmit((const struct sock *)ctx[0]);
}

/*
 * The same where the tracepoint carries the attempt's result (tcp_retransmit_skb(sk, skb,
 * err), newer kernels): it fires for attempts that sent nothing too (-EBUSY: the original
 * still in the host's queue), which TcpRetransSegs does not count; only sent ones count.
 */
SEC("tp_btf/tcp_retransmit_skb")
int flowlens_retransmit_err(__u64 *ctx)
{
	if ((int)ctx[2])
		return 0;
	return count_retransmit((const struct sock *)ctx[0]);
}

/* The kernel drops a packet, with a reason (kernel 5.17 and later; loaded when drops are on). */
SEC("tp_btf/kfree_skb")
int flowlens_drop(__u64 *ctx)
{
	__u32 reason = (__u32)ctx[2];

	if (reason <= 2 /* not specified, or not a drop (consumed) */)
		return 0;
	return count_drop((struct sk_buff *)ctx[0], reason);
}

/*
 * The same before 5.17, where kfree_skb has no reason argument: every kfree_skb is a drop of
 * an unknown reason (FL_DROP_UNKNOWN); consumed packets go through consume_skb instead.
 */
SEC("tp_btf/kfree_skb")
int flowlens_drop_noreason(__u64 *ctx)
{
	return count_drop((struct sk_buff *)ctx[0], FL_DROP_UNKNOWN);
}

/*
 * Not attached: the agent runs it on each CPU (BPF_PROG_TEST_RUN, BPF_F_TEST_RUN_ON_CPU)
 * before every drain to empty that CPU's slot into the table (cache.bpf.h).
 */
SEC("raw_tp")
int flowlens_cache_flush(void *ctx)
{
	return cache_flush();
}

/*
 * Not attached: user space runs it through BPF_PROG_TEST_RUN to read jiffies and the
 * monotonic clock together, which converts last_jiffies into time.
 */
struct fl_clock clock_sample;

SEC("tc")
int flowlens_clock(struct __sk_buff *skb)
{
	clock_sample.jiffies = bpf_jiffies64();
	clock_sample.ktime_ns = bpf_ktime_get_ns();
	return TC_ACT_UNSPEC_;
}
