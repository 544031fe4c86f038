// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The whole store saved to and restored from a file (--state-dir, persist.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "clock.h"
#include "store_impl.h"

/*
 * Snapshot format (native byte order; a snapshot is read back by the same build on the same
 * node): "FLWS", version, series count, series records (header + key bytes), agent count,
 * agent records, pending count, pending records, and a CRC-32 of everything before it.
 */
#define SNAP_MAGIC 0x53574c46u /* "FLWS" */
/*
 * 7 adds the join's batch time (issue 35): each agent's latest applied interval end (after its
 * last-seen time), each pending's due time and client node (after its signals), each join's
 * first client-side interval end (after its record); 6 a pending report's signals (after its record: a byte, 1
 * when the signals follow); 5 when each agent was last seen (after its record); 4 the join
 * table; 3 to 6 are still read (their agents count as seen at the restore; their pendings
 * carry flow counts only before 6 and wait by this process's clock alone before 7).
 */
#define SNAP_VERSION 7u

struct snap_series {
	uint16_t key_len;
	uint8_t overflow;
	uint8_t hist_bounds; /* FAM_HIST: bounds that follow the key (sum, bounds, counts) */
	uint8_t pad[4];
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

/*
 * What clients dialed, kept across restarts: without it, server-side reports the old process
 * applied at once would wait again after a restart, and the counter would go back down.
 */
struct snap_join {
	struct join_key key;
	uint8_t dialed[16];
	uint16_t dialed_port;
	uint8_t direct;
	uint8_t pad[5];
	uint64_t age_ms;
};

struct snap_pending {
	struct pending_key key;
	uint64_t fwd_packets, fwd_bytes, rev_packets, rev_bytes;
	uint64_t start_unix_ms, when_unix_ms;
	uint64_t wait_left_ms;
};

uint64_t store_mono_of_unix(uint64_t now_ms, uint64_t now_unix_ms, uint64_t unix_ms)
{
	uint64_t age = now_unix_ms > unix_ms ? now_unix_ms - unix_ms : 0;

	return age < now_ms ? now_ms - age : 0;
}

/* A pending's signals as read back: every count within its array (a peer's copy too). */
static int sigs_valid(const struct sigs *g)
{
	if (g->n_drops > sizeof(g->drops) / sizeof(g->drops[0]))
		return 0;
	for (unsigned int i = 0; i < g->n_drops; i++)
		if (!memchr(g->drops[i].reason, 0, sizeof(g->drops[i].reason)))
			return 0;
	for (size_t n = 0; n < HIST_KINDS; n++)
		if (g->h[n].on && g->h[n].nb > WIRE_HIST_BOUNDS_MAX)
			return 0;
	return 1;
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
	struct agent_seq *a;
	struct pending *p;
	int err = put(f, &crc, hdr, sizeof(hdr));

	err = err ?: put(f, &crc, &n, sizeof(n));
	for (x = s->series; x && !err; x = x->hh.next) {
		struct snap_series r;

		memset(&r, 0, sizeof(r));
		r.key_len = x->key_len;
		r.overflow = x->overflow;
		r.bytes = x->bytes;
		r.packets = x->packets;
		r.created_unix_ms = now_unix_ms - (now_ms - x->created_ms);
		/*
		 * Shown as 0 and then, while draining, at its real value: the hold is over for
		 * every scraper. Resumed by the next process it would drop back to 0 for the rest
		 * of the hold, and Prometheus would count that as a reset (the soak test found it).
		 */
		if (s->draining && x->zero_shown && x->created_ms + s->cfg.zero_hold_ms > now_ms)
			r.created_unix_ms = now_unix_ms - s->cfg.zero_hold_ms;
		r.hist_bounds = x->h ? x->h->nb : 0;
		err = put(f, &crc, &r, sizeof(r));
		err = err ?: put(f, &crc, x->key, x->key_len);
		if (x->h) {
			err = err ?: put(f, &crc, &x->h->sum, sizeof(x->h->sum));
			err = err ?: put(f, &crc, x->h->bounds, x->h->nb * sizeof(double));
			err = err ?: put(f, &crc, x->h->counts, (x->h->nb + 1) * sizeof(uint64_t));
		}
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
		{
			/* An agent gone for hours must not look active after a restart or a copy:
			 * a new exporter would wait for its batches (replica.c). */
			uint64_t seen = now_unix_ms - (now_ms - a->last_seen_ms);

			err = err ?: put(f, &crc, &seen, sizeof(seen));
		}
		err = err ?: put(f, &crc, &a->applied_end_unix_ms, sizeof(a->applied_end_unix_ms));
	}
	n = s->n_pending;
	err = err ?: put(f, &crc, &n, sizeof(n));
	for (p = s->pending; p && !err; p = p->hh.next) {
		struct snap_pending r;

		memset(&r, 0, sizeof(r));
		r.key = p->key;
		r.fwd_packets = p->fwd_packets;
		r.fwd_bytes = p->fwd_bytes;
		r.rev_packets = p->rev_packets;
		r.rev_bytes = p->rev_bytes;
		r.start_unix_ms = p->start_unix_ms;
		r.when_unix_ms = p->when_unix_ms;
		r.wait_left_ms = p->deadline_ms > now_ms ? p->deadline_ms - now_ms : 0;
		err = put(f, &crc, &r, sizeof(r));
		/*
		 * Its signals too (a server side's DNS, HTTP, TCP outcomes waiting for the join):
		 * without them a restart inside the join wait lost them (the soak's DNS = dig).
		 */
		{
			uint8_t has = p->g.has ? 1 : 0;

			err = err ?: put(f, &crc, &has, sizeof(has));
			if (has)
				err = err ?: put(f, &crc, &p->g, sizeof(p->g));
		}
		err = err ?: put(f, &crc, &p->due_unix_ms, sizeof(p->due_unix_ms));
		{
			/* The client's node whose batches it waits on ("" : not a known pod). */
			char cnode[sizeof(p->key.node)];

			memset(cnode, 0, sizeof(cnode));
			if (p->cnode)
				snprintf(cnode, sizeof(cnode), "%s", p->cnode->name);
			err = err ?: put(f, &crc, cnode, sizeof(cnode));
		}
	}
	n = s->n_joins;
	err = err ?: put(f, &crc, &n, sizeof(n));
	for (struct join *j = s->joins; j && !err; j = j->hh.next) {
		struct snap_join r;

		memset(&r, 0, sizeof(r));
		r.key = j->key;
		memcpy(r.dialed, j->dialed, sizeof(r.dialed));
		r.dialed_port = j->dialed_port;
		r.direct = j->direct;
		r.age_ms = now_ms > j->updated_ms ? now_ms - j->updated_ms : 0;
		err = put(f, &crc, &r, sizeof(r));
		err = err ?: put(f, &crc, &j->since_unix_ms, sizeof(j->since_unix_ms));
	}
	crc32v = (uint32_t)crc;
	if (!err && fwrite(&crc32v, 1, sizeof(crc32v), f) != sizeof(crc32v))
		err = -EIO;
	return err;
}

int store_restore(struct store *s, FILE *f, uint64_t now_ms, uint64_t now_unix_ms,
		  uint64_t saved_unix_ms)
{
	uint32_t hdr[2], crc32v;
	uLong crc = crc32(0, NULL, 0);
	char key[LABELS_TEXT_MAX + 2];
	uint64_t n;
	int err;

	err = get(f, &crc, hdr, sizeof(hdr));
	if (err || hdr[0] != SNAP_MAGIC || hdr[1] < 3u || hdr[1] > SNAP_VERSION)
		return -EINVAL;
	if (get(f, &crc, &n, sizeof(n)))
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		struct snap_series r;
		struct series *x;

		if (get(f, &crc, &r, sizeof(r)) || r.key_len < 2 || r.key_len > sizeof(key) ||
		    get(f, &crc, key, r.key_len) || (uint8_t)key[0] >= FAM_MAX)
			return -EINVAL;
		HASH_FIND(hh, s->series, key, r.key_len, x);
		if (!x) {
			x = series_new(key, r.key_len);
			if (!x)
				return -ENOMEM;
			x->overflow = r.overflow;
			HASH_ADD_KEYPTR(hh, s->series, x->key, x->key_len, x);
			if (!x->overflow)
				s->n_series++;
		}
		x->bytes = r.bytes;
		x->packets = r.packets;
		x->updated_ms = now_ms;
		if (r.hist_bounds) {
			double sum, bounds[WIRE_HIST_BOUNDS_MAX];
			const char *brace = memchr(key + 1, '{', r.key_len - 1u);

			if (r.hist_bounds > WIRE_HIST_BOUNDS_MAX || key[0] != (char)FAM_HIST ||
			    !brace || get(f, &crc, &sum, sizeof(sum)) ||
			    get(f, &crc, bounds, r.hist_bounds * sizeof(double)))
				return -EINVAL;
			free(x->h);
			x->h = hdata_new(r.hist_bounds, bounds, (uint16_t)(brace - key - 1));
			if (!x->h)
				return -ENOMEM;
			x->h->sum = sum;
			if (get(f, &crc, x->h->counts, (r.hist_bounds + 1u) * sizeof(uint64_t)))
				return -EINVAL;
		}
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
		struct agent_seq *a;
		uint64_t seen = now_unix_ms, applied_end = 0;

		if (get(f, &crc, &r, sizeof(r)) ||
		    (hdr[1] >= 5u && get(f, &crc, &seen, sizeof(seen))) ||
		    (hdr[1] >= 7u && get(f, &crc, &applied_end, sizeof(applied_end))))
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
		a->last_seen_ms = store_mono_of_unix(now_ms, now_unix_ms, seen);
		if (applied_end > a->applied_end_unix_ms)
			a->applied_end_unix_ms = applied_end;
		node_clock_advance(s, a->key.node, applied_end);
	}
	if (get(f, &crc, &n, sizeof(n)))
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		struct snap_pending r;
		struct pending *p;

		if (get(f, &crc, &r, sizeof(r)))
			return -EINVAL;
		HASH_FIND(hh, s->pending, &r.key, sizeof(r.key), p);
		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p)
				return -ENOMEM;
			p->key = r.key;
			HASH_ADD(hh, s->pending, key, sizeof(p->key), p);
			s->n_pending++;
			if (pending_index(s, p)) {
				free(p);
				return -ENOMEM;
			}
		}
		p->fwd_packets += r.fwd_packets;
		p->fwd_bytes += r.fwd_bytes;
		p->rev_packets += r.rev_packets;
		p->rev_bytes += r.rev_bytes;
		p->start_unix_ms = r.start_unix_ms;
		p->when_unix_ms = r.when_unix_ms;
		/*
		 * The wait counts from when the snapshot was written: after a crash the old
		 * process may already have applied this aggregate, and Prometheus has seen it;
		 * applied only now + wait, the counter would go back down meanwhile (a reset).
		 */
		p->deadline_ms =
			store_mono_of_unix(now_ms, now_unix_ms, saved_unix_ms) + r.wait_left_ms;
		if (hdr[1] >= 6u) {
			uint8_t has;
			struct sigs *g;

			if (get(f, &crc, &has, sizeof(has)) || has > 1)
				return -EINVAL;
			if (has) {
				g = malloc(sizeof(*g));
				if (!g)
					return -ENOMEM;
				if (get(f, &crc, g, sizeof(*g)) || !sigs_valid(g)) {
					free(g);
					return -EINVAL;
				}
				sigs_add(s, &p->g, g);
				free(g);
			}
		}
		if (hdr[1] >= 7u) {
			char cnode[sizeof(p->key.node)];

			if (get(f, &crc, &p->due_unix_ms, sizeof(p->due_unix_ms)) ||
			    get(f, &crc, cnode, sizeof(cnode)) || !memchr(cnode, 0, sizeof(cnode)))
				return -EINVAL;
			p->cnode = *cnode ? node_entry(s, cnode) : NULL;
		}
	}
	if (hdr[1] >= 4u) {
		uint64_t saved_ms = store_mono_of_unix(now_ms, now_unix_ms, saved_unix_ms);

		if (get(f, &crc, &n, sizeof(n)))
			return -EINVAL;
		for (uint64_t i = 0; i < n; i++) {
			struct snap_join r;
			struct join *j;
			uint64_t since = 0;

			if (get(f, &crc, &r, sizeof(r)) ||
			    (hdr[1] >= 7u && get(f, &crc, &since, sizeof(since))))
				return -EINVAL;
			HASH_FIND(hh, s->joins, &r.key, sizeof(r.key), j);
			if (!j && !(j = join_add(s, &r.key)))
				return -ENOMEM;
			memcpy(j->dialed, r.dialed, sizeof(j->dialed));
			j->dialed_port = r.dialed_port;
			j->direct = r.direct;
			j->updated_ms = saved_ms > r.age_ms ? saved_ms - r.age_ms : 0;
			j->since_unix_ms = since;
		}
	}
	s->series_gen++;
	if (fread(&crc32v, 1, sizeof(crc32v), f) != sizeof(crc32v) || crc32v != (uint32_t)crc)
		return -EINVAL;
	return 0;
}
