// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow accounting on the TC hooks of pod veths and node ENIs.
 *
 * Hot path: one bounded parse and one per-CPU hash lookup with in-place increments (no
 * atomics, no lost updates: every CPU owns its copy and user space sums them). A flow's first
 * packet on a CPU inserts; a full table hands the packet to user space through a ring buffer
 * and counts it. The programs never change a packet's fate: they return TC_ACT_UNSPEC, which
 * is also TCX_NEXT.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.bpf.h"

#define TC_ACT_UNSPEC_ (-1)

/* Sizes are set by the agent before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_stats);
} flows SEC(".maps");

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
	v->flags_or |= flags;
	if (!(flags & (TCPF_SYN_BIT | TCPF_FIN_BIT | TCPF_RST_BIT)))
		return;
	if (flags & TCPF_SYN_BIT) {
		if (flags & TCPF_ACK_BIT)
			v->synack++;
		else
			v->syn++;
	}
	if (flags & TCPF_FIN_BIT)
		v->fin++;
	if (flags & TCPF_RST_BIT)
		v->rst++;
}

/* Cold path: the key is not in this CPU's view of the table yet. */
static __noinline int flow_insert(struct fl_key *key, __u32 bytes, __u8 tcp_flags, __u64 jiffies)
{
	__u64 now = bpf_ktime_get_ns();
	struct fl_stats init = {};
	struct fl_overflow_event *ev;
	struct fl_stats *v;
	long err;

	init.packets = 1;
	init.bytes = bytes;
	init.first_ns = now;
	init.last_jiffies = jiffies;
	add_tcp_flags(&init, tcp_flags);
	err = bpf_map_update_elem(&flows, key, &init, BPF_NOEXIST);
	if (err == 0)
		return 0;
	if (err == -17 /* EEXIST: another CPU inserted it first */) {
		v = bpf_map_lookup_elem(&flows, key);
		if (v) {
			v->packets++;
			v->bytes += bytes;
			v->last_jiffies = jiffies;
			add_tcp_flags(v, tcp_flags);
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
	__builtin_memcpy(&ev->key, key, sizeof(*key));
	ev->bytes = bytes;
	ev->ts_ns = now;
	ev->jiffies = jiffies;
	ev->tcp_flags = tcp_flags;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, 0);
	return 0;
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

	v = bpf_map_lookup_elem(&flows, &key);
	if (!v)
		return flow_insert(&key, bytes, p.tcp_flags, jiffies), TC_ACT_UNSPEC_;
	v->packets++;
	v->bytes += bytes;
	v->last_jiffies = jiffies;
	add_tcp_flags(v, p.tcp_flags);
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
