/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU "last flow" slots in front of the flow table: known flows' packets skip the hash. */
#ifndef FLOWLENS_CACHE_BPF_H
#define FLOWLENS_CACHE_BPF_H

/*
 * Each CPU has one slot per hook (ingress, egress): a stream's data and its ACKs, or one
 * packet passing the egress of one veth and the ingress of another, do not take turns in one.
 *
 * Why: a lookup in the shared hash table and two atomic adds cost about twice a no-op
 * program per packet (docs/benchmarks.md, "floor"); a per-CPU array lookup and plain adds
 * cost next to nothing, and a CPU's consecutive packets mostly belong to one flow (GRO/TSO
 * batches, one busy connection per softirq).
 *
 * Which packets: those of the flow in this CPU's slot, without SYN, FIN or RST (the entry
 * counts those), and, while HTTP may still find a head in the flow, without a payload to look
 * at. Every other packet takes the table path; nothing depends on the order in which a flow's
 * counts reach its entry.
 *
 * Which flow: a packet that took the table path to an entry that needs nothing more of the
 * datapath (conntrack settled, not DNS) takes the slot when it is empty or when its flow was
 * passed over twice since its last hit (two flows taking turns do not evict each other at
 * every packet); the packets the slot held spill into their entry.
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

/* The fast path: 1 when the packet was counted in this CPU's slot of its hook. */
static __always_inline int cache_hit(const struct fl_key *key, const struct parsed *p, __u32 bytes,
				     __u32 l3_end, __u64 jiffies)
{
	__u32 hook = key->dir;
	struct fl_slot *s;
	int hit = 0;

	if (!cache_on || (p->tcp_flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT)))
		return 0;
	if (dns_enabled && (key->dport == 53 || key->sport == 53))
		return 0; /* DNS flows never take the slot (every packet is looked at) */
	s = bpf_map_lookup_elem(&slots, &hook);
	if (!s || !s->valid || s->busy || !same_key(&s->key, key) ||
	    !(s->l7_done || l3_end < p->payload_off + 12))
		return 0;
	/*
	 * Only a flush can interrupt from here (TC programs do not nest): it empties the slot,
	 * so valid is read again once busy is set. Another flow cannot have taken it.
	 */
	s->busy = 1;
	barrier_();
	if (s->valid) {
		s->packets++;
		s->bytes += bytes;
		s->last_jiffies = jiffies;
		s->flags_or |= p->tcp_flags;
		s->misses = 0;
		hit = 1;
	}
	barrier_();
	s->busy = 0;
	return hit;
}

/*
 * After the table path: a flow whose entry needs nothing more of the datapath may take the
 * slot (see the rules above).
 */
static __always_inline void cache_take(const struct fl_key *key, int ipv4, __u8 tcp_flags,
				       const struct fl_stats *v)
{
	__u32 hook = key->dir;
	struct fl_slot old;
	struct fl_slot *s;
	__u8 l7_done;

	if (!cache_on || v->ct < FL_CT_TRIES ||
	    (tcp_flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT)))
		return;
	if (dns_enabled && (key->proto == IPPROTO_UDP || key->proto == IPPROTO_TCP) &&
	    (key->dport == 53 || key->sport == 53))
		return;
	l7_done = !http_enabled || key->proto != IPPROTO_TCP ||
		  (v->l7 >= FL_L7_TRIES && v->l7 != FL_L7_HTTP);
	s = bpf_map_lookup_elem(&slots, &hook);
	if (!s || s->busy)
		return;
	s->busy = 1;
	barrier_();
	if (s->valid && same_key(&s->key, key)) {
		s->l7_done = l7_done;
		barrier_();
		s->busy = 0;
		return;
	}
	if (s->valid && s->misses < 1) {
		s->misses++;
		barrier_();
		s->busy = 0;
		return;
	}
	old = *s;
	__builtin_memcpy(&s->key, key, sizeof(*key));
	s->ipv4 = (__u8)ipv4;
	s->l7_done = l7_done;
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
