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
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
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

/* Destination translations (ClusterIP -> backend) found by conntrack lookups. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_nat);
} nat SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &what);

	if (c)
		(*c)++;
}

/* Set by the agent before load: 1 = look translations up in conntrack from here. */
const volatile __u8 ct_enabled = 0;
/* Set by the agent before load: 1 = follow HTTP/1.x requests and responses. */
const volatile __u8 http_enabled = 0;

/* HTTP requests waiting for their responses, per connection and interface. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_http);
} http SEC(".maps");

/* Set by the agent before load: 1 = follow DNS queries and answers (port 53, UDP and TCP). */
const volatile __u8 dns_enabled = 0;

/* DNS queries waiting for their answers; the agent sweeps the unanswered ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_dns_key);
	__type(value, struct fl_dns_query);
} dns SEC(".maps");

/*
 * TCP retransmissions by the retransmitting socket's tuple (saddr = the socket's own
 * address), and packets the kernel dropped by tuple and reason (fl_key.ifindex holds the
 * enum skb_drop_reason). The agent takes them (lookup and delete) at every drain, one
 * generation (event_gen) at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_key);
	__type(value, __u64);
} retrans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_key);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * The generation the tracepoint programs count into (fl_key.dir of retrans and drops keys).
 * At each drain the agent flips it, lets the programs that read the old value finish, then
 * takes the old generation's keys: deleting a key a program is adding to would lose the add.
 */
__u8 event_gen;

/*
 * Set by the agent: wake it only when this much is waiting; otherwise it takes the samples at
 * its next drain. (A wakeup per sample costs the agent a context switch per request.)
 */
const volatile __u32 samples_wakeup_bytes = 0;

static __always_inline __u64 sample_flags(void *rb)
{
	return bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) >= samples_wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP :
		       BPF_RB_NO_WAKEUP;
}

/* Finished exchanges (one record per request, never per packet). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} samples SEC(".maps");

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
 * One conntrack lookup for the packet's connection, in either direction: the packet's own
 * tuple matches before the translation (client side: pod -> ClusterIP) and for replies after
 * it (backend -> pod); the reversed tuple matches the other two cases. Returns the new
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
	ct = ct_find(skb, k, ipv4, 0);
	if (!ct)
		ct = ct_find(skb, k, ipv4, 1);
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

/* Where conntrack is on and this flow still needs a lookup: one try. Cold after a few packets. */
static __always_inline __u8 ct_step(struct __sk_buff *skb, const struct fl_key *k, int ipv4,
				    __u8 state)
{
#ifndef FL_NO_CT
	if (!ct_enabled || (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP))
		return FL_CT_SKIP;
	return ct_probe(skb, k, ipv4, state);
#else
	return FL_CT_SKIP;
#endif
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
				       __u8 tcp_flags, __u64 jiffies, __u8 ct)
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
	init.ct = ct;
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

/* (BPF functions take at most five arguments: the cold path reads jiffies again.) */
#define W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

/* The method of a request line's first four bytes; FL_HTTP_METHODS when it is not one. */
static __always_inline __u8 http_method(__u32 w)
{
	switch (w) {
	case W4('G', 'E', 'T', ' '):
		return FL_HTTP_GET;
	case W4('P', 'O', 'S', 'T'):
		return FL_HTTP_POST;
	case W4('P', 'U', 'T', ' '):
		return FL_HTTP_PUT;
	case W4('D', 'E', 'L', 'E'):
		return FL_HTTP_DELETE;
	case W4('H', 'E', 'A', 'D'):
		return FL_HTTP_HEAD;
	case W4('P', 'A', 'T', 'C'):
		return FL_HTTP_PATCH;
	case W4('O', 'P', 'T', 'I'):
		return FL_HTTP_OPTIONS;
	case W4('C', 'O', 'N', 'N'):
	case W4('T', 'R', 'A', 'C'):
		return FL_HTTP_OTHER;
	}
	return FL_HTTP_METHODS;
}

static __always_inline int digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/*
 * A TCP segment whose payload starts a request line ("GET /...") queues the request's start
 * time on its connection; one that starts a status line ("HTTP/1.1 200") answers the oldest
 * queued request and hands the finished exchange to user space. Anything else (the rest of a
 * message, another protocol) matches neither and costs one 12-byte read.
 */
static __noinline int http_inspect(struct __sk_buff *skb, struct fl_key *k, __u32 off)
{
	struct fl_sample *sm;
	struct fl_http *st;
	struct fl_key q;
	__u8 b[12];
	__u32 w;
	__u64 now;
	__u8 m, i;

	if (!skb || !k || bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return 0;
	__builtin_memcpy(&w, b, 4);
	__builtin_memcpy(&q, k, sizeof(q));
	q.dir = 0;
	q.pad = 0;
	if (w == W4('H', 'T', 'T', 'P') && b[4] == '/' && b[5] == '1' && b[6] == '.') {
		/* A response: the request was sent the other way. */
		__builtin_memcpy(q.saddr, k->daddr, 16);
		__builtin_memcpy(q.daddr, k->saddr, 16);
		q.sport = k->dport;
		q.dport = k->sport;
		st = bpf_map_lookup_elem(&http, &q);
		if (!st || !st->count)
			return 1;
		now = bpf_ktime_get_ns();
		i = st->head & (FL_HTTP_QUEUE - 1);
		sm = bpf_ringbuf_reserve(&samples, sizeof(*sm), 0);
		if (!sm) {
			count(FL_CNT_SAMPLES_FULL);
		} else {
			__builtin_memcpy(&sm->key, &q, sizeof(q));
			sm->duration_ns = now - st->start_ns[i];
			sm->status =
				digit(b[9]) && digit(b[10]) && digit(b[11]) ?
					(b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0') :
					0;
			sm->kind = FL_SAMPLE_HTTP;
			sm->method = st->method[i];
			sm->pad = 0;
			bpf_ringbuf_submit(sm, sample_flags(&samples));
		}
		st->head++;
		st->count--;
		return 1;
	}
	m = http_method(w);
	if (m == FL_HTTP_METHODS)
		return 0;
	now = bpf_ktime_get_ns();
	st = bpf_map_lookup_elem(&http, &q);
	if (!st) {
		struct fl_http init = {};

		init.start_ns[0] = now;
		init.method[0] = m;
		init.count = 1;
		bpf_map_update_elem(&http, &q, &init, BPF_ANY);
		return 1;
	}
	if (st->count >= FL_HTTP_QUEUE) {
		count(FL_CNT_HTTP_QUEUE_FULL);
		return 1;
	}
	i = (st->head + st->count) & (FL_HTTP_QUEUE - 1);
	st->start_ns[i] = now;
	st->method[i] = m;
	st->count++;
	return 1;
}

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

static __noinline int flow_insert4(struct __sk_buff *skb, struct fl_key4 *k, struct fl_key *full,
				   __u32 bytes, __u8 tcp_flags)
{
	if (!full)
		return 0;
	return flow_insert(&flows4, k, full, bytes, tcp_flags, bpf_jiffies64(),
			   ct_step(skb, full, 1, 0));
}

static __noinline int flow_insert6(struct __sk_buff *skb, struct fl_key *k, __u32 bytes,
				   __u8 tcp_flags)
{
	if (!k)
		return 0;
	return flow_insert(&flows6, k, k, bytes, tcp_flags, bpf_jiffies64(), ct_step(skb, k, 0, 0));
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
	if (http_enabled && key.proto == IPPROTO_TCP && ret == PARSE_OK &&
	    (!v || v->l7 < FL_L7_TRIES || v->l7 == FL_L7_HTTP)) {
		__u32 end = p.l3_len ? p.l3_off + p.l3_len : skb->len;
		__u32 off = p.payload_off & 0x3ff; /* headers end within 1 KiB */

		/* 12 bytes: a method, or "HTTP/1.x NNN" */
		if (end >= off + 12 && end <= skb->len) {
			__u8 *pp = (__u8 *)(long)skb->data + off;
			int http = 0;
			__u32 w;

			/* Linear payload: look first, cheaply; else read it (a helper call). */
			if ((void *)(pp + 12) <= (void *)(long)skb->data_end) {
				__builtin_memcpy(&w, pp, 4);
				if (w == W4('H', 'T', 'T', 'P') ||
				    http_method(w) != FL_HTTP_METHODS)
					http = http_inspect(skb, &key, off);
			} else {
				http = http_inspect(skb, &key, off);
			}
			/*
			 * A direction whose first payload segments start no HTTP message is not
			 * HTTP (a bulk transfer, a database): it is not looked at again.
			 */
			if (v && v->l7 != FL_L7_HTTP)
				v->l7 = http ? FL_L7_HTTP : v->l7 + 1;
		}
	}
	if (dns_enabled && (key.proto == IPPROTO_UDP || key.proto == IPPROTO_TCP) &&
	    ret == PARSE_OK && (key.dport == 53 || key.sport == 53)) {
		__u32 end = p.l3_len ? p.l3_off + p.l3_len : skb->len;
		/* Over TCP a message starts a segment, after its 2-byte length. */
		__u32 off = p.payload_off + (key.proto == IPPROTO_TCP ? 2 : 0);

		if (end >= off + 12 && end <= skb->len)
			dns_inspect(skb, &key, off, end);
	}
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

static __always_inline void bump(void *map, const struct fl_key *k)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, k);

	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(map, k, &one, BPF_NOEXIST))
		if ((v = bpf_map_lookup_elem(map, k)))
			__sync_fetch_and_add(v, 1);
}

/* A socket retransmits a segment (tracepoint: attached only when the signal is on). */
SEC("tp_btf/tcp_retransmit_skb")
int flowlens_retransmit(__u64 *ctx)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	struct fl_key k = {};
	__u16 family;

	if (!sk)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family == 2 /* AF_INET */) {
		k.saddr[2] = k.daddr[2] = bpf_htonl(0xffff);
		k.saddr[3] = sk->__sk_common.skc_rcv_saddr;
		k.daddr[3] = sk->__sk_common.skc_daddr;
	} else if (family == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&k.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&k.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return 0;
	}
	k.sport = sk->__sk_common.skc_num;
	k.dport = bpf_ntohs(sk->__sk_common.skc_dport);
	k.proto = IPPROTO_TCP;
	k.dir = event_gen;
	bump(&retrans, &k);
	return 0;
}

/* A dropped packet's addresses and ports, counted in the drops map under its reason. */
static __always_inline int count_drop(struct sk_buff *skb, __u32 reason)
{
	unsigned char *head;
	__u16 nh, th, proto;
	struct fl_key k = {};
	__u8 ver;

	if (!skb)
		return 0;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	th = BPF_CORE_READ(skb, transport_header);
	proto = BPF_CORE_READ(skb, protocol);
	if (nh == 0xffff || bpf_probe_read_kernel(&ver, 1, head + nh))
		return 0;
	if (proto == bpf_htons(ETH_P_IP_) && (ver >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		k.saddr[2] = k.daddr[2] = bpf_htonl(0xffff);
		k.saddr[3] = ip.saddr;
		k.daddr[3] = ip.daddr;
		k.proto = ip.protocol;
		if (th == 0xffff || th <= nh)
			th = nh + (__u16)(ip.ihl * 4);
	} else if (proto == bpf_htons(ETH_P_IPV6_) && (ver >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		__builtin_memcpy(k.saddr, &ip6.saddr, 16);
		__builtin_memcpy(k.daddr, &ip6.daddr, 16);
		k.proto = ip6.nexthdr;
		if (th == 0xffff || th <= nh)
			th = nh + 40;
	} else {
		return 0;
	}
	if (k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_probe_read_kernel(ports, sizeof(ports), head + th) == 0) {
			k.sport = bpf_ntohs(ports[0]);
			k.dport = bpf_ntohs(ports[1]);
		}
	}
	k.ifindex = reason;
	k.dir = event_gen;
	bump(&drops, &k);
	return 0;
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
