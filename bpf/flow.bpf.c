// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow accounting on the TC hooks of pod veths and node ENIs.
 *
 * Hot path: one bounded parse, one hash lookup (IPv4 and IPv6 have a table each) and atomic
 * adds in place. A shared table rather than a per-CPU one: its memory does not grow with the
 * number of CPUs (a per-CPU table of 64k flows costs 350 MB on a 96-vCPU node), and a flow's
 * packets mostly stay on one CPU, so the atomics rarely contend. A flow's first packet
 * inserts; a full table hands the packet to user space through a ring buffer and counts it. The programs never change a packet's fate: they return TC_ACT_UNSPEC, which
 * is also TCX_NEXT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.bpf.h"

#define TC_ACT_UNSPEC_ (-1)

/* Sizes are set by the agent before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key4);
	__type(value, struct fl_stats);
} flows4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_stats);
} flows6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} overflow SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &what);

	if (c)
		(*c)++;
}

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

static __always_inline void account(struct fl_stats *v, __u32 bytes, __u8 tcp_flags, __u64 jiffies)
{
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
	if (v->last_jiffies != jiffies)
		v->last_jiffies = jiffies;
	add_tcp_flags(v, tcp_flags);
}

/*
 * Cold path: the key is not in the table yet. map/k are the family's table and key; full is
 * the common form for the overflow ring buffer.
 */
static __always_inline int flow_insert(void *map, void *k, struct fl_key *full, __u32 bytes,
				       __u8 tcp_flags, __u64 jiffies)
{
	struct fl_stats init = {};
	struct fl_overflow_event *ev;
	struct fl_stats *v;
	__u64 now = bpf_ktime_get_ns();
	long err;

	init.packets = 1;
	init.bytes = bytes;
	init.first_ns = now;
	init.last_jiffies = jiffies;
	add_tcp_flags(&init, tcp_flags);
	err = bpf_map_update_elem(map, k, &init, BPF_NOEXIST);
	if (err == 0)
		return 0;
	if (err == -17 /* EEXIST: another CPU inserted it first */) {
		v = bpf_map_lookup_elem(map, k);
		if (v) {
			account(v, bytes, tcp_flags, jiffies);
			return 0;
		}
	}
	/* Table full (E2BIG/ENOMEM), or the entry vanished under us: hand the packet over. */
	count(FL_CNT_TABLE_FULL);
	ev = bpf_ringbuf_reserve(&overflow, sizeof(*ev), 0);
	if (!ev) {
		count(FL_CNT_RINGBUF_FULL);
		return 0;
	}
	__builtin_memcpy(&ev->key, full, sizeof(*full));
	ev->bytes = bytes;
	ev->ts_ns = now;
	ev->jiffies = jiffies;
	ev->tcp_flags = tcp_flags;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

static __noinline int flow_insert4(struct fl_key4 *k, struct fl_key *full, __u32 bytes,
				   __u8 tcp_flags, __u64 jiffies)
{
	return flow_insert(&flows4, k, full, bytes, tcp_flags, jiffies);
}

static __noinline int flow_insert6(struct fl_key *k, __u32 bytes, __u8 tcp_flags, __u64 jiffies)
{
	return flow_insert(&flows6, k, k, bytes, tcp_flags, jiffies);
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct parsed p = {};
	struct fl_key key;
	struct fl_stats *v;
	__u64 jiffies;
	__u32 bytes;
	int ret;

	__builtin_memset(&key, 0, sizeof(key));
	ret = parse_packet(data, data_end, &key, &p);
	if (ret == PARSE_TRUNCATED && skb->len > (__u32)(data_end - data)) {
		/* Headers beyond the linear area: make them readable and parse again. */
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
		struct fl_key4 k4 = {
			.saddr = key.saddr[3],
			.daddr = key.daddr[3],
			.ifindex = key.ifindex,
			.sport = key.sport,
			.dport = key.dport,
			.proto = key.proto,
			.dir = dir,
		};

		v = bpf_map_lookup_elem(&flows4, &k4);
		if (!v)
			return flow_insert4(&k4, &key, bytes, p.tcp_flags, jiffies), TC_ACT_UNSPEC_;
	} else {
		v = bpf_map_lookup_elem(&flows6, &key);
		if (!v)
			return flow_insert6(&key, bytes, p.tcp_flags, jiffies), TC_ACT_UNSPEC_;
	}
	account(v, bytes, p.tcp_flags, jiffies);
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
