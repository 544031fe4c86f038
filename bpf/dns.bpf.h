/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* DNS queries and answers (port 53): rcode, question type, timing; timeouts swept by the agent. Optional. */
#ifndef FLOWLENS_DNS_BPF_H
#define FLOWLENS_DNS_BPF_H

/* QTYPE of the first question: after the name's labels (at most 32, no compression). */
static __always_inline __u16 dns_qtype(struct __sk_buff *skb, __u32 pos, __u32 end)
{
	__u8 b[2];

	for (int i = 0; i < 32; i++) {
		__u8 len;

		if (pos >= end || bpf_skb_load_bytes(skb, pos, &len, 1))
			return 0;
		if (len == 0) {
			if (pos + 3 > end || bpf_skb_load_bytes(skb, pos + 1, b, 2))
				return 0;
			return (__u16)(b[0] << 8 | b[1]);
		}
		if (len & 0xc0)
			return 0;
		pos += 1 + (__u32)len;
	}
	return 0;
}

/*
 * A query (to port 53, QR 0) is remembered by (client tuple, id); its answer (from port 53,
 * QR 1, same id) becomes one sample with the rcode, the question's type and the time between.
 */
static __noinline int dns_inspect(struct __sk_buff *skb, struct fl_key *k, __u32 off, __u32 end)
{
	struct fl_dns_query *qv;
	struct fl_dns_key dk = {};
	struct fl_sample *sm;
	__u8 h[12];
	__u16 flags;

	if (!skb || !k || bpf_skb_load_bytes(skb, off, h, sizeof(h)))
		return 0;
	flags = (__u16)(h[2] << 8 | h[3]);
	dk.id = (__u16)(h[0] << 8 | h[1]);
	if (!(flags & 0x8000) && k->dport == 53) {
		struct fl_dns_query q = {};

		if ((flags & 0x7800) || !(h[4] | h[5]))
			return 0; /* not a standard query with a question */
		__builtin_memcpy(&dk.key, k, sizeof(dk.key));
		dk.key.dir = 0;
		dk.key.pad = 0;
		q.start_ns = bpf_ktime_get_ns();
		q.qtype = dns_qtype(skb, off + 12, end);
		bpf_map_update_elem(&dns, &dk, &q, BPF_ANY);
		return 0;
	}
	if (!(flags & 0x8000) || k->sport != 53)
		return 0;
	__builtin_memcpy(dk.key.saddr, k->daddr, 16);
	__builtin_memcpy(dk.key.daddr, k->saddr, 16);
	dk.key.sport = k->dport;
	dk.key.dport = k->sport;
	dk.key.ifindex = k->ifindex;
	dk.key.proto = k->proto;
	qv = bpf_map_lookup_elem(&dns, &dk);
	if (!qv)
		return 0;
	sm = bpf_ringbuf_reserve(&samples, sizeof(*sm), 0);
	if (!sm) {
		count(FL_CNT_SAMPLES_FULL);
	} else {
		__builtin_memcpy(&sm->key, &dk.key, sizeof(dk.key));
		sm->duration_ns = bpf_ktime_get_ns() - qv->start_ns;
		sm->status = flags & 0xf;
		sm->kind = FL_SAMPLE_DNS;
		sm->method = 0;
		sm->qtype = qv->qtype;
		sm->pad = 0;
		bpf_ringbuf_submit(sm, sample_flags(&samples));
	}
	bpf_map_delete_elem(&dns, &dk);
	return 0;
}

/* A DNS message (UDP or TCP, port 53) is handed to dns_inspect. */
static __always_inline void dns_step(struct __sk_buff *skb, struct fl_key *key,
				     const struct parsed *p)
{
	__u32 end = p->l3_len ? p->l3_off + p->l3_len : skb->len;
	/* Over TCP a message starts a segment, after its 2-byte length. */
	__u32 off = p->payload_off + (key->proto == IPPROTO_TCP ? 2 : 0);

	if (end >= off + 12 && end <= skb->len)
		dns_inspect(skb, key, off, end);
}

#endif
