// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "flowtab.h"

#define BATCH 1024
#define EPHEMERAL_MIN 32768 /* Linux ip_local_port_range starts here by default */

/* What the previous drain saw of one kernel entry. */
struct flow_entry {
	struct fl_key key;
	struct fl_stats last; /* as the previous drain read it */
	uint64_t gen;
	uint64_t changed_ns; /* drain time of the last non-zero delta */
	int kind;
	UT_hash_handle hh;
};

/* A connection: both directions of one 5-tuple, sides in canonical order (a < b). */
struct conn_key {
	uint32_t a[4];
	uint32_t b[4];
	uint16_t aport;
	uint16_t bport;
	uint8_t proto;
	uint8_t pad[3];
};

#define CONN_SEEN 2 /* a pod veth on each side; or an ENI (ENI copies of pods' are skipped) */

enum xl_state {
	XL_UNKNOWN = 0,
	XL_DIRECT, /* conntrack here knows it, without a destination translation */
	XL_NAT,
};

struct conn {
	struct conn_key key;
	int client_is_a;
	enum initiator_by by;
	uint8_t xl; /* enum xl_state */
	uint8_t xl_queries;
	struct fl_nat nat; /* when xl == XL_NAT */
	/*
	 * The aggregates this connection's packets went to, per interface that saw them (a pod
	 * veth on each side, an ENI): samples and tracepoint counts are attributed through them.
	 */
	struct {
		uint32_t ifindex; /* 0: free */
		struct agg_key ak;
	} seen[CONN_SEEN];
	uint64_t first_a_ns; /* first packet sent by a / by b */
	uint64_t first_b_ns;
	uint64_t last_ns;
	UT_hash_handle hh;
};

struct local_ip {
	uint32_t addr[4];
	int routes; /* host routes through a pod interface */
	uint64_t grace_gen; /* still local through this drain: its route just went away */
	uint64_t learned_ns; /* last seen as a pod's own address at a pod veth */
	UT_hash_handle hh;
};

/* Packets the kernel handed over through the ring buffer, pending the next drain. */
struct pending {
	struct fl_key key;
	struct fl_stats delta;
	UT_hash_handle hh;
};

/* One delta of one drain. */
struct item {
	struct fl_key key;
	struct fl_stats d;
	int kind;
};

/*
 * A TCP connection as seen at one interface: from its SYN to how it ended. Connect latency is
 * the SYN-ACK entry's first packet time minus the SYN entry's (both taken by the datapath
 * when it inserted the entries): no per-packet work beyond what flow counting does.
 */
enum obs_state {
	OBS_SYN = 0, /* SYN seen, no answer yet */
	OBS_ESTABLISHED,
	OBS_DONE, /* refused, timed out or reset: counted */
};

struct obs_key {
	struct conn_key ck;
	uint32_t ifindex;
};

struct tcp_obs {
	struct obs_key key;
	uint64_t syn_ns;
	uint64_t last_ns;
	uint8_t state;
	struct agg_key agg; /* where an outcome without packets (a timeout) is counted */
	UT_hash_handle hh;
};

/* A RST of this drain, applied after every SYN-ACK of the drain. */
struct rst_event {
	struct tcp_obs *o;
	struct flow_agg *a;
	int from_client;
};

#define SAMPLES_MAX 262144 /* waiting for the next drain */

/* An interface that vanished: its kind is still needed for the flows it left behind. */
struct gone_iface {
	int ifindex;
	int kind;
	UT_hash_handle hh;
};

struct flowtab {
	int flows4_fd;
	int flows6_fd;
	int counters_fd;
	int ncpus;
	uint32_t capacity;
	uint32_t overflow_max;
	uint64_t idle_ns;
	flowtab_kind_fn kind;
	void *kind_ctx;
	int nat_fd;
	int dns_fd;
	int retrans_fd;
	int drops_fd;
	volatile uint8_t *event_gen; /* the programs' generation (BPF .bss), or NULL */
	uint8_t taking_gen; /* the generation this drain takes */
	uint64_t flip_ns; /* when it was retired (CLOCK_MONOTONIC) */
	flowtab_ct_fn ct_query;
	void *ct_ctx;
	uint64_t gen;
	uint64_t now_ns;
	struct flowtab_clock clock;

	struct flow_entry *entries;
	struct conn *conns;
	struct local_ip *local;
	struct pending *pending;
	unsigned int n_pending;
	struct gone_iface *gone;
	struct flow_agg *aggs;
	struct tcp_obs *obs;
	struct flowtab_signals sig;
	struct rst_event *rsts;
	size_t n_rsts, cap_rsts;
	struct fl_sample *samples;
	size_t n_samples, cap_samples;

	struct item *items;
	size_t n_items, cap_items;
	void *kbuf; /* BATCH keys of the larger key type */
	struct fl_stats *vbuf;

	struct flowtab_stats st;
};

int flowtab_new(struct flowtab **out, int flows4_fd, int flows6_fd, int counters_fd,
		uint32_t capacity, uint32_t overflow_max, uint64_t idle_timeout_ns,
		flowtab_kind_fn kind, void *ctx)
{
	struct flowtab *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->flows4_fd = flows4_fd;
	t->flows6_fd = flows6_fd;
	t->counters_fd = counters_fd;
	t->ncpus = libbpf_num_possible_cpus();
	t->capacity = capacity;
	t->overflow_max = overflow_max;
	t->idle_ns = idle_timeout_ns;
	t->kind = kind;
	t->kind_ctx = ctx;
	t->nat_fd = -1;
	t->dns_fd = -1;
	t->retrans_fd = -1;
	t->drops_fd = -1;
	if (t->ncpus <= 0) {
		free(t);
		return -EINVAL;
	}
	t->kbuf = calloc(BATCH, sizeof(struct fl_key));
	t->vbuf = calloc(BATCH, sizeof(*t->vbuf));
	if (!t->kbuf || !t->vbuf) {
		flowtab_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

static void free_aggs(struct flowtab *t)
{
	struct flow_agg *a, *tmp;

	HASH_ITER (hh, t->aggs, a, tmp) {
		HASH_DEL(t->aggs, a);
		free(a->connect);
		free(a->http);
		free(a->dns);
		free(a->drops);
		free(a);
	}
}

void flowtab_free(struct flowtab *t)
{
	struct flow_entry *e, *etmp;
	struct conn *c, *ctmp;
	struct local_ip *l, *ltmp;
	struct pending *p, *ptmp;
	struct gone_iface *g, *gtmp;

	if (!t)
		return;
	HASH_ITER (hh, t->entries, e, etmp) {
		HASH_DEL(t->entries, e);
		free(e);
	}
	HASH_ITER (hh, t->conns, c, ctmp) {
		HASH_DEL(t->conns, c);
		free(c);
	}
	HASH_ITER (hh, t->local, l, ltmp) {
		HASH_DEL(t->local, l);
		free(l);
	}
	HASH_ITER (hh, t->pending, p, ptmp) {
		HASH_DEL(t->pending, p);
		free(p);
	}
	HASH_ITER (hh, t->gone, g, gtmp) {
		HASH_DEL(t->gone, g);
		free(g);
	}
	{
		struct tcp_obs *o, *otmp;

		HASH_ITER (hh, t->obs, o, otmp) {
			HASH_DEL(t->obs, o);
			free(o);
		}
	}
	free(t->samples);
	free_aggs(t);
	free(t->rsts);
	free(t->items);
	free(t->kbuf);
	free(t->vbuf);
	free(t);
}

static void stats_add(struct fl_stats *to, const struct fl_stats *v)
{
	to->packets += v->packets;
	to->bytes += v->bytes;
	to->syn += v->syn;
	to->synack += v->synack;
	to->fin += v->fin;
	to->rst += v->rst;
	to->flags_or |= v->flags_or;
	to->ct |= v->ct;
	if (v->first_ns && (!to->first_ns || v->first_ns < to->first_ns))
		to->first_ns = v->first_ns;
	if (v->last_jiffies > to->last_jiffies)
		to->last_jiffies = v->last_jiffies;
}

/* delta = cur - prev for the counters; timestamps and flags come from cur. */
static void stats_delta(const struct fl_stats *cur, const struct fl_stats *prev, struct fl_stats *d)
{
	*d = *cur;
	if (cur->packets < prev->packets)
		return; /* the kernel entry was recreated: all of cur is new */
	d->packets = cur->packets - prev->packets;
	d->bytes = cur->bytes - prev->bytes;
	d->syn = cur->syn - prev->syn;
	d->synack = cur->synack - prev->synack;
	d->fin = cur->fin - prev->fin;
	d->rst = cur->rst - prev->rst;
}

static int push_item(struct flowtab *t, const struct fl_key *k, const struct fl_stats *d, int kind)
{
	if (t->n_items == t->cap_items) {
		size_t cap = t->cap_items ? t->cap_items * 2 : 1024;
		struct item *n = realloc(t->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->items = n;
		t->cap_items = cap;
	}
	t->items[t->n_items].key = *k;
	t->items[t->n_items].d = *d;
	t->items[t->n_items].kind = kind;
	t->n_items++;
	return 0;
}

static int kind_of(struct flowtab *t, int ifindex)
{
	struct gone_iface *g;
	int k = t->kind(t->kind_ctx, ifindex);

	if (k >= 0)
		return k;
	HASH_FIND_INT(t->gone, &ifindex, g);
	return g ? g->kind : IFACE_NODE;
}

/* The common (IPv4-mapped) form of an IPv4 table key, and back. */
static void key_from4(const struct fl_key4 *k4, struct fl_key *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr[2] = k->daddr[2] = htonl(0xffff);
	k->saddr[3] = k4->saddr;
	k->daddr[3] = k4->daddr;
	k->ifindex = k4->ifindex;
	k->sport = k4->sport;
	k->dport = k4->dport;
	k->proto = k4->proto;
	k->dir = k4->dir;
}

/* Marks, in user space's copy of a key, that it came from the IPv4 table. */
#define KEY_FROM_TABLE4 1

static int key_to4(const struct fl_key *k, struct fl_key4 *k4)
{
	if (k->pad != KEY_FROM_TABLE4)
		return 0;
	memset(k4, 0, sizeof(*k4));
	k4->saddr = k->saddr[3];
	k4->daddr = k->daddr[3];
	k4->ifindex = k->ifindex;
	k4->sport = k->sport;
	k4->dport = k->dport;
	k4->proto = k->proto;
	k4->dir = k->dir;
	return 1;
}

static int see_entry(struct flowtab *t, const struct fl_key *k, const struct fl_stats *cur)
{
	struct flow_entry *e;
	struct fl_stats d;

	HASH_FIND(hh, t->entries, k, sizeof(*k), e);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->key = *k;
		e->kind = kind_of(t, (int)k->ifindex);
		HASH_ADD(hh, t->entries, key, sizeof(e->key), e);
	}
	stats_delta(cur, &e->last, &d);
	e->last = *cur;
	e->gen = t->gen;
	if (!d.packets)
		return 0;
	e->changed_ns = t->now_ns;
	return push_item(t, k, &d, e->kind);
}

static int see_raw(struct flowtab *t, int is4, const void *raw, const struct fl_stats *v)
{
	struct fl_key k;

	if (is4) {
		key_from4(raw, &k);
		/* An IPv6 packet with an IPv4-mapped address must not share its entry. */
		k.pad = KEY_FROM_TABLE4;
		return see_entry(t, &k, v);
	}
	return see_entry(t, raw, v);
}

/* Reads one family's table, in batches where the kernel supports them. */
static int read_table(struct flowtab *t, int fd, int is4)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t ksize = is4 ? sizeof(struct fl_key4) : sizeof(struct fl_key);
	struct fl_key next, cur; /* large enough for either key */
	__u32 out_batch, count;
	void *in = NULL;
	int err, n = 0;

	for (;;) {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, in, &out_batch, t->kbuf, t->vbuf, &count, &opts);
		if (err && errno != ENOENT)
			break;
		for (__u32 i = 0; i < count; i++) {
			int e = see_raw(t, is4, (char *)t->kbuf + i * ksize, &t->vbuf[i]);

			if (e)
				return e;
			n++;
		}
		if (err)
			return n; /* ENOENT: that was the last batch */
		in = &out_batch;
	}
	if (in) {
		/* Failing half-way would re-count entries; a full pass again is the fix. */
		return -errno;
	}
	/* No batch support: one key at a time. */
	n = 0;
	for (err = bpf_map_get_next_key(fd, NULL, &next); err == 0;
	     err = bpf_map_get_next_key(fd, &cur, &next)) {
		memcpy(&cur, &next, ksize);
		if (bpf_map_lookup_elem(fd, &cur, t->vbuf))
			continue;
		err = see_raw(t, is4, &cur, t->vbuf);
		if (err)
			return err;
		n++;
	}
	return n;
}

static int read_kernel(struct flowtab *t)
{
	int n4 = read_table(t, t->flows4_fd, 1), n6;

	if (n4 < 0)
		return n4;
	n6 = read_table(t, t->flows6_fd, 0);
	if (n6 < 0)
		return n6;
	t->st.kernel_entries4 = (uint64_t)n4;
	t->st.kernel_entries6 = (uint64_t)n6;
	return n4 + n6;
}

static void read_counters(struct flowtab *t)
{
	__u64 vals[t->ncpus];

	for (__u32 i = 0; i < FL_CNT_MAX; i++) {
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(t->counters_fd, &i, vals))
			continue;
		for (int c = 0; c < t->ncpus; c++)
			sum += vals[c];
		t->st.datapath[i] = sum;
	}
}

/* Removes idle entries and those of vanished interfaces; their final deltas are kept. */
static void evict(struct flowtab *t, uint64_t now_ns)
{
	struct flow_entry *e, *tmp;

	HASH_ITER (hh, t->entries, e, tmp) {
		struct gone_iface *gi;
		struct fl_stats cur, d;
		struct fl_key4 k4;
		int gone, is4, fd;
		void *kp;

		if (e->gen != t->gen) {
			/* No longer in the kernel (removed outside the agent). */
			HASH_DEL(t->entries, e);
			free(e);
			continue;
		}
		HASH_FIND_INT(t->gone, &e->key.ifindex, gi);
		gone = gi != NULL;
		if (!gone && (e->changed_ns + t->idle_ns > now_ns))
			continue;
		is4 = key_to4(&e->key, &k4);
		fd = is4 ? t->flows4_fd : t->flows6_fd;
		kp = is4 ? (void *)&k4 : (void *)&e->key;
		if (bpf_map_lookup_and_delete_elem(fd, kp, &cur) == 0) {
			stats_delta(&cur, &e->last, &d);
			if (d.packets)
				push_item(t, &e->key, &d, e->kind);
		} else if (errno != ENOENT) {
			/* Kernels without lookup-and-delete: plain delete, racing a last packet. */
			bpf_map_delete_elem(fd, kp);
		}
		if (t->nat_fd >= 0 && (e->last.ct & FL_CT_NAT)) {
			struct fl_key nk = e->key;

			nk.pad = 0;
			bpf_map_delete_elem(t->nat_fd, &nk);
		}
		t->st.evicted++;
		HASH_DEL(t->entries, e);
		free(e);
	}
}

static void take_pending(struct flowtab *t)
{
	struct pending *p, *tmp;

	HASH_ITER (hh, t->pending, p, tmp) {
		push_item(t, &p->key, &p->delta, kind_of(t, (int)p->key.ifindex));
		HASH_DEL(t->pending, p);
		free(p);
	}
	t->n_pending = 0;
}

static int tuple_cmp(const uint32_t *a, uint16_t ap, const uint32_t *b, uint16_t bp)
{
	int c = memcmp(a, b, 16);

	if (c)
		return c;
	return (int)ap - (int)bp;
}

/* Canonical connection key; *sender_is_a tells which side sent the item's packets. */
static void conn_key_of(const struct fl_key *k, struct conn_key *ck, int *sender_is_a)
{
	memset(ck, 0, sizeof(*ck));
	ck->proto = k->proto;
	if (tuple_cmp(k->saddr, k->sport, k->daddr, k->dport) <= 0) {
		memcpy(ck->a, k->saddr, 16);
		memcpy(ck->b, k->daddr, 16);
		ck->aport = k->sport;
		ck->bport = k->dport;
		*sender_is_a = 1;
	} else {
		memcpy(ck->a, k->daddr, 16);
		memcpy(ck->b, k->saddr, 16);
		ck->aport = k->dport;
		ck->bport = k->sport;
		*sender_is_a = 0;
	}
}

static struct local_ip *local_find(struct flowtab *t, const uint32_t addr[4])
{
	struct local_ip *l;

	HASH_FIND(hh, t->local, addr, 16, l);
	return l;
}

static struct local_ip *local_get(struct flowtab *t, const uint32_t addr[4])
{
	struct local_ip *l = local_find(t, addr);

	if (l)
		return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	memcpy(l->addr, addr, 16);
	HASH_ADD(hh, t->local, addr, sizeof(l->addr), l);
	return l;
}

static void mapped_addr(int family, const void *addr, uint32_t out[4])
{
	memset(out, 0, 16);
	if (family == AF_INET) {
		out[2] = htonl(0xffff);
		memcpy(&out[3], addr, 4);
	} else {
		memcpy(out, addr, 16);
	}
}

void flowtab_route(struct flowtab *t, int add, int family, const void *addr, int is_pod)
{
	uint32_t a[4];
	struct local_ip *l;

	if (!is_pod)
		return;
	mapped_addr(family, addr, a);
	if (add) {
		l = local_get(t, a);
		if (l)
			l->routes++;
		return;
	}
	l = local_find(t, a);
	if (l && l->routes > 0) {
		l->routes--;
		/* Packets counted before the route vanished are drained next time. */
		l->grace_gen = t->gen + 2;
	}
}

void flowtab_iface_gone(struct flowtab *t, int ifindex, int kind)
{
	struct gone_iface *g;

	HASH_FIND_INT(t->gone, &ifindex, g);
	if (g)
		return;
	g = calloc(1, sizeof(*g));
	if (!g)
		return;
	g->ifindex = ifindex;
	g->kind = kind;
	HASH_ADD_INT(t->gone, ifindex, g);
}

void flowtab_overflow(struct flowtab *t, const struct fl_overflow_event *ev)
{
	struct pending *p;
	struct fl_stats one = { 0 };

	t->st.overflow_records++;
	one.packets = 1;
	one.bytes = ev->bytes;
	one.first_ns = ev->ts_ns;
	one.last_jiffies = ev->jiffies;
	one.flags_or = ev->tcp_flags;
	if (ev->tcp_flags & TCPF_SYN_BIT) {
		if (ev->tcp_flags & TCPF_ACK_BIT)
			one.synack = 1;
		else
			one.syn = 1;
	}
	one.fin = !!(ev->tcp_flags & TCPF_FIN_BIT);
	one.rst = !!(ev->tcp_flags & TCPF_RST_BIT);

	HASH_FIND(hh, t->pending, &ev->key, sizeof(ev->key), p);
	if (!p) {
		if (t->n_pending >= t->overflow_max || !(p = calloc(1, sizeof(*p)))) {
			t->st.overflow_dropped_packets++;
			return;
		}
		p->key = ev->key;
		HASH_ADD(hh, t->pending, key, sizeof(p->key), p);
		t->n_pending++;
	}
	stats_add(&p->delta, &one);
}

#define XL_QUERIES_MAX 3 /* user-space conntrack queries per connection */

/* What conntrack says about the connection's destination, from the datapath or netlink. */
static void resolve_translation(struct flowtab *t, struct conn *c, const struct item *it)
{
	struct fl_key k = it->key;
	struct fl_nat n;
	int r;

	if (c->xl != XL_UNKNOWN)
		return;
	k.pad = 0;
	if ((it->d.ct & FL_CT_NAT) && t->nat_fd >= 0 &&
	    bpf_map_lookup_elem(t->nat_fd, &k, &n) == 0) {
		c->nat = n;
		c->xl = XL_NAT;
		t->st.xl_nat++;
		return;
	}
	if (it->d.ct & FL_CT_FOUND) {
		c->xl = XL_DIRECT;
		t->st.xl_direct++;
		return;
	}
	if (!t->ct_query || c->xl_queries >= XL_QUERIES_MAX || (k.proto != 6 && k.proto != 17))
		return;
	c->xl_queries++;
	t->st.xl_queries++;
	r = t->ct_query(t->ct_ctx, &k, &n);
	if (r == 1) {
		c->nat = n;
		c->xl = XL_NAT;
		t->st.xl_nat++;
	} else if (r == 0) {
		c->xl = XL_DIRECT;
		t->st.xl_direct++;
	} else if (r != -ENOENT) {
		t->st.xl_query_errors++;
	}
}

static struct tcp_obs *obs_find(struct flowtab *t, const struct conn_key *ck, uint32_t ifindex)
{
	struct obs_key k;
	struct tcp_obs *o;

	memset(&k, 0, sizeof(k));
	k.ck = *ck;
	k.ifindex = ifindex;
	HASH_FIND(hh, t->obs, &k, sizeof(k), o);
	return o;
}

/* A SYN: a connection attempt starts being followed at this interface. */
static void obs_syn(struct flowtab *t, const struct conn_key *ck, const struct item *it)
{
	struct tcp_obs *o = obs_find(t, ck, it->key.ifindex);

	if (o) {
		/* A new attempt on a finished connection's tuple (port reuse): start over. */
		if (o->state == OBS_SYN || it->d.first_ns <= o->syn_ns)
			return;
		memset(&o->agg, 0, sizeof(o->agg));
		o->state = OBS_SYN;
		o->syn_ns = it->d.first_ns;
		o->last_ns = t->now_ns;
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->key.ck = *ck;
	o->key.ifindex = it->key.ifindex;
	o->syn_ns = it->d.first_ns ? it->d.first_ns : t->now_ns;
	o->last_ns = t->now_ns;
	o->state = OBS_SYN;
	HASH_ADD(hh, t->obs, key, sizeof(o->key), o);
}

static void hist_add(struct hist *h, const double *bounds, unsigned int nb, double v)
{
	unsigned int i;

	for (i = 0; i < nb && v > bounds[i]; i++)
		;
	h->counts[i]++;
	h->n++;
	h->sum += v;
}

static void hist_observe(struct flowtab *t, struct flow_agg *a, double v)
{
	if (!a->connect && !(a->connect = calloc(1, sizeof(*a->connect))))
		return;
	hist_add(a->connect, t->sig.connect_bounds, t->sig.n_connect_bounds, v);
}

/* Remembers which aggregate the connection's packets at this interface went to. */
static void conn_seen(struct conn *c, uint32_t ifindex, const struct agg_key *ak)
{
	int i, free_slot = -1;

	for (i = 0; i < CONN_SEEN; i++) {
		if (c->seen[i].ifindex == ifindex) {
			c->seen[i].ak = *ak;
			return;
		}
		if (!c->seen[i].ifindex && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		free_slot = CONN_SEEN - 1; /* more interfaces than slots: the latest wins */
	c->seen[free_slot].ifindex = ifindex;
	c->seen[free_slot].ak = *ak;
}

static const struct agg_key *conn_seen_at(const struct conn *c, uint32_t ifindex)
{
	for (int i = 0; i < CONN_SEEN; i++)
		if (c->seen[i].ifindex == ifindex)
			return &c->seen[i].ak;
	return NULL;
}

void flowtab_sample(struct flowtab *t, const struct fl_sample *sm)
{
	t->st.samples++;
	if (t->n_samples == t->cap_samples) {
		size_t cap = t->cap_samples ? 2 * t->cap_samples : 1024;
		struct fl_sample *n;

		if (cap > SAMPLES_MAX || !(n = realloc(t->samples, cap * sizeof(*n)))) {
			t->st.samples_dropped++;
			return;
		}
		t->samples = n;
		t->cap_samples = cap;
	}
	t->samples[t->n_samples++] = *sm;
}

static struct flow_agg *agg_get(struct flowtab *t, const struct agg_key *ak);
static int is_local(struct flowtab *t, const uint32_t addr[4]);

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Takes the counts a tracepoint map holds for the retired generation (lookup and delete, so
 * a count is taken once) and hands each to fn with its key. Keys of the current generation
 * stay for the next drain. Without generations (event_gen NULL), every key is taken.
 */
static void take_events(struct flowtab *t, int fd,
			void (*fn)(struct flowtab *t, const struct fl_key *k, uint64_t n))
{
	static struct fl_key keys[16384]; /* the maps' max_entries */
	struct fl_key k, *prev = NULL;
	unsigned int n = 0;
	uint64_t v;

	/*
	 * A program that read the old generation finishes within microseconds (BPF programs
	 * do not sleep); the rest of the drain usually took longer than the 1 ms waited here.
	 */
	if (t->event_gen) {
		uint64_t waited = mono_ns() - t->flip_ns;

		if (waited < 1000000) {
			struct timespec ts = { 0, (long)(1000000 - waited) };

			nanosleep(&ts, NULL);
		}
	}
	while (n < sizeof(keys) / sizeof(keys[0]) && bpf_map_get_next_key(fd, prev, &k) == 0) {
		keys[n] = k;
		prev = &keys[n];
		if (!t->event_gen || k.dir == t->taking_gen)
			n++;
	}
	for (unsigned int i = 0; i < n; i++) {
		int err = bpf_map_lookup_and_delete_elem(fd, &keys[i], &v);

		/* Hash maps take lookup-and-delete from Linux 5.14; before, two calls. */
		if (err && errno != ENOENT && bpf_map_lookup_elem(fd, &keys[i], &v) == 0)
			err = bpf_map_delete_elem(fd, &keys[i]);
		keys[i].dir = 0;
		if (err == 0 && v)
			fn(t, &keys[i], v);
	}
}

/* The aggregate at the pod veth of the endpoint addr:port of a connection, if this node has it. */
static struct flow_agg *pod_side_agg(struct flowtab *t, const struct fl_key *k, int src)
{
	struct conn_key ck;
	struct conn *c;
	int sender_is_a, side_is_a, side_is_client;

	conn_key_of(k, &ck, &sender_is_a);
	HASH_FIND(hh, t->conns, &ck, sizeof(ck), c);
	if (!c)
		return NULL;
	side_is_a = src ? sender_is_a : !sender_is_a;
	side_is_client = side_is_a == c->client_is_a;
	for (int i = 0; i < CONN_SEEN; i++) {
		uint8_t want = side_is_client ? REPORTER_CLIENT : REPORTER_SERVER;

		if (c->seen[i].ifindex && c->seen[i].ak.reporter == want)
			return agg_get(t, &c->seen[i].ak);
	}
	return NULL;
}

static void on_retransmits(struct flowtab *t, const struct fl_key *k, uint64_t n)
{
	struct flow_agg *a;

	t->st.retransmits += n;
	/* The socket's own side: only its node's agent has that pod's veth. */
	if (!is_local(t, k->saddr) || !(a = pod_side_agg(t, k, 1)))
		return;
	a->retransmits += n;
	t->st.retransmits_attributed += n;
}

static void on_drops(struct flowtab *t, const struct fl_key *k, uint64_t n)
{
	struct flow_agg *a = NULL;
	uint16_t reason = (uint16_t)k->ifindex;
	int i;

	t->st.drops[reason < FLOWTAB_DROP_REASONS ? reason : 0] += n;
	/* The receiving pod's side if it is here, else the sending pod's. */
	if (is_local(t, k->daddr))
		a = pod_side_agg(t, k, 0);
	if (!a && is_local(t, k->saddr))
		a = pod_side_agg(t, k, 1);
	if (!a)
		return;
	if (!a->drops && !(a->drops = calloc(1, sizeof(*a->drops))))
		return;
	for (i = 0; i < a->drops->n && a->drops->d[i].reason != reason; i++)
		;
	if (i == a->drops->n) {
		if (a->drops->n == 8)
			return;
		a->drops->d[a->drops->n].reason = reason;
		a->drops->d[a->drops->n++].count = 0;
	}
	a->drops->d[i].count += (uint32_t)n;
	t->st.drops_attributed += n;
}

int flowtab_dns_qtype_index(uint16_t qtype)
{
	static const uint16_t known[DNS_QTYPES - 1] = { 1, 2, 5, 6, 12, 15, 16, 28, 33, 65 };

	for (int i = 0; i < DNS_QTYPES - 1; i++)
		if (known[i] == qtype)
			return i;
	return DNS_QTYPES - 1;
}

/*
 * Queries the datapath still holds after the DNS timeout were never answered: each becomes a
 * timeout sample, and is removed. (Read before the samples are applied.)
 */
static void sweep_dns(struct flowtab *t)
{
	struct fl_dns_key k, next, *prev, expired[256];
	struct fl_dns_query q;
	uint64_t now = t->clock.ktime_ns;
	unsigned int n, rounds = 0;

	if (t->dns_fd < 0 || !now)
		return;
	/* In rounds of 256 (deleting while walking would restart the walk): until none is due. */
	do {
		n = 0;
		prev = NULL;
		while (n < 256 && bpf_map_get_next_key(t->dns_fd, prev, &next) == 0) {
			k = next;
			prev = &k;
			if (bpf_map_lookup_elem(t->dns_fd, &k, &q) == 0 &&
			    q.start_ns + t->sig.dns_timeout_ns <= now) {
				struct fl_sample sm;

				memset(&sm, 0, sizeof(sm));
				sm.key = k.key;
				sm.kind = FL_SAMPLE_DNS;
				sm.status = FL_DNS_TIMEOUT;
				sm.qtype = q.qtype;
				flowtab_sample(t, &sm);
				expired[n++] = k;
			}
		}
		for (unsigned int i = 0; i < n; i++)
			bpf_map_delete_elem(t->dns_fd, &expired[i]);
	} while (n == 256 && ++rounds < 64); /* the rest waits for the next drain */
}

/* After pass 2: finished exchanges into their aggregates' counters and histograms. */
static void apply_samples(struct flowtab *t)
{
	for (size_t i = 0; i < t->n_samples; i++) {
		const struct fl_sample *sm = &t->samples[i];
		const struct agg_key *ak = NULL;
		struct flow_agg *a = NULL;
		struct conn_key ck;
		struct conn *c;
		int unused, cls;

		conn_key_of(&sm->key, &ck, &unused);
		HASH_FIND(hh, t->conns, &ck, sizeof(ck), c);
		if (c)
			ak = conn_seen_at(c, sm->key.ifindex);
		if (!ak || !(a = agg_get(t, ak))) {
			t->st.samples_unattributed++;
			continue;
		}
		if (sm->kind == FL_SAMPLE_DNS && t->sig.dns) {
			int rc = sm->status == FL_DNS_TIMEOUT ? DNS_RCODE_TIMEOUT :
				 sm->status < DNS_RCODE_OTHER ? sm->status :
								DNS_RCODE_OTHER;

			if (!a->dns && !(a->dns = calloc(1, sizeof(*a->dns))))
				continue;
			a->dns->requests[rc][flowtab_dns_qtype_index(sm->qtype)]++;
			if (rc != DNS_RCODE_TIMEOUT)
				hist_add(&a->dns->duration, t->sig.dns_bounds, t->sig.n_dns_bounds,
					 (double)sm->duration_ns / 1e9);
			continue;
		}
		if (sm->kind != FL_SAMPLE_HTTP || !t->sig.http)
			continue;
		if (!a->http && !(a->http = calloc(1, sizeof(*a->http))))
			continue;
		cls = sm->status >= 100 && sm->status <= 599 ? sm->status / 100 : 0;
		a->http->requests[sm->method < FL_HTTP_METHODS ? sm->method : 0][cls]++;
		hist_add(&a->http->duration, t->sig.http_bounds, t->sig.n_http_bounds,
			 (double)sm->duration_ns / 1e9);
	}
	t->n_samples = 0;
}

static void tcp_count(struct flowtab *t, struct flow_agg *a, enum tcp_result r)
{
	a->tcp[r]++;
	t->st.tcp[r]++;
}

/* Pass 2, per TCP item: SYN-ACKs settle attempts; RSTs are kept for after the pass. */
static void tcp_observe(struct flowtab *t, const struct conn_key *ck, const struct item *it,
			struct flow_agg *a, int sender_is_client)
{
	struct tcp_obs *o = obs_find(t, ck, it->key.ifindex);

	if (!o)
		return;
	o->last_ns = t->now_ns;
	if (sender_is_client && it->d.syn && o->state == OBS_SYN)
		o->agg = a->key;
	if (!sender_is_client && it->d.synack && o->state == OBS_SYN) {
		/* The SYN-ACK entry's first packet is the SYN-ACK: both times from the kernel. */
		if (it->d.first_ns >= o->syn_ns)
			hist_observe(t, a, (double)(it->d.first_ns - o->syn_ns) / 1e9);
		tcp_count(t, a, TCP_ESTABLISHED);
		o->state = OBS_ESTABLISHED;
	}
	if (it->d.rst && o->state != OBS_DONE) {
		if (t->n_rsts == t->cap_rsts) {
			size_t cap = t->cap_rsts ? 2 * t->cap_rsts : 64;
			struct rst_event *n = realloc(t->rsts, cap * sizeof(*n));

			if (!n)
				return;
			t->rsts = n;
			t->cap_rsts = cap;
		}
		t->rsts[t->n_rsts++] = (struct rst_event){ o, a, sender_is_client };
	}
}

static struct flow_agg *agg_get(struct flowtab *t, const struct agg_key *ak)
{
	struct flow_agg *a;

	HASH_FIND(hh, t->aggs, ak, sizeof(*ak), a);
	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->key = *ak;
	HASH_ADD(hh, t->aggs, key, sizeof(a->key), a);
	return a;
}

/* After pass 2: resets and refusals, then attempts that waited too long. */
static void tcp_settle(struct flowtab *t, uint64_t now_ns)
{
	struct tcp_obs *o, *tmp;

	for (size_t i = 0; i < t->n_rsts; i++) {
		struct rst_event *r = &t->rsts[i];

		if (r->o->state == OBS_ESTABLISHED) {
			tcp_count(t, r->a, TCP_RESET);
			r->o->state = OBS_DONE;
		} else if (r->o->state == OBS_SYN && !r->from_client) {
			tcp_count(t, r->a, TCP_REFUSED);
			r->o->state = OBS_DONE;
		}
	}
	t->n_rsts = 0;
	t->st.tcp_open = 0;
	HASH_ITER (hh, t->obs, o, tmp) {
		struct flow_agg *a;

		if (o->state == OBS_SYN && o->syn_ns + t->sig.connect_timeout_ns <= now_ns) {
			/* (no aggregate: copies at an ENI of what a pod veth counted) */
			if (o->agg.proto && (a = agg_get(t, &o->agg)))
				tcp_count(t, a, TCP_TIMEOUT);
			o->state = OBS_DONE;
		}
		if (o->state == OBS_SYN)
			t->st.tcp_open++;
		if (o->last_ns + t->idle_ns <= now_ns && o->state != OBS_SYN) {
			HASH_DEL(t->obs, o);
			free(o);
		}
	}
}

/* Pass 1: initiator evidence per connection, and pod addresses seen at pod veths. */
static void learn(struct flowtab *t, uint64_t now_ns)
{
	for (size_t i = 0; i < t->n_items; i++) {
		const struct item *it = &t->items[i];
		struct conn_key ck;
		struct conn *c;
		int sender_is_a;

		if (it->kind == IFACE_POD) {
			const uint32_t *pod =
				it->key.dir == FL_DIR_INGRESS ? it->key.saddr : it->key.daddr;
			struct local_ip *l = local_get(t, pod);

			if (l)
				l->learned_ns = now_ns;
		}
		conn_key_of(&it->key, &ck, &sender_is_a);
		HASH_FIND(hh, t->conns, &ck, sizeof(ck), c);
		if (!c) {
			c = calloc(1, sizeof(*c));
			if (!c)
				continue;
			c->key = ck;
			HASH_ADD(hh, t->conns, key, sizeof(c->key), c);
		}
		c->last_ns = now_ns;
		resolve_translation(t, c, it);
		if (sender_is_a) {
			if (!c->first_a_ns || it->d.first_ns < c->first_a_ns)
				c->first_a_ns = it->d.first_ns;
		} else if (!c->first_b_ns || it->d.first_ns < c->first_b_ns) {
			c->first_b_ns = it->d.first_ns;
		}
		if (it->key.proto != 6)
			continue;
		if (it->d.syn && t->sig.tcp)
			obs_syn(t, &ck, it);
		/* A SYN names its sender the client; a SYN-ACK names its receiver. */
		if (it->d.syn) {
			c->client_is_a = sender_is_a;
			c->by = INITIATOR_SYN;
		} else if (it->d.synack && c->by != INITIATOR_SYN) {
			c->client_is_a = !sender_is_a;
			c->by = INITIATOR_SYN;
		}
	}
}

/*
 * Connections whose start was not seen (open before the agent started, or not TCP):
 * TCP/UDP/SCTP: if exactly one port is ephemeral (>= 32768) that side is the client, else the
 * higher port is; equal ports: the sender of the first packet seen. ICMP: the side with the
 * non-zero "port" (echo id, or type/code of an error) started the exchange. Anything else:
 * the sender of the first packet seen.
 */
static void decide(struct conn *c)
{
	const struct conn_key *k = &c->key;
	int ea = k->aport >= EPHEMERAL_MIN, eb = k->bport >= EPHEMERAL_MIN;

	if (c->by != INITIATOR_NONE)
		return; /* decided: by SYN, or once by heuristic so it stays stable */
	if (c->xl == XL_NAT) {
		/* The translated side (what was dialed, or the backend) is the server. */
		int a_is_server =
			(!memcmp(k->a, c->nat.dialed, 16) && k->aport == c->nat.dialed_port) ||
			(!memcmp(k->a, c->nat.backend, 16) && k->aport == c->nat.backend_port);

		c->client_is_a = !a_is_server;
		c->by = INITIATOR_PORTS;
		return;
	}
	if ((k->proto == 1 || k->proto == 58) && (k->aport == 0) != (k->bport == 0)) {
		c->client_is_a = k->aport != 0;
		c->by = INITIATOR_PORTS;
		return;
	}
	if ((k->proto == 6 || k->proto == 17 || k->proto == 132) && k->aport != k->bport) {
		c->client_is_a = ea != eb ? ea : k->aport > k->bport;
		c->by = INITIATOR_PORTS;
		return;
	}
	if (!c->first_b_ns)
		c->client_is_a = 1;
	else if (!c->first_a_ns)
		c->client_is_a = 0;
	else
		c->client_is_a = c->first_a_ns <= c->first_b_ns;
	c->by = INITIATOR_FIRST;
}

static int is_local(struct flowtab *t, const uint32_t addr[4])
{
	struct local_ip *l = local_find(t, addr);

	return l && (l->routes > 0 || l->learned_ns || l->grace_gen >= t->gen);
}

static uint64_t jiffies_to_ns(const struct flowtab *t, uint64_t j)
{
	const struct flowtab_clock *c = &t->clock;
	uint64_t back;

	if (!c->hz || !j)
		return t->now_ns;
	if (j >= c->jiffies)
		return c->ktime_ns;
	back = (c->jiffies - j) * (1000000000ULL / c->hz);
	return back < c->ktime_ns ? c->ktime_ns - back : 0;
}

/* Pass 2: attribute every delta to its aggregate. */
static void aggregate(struct flowtab *t)
{
	for (size_t i = 0; i < t->n_items; i++) {
		const struct item *it = &t->items[i];
		const struct fl_key *k = &it->key;
		int sender_is_a, sender_is_client;
		struct agg_key ak;
		struct flow_agg *a;
		struct conn_key ck;
		struct conn *c;
		struct agg_dir *dir;
		uint64_t last;

		conn_key_of(k, &ck, &sender_is_a);
		HASH_FIND(hh, t->conns, &ck, sizeof(ck), c);
		if (!c)
			continue;
		decide(c);
		sender_is_client = sender_is_a == c->client_is_a;

		memset(&ak, 0, sizeof(ak));
		memcpy(ak.client, sender_is_client ? k->saddr : k->daddr, 16);
		memcpy(ak.server, sender_is_client ? k->daddr : k->saddr, 16);
		ak.server_port = sender_is_client ? k->dport : k->sport;
		ak.proto = k->proto;
		if (c->xl == XL_NAT) {
			/* Named by the backend that answered, with what the client dialed. */
			memcpy(ak.server, c->nat.backend, 16);
			ak.server_port = c->nat.backend_port;
			memcpy(ak.dialed, c->nat.dialed, 16);
			ak.dialed_port = c->nat.dialed_port;
		}
		if (it->kind == IFACE_POD) {
			const uint32_t *pod = k->dir == FL_DIR_INGRESS ? k->saddr : k->daddr;

			ak.reporter =
				memcmp(pod, ak.client, 16) == 0 ? REPORTER_CLIENT : REPORTER_SERVER;
		} else {
			/* The pod veth of a local pod already counted this packet. */
			if (is_local(t, k->saddr) || is_local(t, k->daddr)) {
				t->st.eni_duplicate_packets += it->d.packets;
				continue;
			}
			ak.reporter = REPORTER_NODE;
		}

		a = agg_get(t, &ak);
		if (!a)
			continue;
		conn_seen(c, k->ifindex, &ak);
		if (k->proto == 6 && t->sig.tcp)
			tcp_observe(t, &ck, it, a, sender_is_client);
		dir = sender_is_client ? &a->fwd : &a->rev;
		dir->packets += it->d.packets;
		dir->bytes += it->d.bytes;
		if (sender_is_client)
			a->flags_fwd |= it->d.flags_or;
		else
			a->flags_rev |= it->d.flags_or;
		a->syn += it->d.syn;
		a->synack += it->d.synack;
		a->fin += it->d.fin;
		a->rst += it->d.rst;
		if (c->by != INITIATOR_SYN)
			a->by_heuristic = 1;
		if (it->d.first_ns && (!a->first_ns || it->d.first_ns < a->first_ns))
			a->first_ns = it->d.first_ns;
		last = jiffies_to_ns(t, it->d.last_jiffies);
		if (last > a->last_ns)
			a->last_ns = last;
	}
}

static void expire(struct flowtab *t, uint64_t now_ns)
{
	struct conn *c, *ctmp;
	struct local_ip *l, *ltmp;
	struct gone_iface *g, *gtmp;

	/* Flows of vanished interfaces were read and removed in this drain. */
	HASH_ITER (hh, t->gone, g, gtmp) {
		HASH_DEL(t->gone, g);
		free(g);
	}
	HASH_ITER (hh, t->conns, c, ctmp) {
		if (c->last_ns + t->idle_ns <= now_ns) {
			HASH_DEL(t->conns, c);
			free(c);
		}
	}
	HASH_ITER (hh, t->local, l, ltmp) {
		if (l->learned_ns && l->learned_ns + t->idle_ns <= now_ns)
			l->learned_ns = 0;
		if (!l->routes && !l->learned_ns && l->grace_gen < t->gen) {
			HASH_DEL(t->local, l);
			free(l);
		}
	}
}

int flowtab_drain(struct flowtab *t, uint64_t now_ns)
{
	int n, err = 0;

	t->gen++;
	t->now_ns = now_ns;
	t->n_items = 0;
	free_aggs(t);

	/* Retire the tracepoints' generation now; take it after the rest of the drain. */
	if (t->event_gen &&
	    ((t->sig.tcp && t->retrans_fd >= 0) || (t->sig.drops && t->drops_fd >= 0))) {
		t->taking_gen = *t->event_gen;
		*t->event_gen = (uint8_t)!t->taking_gen;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		t->flip_ns = mono_ns();
	}
	n = read_kernel(t);
	if (n < 0) {
		err = n;
		t->st.read_errors++;
	} else {
		t->st.kernel_entries = (uint64_t)n;
		evict(t, now_ns);
	}
	take_pending(t);
	read_counters(t);
	learn(t, now_ns);
	aggregate(t);
	if (t->sig.tcp)
		tcp_settle(t, now_ns);
	if (t->sig.dns)
		sweep_dns(t);
	if (t->sig.tcp && t->retrans_fd >= 0)
		take_events(t, t->retrans_fd, on_retransmits);
	if (t->sig.drops && t->drops_fd >= 0)
		take_events(t, t->drops_fd, on_drops);
	apply_samples(t);
	expire(t, now_ns);

	t->st.drains++;
	t->st.connections = HASH_COUNT(t->conns);
	t->st.local_ips = HASH_COUNT(t->local);
	t->st.aggregates = HASH_COUNT(t->aggs);
	return err;
}

void flowtab_set_translation(struct flowtab *t, int nat_fd, flowtab_ct_fn query, void *ctx)
{
	t->nat_fd = nat_fd;
	t->ct_query = query;
	t->ct_ctx = ctx;
}

void flowtab_set_event_maps(struct flowtab *t, int retrans_fd, int drops_fd,
			    volatile uint8_t *event_gen)
{
	t->event_gen = event_gen;
	t->retrans_fd = retrans_fd;
	t->drops_fd = drops_fd;
}

void flowtab_set_dns_map(struct flowtab *t, int dns_fd)
{
	t->dns_fd = dns_fd;
}

void flowtab_set_signals(struct flowtab *t, const struct flowtab_signals *sig)
{
	t->sig = *sig;
	if (t->sig.n_connect_bounds > HIST_BOUNDS_MAX)
		t->sig.n_connect_bounds = HIST_BOUNDS_MAX;
}

const struct flowtab_signals *flowtab_signals(const struct flowtab *t)
{
	return &t->sig;
}

void flowtab_set_clock(struct flowtab *t, const struct flowtab_clock *c)
{
	t->clock = *c;
}

struct flow_agg *flowtab_aggregates(const struct flowtab *t)
{
	return t->aggs;
}

const struct flowtab_stats *flowtab_stats(const struct flowtab *t)
{
	return &t->st;
}

int flowtab_addr_str(const uint32_t addr[4], char *buf, size_t size)
{
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == htonl(0xffff)) {
		if (!inet_ntop(AF_INET, &addr[3], buf, (socklen_t)size))
			return -errno;
		return AF_INET;
	}
	if (!inet_ntop(AF_INET6, addr, buf, (socklen_t)size))
		return -errno;
	return AF_INET6;
}

const char *flowtab_reporter_name(uint8_t reporter)
{
	switch (reporter) {
	case REPORTER_CLIENT:
		return "client";
	case REPORTER_SERVER:
		return "server";
	default:
		return "node";
	}
}
