// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zlib.h>
#include "labels.h"
#include "store.h"

struct series {
	struct series_key key;
	uint64_t bytes;
	uint64_t packets;
	uint64_t updated_ms;
	uint64_t created_ms;
	uint16_t labels_len;
	UT_hash_handle hh;
	char labels[]; /* escaped label text, formatted once */
};

/* Dedup state of one agent process: (node, boot id) -> last applied seq. */
struct agent_key {
	char node[254];
	uint8_t boot_id[16];
};

struct agent {
	struct agent_key key;
	uint64_t last_seq;
	uint64_t last_seen_ms;
	uint64_t dropped_batches;
	UT_hash_handle hh;
};

struct store {
	struct store_config cfg;
	struct series *series;
	size_t n_series; /* excluding the overflow series */
	struct agent *agents;
	size_t n_agents;
	struct store_stats st;
};

int store_new(struct store **out, const struct store_config *cfg)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	struct series *x, *xt;
	struct agent *a, *at;

	if (!s)
		return;
	HASH_ITER (hh, s->series, x, xt) {
		HASH_DEL(s->series, x);
		free(x);
	}
	HASH_ITER (hh, s->agents, a, at) {
		HASH_DEL(s->agents, a);
		free(a);
	}
	free(s);
}

static struct series *series_new(const struct series_key *k)
{
	char text[LABELS_TEXT_MAX];
	struct series *x;
	int n = labels_format(k, text, sizeof(text));

	if (n < 0)
		return NULL;
	x = malloc(sizeof(*x) + (size_t)n + 1);
	if (!x)
		return NULL;
	memset(x, 0, sizeof(*x));
	x->key = *k;
	x->labels_len = (uint16_t)n;
	memcpy(x->labels, text, (size_t)n + 1);
	return x;
}

static void add(struct store *s, const struct series_key *k, const Flowlens__V1__Counters *c,
		uint64_t now_ms)
{
	struct series *x;
	struct series_key ok;

	if (!c || (!c->packets && !c->bytes))
		return;
	HASH_FIND(hh, s->series, k, sizeof(*k), x);
	if (!x) {
		if (s->n_series >= s->cfg.max_series) {
			/* Cardinality bound: fold into the overflow series of this direction. */
			labels_overflow_key((enum flow_direction)k->direction, &ok);
			s->st.series_overflow_total++;
			k = &ok;
			HASH_FIND(hh, s->series, k, sizeof(*k), x);
		}
		if (!x) {
			x = series_new(k);
			if (!x)
				return;
			x->created_ms = now_ms;
			HASH_ADD(hh, s->series, key, sizeof(x->key), x);
			if (k->reporter != LABELS_OVERFLOW)
				s->n_series++;
		}
	}
	x->bytes += c->bytes;
	x->packets += c->packets;
	x->updated_ms = now_ms;
}

enum store_result store_apply(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms)
{
	struct agent_key ak;
	struct agent *a;
	struct series_key k;

	/* Keyed by node and boot id: a restarted agent (or two agents wrongly sharing a node
	 * name) is a sequence of its own, and an old boot's late retries stay deduplicated. */
	memset(&ak, 0, sizeof(ak));
	snprintf(ak.node, sizeof(ak.node), "%s", b->node);
	memcpy(ak.boot_id, b->boot_id.data, sizeof(ak.boot_id));
	HASH_FIND(hh, s->agents, &ak, sizeof(ak), a);
	if (!a) {
		if (s->n_agents >= s->cfg.max_agents)
			return STORE_TOO_MANY_AGENTS;
		a = calloc(1, sizeof(*a));
		if (!a)
			return STORE_TOO_MANY_AGENTS;
		a->key = ak;
		HASH_ADD(hh, s->agents, key, sizeof(a->key), a);
		s->n_agents++;
	}
	a->last_seen_ms = now_ms;
	if (b->seq <= a->last_seq)
		return STORE_DUPLICATE;
	a->last_seq = b->seq;
	a->dropped_batches = b->dropped_batches;

	for (size_t i = 0; i < b->n_flows; i++) {
		const Flowlens__V1__FlowAggregate *f = b->flows[i];

		s->st.aggregates_total++;
		labels_key(f, DIR_FORWARD, &k);
		add(s, &k, f->forward, now_ms);
		labels_key(f, DIR_REPLY, &k);
		add(s, &k, f->reply, now_ms);
	}
	return STORE_APPLIED;
}

void store_expire(struct store *s, uint64_t now_ms)
{
	struct series *x, *xt;
	struct agent *a, *at;

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
		if (x->key.reporter != LABELS_OVERFLOW)
			s->n_series--;
		free(x);
		s->st.series_expired_total++;
	}
}

/* Fast unsigned formatting for the render loop. */
static size_t u64_str(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static void render_family(struct store *s, struct expo *e, const char *name, const char *help,
			  int bytes, uint64_t now_ms)
{
	size_t nlen = strlen(name);
	char num[26];
	struct series *x;

	expo_family(e, name, "counter", help);
	/* Only this thread writes to the stream: skip stdio's per-call locking. */
	for (x = s->series; x; x = x->hh.next) {
		uint64_t v = x->created_ms + s->cfg.zero_hold_ms > now_ms ? 0 :
			     bytes					  ? x->bytes :
									    x->packets;
		size_t n = u64_str(v, num + 1);

		num[0] = ' ';
		num[n + 1] = '\n';
		fwrite_unlocked(name, 1, nlen, e->f);
		fwrite_unlocked(x->labels, 1, x->labels_len, e->f);
		fwrite_unlocked(num, 1, n + 2, e->f);
	}
}

void store_render(struct store *s, struct expo *e, uint64_t now_ms)
{
	render_family(s, e, "flowlens_flow_bytes_total",
		      "L3 bytes of flows, from the initiator (source) to the responder "
		      "(destination) or back (direction), as counted at the reporter.",
		      1, now_ms);
	render_family(s, e, "flowlens_flow_packets_total",
		      "Packets of flows, labelled like flowlens_flow_bytes_total.", 0, now_ms);
}

void store_set_zero_hold(struct store *s, uint64_t ms)
{
	s->cfg.zero_hold_ms = ms;
}

struct node_seen {
	const char *node;
	UT_hash_handle hh;
};

void store_stats(struct store *s, uint64_t now_ms, struct store_stats *out)
{
	struct node_seen *nodes = NULL, *n, *nt;
	struct agent *a;

	*out = s->st;
	out->series = HASH_COUNT(s->series);
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
	HASH_ITER (hh, nodes, n, nt) {
		HASH_DEL(nodes, n);
		free(n);
	}
}

/*
 * Snapshot format (native byte order; a snapshot is read back by the same build on the same
 * node): "FLWS", version, series count, series records, agent count, agent records, and a
 * CRC-32 of everything before it.
 */
#define SNAP_MAGIC 0x53574c46u /* "FLWS" */
#define SNAP_VERSION 1u

struct snap_series {
	struct series_key key;
	uint64_t bytes;
	uint64_t packets;
	uint64_t created_unix_ms; /* when the series was created, so its hold can resume */
};

struct snap_agent {
	struct agent_key key;
	uint8_t pad[2];
	uint64_t last_seq;
	uint64_t dropped_batches;
};

uint64_t store_mono_of_unix(uint64_t now_ms, uint64_t now_unix_ms, uint64_t unix_ms)
{
	uint64_t age = now_unix_ms > unix_ms ? now_unix_ms - unix_ms : 0;

	return age < now_ms ? now_ms - age : 0;
}

static int put(FILE *f, uLong *crc, const void *p, size_t n)
{
	*crc = crc32(*crc, p, (uInt)n);
	return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

static int get(FILE *f, uLong *crc, void *p, size_t n)
{
	if (fread(p, 1, n, f) != n)
		return -EINVAL;
	*crc = crc32(*crc, p, (uInt)n);
	return 0;
}

int store_save(struct store *s, FILE *f, uint64_t now_ms, uint64_t now_unix_ms)
{
	uint32_t hdr[2] = { SNAP_MAGIC, SNAP_VERSION }, crc32v;
	uint64_t n = HASH_COUNT(s->series);
	uLong crc = crc32(0, NULL, 0);
	struct series *x;
	struct agent *a;
	int err = put(f, &crc, hdr, sizeof(hdr));

	err = err ?: put(f, &crc, &n, sizeof(n));
	for (x = s->series; x && !err; x = x->hh.next) {
		struct snap_series r;

		memset(&r, 0, sizeof(r));
		r.key = x->key;
		r.bytes = x->bytes;
		r.packets = x->packets;
		r.created_unix_ms = now_unix_ms - (now_ms - x->created_ms);
		err = put(f, &crc, &r, sizeof(r));
	}
	n = HASH_COUNT(s->agents);
	err = err ?: put(f, &crc, &n, sizeof(n));
	for (a = s->agents; a && !err; a = a->hh.next) {
		struct snap_agent r;

		memset(&r, 0, sizeof(r));
		r.key = a->key;
		r.last_seq = a->last_seq;
		r.dropped_batches = a->dropped_batches;
		err = put(f, &crc, &r, sizeof(r));
	}
	crc32v = (uint32_t)crc;
	if (!err && fwrite(&crc32v, 1, sizeof(crc32v), f) != sizeof(crc32v))
		err = -EIO;
	return err;
}

int store_restore(struct store *s, FILE *f, uint64_t now_ms, uint64_t now_unix_ms)
{
	uint32_t hdr[2], crc32v;
	uLong crc = crc32(0, NULL, 0);
	uint64_t n;
	int err;

	err = get(f, &crc, hdr, sizeof(hdr));
	if (err || hdr[0] != SNAP_MAGIC || hdr[1] != SNAP_VERSION)
		return -EINVAL;
	if (get(f, &crc, &n, sizeof(n)))
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		struct snap_series r;
		struct series *x;

		if (get(f, &crc, &r, sizeof(r)))
			return -EINVAL;
		HASH_FIND(hh, s->series, &r.key, sizeof(r.key), x);
		if (!x) {
			x = series_new(&r.key);
			if (!x)
				return -ENOMEM;
			HASH_ADD(hh, s->series, key, sizeof(x->key), x);
			if (r.key.reporter != LABELS_OVERFLOW)
				s->n_series++;
		}
		x->bytes = r.bytes;
		x->packets = r.packets;
		x->updated_ms = now_ms;
		/*
		 * Resume the hold where it was: a series already exported at its real value
		 * must not drop to 0 again (Prometheus would count it twice).
		 */
		x->created_ms = store_mono_of_unix(now_ms, now_unix_ms, r.created_unix_ms);
	}
	if (get(f, &crc, &n, sizeof(n)))
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		struct snap_agent r;
		struct agent *a;

		if (get(f, &crc, &r, sizeof(r)))
			return -EINVAL;
		HASH_FIND(hh, s->agents, &r.key, sizeof(r.key), a);
		if (!a) {
			a = calloc(1, sizeof(*a));
			if (!a)
				return -ENOMEM;
			a->key = r.key;
			HASH_ADD(hh, s->agents, key, sizeof(a->key), a);
			s->n_agents++;
		}
		a->last_seq = r.last_seq;
		a->dropped_batches = r.dropped_batches;
		a->last_seen_ms = now_ms;
	}
	if (fread(&crc32v, 1, sizeof(crc32v), f) != sizeof(crc32v) || crc32v != (uint32_t)crc)
		return -EINVAL;
	return 0;
}
