/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU "last flow" slots in front of the flow table: known flows' packets skip the hash. */
#ifndef FLOWLENS_CACHE_BPF_H
#define FLOWLENS_CACHE_BPF_H

/*
 * Each CPU has one slot per hook (ingress, egress): a stream's data and its ACKs, or one
 * packet passing the egress of one veth and the ingress of another, do not take turns in one.
 *
 * Why: a lookup in the shared hash table and two atomic adds cost about twice a no-op
 * program per packet (docs/benchmarks.md, "floor"), the general parse a little more; a
 * per-CPU array lookup, a few header loads compared with the slot and plain adds cost next to
 * nothing, and a CPU's consecutive packets mostly belong to one flow (GRO/TSO batches, one
 * busy connection per softirq).
 *
 * Which packets: frames of the common shape (Ethernet, IPv4 without options and not a
 * fragment or IPv6 without extension headers, TCP or UDP) of the flow in this CPU's slot,
 * without SYN, FIN or RST (the entry counts those) and, while HTTP may still find a head in
 * the flow, without a payload to look at. They are recognised before the general parse.
 * Every other packet takes the table path; nothing depends on the order in which a flow's
 * counts reach its entry.
 *
 * Which flow: a common-shape packet that took the table path to an entry that needs nothing
 * more of the datapath (conntrack settled, not DNS) takes the slot when it is empty or when
 * SLOT_PATIENCE such packets of other flows came since the slot's flow last hit (flows taking
 * turns do not evict each other at every packet); the packets the slot held spill into their
 * entry.
 *
 * Exactness: before every drain the agent runs flowlens_cache_flush on each CPU
 * (BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU), which empties the slot into the table. On
 * another CPU that run is an IPI and can interrupt a TC program halfway through its update;
 * on the agent's own CPU a TC program in a softirq can interrupt the flush. So whoever
 * changes the slot sets busy first: a TC program that finds it set uses the table, a flush
 * that finds it set returns 1 and the agent runs it again. Both sides run on one CPU and
 * an interrupting side finishes before the interrupted one resumes, so plain stores ordered
 * by compiler barriers are enough (not on PREEMPT_RT, where TC runs in preemptible threads;
 * the agent leaves the slots off there). An entry the agent removed while its packets waited
 * in a slot is created again by the spill, as a late packet would create it.
 */

#define barrier_() __asm__ __volatile__("" ::: "memory")

/*
 * Packets of other flows that may take the table path, while the slot's flow gets no hit,
 * before one of them takes the slot: a busy flow keeps it against many interleaved ones
 * (taking the slot costs a copy, and a spill when it held packets).
 */
#define SLOT_PATIENCE 8

/* Both keys 8-byte aligned (the slot's, and the caller's stack key, declared so). */
static __always_inline int same_key(const struct fl_key *a, const struct fl_key *b)
{
	const __u64 *x = (const __u64 *)a;
	const __u64 *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) |
		(__u64)(((const __u32 *)a)[10] ^ ((const __u32 *)b)[10])) == 0;
}

static __always_inline void key4_from(const struct fl_key *k, struct fl_key4 *k4)
{
	k4->saddr = k->saddr[3];
	k4->daddr = k->daddr[3];
	k4->ifindex = k->ifindex;
	k4->sport = k->sport;
	k4->dport = k->dport;
	k4->proto = k->proto;
	k4->dir = k->dir;
	k4->pad = 0;
}

/* A slot's packets into their entry (s is a copy the caller took under busy). */
static __noinline int spill(struct fl_slot *s)
{
	struct fl_stats *v;
	struct fl_key4 k4;

	if (!s)
		return 0;
	if (s->ipv4) {
		key4_from(&s->key, &k4);
		v = bpf_map_lookup_elem(&flows4, &k4);
		if (!v)
			return flow_insert(&flows4, &k4, &s->key, (__u32)s->packets, s->bytes,
					   s->flags_or, s->last_jiffies, 0);
	} else {
		v = bpf_map_lookup_elem(&flows6, &s->key);
		if (!v)
			return flow_insert(&flows6, &s->key, &s->key, (__u32)s->packets, s->bytes,
					   s->flags_or, s->last_jiffies, 0);
	}
	account_n(v, s->packets, s->bytes, s->flags_or, s->last_jiffies);
	return 0;
}

/*
 * The fast path, before the general parse: 1 when the packet was counted in its CPU's slot of
 * its hook. Only frames of the common shape take it (Ethernet, then IPv4 without options and
 * not a fragment, or IPv6 without extension headers, then TCP or UDP, headers in the linear
 * area); their key fields are compared with the slot's as parse_packet would fill them. Every
 * other frame goes through the general parse and the table (and cannot take a slot).
 */
static __always_inline int cache_hit(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 hook = dir, l3_end, payload_off;
	struct fl_slot *s;
	__u8 flags = 0, proto;
	__u8 *l4;

	if (!cache_on)
		return 0;
	s = bpf_map_lookup_elem(&slots, &hook);
	if (!s || !s->valid || s->busy || (void *)(eth + 1) > data_end)
		return 0;
	if (s->ipv4) {
		struct iphdr *ip = (void *)(eth + 1);

		l4 = (void *)(ip + 1);
		if ((void *)(l4 + 20) > data_end || eth->h_proto != bpf_htons(ETH_P_IP_) ||
		    *(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(0x1fff)) ||
		    s->key.saddr[3] != ip->saddr || s->key.daddr[3] != ip->daddr)
			return 0;
		proto = ip->protocol;
		l3_end = 14 + (__u32)bpf_ntohs(ip->tot_len);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u32 *sa, *da;

		l4 = (void *)(ip6 + 1);
		if ((void *)(l4 + 20) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6_))
			return 0;
		sa = (__u32 *)&ip6->saddr;
		da = (__u32 *)&ip6->daddr;
		if (((s->key.saddr[0] ^ sa[0]) | (s->key.saddr[1] ^ sa[1]) |
		     (s->key.saddr[2] ^ sa[2]) | (s->key.saddr[3] ^ sa[3]) |
		     (s->key.daddr[0] ^ da[0]) | (s->key.daddr[1] ^ da[1]) |
		     (s->key.daddr[2] ^ da[2]) | (s->key.daddr[3] ^ da[3])) != 0)
			return 0;
		proto = ip6->nexthdr; /* an extension header never equals the slot's TCP/UDP */
		l3_end = 14 + 40 + (__u32)bpf_ntohs(ip6->payload_len);
	}
	if (s->key.proto != proto || s->key.sport != bpf_ntohs(*(__u16 *)l4) ||
	    s->key.dport != bpf_ntohs(*(__u16 *)(l4 + 2)) || s->key.ifindex != skb->ifindex)
		return 0;
	if (proto == IPPROTO_TCP_) {
		flags = l4[13];
		if (flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT))
			return 0;
		/* HTTP may still look at this flow's payloads: a payload of 12 bytes goes on, of
		 * any size on HTTP/2 (its walk needs every byte). */
		payload_off = (__u32)(l4 - (__u8 *)data) + (__u32)(l4[12] >> 4) * 4;
		if (!s->l7_done && l3_end >= payload_off + (s->l7_any ? 1 : 12))
			return 0;
	}
	/*
	 * Only a flush can interrupt from here (TC programs do not nest): it empties the slot,
	 * so valid is read again once busy is set. Another flow cannot have taken it.
	 */
	s->busy = 1;
	barrier_();
	if (!s->valid) {
		barrier_();
		s->busy = 0;
		return 0;
	}
	s->packets++;
	s->bytes += skb->len - 14;
	s->last_jiffies = bpf_jiffies64();
	s->flags_or |= flags;
	s->misses = 0;
	barrier_();
	s->busy = 0;
	return 1;
}

/*
 * After the table path: a flow whose entry needs nothing more of the datapath may take the
 * slot (see the rules above).
 */
static __always_inline void cache_take(const struct fl_key *key, const struct parsed *p,
				       const struct fl_stats *v)
{
	__u32 hook = key->dir;
	struct fl_slot old;
	struct fl_slot *s;
	__u8 l7_done, l7_any;

	if (!cache_on || v->ct < FL_CT_TRIES ||
	    (p->tcp_flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT)))
		return;
	/* Only a flow whose frames cache_hit can recognise (the common shape). */
	if (p->l3_off != 14 || p->l4_off != 14 + (p->ipv4 ? 20 : 40) ||
	    (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP))
		return;
	if (dns_enabled && (key->proto == IPPROTO_UDP || key->proto == IPPROTO_TCP) &&
	    (key->dport == 53 || key->sport == 53))
		return;
	l7_done = !http_enabled || key->proto != IPPROTO_TCP ||
		  (v->l7 >= FL_L7_TRIES && v->l7 < FL_L7_HTTP);
	l7_any = v->l7 == FL_L7_H2_CLIENT || v->l7 == FL_L7_H2_SERVER;
	s = bpf_map_lookup_elem(&slots, &hook);
	if (!s || s->busy)
		return;
	/*
	 * l7_done and l7_any only ever turn on and misses is a hint: a flush interrupting these plain
	 * updates can cost a hit, never a count, so they need no busy mark.
	 */
	if (s->valid) {
		if (same_key(&s->key, key)) {
			s->l7_done = l7_done;
			s->l7_any = l7_any;
			return;
		}
		if (s->misses < SLOT_PATIENCE) {
			s->misses++;
			return;
		}
	}
	s->busy = 1;
	barrier_();
	old = *s;
	__builtin_memcpy(&s->key, key, sizeof(*key));
	s->ipv4 = p->ipv4;
	s->l7_done = l7_done;
	s->l7_any = l7_any;
	s->packets = 0;
	s->bytes = 0;
	s->last_jiffies = 0;
	s->flags_or = 0;
	s->misses = 0;
	s->valid = 1;
	barrier_();
	s->busy = 0;
	if (old.valid && old.packets)
		spill(&old);
}

/* Empties one slot of this CPU: 0 when done, 1 when a program was changing it. */
static __always_inline int cache_flush_slot(__u32 hook)
{
	struct fl_slot old;
	struct fl_slot *s;

	s = bpf_map_lookup_elem(&slots, &hook);
	if (!s)
		return 0;
	if (s->busy)
		return 1;
	s->busy = 1;
	barrier_();
	old = *s;
	s->valid = 0;
	s->packets = 0;
	s->bytes = 0;
	s->flags_or = 0;
	s->misses = 0;
	barrier_();
	s->busy = 0;
	if (old.valid && old.packets)
		spill(&old);
	return 0;
}

/* The agent's flush of this CPU's slots (both hooks): 1 when one was being changed. */
static __always_inline int cache_flush(void)
{
	int busy = cache_flush_slot(FL_DIR_INGRESS);

	return cache_flush_slot(FL_DIR_EGRESS) | busy;
}

#endif
