// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include <zlib.h>
#include "hashutil.h"
#include "clock.h"
#include "store_impl.h"

int store_new(struct store **out, const struct store_config *cfg)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.meta) {
		if (meta_new(&s->own_meta, 0)) {
			free(s);
			return -ENOMEM;
		}
		s->cfg.meta = s->own_meta;
	}
	if (!s->cfg.max_pending)
		s->cfg.max_pending = 100000;
	if (!s->cfg.max_joins)
		s->cfg.max_joins = STORE_DEFAULT_MAX_JOINS;
	if (!s->cfg.agent_protect_ms)
		s->cfg.agent_protect_ms = STORE_DEFAULT_AGENT_PROTECT_MS;
	s->hold_horizon_ms = UINT64_MAX;
	if (cfg->const_labels && *cfg->const_labels) {
		size_t n = strlen(cfg->const_labels) + 3;

		s->const_labels = malloc(n);
		if (!s->const_labels) {
			meta_free(s->own_meta);
			free(s);
			return -ENOMEM;
		}
		snprintf(s->const_labels, n, "{%s,", cfg->const_labels);
	}
	*out = s;
	return 0;
}

static void drop_names(struct store *s)
{
	HASH_FREE_ALL(hh, s->names);
	s->n_names = 0;
}

void store_free(struct store *s)
{
	struct series *x, *xt;

	if (!s)
		return;
	free(s->const_labels);
	HASH_ITER (hh, s->series, x, xt) {
		HASH_DEL(s->series, x);
		free(x->h);
		free(x);
	}
	HASH_FREE_ALL(hh, s->agents);
	HASH_FREE_ALL(hh, s->joins);
	HASH_FREE_ALL(hh, s->pending);
	HASH_FREE_ALL(hh, s->pending_groups);
	drop_names(s);
	{
		struct node_name *n, *nt;

		HASH_ITER (hh, s->node_names, n, nt) {
			HASH_DEL(s->node_names, n);
			free(n->name);
			free(n);
		}
	}
	meta_free(s->own_meta);
	free(s);
}

struct series *series_new(const char *key, size_t key_len)
{
	struct series *x = malloc(sizeof(*x) + key_len + 1);

	if (!x)
		return NULL;
	memset(x, 0, sizeof(*x));
	x->key_len = (uint16_t)key_len;
	memcpy(x->key, key, key_len);
	x->key[key_len] = 0;
	return x;
}

/* Overflow label text of a family (the zone family has few series: it folds the same way). */
static int overflow_labels(struct store *s, enum family fam, enum flow_direction dir, char *buf,
			   size_t size)
{
	if (fam == FAM_ZONE) {
		expo_labels(buf, size, "source_zone", "overflow", "destination_zone", "overflow",
			    "reporter", "overflow", NULL);
		return (int)strlen(buf);
	}
	return labels_flow_overflow(&s->cfg.labels, dir, buf, size);
}

/*
 * The series of (family, labels), created when missing and the counters are not zero; key is
 * the family byte followed by the labels' text (len bytes). NULL when there is nothing to add.
 */
struct series *series_get(struct store *s, enum family fam, enum flow_direction dir, char *key,
			  int len, int create, uint64_t now_ms)
{
	char okey[LABELS_TEXT_MAX + 1];
	struct series *x;
	int overflow = 0;

	if (len < 0)
		return NULL;
	key[0] = (char)fam;
	HASH_FIND(hh, s->series, key, (size_t)len + 1, x);
	if (x || !create)
		return x;
	if (s->n_series >= s->cfg.max_series) {
		/* Cardinality bound: fold into the overflow series of this family and direction. */
		okey[0] = (char)fam;
		len = overflow_labels(s, fam, dir, okey + 1, sizeof(okey) - 1);
		if (len < 0)
			return NULL;
		key = okey;
		overflow = 1;
		HASH_FIND(hh, s->series, key, (size_t)len + 1, x);
		if (x)
			return x;
	}
	x = series_new(key, (size_t)len + 1);
	if (!x)
		return NULL;
	x->created_ms = s->batch_mono_ms && s->batch_mono_ms < now_ms ? s->batch_mono_ms : now_ms;
	x->overflow = (uint8_t)overflow;
	HASH_ADD_KEYPTR(hh, s->series, x->key, x->key_len, x);
	if (!overflow)
		s->n_series++;
	return x;
}

static void series_add(struct store *s, struct series *x, uint64_t packets, uint64_t bytes,
		       uint64_t now_ms)
{
	if (!x || (!packets && !bytes))
		return;
	if (x->overflow)
		s->st.series_overflow_total++;
	x->bytes += bytes;
	x->packets += packets;
	x->updated_ms = now_ms;
}

static void to16(const ProtobufCBinaryData *b, uint8_t out[16])
{
	memset(out, 0, 16);
	if (b->len == 4) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, b->data, 4);
	} else if (b->len == 16) {
		memcpy(out, b->data, 16);
	}
}

/* Interned node names, so that the naming cache's key is fixed-size. */
struct node_name *node_entry(struct store *s, const char *node)
{
	struct node_name *n;

	HASH_FIND_STR(s->node_names, node, n);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(node))) {
		free(n);
		return NULL;
	}
	n->id = ++s->n_node_names;
	HASH_ADD_KEYPTR(hh, s->node_names, n->name, strlen(n->name), n);
	return n;
}

uint32_t node_id(struct store *s, const char *node)
{
	struct node_name *n = node_entry(s, node);

	return n ? n->id : 0;
}

/*
 * An interval end more than a join wait ahead of this collector's clock (a node's clock
 * stepped, or a forged batch) moves the node's clock only that far: one bad batch must not
 * decide every later join of its pods at once.
 */
void node_clock_advance(struct store *s, const char *node, uint64_t end_unix_ms)
{
	uint64_t limit = clock_unix_ms() + s->cfg.join_wait_ms;
	struct node_name *n;

	if (!end_unix_ms || !(n = node_entry(s, node)))
		return;
	if (end_unix_ms > limit)
		end_unix_ms = limit;
	if (end_unix_ms > n->applied_end_unix_ms)
		n->applied_end_unix_ms = end_unix_ms;
}

/*
 * One aggregate, fully known: named and added to its series. dialed NULL: dialed directly.
 * Naming (two metadata lookups, four label texts) costs far more than adding; the series an
 * aggregate key lands in are cached while the metadata and the set of series stay the same
 * and the names do not depend on the report's time (no IP reuse within the history).
 */
static void emit(struct store *s, const char *node, uint64_t start, uint64_t when,
		 const struct join_key *k, const uint8_t *dialed, uint16_t dialed_port,
		 uint8_t reporter, uint64_t fp, uint64_t fb, uint64_t rp, uint64_t rb,
		 uint64_t now_ms, const struct sigs *g)
{
	char key[LABELS_TEXT_MAX + 1];
	struct meta_service svc;
	struct name_key nk;
	struct name_entry *ne;
	struct flow_view v;
	struct meta *m = s->cfg.meta;
	struct series *x[4];
	uint64_t gen;
	int n;

	memset(&nk, 0, sizeof(nk));
	nk.j = *k;
	if (dialed) {
		memcpy(nk.dialed, dialed, 16);
		nk.dialed_port = dialed_port;
		nk.has_dialed = 1;
	}
	nk.reporter = reporter;
	nk.node = node_id(s, node);
	meta_lock(m);
	gen = meta_generation(m);
	HASH_FIND(hh, s->names, &nk, sizeof(nk), ne);
	if (ne && !(g && g->has) && ne->meta_gen == gen && ne->series_gen == s->series_gen &&
	    (ne->x[0] || !(fp | fb)) && (ne->x[1] || !(rp | rb)) && (ne->x[2] || !fb) &&
	    (ne->x[3] || !rb)) {
		meta_unlock(m);
		ne->used_ms = now_ms;
		series_add(s, ne->x[0], fp, fb, now_ms);
		series_add(s, ne->x[1], rp, rb, now_ms);
		series_add(s, ne->x[2], 0, fb, now_ms);
		series_add(s, ne->x[3], 0, rb, now_ms);
		return;
	}
	memset(&svc, 0, sizeof(svc));
	meta_ident(m, k->client, start, when, node, &v.src);
	meta_ident(m, k->server, start, when, node, &v.dst);
	v.src_ip = k->client;
	v.dst_ip = k->server;
	v.protocol = k->protocol;
	v.reporter = reporter;
	v.port = dialed ? dialed_port : k->server_port;
	/* The Service dialed; also a ClusterIP nothing translated (no backend answered). */
	if (meta_service(m, dialed ? dialed : k->server, &svc)) {
		v.service = svc.name;
		v.service_namespace = svc.namespace;
		if (!*v.dst.namespace)
			v.dst.namespace = svc.namespace;
	} else {
		v.service = "";
		v.service_namespace = "";
	}
	n = labels_flow(&s->cfg.labels, &v, DIR_FORWARD, key + 1, sizeof(key) - 1);
	x[0] = series_get(s, FAM_FLOW, DIR_FORWARD, key, n, fp || fb, now_ms);
	n = labels_flow(&s->cfg.labels, &v, DIR_REPLY, key + 1, sizeof(key) - 1);
	x[1] = series_get(s, FAM_FLOW, DIR_REPLY, key, n, rp || rb, now_ms);
	n = labels_zone(&v, DIR_FORWARD, key + 1, sizeof(key) - 1);
	x[2] = series_get(s, FAM_ZONE, DIR_FORWARD, key, n, fb != 0, now_ms);
	n = labels_zone(&v, DIR_REPLY, key + 1, sizeof(key) - 1);
	x[3] = series_get(s, FAM_ZONE, DIR_REPLY, key, n, rb != 0, now_ms);
	if (g && g->has)
		emit_signals(s, &v, g, now_ms);
	if (v.src.stable && v.dst.stable) {
		if (!ne && s->n_names < 2 * s->cfg.max_series + 1024 &&
		    (ne = calloc(1, sizeof(*ne)))) {
			ne->key = nk;
			HASH_ADD(hh, s->names, key, sizeof(ne->key), ne);
			s->n_names++;
		}
		if (ne) {
			memcpy(ne->x, x, sizeof(x));
			ne->meta_gen = gen;
			ne->series_gen = s->series_gen;
			ne->used_ms = now_ms;
		}
	}
	meta_unlock(m);
	series_add(s, x[0], fp, fb, now_ms);
	series_add(s, x[1], rp, rb, now_ms);
	series_add(s, x[2], 0, fb, now_ms);
	series_add(s, x[3], 0, rb, now_ms);
}

int pending_index(struct store *s, struct pending *p)
{
	struct pending_group *g;

	HASH_FIND(hh, s->pending_groups, &p->key.j, sizeof(p->key.j), g);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g) {
			HASH_DEL(s->pending, p);
			s->n_pending--;
			return -ENOMEM;
		}
		g->j = p->key.j;
		HASH_ADD(hh, s->pending_groups, j, sizeof(g->j), g);
	}
	p->group = g;
	p->gprev = NULL;
	p->gnext = g->first;
	if (g->first)
		g->first->gprev = p;
	g->first = p;
	return 0;
}

static void pending_unindex(struct store *s, struct pending *p)
{
	struct pending_group *g = p->group;

	if (!g)
		return;
	if (p->gprev)
		p->gprev->gnext = p->gnext;
	else
		g->first = p->gnext;
	if (p->gnext)
		p->gnext->gprev = p->gprev;
	if (!g->first) {
		HASH_DEL(s->pending_groups, g);
		free(g);
	}
	p->group = NULL;
}

static void flush_pending(struct store *s, struct pending *p, const struct join *j, uint64_t now_ms)
{
	emit(s, p->key.node, p->start_unix_ms, p->when_unix_ms, &p->key.j,
	     j && !j->direct ? j->dialed : NULL, j ? j->dialed_port : 0,
	     FLOWLENS__V1__REPORTER__REPORTER_SERVER, p->fwd_packets, p->fwd_bytes, p->rev_packets,
	     p->rev_bytes, now_ms, &p->g);
	pending_unindex(s, p);
	HASH_DEL(s->pending, p);
	s->n_pending--;
	free(p);
}

/*
 * A new join entry. Input grows this table (every distinct connection that dialed a
 * ClusterIP), so it is bounded: when full, the oldest entry goes (its connection's next
 * server-side report waits for the client side again, or is named as dialed directly).
 */
struct join *join_add(struct store *s, const struct join_key *k)
{
	struct join *j;

	if (s->n_joins >= s->cfg.max_joins && s->joins) {
		j = s->joins; /* uthash keeps insertion order: the head is the oldest */
		HASH_DEL(s->joins, j);
		free(j);
		s->n_joins--;
		s->st.joins_evicted_total++;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->key = *k;
	HASH_ADD(hh, s->joins, key, sizeof(j->key), j);
	s->n_joins++;
	return j;
}

/*
 * Whether a server-side report whose wait ends at due (batch time) is named by join j: the
 * client side named what it dialed in a report whose interval ended by then. Every replica
 * answers the same, whatever order the two nodes' batches reached it in.
 */
static int join_in_time(const struct join *j, uint64_t due_unix_ms)
{
	return !j->direct && (!j->since_unix_ms || !due_unix_ms || j->since_unix_ms <= due_unix_ms);
}

/*
 * The client side reported what it dialed (in a batch whose interval ended at when): remember
 * it, and release what waited for it then. A pending whose wait had already ended at when
 * stays for join_clock to release as direct, as a replica that got the batches in time did.
 */
static void learn_join(struct store *s, const struct join_key *k, const uint8_t dialed[16],
		       uint16_t dialed_port, uint64_t when, uint64_t now_ms)
{
	struct pending_group *g;
	struct pending *p, *next;
	struct join *j;

	HASH_FIND(hh, s->joins, k, sizeof(*k), j);
	if (!j && !(j = join_add(s, k)))
		return;
	if (!j->since_unix_ms || when < j->since_unix_ms)
		j->since_unix_ms = when;
	memcpy(j->dialed, dialed, 16);
	j->dialed_port = dialed_port;
	j->direct = 0;
	j->updated_ms = now_ms;
	if (!s->n_pending)
		return;
	/* One lookup: a walk over every pending here made ingest quadratic (flowlens-loadsim). */
	HASH_FIND(hh, s->pending_groups, k, sizeof(*k), g);
	for (p = g ? g->first : NULL; p; p = next) {
		next = p->gnext; /* the group is freed with its last member */
		if (!join_in_time(j, p->due_unix_ms))
			continue;
		s->st.joined_total++;
		flush_pending(s, p, j, now_ms);
	}
}

/*
 * Whether a server-side aggregate without a dialed address should wait for its client side:
 * only when the client is (or may be) a pod on another node, whose node did the translation.
 */
static int client_elsewhere(struct store *s, const char *node, uint64_t start, uint64_t when,
			    const struct join_key *k, struct node_name **client_node)
{
	struct meta_ident id;
	const char *cnode;
	int r;

	*client_node = NULL;
	meta_lock(s->cfg.meta);
	meta_ident(s->cfg.meta, k->client, start, when, node, &id);
	cnode = meta_pod_node(s->cfg.meta, k->client, start, when);
	r = !strcmp(id.kind, "unknown") || (*id.pod && strcmp(cnode, node) != 0);
	if (r && *id.pod && *cnode)
		*client_node = node_entry(s, cnode);
	meta_unlock(s->cfg.meta);
	return r;
}

static void apply_flow(struct store *s, const Flowlens__V1__Batch *b,
		       const Flowlens__V1__FlowAggregate *f, uint64_t start, uint64_t when,
		       uint64_t now_ms)
{
	const Flowlens__V1__Counters *fw = f->forward, *rv = f->reply;
	uint64_t fp = fw ? fw->packets : 0, fb = fw ? fw->bytes : 0;
	uint64_t rp = rv ? rv->packets : 0, rb = rv ? rv->bytes : 0;
	uint8_t reporter = (uint8_t)(f->reporter <= 3 ? f->reporter : 0);
	struct pending_key pk;
	struct join_key k;
	struct pending *p;
	struct join *j;
	struct node_name *cnode;
	uint8_t dialed[16];
	struct sigs g;

	sigs_from(s, f, &g);
	memset(&k, 0, sizeof(k));
	to16(&f->client_ip, k.client);
	to16(&f->server_ip, k.server);
	k.server_port = (uint16_t)f->server_port;
	k.protocol = (uint8_t)f->protocol;
	if (f->dialed_ip.len == 4 || f->dialed_ip.len == 16) {
		to16(&f->dialed_ip, dialed);
		learn_join(s, &k, dialed, (uint16_t)f->dialed_port, when, now_ms);
		emit(s, b->node, start, when, &k, dialed, (uint16_t)f->dialed_port, reporter, fp,
		     fb, rp, rb, now_ms, &g);
		return;
	}
	if (reporter != FLOWLENS__V1__REPORTER__REPORTER_SERVER) {
		emit(s, b->node, start, when, &k, NULL, 0, reporter, fp, fb, rp, rb, now_ms, &g);
		return;
	}
	HASH_FIND(hh, s->joins, &k, sizeof(k), j);
	if (j) {
		/*
		 * Known: at once. A client side named later than this report's wait (a replica
		 * applying an old backlog) is what a replica that got it in time did not wait
		 * for: direct, as there.
		 */
		int in_time = join_in_time(j, when + s->cfg.join_wait_ms);

		j->updated_ms = now_ms; /* in use: it expires only when idle (JOIN_TTL_MS) */
		if (in_time)
			s->st.joined_total++;
		else if (!j->direct)
			s->st.join_timeouts_total++;
		emit(s, b->node, start, when, &k, in_time ? j->dialed : NULL, j->dialed_port,
		     reporter, fp, fb, rp, rb, now_ms, &g);
		return;
	}
	if (!s->cfg.join_wait_ms || !client_elsewhere(s, b->node, start, when, &k, &cnode)) {
		emit(s, b->node, start, when, &k, NULL, 0, reporter, fp, fb, rp, rb, now_ms, &g);
		return;
	}
	memset(&pk, 0, sizeof(pk));
	pk.j = k;
	snprintf(pk.node, sizeof(pk.node), "%s", b->node);
	HASH_FIND(hh, s->pending, &pk, sizeof(pk), p);
	if (!p) {
		if (s->n_pending >= s->cfg.max_pending || !(p = calloc(1, sizeof(*p)))) {
			s->st.pending_full_total++;
			emit(s, b->node, start, when, &k, NULL, 0, reporter, fp, fb, rp, rb, now_ms,
			     &g);
			return;
		}
		p->key = pk;
		p->due_unix_ms = b->interval_end_unix_ms ? when + s->cfg.join_wait_ms : 0;
		p->cnode = cnode;
		/*
		 * The fallback, for when batches stop coming: a join wait after receipt alone;
		 * replicas, where receipt times differ, give batch time a second join wait first.
		 */
		p->deadline_ms = now_ms + s->cfg.join_wait_ms * (s->cfg.hold_from_batch ? 2 : 1);
		HASH_ADD(hh, s->pending, key, sizeof(p->key), p);
		s->n_pending++;
		if (pending_index(s, p)) {
			free(p);
			s->st.pending_full_total++;
			emit(s, b->node, start, when, &k, NULL, 0, reporter, fp, fb, rp, rb, now_ms,
			     &g);
			return;
		}
	}
	sigs_add(s, &p->g, &g);
	p->fwd_packets += fp;
	p->fwd_bytes += fb;
	p->rev_packets += rp;
	p->rev_bytes += rb;
	if (!p->start_unix_ms || start < p->start_unix_ms)
		p->start_unix_ms = start;
	p->when_unix_ms = when;
}

/*
 * The join's clock for a client that is no known pod (its node unknown), in batch time: how
 * far every agent's applied batches have come (the oldest latest interval end among them),
 * leaving out agents more than a join wait behind the newest (stopped, gone, or a restarted
 * agent's old boot): a node that stopped sending must not hold every such join. 0 when no
 * agent sent an interval end.
 */
static uint64_t join_clock(struct store *s)
{
	uint64_t newest = 0, clock = 0;
	struct agent_seq *a;

	for (a = s->agents; a; a = a->hh.next)
		if (a->applied_end_unix_ms > newest)
			newest = a->applied_end_unix_ms;
	for (a = s->agents; a; a = a->hh.next) {
		uint64_t end = a->applied_end_unix_ms;

		if (!end || end + s->cfg.join_wait_ms < newest)
			continue;
		if (!clock || end < clock)
			clock = end;
	}
	return clock;
}

void store_tick(struct store *s, uint64_t now_ms)
{
	struct pending *p, *pt;
	uint64_t clock = 0;
	int clock_known = 0;

	if (!s->n_pending)
		return;
	HASH_ITER (hh, s->pending, p, pt) {
		struct join *j;
		/*
		 * Due in batch time once the client's node's batches passed the due time: every
		 * report of that node's agent that could name what was dialed in time is
		 * applied (an agent sends in order), whatever the other nodes' batches did.
		 */
		uint64_t at;
		int by_batch;

		if (!p->cnode && !clock_known) {
			clock = join_clock(s);
			clock_known = 1;
		}
		at = p->cnode ? p->cnode->applied_end_unix_ms : clock;
		by_batch = at && p->due_unix_ms && at >= p->due_unix_ms;

		if (!by_batch && p->deadline_ms > now_ms)
			continue;
		/* No client side reported it in time: a direct connection (or no agent there). */
		HASH_FIND(hh, s->joins, &p->key.j, sizeof(p->key.j), j);
		if (!j && (j = join_add(s, &p->key.j)))
			j->direct = 1;
		if (j)
			j->updated_ms = now_ms;
		s->st.join_timeouts_total++;
		/*
		 * Replicas: a series this creates starts its hold when the wait ended in batch
		 * time, as on a replica that released it at another moment.
		 */
		if (by_batch && s->cfg.hold_from_batch)
			s->batch_mono_ms =
				store_mono_of_unix(now_ms, clock_unix_ms(), p->due_unix_ms);
		flush_pending(s, p, j && join_in_time(j, p->due_unix_ms) ? j : NULL, now_ms);
		s->batch_mono_ms = 0;
	}
}

/* Keyed by node and boot id: a restarted agent (or two agents wrongly sharing a node name) is a
 * sequence of its own, and an old boot's late retries stay deduplicated. */
static void agent_key_of(const Flowlens__V1__Batch *b, struct agent_key *ak)
{
	memset(ak, 0, sizeof(*ak));
	snprintf(ak->node, sizeof(ak->node), "%s", b->node);
	memcpy(ak->boot_id, b->boot_id.data, sizeof(ak->boot_id));
}

static struct agent_seq *agent_find(struct store *s, const Flowlens__V1__Batch *b)
{
	struct agent_key ak;
	struct agent_seq *a;

	agent_key_of(b, &ak);
	HASH_FIND(hh, s->agents, &ak, sizeof(ak), a);
	return a;
}

/* The least recently seen agent, if it may make room for a new one. */
static struct agent_seq *agent_evictable(struct store *s, uint64_t now_ms)
{
	struct agent_seq *a = s->agents; /* kept in order of last batch: the head is the oldest */

	return a && a->last_seen_ms + s->cfg.agent_protect_ms <= now_ms ? a : NULL;
}

enum store_result store_check(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms)
{
	struct agent_seq *a = agent_find(s, b);

	if (a)
		return b->seq <= a->last_seq ? STORE_DUPLICATE : STORE_APPLIED;
	if (s->n_agents >= s->cfg.max_agents && !agent_evictable(s, now_ms))
		return STORE_TOO_MANY_AGENTS;
	return STORE_APPLIED;
}

enum store_result store_apply(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms)
{
	struct agent_seq *a = agent_find(s, b);
	uint64_t when, start;

	if (!a) {
		/*
		 * Full (--max-agents): the agent seen longest ago gives its place, unless it
		 * sent within agent_protect_ms. Forgetting its last seq only matters if
		 * it later retries a batch already applied; that is counted as an eviction.
		 */
		if (s->n_agents >= s->cfg.max_agents) {
			struct agent_seq *old = agent_evictable(s, now_ms);

			if (!old)
				return STORE_TOO_MANY_AGENTS;
			HASH_DEL(s->agents, old);
			free(old);
			s->n_agents--;
			s->st.agents_evicted_total++;
		}
		a = calloc(1, sizeof(*a));
		if (!a)
			return STORE_TOO_MANY_AGENTS;
		agent_key_of(b, &a->key);
		s->n_agents++;
	} else {
		HASH_DEL(s->agents, a); /* re-added at the tail: the list stays in LRU order */
	}
	HASH_ADD(hh, s->agents, key, sizeof(a->key), a);
	a->last_seen_ms = now_ms;
	if (b->interval_end_unix_ms > a->recv_end_unix_ms)
		a->recv_end_unix_ms = b->interval_end_unix_ms;
	if (b->seq <= a->last_seq)
		return STORE_DUPLICATE;
	/* Batches of a known agent this store never got (dropped at the agent, or sent to a
	 * replica while this one was away). */
	if (a->last_seq && b->seq > a->last_seq + 1)
		s->st.gaps_total++;
	a->last_seq = b->seq;
	a->dropped_batches = b->dropped_batches;
	if (b->interval_end_unix_ms > a->applied_end_unix_ms)
		a->applied_end_unix_ms = b->interval_end_unix_ms;
	node_clock_advance(s, b->node, b->interval_end_unix_ms);

	/* Addresses are named as they were when the interval ended (IPs are reused). */
	when = b->interval_end_unix_ms ? b->interval_end_unix_ms : clock_unix_ms();
	start = b->interval_start_unix_ms && b->interval_start_unix_ms <= when ?
			b->interval_start_unix_ms :
			when;
	/*
	 * Replicas: a series' hold runs from when its batch's interval ended, not from when this
	 * replica got it, so that a replica that got it late (it was away, or the agent was in
	 * backoff) ends the hold when its peer did, and never shows 0 where its peer showed more.
	 */
	if (s->cfg.hold_from_batch && b->interval_end_unix_ms)
		s->batch_mono_ms =
			store_mono_of_unix(now_ms, clock_unix_ms(), b->interval_end_unix_ms);
	for (size_t i = 0; i < b->n_flows; i++) {
		s->st.aggregates_total++;
		apply_flow(s, b, b->flows[i], start, when, now_ms);
	}
	s->batch_mono_ms = 0;
	return STORE_APPLIED;
}

void store_expire(struct store *s, uint64_t now_ms)
{
	struct series *x, *xt;
	struct agent_seq *a, *at;
	struct join *j, *jt;

	if (s->rendering)
		return; /* a render is walking the series between yields: next tick */
	/* Dedup state outlives any retry an agent would still make (its buffer is bounded). */
	HASH_ITER (hh, s->agents, a, at) {
		if (a->last_seen_ms + STORE_AGENT_FORGET_MS > now_ms)
			continue;
		HASH_DEL(s->agents, a);
		s->n_agents--;
		free(a);
	}
	HASH_ITER (hh, s->series, x, xt) {
		if (x->updated_ms + s->cfg.ttl_ms > now_ms)
			continue;
		HASH_DEL(s->series, x);
		if (!x->overflow)
			s->n_series--;
		free(x->h);
		free(x);
		s->st.series_expired_total++;
		s->series_gen++;
	}
	{
		struct name_entry *e, *et;

		HASH_ITER (hh, s->names, e, et) {
			if (e->used_ms + s->cfg.ttl_ms > now_ms && e->series_gen == s->series_gen)
				continue;
			HASH_DEL(s->names, e);
			s->n_names--;
			free(e);
		}
	}
	HASH_ITER (hh, s->joins, j, jt) {
		if (j->updated_ms + JOIN_TTL_MS > now_ms)
			continue;
		HASH_DEL(s->joins, j);
		free(j);
		s->n_joins--;
	}
}

void store_set_zero_hold(struct store *s, uint64_t ms)
{
	s->cfg.zero_hold_ms = ms;
}

void store_set_draining(struct store *s)
{
	s->draining = 1;
}

struct node_seen {
	const char *node;
	UT_hash_handle hh;
};

void store_stats(struct store *s, uint64_t now_ms, struct store_stats *out)
{
	struct node_seen *nodes = NULL, *n;
	struct agent_seq *a;

	*out = s->st;
	out->series = HASH_COUNT(s->series);
	out->pending = s->n_pending;
	out->agents_tracked = s->n_agents;
	out->joins = s->n_joins;
	out->agents = 0;
	out->agents_dropped_batches = 0;
	for (a = s->agents; a; a = a->hh.next) {
		if (a->last_seen_ms + s->cfg.ttl_ms <= now_ms)
			continue;
		out->agents_dropped_batches += a->dropped_batches;
		HASH_FIND_STR(nodes, a->key.node, n);
		if (n)
			continue;
		n = malloc(sizeof(*n));
		if (!n)
			continue;
		n->node = a->key.node;
		HASH_ADD_KEYPTR(hh, nodes, n->node, strlen(n->node), n);
		out->agents++;
	}
	HASH_FREE_ALL(hh, nodes);
}

void store_progress(struct store *s, FILE *f)
{
	for (struct agent_seq *a = s->agents; a; a = a->hh.next) {
		fprintf(f, "%s ", a->key.node);
		for (size_t i = 0; i < sizeof(a->key.boot_id); i++)
			fprintf(f, "%02x", a->key.boot_id[i]);
		fprintf(f, " %" PRIu64 "\n", a->last_seq);
	}
}

size_t store_behind(struct store *s, const char *progress)
{
	size_t behind = 0;

	for (const char *p = progress; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		char node[sizeof(((struct agent_key *)0)->node)], boot[33];
		unsigned long long seq;
		struct agent_key k;
		struct agent_seq *a;

		if (sscanf(p, "%253s %32s %llu", node, boot, &seq) != 3 || strlen(boot) != 32)
			continue;
		memset(&k, 0, sizeof(k));
		snprintf(k.node, sizeof(k.node), "%s", node);
		for (size_t i = 0; i < sizeof(k.boot_id); i++) {
			unsigned int byte;

			if (sscanf(boot + 2 * i, "%2x", &byte) != 1)
				break;
			k.boot_id[i] = (uint8_t)byte;
		}
		HASH_FIND(hh, s->agents, &k, sizeof(k), a);
		if (!a || a->last_seq < seq)
			behind++;
	}
	return behind;
}

size_t store_lagging(struct store *s, uint64_t since_unix_ms, uint64_t active_ms, uint64_t now_ms)
{
	size_t n = 0;

	for (struct agent_seq *a = s->agents; a; a = a->hh.next)
		if (a->last_seen_ms + active_ms > now_ms && a->recv_end_unix_ms < since_unix_ms)
			n++;
	return n;
}
