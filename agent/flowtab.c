// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kernel side of a drain, in the order flowtab_drain() runs it:
 *
 *   1. retire the tracepoints' generation (their counts are taken last, step 6)
 *   2. read both flow tables in batches; each entry's delta since the previous drain goes to
 *      attribution; entries that are done are removed (their final delta kept): idle ones,
 *      those of vanished interfaces, finished TCP connections after a quiet interval, and,
 *      while a table is at least half full, any entry quiet for an interval (evict())
 *   3. merge the packets that came through the overflow ring buffer
 *   4. sum the datapath's per-CPU counters
 *   5. attribution's passes over the deltas (attrib_flows)
 *   6. DNS queries past their timeout become timeout samples; tracepoint counts of the
 *      retired generation are taken
 *   7. attribution applies the samples and forgets what went idle (attrib_end)
 *
 * Everything that decides what the numbers mean is in attrib.c and outcome.c.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "hashutil.h"
#include "clock.h"
#include "flowtab.h"

#define BATCH 1024

/*
 * A kernel entry as user space names it: the common key form, and which table it is in (an
 * IPv6 packet with an IPv4-mapped address has an entry of its own in the IPv6 table).
 */
struct entry_key {
	struct fl_key key;
	uint32_t table4;
};

/* What the previous drain saw of one kernel entry. */
struct flow_entry {
	struct entry_key id;
	struct fl_stats last; /* as the previous drain read it */
	uint64_t gen;
	uint64_t changed_ns; /* drain time of the last non-zero delta */
	int kind;
	UT_hash_handle hh;
};

/* Packets the kernel handed over through the ring buffer, pending the next drain. */
struct pending {
	struct fl_key key;
	struct fl_stats delta;
	UT_hash_handle hh;
};

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
	int nat_fd;
	int dns_fd;
	int retrans_fd;
	int drops_fd;
	int slots_fd; /* flowlens_cache_flush, or -1 */
	int ncpus;
	uint32_t overflow_max;
	uint32_t max4, max6; /* the tables' sizes */
	uint64_t idle_ns;
	flowtab_kind_fn kind;
	void *kind_ctx;
	flowtab_ct_fn ct_query;
	void *ct_ctx;
	volatile uint8_t *event_gen; /* the programs' generation (BPF .bss), or NULL */
	uint8_t taking_gen; /* the generation this drain takes */
	uint64_t flip_ns; /* when it was retired (CLOCK_MONOTONIC) */
	int graced; /* every program that could still see the retired generation has finished */
	uint64_t gen;
	uint64_t now_ns;

	struct attrib *attrib;
	struct flow_entry *entries;
	struct pending *pending;
	unsigned int n_pending;
	struct gone_iface *gone;
	void *kbuf; /* BATCH keys of the larger key type */
	struct fl_stats *vbuf;

	struct flowtab_stats st;
};

const char *const flowtab_evict_names[FLOWTAB_EVICT_N] = {
#define FLOWTAB_EVICT_NAME(id, name) [id] = name,
	FLOWTAB_EVICT_REASONS(FLOWTAB_EVICT_NAME)
#undef FLOWTAB_EVICT_NAME
};

static int read_tables(struct flowtab *t);
static void evict(struct flowtab *t);
static void take_pending(struct flowtab *t);
static void forget_gone(struct flowtab *t);
static void read_counters(struct flowtab *t);
static void sweep_dns(struct flowtab *t);
static void take_events(struct flowtab *t, int fd, int drops);
static int datapath_nat(void *ctx, const struct fl_key *k, struct fl_nat *n);
static int query_nat(void *ctx, const struct fl_key *k, struct fl_nat *n);

int flowtab_drain(struct flowtab *t, uint64_t now_ns)
{
	const struct sig_config *sig = attrib_signals(t->attrib);
	int n, err = 0;

	t->gen++;
	t->now_ns = now_ns;
	attrib_begin(t->attrib, now_ns);

	/* Retire the tracepoints' generation now; take it after the rest of the drain. */
	if (t->event_gen &&
	    ((sig->tcp && t->retrans_fd >= 0) || (sig->drops && t->drops_fd >= 0))) {
		t->taking_gen = *t->event_gen;
		*t->event_gen = (uint8_t)!t->taking_gen;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		t->flip_ns = clock_mono_ns();
		t->graced = 0;
	}
	if (t->slots_fd >= 0 &&
	    flowtab_flush_slots(t->slots_fd, t->ncpus, &t->st.slot_flush_retries) < 0)
		t->st.slot_flush_errors++;
	n = read_tables(t);
	if (n < 0) {
		err = n;
		t->st.read_errors++;
	} else {
		t->st.kernel_entries = (uint64_t)n;
		evict(t);
	}
	take_pending(t);
	forget_gone(t);
	read_counters(t);
	attrib_flows(t->attrib);
	if (sig->dns)
		sweep_dns(t);
	if (sig->tcp && t->retrans_fd >= 0)
		take_events(t, t->retrans_fd, 0);
	if (sig->drops && t->drops_fd >= 0)
		take_events(t, t->drops_fd, 1);
	attrib_end(t->attrib);
	t->st.drains++;
	return err;
}

static uint32_t map_size(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

int flowtab_new(struct flowtab **out, int flows4_fd, int flows6_fd, int counters_fd,
		uint32_t overflow_max, uint64_t idle_timeout_ns, flowtab_kind_fn kind, void *ctx)
{
	struct flowtab *t = calloc(1, sizeof(*t));
	struct attrib_ops ops = { .datapath = datapath_nat, .query = query_nat, .ctx = t };
	int err;

	if (!t)
		return -ENOMEM;
	t->flows4_fd = flows4_fd;
	t->flows6_fd = flows6_fd;
	t->counters_fd = counters_fd;
	t->ncpus = libbpf_num_possible_cpus();
	t->overflow_max = overflow_max;
	t->idle_ns = idle_timeout_ns;
	t->kind = kind;
	t->kind_ctx = ctx;
	t->nat_fd = -1;
	t->dns_fd = -1;
	t->retrans_fd = -1;
	t->drops_fd = -1;
	t->slots_fd = -1;
	t->max4 = map_size(flows4_fd);
	t->max6 = map_size(flows6_fd);
	if (t->ncpus <= 0) {
		free(t);
		return -EINVAL;
	}
	err = attrib_new(&t->attrib, idle_timeout_ns, &ops);
	t->kbuf = calloc(BATCH, sizeof(struct fl_key));
	t->vbuf = calloc(BATCH, sizeof(*t->vbuf));
	if (err || !t->kbuf || !t->vbuf) {
		flowtab_free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void flowtab_free(struct flowtab *t)
{
	if (!t)
		return;
	HASH_FREE_ALL(hh, t->entries);
	HASH_FREE_ALL(hh, t->pending);
	HASH_FREE_ALL(hh, t->gone);
	attrib_free(t->attrib);
	free(t->kbuf);
	free(t->vbuf);
	free(t);
}

/* Counter deltas. */

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

static int kind_of(struct flowtab *t, int ifindex)
{
	struct gone_iface *g;
	int k = t->kind(t->kind_ctx, ifindex);

	if (k >= 0)
		return k;
	HASH_FIND_INT(t->gone, &ifindex, g);
	return g ? g->kind : IFACE_NODE;
}

/* One entry as read now: its delta since the previous drain goes to attribution. */
static int entry_update(struct flowtab *t, const struct entry_key *id, const struct fl_stats *cur)
{
	struct flow_entry *e;
	struct fl_stats d;

	HASH_FIND(hh, t->entries, id, sizeof(*id), e);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->id = *id;
		e->kind = kind_of(t, (int)id->key.ifindex);
		HASH_ADD(hh, t->entries, id, sizeof(e->id), e);
	}
	stats_delta(cur, &e->last, &d);
	e->last = *cur;
	e->gen = t->gen;
	if (!d.packets)
		return 0;
	e->changed_ns = t->now_ns;
	return attrib_delta(t->attrib, &id->key, &d, e->kind);
}

/* The common (IPv4-mapped) form of a raw key of either table, and back. */
static void entry_key_of(int is4, const void *raw, struct entry_key *id)
{
	const struct fl_key4 *k4 = raw;
	struct fl_key *k = &id->key;

	memset(id, 0, sizeof(*id));
	if (!is4) {
		*k = *(const struct fl_key *)raw;
		return;
	}
	id->table4 = 1;
	k->saddr[2] = k->daddr[2] = __builtin_bswap32(0xffff);
	k->saddr[3] = k4->saddr;
	k->daddr[3] = k4->daddr;
	k->ifindex = k4->ifindex;
	k->sport = k4->sport;
	k->dport = k4->dport;
	k->proto = k4->proto;
	k->dir = k4->dir;
}

static void key4_of(const struct fl_key *k, struct fl_key4 *k4)
{
	memset(k4, 0, sizeof(*k4));
	k4->saddr = k->saddr[3];
	k4->daddr = k->daddr[3];
	k4->ifindex = k->ifindex;
	k4->sport = k->sport;
	k4->dport = k->dport;
	k4->proto = k->proto;
	k4->dir = k->dir;
}

/* Reads one family's table, in batches where the kernel supports them. */
static int read_table(struct flowtab *t, int fd, int is4)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t ksize = is4 ? sizeof(struct fl_key4) : sizeof(struct fl_key);
	struct fl_key next, cur; /* large enough for either key */
	struct entry_key id;
	__u32 out_batch, count;
	void *in = NULL;
	int err, n = 0;

	for (;;) {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, in, &out_batch, t->kbuf, t->vbuf, &count, &opts);
		if (err && errno != ENOENT)
			break;
		for (__u32 i = 0; i < count; i++) {
			int e;

			entry_key_of(is4, (char *)t->kbuf + i * ksize, &id);
			e = entry_update(t, &id, &t->vbuf[i]);
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
		entry_key_of(is4, &cur, &id);
		err = entry_update(t, &id, t->vbuf);
		if (err)
			return err;
		n++;
	}
	return n;
}

static int read_tables(struct flowtab *t)
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

/*
 * Why e should leave the kernel table now, or -1. An entry that changed in this drain stays
 * (its flow is active), except for a vanished interface. A TCP entry that has seen FIN or
 * RST and was quiet for an interval is finished: the connection's last packets have passed
 * (a late one re-creates the entry). While its table is at least half full, any entry quiet
 * for an interval goes: a busy node's short flows (DNS from new sockets, short connections
 * whose close the hook did not see) would otherwise fill the table for --idle-timeout and
 * send every new flow through the overflow ring buffer, the datapath's slowest path.
 */
static int evict_reason(struct flowtab *t, const struct flow_entry *e, int pressure)
{
	struct gone_iface *gi;

	HASH_FIND_INT(t->gone, &e->id.key.ifindex, gi);
	if (gi)
		return FLOWTAB_EVICT_GONE;
	if (e->changed_ns + t->idle_ns <= t->now_ns)
		return FLOWTAB_EVICT_IDLE;
	if (e->changed_ns == t->now_ns)
		return -1;
	if (e->id.key.proto == IPPROTO_TCP && (e->last.flags_or & (TCPF_FIN_BIT | TCPF_RST_BIT)))
		return FLOWTAB_EVICT_FINISHED;
	return pressure ? FLOWTAB_EVICT_PRESSURE : -1;
}

/* Removes the entries evict_reason() names; their final deltas are kept. */
static void evict(struct flowtab *t)
{
	int pressure4 = t->max4 && t->st.kernel_entries4 * 2 >= t->max4;
	int pressure6 = t->max6 && t->st.kernel_entries6 * 2 >= t->max6;
	struct flow_entry *e, *tmp;

	HASH_ITER (hh, t->entries, e, tmp) {
		struct fl_stats cur, d;
		struct fl_key4 k4;
		int fd, why;
		void *kp;

		if (e->gen != t->gen) {
			/* No longer in the kernel (removed outside the agent). */
			HASH_DEL(t->entries, e);
			free(e);
			continue;
		}
		why = evict_reason(t, e, e->id.table4 ? pressure4 : pressure6);
		if (why < 0)
			continue;
		if (e->id.table4)
			key4_of(&e->id.key, &k4);
		fd = e->id.table4 ? t->flows4_fd : t->flows6_fd;
		kp = e->id.table4 ? (void *)&k4 : (void *)&e->id.key;
		if (bpf_map_lookup_and_delete_elem(fd, kp, &cur) == 0) {
			stats_delta(&cur, &e->last, &d);
			if (d.packets)
				attrib_delta(t->attrib, &e->id.key, &d, e->kind);
		} else if (errno != ENOENT) {
			/* Kernels without lookup-and-delete: plain delete, racing a last packet. */
			bpf_map_delete_elem(fd, kp);
		}
		if (t->nat_fd >= 0 && (e->last.ct & FL_CT_NAT))
			bpf_map_delete_elem(t->nat_fd, &e->id.key);
		t->st.evicted++;
		t->st.evicted_by[why]++;
		HASH_DEL(t->entries, e);
		free(e);
	}
}

/* Flows of vanished interfaces were read and removed in this drain. */
static void forget_gone(struct flowtab *t)
{
	HASH_FREE_ALL(hh, t->gone);
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

/*
 * The overflow ring buffer: one record per packet (or per spilled slot), merged per key until
 * the next drain.
 */

void flowtab_overflow(struct flowtab *t, const struct fl_overflow_event *ev)
{
	struct pending *p;
	struct fl_stats one = { 0 };

	t->st.overflow_records++;
	one.packets = ev->packets;
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
			t->st.overflow_dropped_packets += ev->packets;
			return;
		}
		p->key = ev->key;
		HASH_ADD(hh, t->pending, key, sizeof(p->key), p);
		t->n_pending++;
	}
	stats_add(&p->delta, &one);
}

static void take_pending(struct flowtab *t)
{
	struct pending *p, *tmp;

	HASH_ITER (hh, t->pending, p, tmp) {
		attrib_delta(t->attrib, &p->key, &p->delta, kind_of(t, (int)p->key.ifindex));
		HASH_DEL(t->pending, p);
		free(p);
	}
	t->n_pending = 0;
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

/* Translations: the datapath's record (kfunc mode), or conntrack asked over netlink. */

static int datapath_nat(void *ctx, const struct fl_key *k, struct fl_nat *n)
{
	struct flowtab *t = ctx;

	if (t->nat_fd < 0)
		return -ENOENT;
	return bpf_map_lookup_elem(t->nat_fd, k, n) == 0 ? 1 : -ENOENT;
}

static int query_nat(void *ctx, const struct fl_key *k, struct fl_nat *n)
{
	struct flowtab *t = ctx;

	return t->ct_query ? t->ct_query(t->ct_ctx, k, n) : -ENOENT;
}

/*
 * Queries the datapath still holds after the DNS timeout were never answered: each becomes a
 * timeout sample, and is removed.
 */
static void sweep_dns(struct flowtab *t)
{
	const struct sig_config *sig = attrib_signals(t->attrib);
	struct fl_dns_key k, next, *prev, expired[256];
	struct fl_dns_query q;
	uint64_t now = clock_mono_ns();
	unsigned int n, rounds = 0;

	if (t->dns_fd < 0)
		return;
	/* In rounds of 256 (deleting while walking would restart the walk): until none is due. */
	do {
		n = 0;
		prev = NULL;
		while (n < 256 && bpf_map_get_next_key(t->dns_fd, prev, &next) == 0) {
			k = next;
			prev = &k;
			if (bpf_map_lookup_elem(t->dns_fd, &k, &q) == 0 &&
			    q.start_ns + sig->dns_timeout_ns <= now) {
				struct fl_sample sm;

				memset(&sm, 0, sizeof(sm));
				sm.key = k.key;
				sm.kind = FL_SAMPLE_DNS;
				sm.status = FL_DNS_TIMEOUT;
				sm.qtype = q.qtype;
				attrib_sample(t->attrib, &sm);
				expired[n++] = k;
			}
		}
		for (unsigned int i = 0; i < n; i++)
			bpf_map_delete_elem(t->dns_fd, &expired[i]);
	} while (n == 256 && ++rounds < 64); /* the rest waits for the next drain */
}

/*
 * Takes the counts a tracepoint map holds for the retired generation (lookup and delete, so
 * a count is taken once) and hands each to attribution. Keys of the current generation stay
 * for the next drain. Without generations (event_gen NULL), every key is taken.
 */
static void take_events(struct flowtab *t, int fd, int drops)
{
	static struct fl_event_key keys[16384]; /* the maps' max_entries */
	struct fl_event_key k, *prev = NULL;
	unsigned int n = 0;
	uint64_t v;

	/*
	 * A tracepoint program that read the retired generation may still add to one of its
	 * entries: taken before that, the add lands in a deleted element and is lost. The
	 * programs run inside RCU read-side sections, so an RCU grace period after the flip
	 * (membarrier's global command is synchronize_rcu()) waits for every one of them,
	 * however long a vCPU stall holds it: under load a fixed 1 ms wait lost 3 of 455 drops.
	 * Where it is refused (nohz_full, a seccomp profile without it), the 1 ms wait: BPF
	 * programs do not sleep and finish within microseconds unless their CPU is preempted.
	 */
	if (t->event_gen && !t->graced) {
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) {
			t->graced = 1;
		} else {
			uint64_t waited = clock_mono_ns() - t->flip_ns;

			if (waited < 1000000) {
				struct timespec ts = { 0, (long)(1000000 - waited) };

				nanosleep(&ts, NULL);
			}
			t->graced = 1;
		}
	}
	while (n < sizeof(keys) / sizeof(keys[0]) && bpf_map_get_next_key(fd, prev, &k) == 0) {
		keys[n] = k;
		prev = &keys[n];
		if (!t->event_gen || k.gen == t->taking_gen)
			n++;
	}
	for (unsigned int i = 0; i < n; i++) {
		int err = bpf_map_lookup_and_delete_elem(fd, &keys[i], &v);
		struct fl_key tuple;

		/* Hash maps take lookup-and-delete from Linux 5.14; before, two calls. */
		if (err && errno != ENOENT && bpf_map_lookup_elem(fd, &keys[i], &v) == 0)
			err = bpf_map_delete_elem(fd, &keys[i]);
		if (err || !v)
			continue;
		memset(&tuple, 0, sizeof(tuple));
		memcpy(tuple.saddr, keys[i].saddr, sizeof(tuple.saddr));
		memcpy(tuple.daddr, keys[i].daddr, sizeof(tuple.daddr));
		tuple.sport = keys[i].sport;
		tuple.dport = keys[i].dport;
		tuple.proto = keys[i].proto;
		if (drops)
			attrib_drops(t->attrib, &tuple, (uint16_t)keys[i].reason, v);
		else
			attrib_retransmits(t->attrib, &tuple, v);
	}
}

void flowtab_set_slots(struct flowtab *t, int prog_fd)
{
	t->slots_fd = prog_fd;
}

int flowtab_flush_slots(int prog_fd, int ncpus, uint64_t *retries)
{
	int err = 0;

	for (int cpu = 0; cpu < ncpus; cpu++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU,
			    .cpu = (__u32)cpu);
		int tries = 0;

		/* busy lasts for a few instructions of an interrupted program */
		do {
			if (bpf_prog_test_run_opts(prog_fd, &opts)) {
				opts.retval = 0;
				if (errno != ENXIO) /* an offline CPU */
					err = -errno;
			} else if (opts.retval && retries) {
				(*retries)++;
			}
		} while (opts.retval && ++tries < 1000);
		if (opts.retval)
			err = -EBUSY;
	}
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

struct attrib *flowtab_attrib(const struct flowtab *t)
{
	return t->attrib;
}

const struct flowtab_stats *flowtab_stats(const struct flowtab *t)
{
	return &t->st;
}
