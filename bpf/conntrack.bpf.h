/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Destination translations (ClusterIP DNAT) from conntrack kfuncs, a few tries per flow. */
#ifndef FLOWLENS_CONNTRACK_BPF_H
#define FLOWLENS_CONNTRACK_BPF_H

#ifndef FL_NO_CT
/*
 * The conntrack kfuncs (Linux 6.0+, nf_conntrack). Built without them (-DFL_NO_CT) for
 * kernels that lack them; the agent then loads that object and asks conntrack over netlink.
 * The options struct is the 12-byte layout every kernel with these kfuncs accepts.
 */
struct fl_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
					 __u32 tuple_sz, struct fl_ct_opts *opts,
					 __u32 opts_sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

static __always_inline struct nf_conn *ct_find(struct __sk_buff *skb, const struct fl_key *k,
					       int ipv4, int reverse)
{
	struct fl_ct_opts opts = { .netns_id = -1, .l4proto = k->proto };
	struct bpf_sock_tuple t = {};
	__u32 size;

	if (ipv4) {
		t.ipv4.saddr = reverse ? k->daddr[3] : k->saddr[3];
		t.ipv4.daddr = reverse ? k->saddr[3] : k->daddr[3];
		t.ipv4.sport = bpf_htons(reverse ? k->dport : k->sport);
		t.ipv4.dport = bpf_htons(reverse ? k->sport : k->dport);
		size = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, reverse ? k->daddr : k->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, reverse ? k->saddr : k->daddr, 16);
		t.ipv6.sport = bpf_htons(reverse ? k->dport : k->sport);
		t.ipv6.dport = bpf_htons(reverse ? k->sport : k->dport);
		size = sizeof(t.ipv6);
	}
	count(FL_CNT_CT_LOOKUP);
	return bpf_skb_ct_lookup(skb, &t, size, &opts, sizeof(opts));
}

static __always_inline void ct_addr(const union nf_inet_addr *a, int ipv4, __u32 out[4])
{
	if (ipv4) {
		out[0] = 0;
		out[1] = 0;
		out[2] = bpf_htonl(0xffff);
		out[3] = a->ip;
	} else {
		out[0] = a->all[0];
		out[1] = a->all[1];
		out[2] = a->all[2];
		out[3] = a->all[3];
	}
}

/*
 * One conntrack lookup for the packet's connection, with the one tuple that can match at this
 * hook. TC ingress runs before netfilter: the packet is as conntrack first sees it, so its
 * own tuple is the connection's original tuple (pod -> ClusterIP) or its reply tuple
 * (backend -> pod, before the reply is translated back). TC egress runs after netfilter has
 * translated the packet: pod -> backend after DNAT, ClusterIP -> pod after the reply's
 * translation, or an untranslated packet; in each case the reversed tuple is the other
 * direction's tuple as conntrack holds it (the reply tuple, the original tuple, and for an
 * untranslated connection either), while the packet's own tuple matches only when nothing
 * was translated. (Looking up both, as before, cost a second lookup on every miss at ingress
 * and on every translated flow at egress, and never found more.) Returns the new
 * fl_stats.ct value; on a translation, stores both sides in the nat map under the flow key.
 */
static __noinline __u8 ct_probe(struct __sk_buff *skb, const struct fl_key *k, int ipv4, __u8 state)
{
	const struct nf_conntrack_tuple *o, *r;
	struct nf_conn *ct;
	struct fl_nat n = {};
	__u8 ret = FL_CT_FOUND;

	if (!skb || !k)
		return FL_CT_SKIP;
	ct = ct_find(skb, k, ipv4, k->dir == FL_DIR_EGRESS);
	if (!ct)
		return state + 1;
	o = &ct->tuplehash[0].tuple;
	r = &ct->tuplehash[1].tuple;
	ct_addr(&o->dst.u3, ipv4, n.dialed);
	ct_addr(&r->src.u3, ipv4, n.backend);
	n.dialed_port = bpf_ntohs(o->dst.u.all);
	n.backend_port = bpf_ntohs(r->src.u.all);
	bpf_ct_release(ct);
	if (n.dialed_port != n.backend_port || n.dialed[0] != n.backend[0] ||
	    n.dialed[1] != n.backend[1] || n.dialed[2] != n.backend[2] ||
	    n.dialed[3] != n.backend[3]) {
		struct fl_key key = *k;

		key.pad = 0;
		count(FL_CNT_CT_NAT);
		if (bpf_map_update_elem(&nat, &key, &n, BPF_ANY))
			count(FL_CNT_NAT_FULL);
		else
			ret |= FL_CT_NAT;
	}
	return ret;
}
#endif

/* Whether conntrack is asked about k's flow at all (this object, the agent, the protocol). */
static __always_inline int ct_wanted(const struct fl_key *k)
{
#ifndef FL_NO_CT
	return ct_enabled && (k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP);
#else
	return 0;
#endif
}

/* Where conntrack is on and this flow still needs a lookup: one try. Cold after a few packets. */
static __always_inline __u8 ct_step(struct __sk_buff *skb, const struct fl_key *k, int ipv4,
				    __u8 state)
{
	if (!ct_wanted(k))
		return FL_CT_SKIP;
#ifndef FL_NO_CT
	return ct_probe(skb, k, ipv4, state);
#else
	return state;
#endif
}

#endif
