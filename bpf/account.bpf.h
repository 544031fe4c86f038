/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counting a packet into its flow entry: atomic adds in place, or the insert (cold) path. */
#ifndef FLOWLENS_ACCOUNT_BPF_H
#define FLOWLENS_ACCOUNT_BPF_H

static __always_inline void add_tcp_flags(struct fl_stats *v, __u8 flags)
{
	if ((v->flags_or & flags) != flags)
		v->flags_or |= flags;
	if (!(flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT)))
		return;
	if (flags & TCPF_SYN_BIT) {
		if (flags & TCPF_ACK_BIT)
			__sync_fetch_and_add(&v->synack, 1);
		else
			__sync_fetch_and_add(&v->syn, 1);
	}
	if (flags & TCPF_FIN_BIT)
		__sync_fetch_and_add(&v->fin, 1);
	if (flags & TCPF_RST_BIT)
		__sync_fetch_and_add(&v->rst, 1);
}

/* Adds packets (one, or what a per-CPU slot held) to an entry in place. */
static __always_inline void account_n(struct fl_stats *v, __u64 packets, __u64 bytes,
				      __u8 tcp_flags, __u64 jiffies)
{
	__sync_fetch_and_add(&v->packets, packets);
	__sync_fetch_and_add(&v->bytes, bytes);
	if (v->last_jiffies < jiffies)
		v->last_jiffies = jiffies;
	add_tcp_flags(v, tcp_flags);
}

static __always_inline void account(struct fl_stats *v, __u32 bytes, __u8 tcp_flags, __u64 jiffies)
{
	account_n(v, 1, bytes, tcp_flags, jiffies);
}

/* Packets no entry could hold go to user space through the overflow ring buffer, counted. */
static __always_inline void hand_over(const struct fl_key *full, __u32 packets, __u64 bytes,
				      __u8 tcp_flags, __u64 now, __u64 jiffies)
{
	struct fl_overflow_event *ev;

	count(FL_CNT_TABLE_FULL);
	ev = bpf_ringbuf_reserve(&overflow, sizeof(*ev), 0);
	if (!ev) {
		count(FL_CNT_RINGBUF_FULL);
		return;
	}
	__builtin_memcpy(&ev->key, full, sizeof(*full));
	ev->packets = packets;
	ev->bytes = bytes;
	ev->ts_ns = now;
	ev->jiffies = jiffies;
	ev->tcp_flags = tcp_flags;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, 0);
}

/*
 * Cold path: the key is not in the table yet. map/k are the family's table and key; full is
 * the common form for the overflow ring buffer. packets is 1 for a packet, more when a
 * per-CPU slot spills into an entry the agent removed meanwhile.
 */
static __always_inline int flow_insert(void *map, void *k, struct fl_key *full, __u32 packets,
				       __u64 bytes, __u8 tcp_flags, __u64 jiffies, __u8 ct)
{
	struct fl_stats init = {};
	struct fl_stats *v;
	__u64 now = bpf_ktime_get_ns();
	long err;

	init.packets = packets;
	init.bytes = bytes;
	init.first_ns = now;
	init.last_jiffies = jiffies;
	init.ct = ct;
	add_tcp_flags(&init, tcp_flags);
	err = bpf_map_update_elem(map, k, &init, BPF_NOEXIST);
	if (err == 0)
		return 0;
	if (err == -17 /* EEXIST: another CPU inserted it first */) {
		v = bpf_map_lookup_elem(map, k);
		if (v) {
			account_n(v, packets, bytes, tcp_flags, jiffies);
			return 0;
		}
	}
	/* Table full (E2BIG/ENOMEM), or the entry vanished under us: hand the packets over. */
	hand_over(full, packets, bytes, tcp_flags, now, jiffies);
	return 0;
}

/*
 * The conntrack state a new flow entry starts with. A SYN at an ingress hook opens a
 * connection netfilter has not seen yet (TC ingress runs before it): its lookup would miss,
 * so none is made and no try is used; the connection's next packet looks it up. Any other
 * first packet (a reply, UDP, a hook after netfilter) is looked up now.
 */
static __always_inline __u8 ct_first(struct __sk_buff *skb, const struct fl_key *k, int ipv4,
				     __u8 tcp_flags)
{
	if (k->dir == FL_DIR_INGRESS && k->proto == IPPROTO_TCP &&
	    (tcp_flags & (TCPF_SYN_BIT | TCPF_ACK_BIT)) == TCPF_SYN_BIT)
		return ct_wanted(k) ? 0 : FL_CT_SKIP;
	return ct_step(skb, k, ipv4, 0);
}

/* (BPF functions take at most five arguments: the cold path reads jiffies again.) */
static __noinline int flow_insert4(struct __sk_buff *skb, struct fl_key4 *k, struct fl_key *full,
				   __u32 bytes, __u8 tcp_flags)
{
	if (!full)
		return 0;
	return flow_insert(&flows4, k, full, 1, bytes, tcp_flags, bpf_jiffies64(),
			   ct_first(skb, full, 1, tcp_flags));
}

static __noinline int flow_insert6(struct __sk_buff *skb, struct fl_key *k, __u32 bytes,
				   __u8 tcp_flags)
{
	if (!k)
		return 0;
	return flow_insert(&flows6, k, k, 1, bytes, tcp_flags, bpf_jiffies64(),
			   ct_first(skb, k, 0, tcp_flags));
}

#endif
