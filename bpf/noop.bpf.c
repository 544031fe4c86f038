// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines for benchmarks: the cheapest TC program that can be attached (noop_tc), and the
 * least any flow table in a shared BPF hash can do (floor_tc): read an IPv4 5-tuple at fixed
 * offsets, look it up, add packets and bytes atomically, or insert it. No parse beyond one
 * bounds check, no flags, no timestamps, no conntrack: what flowlens costs above the floor is
 * ours, what the floor costs above the no-op is the kernel's hash table.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int noop_tc(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC / TCX_NEXT */
}

struct floor_key {
	__u32 saddr, daddr;
	__u32 ifindex;
	__u16 sport, dport;
	__u8 proto, dir, pad[2];
};

struct floor_val {
	__u64 packets, bytes, pad[5]; /* the size of flowlens' struct fl_stats (56 bytes) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* the agent's default flow table size */
	__type(key, struct floor_key);
	__type(value, struct floor_val);
} floor_flows SEC(".maps");

/* An IPv4 5-tuple at fixed offsets (Ethernet, no options): no parse, the floor's only read. */
static __always_inline int floor_key_of(struct __sk_buff *skb, struct floor_key *k)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data;

	if (data + 14 + 24 > data_end)
		return 0;
	k->saddr = *(__u32 *)(p + 26);
	k->daddr = *(__u32 *)(p + 30);
	k->sport = *(__u16 *)(p + 34);
	k->dport = *(__u16 *)(p + 36);
	k->proto = p[23];
	k->ifindex = skb->ifindex;
	return 1;
}

/* Count into the table: a lookup and two atomic adds, or an insert. */
static __always_inline void floor_add(struct floor_key *k, __u64 packets, __u64 bytes)
{
	struct floor_val *v = bpf_map_lookup_elem(&floor_flows, k);

	if (v) {
		__sync_fetch_and_add(&v->packets, packets);
		__sync_fetch_and_add(&v->bytes, bytes);
	} else {
		struct floor_val init = { .packets = packets, .bytes = bytes };

		bpf_map_update_elem(&floor_flows, k, &init, BPF_NOEXIST);
	}
}

SEC("tc")
int floor_tc(struct __sk_buff *skb)
{
	struct floor_key k = {};

	if (floor_key_of(skb, &k))
		floor_add(&k, 1, skb->len);
	return -1;
}

/*
 * The floor with a per-CPU "last flow" cache in front of the table (cache_tc): the packet of
 * the flow this CPU saw last adds to a per-CPU slot with plain adds, no hash lookup and no
 * atomics; another flow's packet flushes the slot into the table first. Only the lower bound
 * of that design, for the benchmark: user space here never reads the slots (see
 * docs/benchmarks.md for what exact counts would need on top).
 */
struct cache_slot {
	struct floor_key key;
	__u64 packets, bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cache_slot);
} cache_slots SEC(".maps");

SEC("tc")
int cache_tc(struct __sk_buff *skb)
{
	struct floor_key k = {};
	struct cache_slot *c;
	__u32 zero = 0;

	if (!floor_key_of(skb, &k))
		return -1;
	c = bpf_map_lookup_elem(&cache_slots, &zero);
	if (!c)
		return -1;
	if (c->key.saddr == k.saddr && c->key.daddr == k.daddr && c->key.sport == k.sport &&
	    c->key.dport == k.dport && c->key.proto == k.proto && c->key.ifindex == k.ifindex) {
		c->packets++;
		c->bytes += skb->len;
		return -1;
	}
	if (c->packets)
		floor_add(&c->key, c->packets, c->bytes);
	c->key = k;
	c->packets = 1;
	c->bytes = skb->len;
	return -1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
