// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include <zlib.h>
#include "clock.h"
#include "labels.h"
#include "store.h"
#include "vocab.h"
#include "wire.h"

/* Metric families a series belongs to. */
enum family {
	FAM_FLOW = 0, /* flowlens_flow_bytes_total + flowlens_flow_packets_total */
	FAM_ZONE, /* flowlens_zone_bytes_total */
	FAM_TCP, /* flowlens_tcp_connections_total{result} (the count is in packets) */
	FAM_HIST, /* histograms: key = family, histogram name, labels */
	FAM_HTTP, /* flowlens_http_requests_total{method,status_class} (the count in packets) */
	FAM_DNS, /* flowlens_dns_requests_total{rcode,qtype} (the count in packets) */
	FAM_RETRANS, /* flowlens_tcp_retransmits_total (the count in packets) */
	FAM_DROP, /* flowlens_drops_total{reason} (the count in packets) */
	FAM_MAX,
};

/* Histogram state of a FAM_HIST series. */
struct hdata {
	uint32_t nb;
	uint16_t name_len;
	double sum;
	double *bounds; /* nb */
	uint64_t *counts; /* nb + 1 */
};

/* The signals of one aggregate, as the collector knows them (vocabulary: lib/vocab.h). */
struct sigs {
	int has;
	uint64_t tcp[TCP_RESULT_MAX];
	uint64_t http[HTTP_METHODS][HTTP_CLASSES];
	uint64_t dns[DNS_RCODES][DNS_QTYPES];
	uint64_t retransmits;
	unsigned int n_drops;
	struct {
		char reason[48];
		uint64_t count;
	} drops[8];
	struct {
		int on;
		uint32_t nb;
		double bounds[WIRE_HIST_BOUNDS_MAX];
		uint64_t counts[WIRE_HIST_BOUNDS_MAX + 1];
		double sum;
	} h[HIST_KINDS];
};

/*
 * Adds count packets dropped for reason (a kernel drop reason name: lower case, digits, '_').
 * Returns -1, adding nothing, for a malformed reason or a ninth one.
 */
static int drop_add(struct sigs *g, const char *reason, uint64_t count)
{
	size_t rl = strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789_");
	unsigned int d;

	if (!rl || reason[rl] || rl >= sizeof(g->drops[0].reason))
		return -1;
	for (d = 0; d < g->n_drops && strcmp(g->drops[d].reason, reason); d++)
		;
	if (d == g->n_drops) {
		if (d == sizeof(g->drops) / sizeof(g->drops[0]))
			return -1;
		memcpy(g->drops[d].reason, reason, rl + 1);
		g->drops[d].count = 0;
		g->n_drops++;
	}
	g->drops[d].count += count;
	return 0;
}

/* A series is keyed by its family byte followed by its escaped label text. */
struct series {
	uint64_t bytes;
	uint64_t packets;
	uint64_t updated_ms;
	uint64_t created_ms;
	uint16_t key_len; /* 1 + label text length */
	uint8_t overflow;
	uint8_t zero_shown; /* rendered as 0 during its hold at least once */
	struct hdata *h; /* FAM_HIST */
	UT_hash_handle hh;
	char key[]; /* family byte, then the labels (NUL-terminated) */
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

/* (client, backend, backend port, protocol): which connection a join is about. */
struct join_key {
	uint8_t client[16];
	uint8_t server[16];
	uint16_t server_port;
	uint8_t protocol;
	uint8_t pad;
};

/* What a client dialed to reach a backend, learnt from its side's report; or that it did not. */
struct join {
	struct join_key key;
	uint8_t dialed[16];
	uint16_t dialed_port;
	uint8_t direct; /* waited in vain: a direct connection, do not wait again for a while */
	uint64_t updated_ms;
	UT_hash_handle hh;
};

/* A server-side aggregate waiting for its client side (summed per node). */
struct pending_key {
	struct join_key j;
	char node[254];
	uint8_t pad[2];
};

struct pending {
	struct pending_key key;
	uint64_t fwd_packets, fwd_bytes, rev_packets, rev_bytes;
	uint64_t start_unix_ms, when_unix_ms; /* the report's interval */
	uint64_t deadline_ms;
	struct sigs g;
	UT_hash_handle hh;
};

#define JOIN_TTL_MS (10ULL * 60 * 1000)

/* Naming cache: an aggregate key (as reported by one node) -> the series it lands in. */
struct name_key {
	struct join_key j;
	uint8_t dialed[16];
	uint16_t dialed_port;
	uint8_t has_dialed;
	uint8_t reporter;
	uint32_t node;
};

struct name_entry {
	struct name_key key;
	struct series *x[4]; /* flow forward, flow reply, zone forward, zone reply */
	uint64_t meta_gen;
	uint64_t series_gen;
	uint64_t used_ms;
	UT_hash_handle hh;
};

struct node_name {
	char *name;
	uint32_t id;
	UT_hash_handle hh;
};

struct store {
	struct store_config cfg;
	struct meta *own_meta;
	struct series *series;
	size_t n_series; /* excluding the overflow series */
	struct agent *agents;
	size_t n_agents;
	struct join *joins;
	size_t n_joins;
	struct pending *pending;
	size_t n_pending;
	struct name_entry *names;
	size_t n_names;
	struct node_name *node_names;
	uint32_t n_node_names;
	uint64_t series_gen; /* changes whenever a series is freed: cached pointers go stale */
	int rendering; /* renders in progress (they yield the caller's lock): nothing is freed */
	int draining;
	struct store_stats st;
};

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
	*out = s;
	return 0;
}

static void drop_names(struct store *s)
{
	struct name_entry *e, *et;

	HASH_ITER (hh, s->names, e, et) {
		HASH_DEL(s->names, e);
		free(e);
	}
	s->n_names = 0;
}

void store_free(struct store *s)
{
	struct series *x, *xt;
	struct agent *a, *at;
	struct join *j, *jt;
	struct pending *p, *pt;

	if (!s)
		return;
	HASH_ITER (hh, s->series, x, xt) {
		HASH_DEL(s->series, x);
		free(x->h);
		free(x);
	}
	HASH_ITER (hh, s->agents, a, at) {
		HASH_DEL(s->agents, a);
		free(a);
	}
	HASH_ITER (hh, s->joins, j, jt) {
		HASH_DEL(s->joins, j);
		free(j);
	}
	HASH_ITER (hh, s->pending, p, pt) {
		HASH_DEL(s->pending, p);
		free(p);
	}
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

static struct series *series_new(const char *key, size_t key_len)
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
static struct series *series_get(struct store *s, enum family fam, enum flow_direction dir,
				 char *key, int len, int create, uint64_t now_ms)
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
	x->created_ms = now_ms;
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
static uint32_t node_id(struct store *s, const char *node)
{
	struct node_name *n;

	HASH_FIND_STR(s->node_names, node, n);
	if (n)
		return n->id;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(node))) {
		free(n);
		return 0;
	}
	n->id = ++s->n_node_names;
	HASH_ADD_KEYPTR(hh, s->node_names, n->name, strlen(n->name), n);
	return n->id;
}

/*
 * The signals of one reported aggregate, from its error_counts (keys in lib/vocab.h) and
 * histograms. Keys and histograms this version does not know are counted and ignored.
 */
static void sigs_from(struct store *s, const Flowlens__V1__FlowAggregate *f, struct sigs *g)
{
	memset(g, 0, sizeof(*g));
	for (size_t e = 0; e < f->n_error_counts; e++) {
		const Flowlens__V1__FlowAggregate__ErrorCountsEntry *ec = f->error_counts[e];
		struct vocab_count vc;

		switch (vocab_parse_count(ec->key, &vc)) {
		case COUNT_TCP:
			g->tcp[vc.i] += ec->value;
			break;
		case COUNT_RETRANSMITS:
			g->retransmits += ec->value;
			break;
		case COUNT_HTTP:
			g->http[vc.i][vc.j] += ec->value;
			break;
		case COUNT_DNS:
			g->dns[vc.i][vc.j] += ec->value;
			break;
		case COUNT_DROP:
			if (drop_add(g, vc.reason, ec->value)) {
				s->st.signals_ignored_total++;
				continue;
			}
			break;
		default:
			s->st.signals_ignored_total++;
			continue;
		}
		g->has |= ec->value != 0;
	}
	for (size_t i = 0; i < f->n_histograms; i++) {
		const Flowlens__V1__Histogram *h = f->histograms[i];
		int n = vocab_find(vocab_hist, HIST_KINDS, h->name, strlen(h->name));

		if (n < 0 || g->h[n].on) {
			s->st.signals_ignored_total++;
			continue;
		}
		g->h[n].on = 1;
		g->h[n].nb = (uint32_t)h->n_bounds;
		memcpy(g->h[n].bounds, h->bounds, h->n_bounds * sizeof(double));
		memcpy(g->h[n].counts, h->counts, h->n_counts * sizeof(uint64_t));
		g->h[n].sum = h->sum;
		g->has = 1;
	}
}

/* Adds b's signals to a's (a waiting aggregate); histograms with other bounds are dropped. */
static void sigs_add(struct store *s, struct sigs *a, const struct sigs *b)
{
	for (int r = 0; r < TCP_RESULT_MAX; r++)
		a->tcp[r] += b->tcp[r];
	for (int m = 0; m < HTTP_METHODS; m++)
		for (int c = 0; c < HTTP_CLASSES; c++)
			a->http[m][c] += b->http[m][c];
	for (int r = 0; r < DNS_RCODES; r++)
		for (int q = 0; q < DNS_QTYPES; q++)
			a->dns[r][q] += b->dns[r][q];
	a->retransmits += b->retransmits;
	for (unsigned int i = 0; i < b->n_drops; i++)
		if (drop_add(a, b->drops[i].reason, b->drops[i].count))
			s->st.signals_ignored_total++;
	for (size_t n = 0; n < HIST_KINDS; n++) {
		if (!b->h[n].on)
			continue;
		if (!a->h[n].on) {
			a->h[n] = b->h[n];
			continue;
		}
		if (a->h[n].nb != b->h[n].nb ||
		    memcmp(a->h[n].bounds, b->h[n].bounds, b->h[n].nb * sizeof(double))) {
			s->st.histogram_mismatch_total++;
			continue;
		}
		for (uint32_t i = 0; i <= b->h[n].nb; i++)
			a->h[n].counts[i] += b->h[n].counts[i];
		a->h[n].sum += b->h[n].sum;
	}
	a->has |= b->has;
}

static struct hdata *hdata_new(uint32_t nb, const double *bounds, uint16_t name_len)
{
	struct hdata *h = calloc(1, sizeof(*h) + nb * sizeof(double) + (nb + 1) * sizeof(uint64_t));

	if (!h)
		return NULL;
	h->nb = nb;
	h->name_len = name_len;
	h->bounds = (double *)(h + 1);
	h->counts = (uint64_t *)(h->bounds + nb);
	memcpy(h->bounds, bounds, nb * sizeof(double));
	return h;
}

/* Connection outcomes and histograms of a named aggregate. Called with the metadata lock. */
static void emit_signals(struct store *s, const struct flow_view *v, const struct sigs *g,
			 uint64_t now_ms)
{
	char key[LABELS_TEXT_MAX + 80];
	struct series *x;
	int n;

	for (int r = 0; r < TCP_RESULT_MAX; r++) {
		if (!g->tcp[r])
			continue;
		n = labels_signal(&s->cfg.labels, v, "result", vocab_tcp_result[r], NULL, NULL,
				  key + 1, LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_TCP, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		x->packets += g->tcp[r];
		x->updated_ms = now_ms;
	}
	for (int m = 0; m < HTTP_METHODS; m++) {
		for (int c = 0; c < HTTP_CLASSES; c++) {
			if (!g->http[m][c])
				continue;
			n = labels_signal(&s->cfg.labels, v, "method", vocab_http_method[m],
					  "status_class", vocab_http_class[c], key + 1,
					  LABELS_TEXT_MAX);
			x = n < 0 ? NULL : series_get(s, FAM_HTTP, DIR_FORWARD, key, n, 1, now_ms);
			if (!x || x->overflow) {
				s->st.signals_dropped_total++;
				continue;
			}
			x->packets += g->http[m][c];
			x->updated_ms = now_ms;
		}
	}
	if (g->retransmits) {
		n = labels_signal(&s->cfg.labels, v, NULL, NULL, NULL, NULL, key + 1,
				  LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_RETRANS, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
		} else {
			x->packets += g->retransmits;
			x->updated_ms = now_ms;
		}
	}
	for (unsigned int d = 0; d < g->n_drops; d++) {
		n = labels_signal(&s->cfg.labels, v, "reason", g->drops[d].reason, NULL, NULL,
				  key + 1, LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_DROP, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		x->packets += g->drops[d].count;
		x->updated_ms = now_ms;
	}
	for (int r = 0; r < DNS_RCODES; r++) {
		for (int q = 0; q < DNS_QTYPES; q++) {
			if (!g->dns[r][q])
				continue;
			n = labels_signal(&s->cfg.labels, v, "rcode", vocab_dns_rcode[r], "qtype",
					  vocab_dns_qtype[q], key + 1, LABELS_TEXT_MAX);
			x = n < 0 ? NULL : series_get(s, FAM_DNS, DIR_FORWARD, key, n, 1, now_ms);
			if (!x || x->overflow) {
				s->st.signals_dropped_total++;
				continue;
			}
			x->packets += g->dns[r][q];
			x->updated_ms = now_ms;
		}
	}
	for (size_t h = 0; h < HIST_KINDS; h++) {
		size_t nl = strlen(vocab_hist[h]);

		if (!g->h[h].on)
			continue;
		memcpy(key + 1, vocab_hist[h], nl);
		n = labels_signal(&s->cfg.labels, v, NULL, NULL, NULL, NULL, key + 1 + nl,
				  LABELS_TEXT_MAX);
		x = n < 0 ? NULL :
			    series_get(s, FAM_HIST, DIR_FORWARD, key, n + (int)nl, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		if (!x->h)
			x->h = hdata_new(g->h[h].nb, g->h[h].bounds, (uint16_t)nl);
		if (!x->h || x->h->nb != g->h[h].nb ||
		    memcmp(x->h->bounds, g->h[h].bounds, g->h[h].nb * sizeof(double))) {
			s->st.histogram_mismatch_total++;
			continue;
		}
		for (uint32_t i = 0; i <= g->h[h].nb; i++)
			x->h->counts[i] += g->h[h].counts[i];
		x->h->sum += g->h[h].sum;
		x->updated_ms = now_ms;
	}
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

static void flush_pending(struct store *s, struct pending *p, const struct join *j, uint64_t now_ms)
{
	emit(s, p->key.node, p->start_unix_ms, p->when_unix_ms, &p->key.j,
	     j && !j->direct ? j->dialed : NULL, j ? j->dialed_port : 0,
	     FLOWLENS__V1__REPORTER__REPORTER_SERVER, p->fwd_packets, p->fwd_bytes, p->rev_packets,
	     p->rev_bytes, now_ms, &p->g);
	HASH_DEL(s->pending, p);
	s->n_pending--;
	free(p);
}

/*
 * A new join entry. Input grows this table (every distinct connection that dialed a
 * ClusterIP), so it is bounded: when full, the oldest entry goes (its connection's next
 * server-side report waits for the client side again, or is named as dialed directly).
 */
static struct join *join_add(struct store *s, const struct join_key *k)
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

/* The client side reported what it dialed: remember it, and release what waited for it. */
static void learn_join(struct store *s, const struct join_key *k, const uint8_t dialed[16],
		       uint16_t dialed_port, uint64_t now_ms)
{
	struct pending *p, *pt;
	struct join *j;

	HASH_FIND(hh, s->joins, k, sizeof(*k), j);
	if (!j && !(j = join_add(s, k)))
		return;
	memcpy(j->dialed, dialed, 16);
	j->dialed_port = dialed_port;
	j->direct = 0;
	j->updated_ms = now_ms;
	if (!s->n_pending)
		return;
	HASH_ITER (hh, s->pending, p, pt) {
		if (!memcmp(&p->key.j, k, sizeof(*k))) {
			s->st.joined_total++;
			flush_pending(s, p, j, now_ms);
		}
	}
}

/*
 * Whether a server-side aggregate without a dialed address should wait for its client side:
 * only when the client is (or may be) a pod on another node, whose node did the translation.
 */
static int client_elsewhere(struct store *s, const char *node, uint64_t start, uint64_t when,
			    const struct join_key *k)
{
	struct meta_ident id;
	const char *cnode;
	int r;

	meta_lock(s->cfg.meta);
	meta_ident(s->cfg.meta, k->client, start, when, node, &id);
	cnode = meta_pod_node(s->cfg.meta, k->client, start, when);
	r = !strcmp(id.kind, "unknown") || (*id.pod && strcmp(cnode, node) != 0);
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
		learn_join(s, &k, dialed, (uint16_t)f->dialed_port, now_ms);
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
		if (!j->direct)
			s->st.joined_total++;
		emit(s, b->node, start, when, &k, j->direct ? NULL : j->dialed, j->dialed_port,
		     reporter, fp, fb, rp, rb, now_ms, &g);
		return;
	}
	if (!s->cfg.join_wait_ms || !client_elsewhere(s, b->node, start, when, &k)) {
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
		p->deadline_ms = now_ms + s->cfg.join_wait_ms;
		HASH_ADD(hh, s->pending, key, sizeof(p->key), p);
		s->n_pending++;
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

void store_tick(struct store *s, uint64_t now_ms)
{
	struct pending *p, *pt;

	HASH_ITER (hh, s->pending, p, pt) {
		struct join *j;

		if (p->deadline_ms > now_ms)
			continue;
		/* No client side reported it: a direct connection (or no agent there). */
		HASH_FIND(hh, s->joins, &p->key.j, sizeof(p->key.j), j);
		if (!j && (j = join_add(s, &p->key.j)))
			j->direct = 1;
		if (j)
			j->updated_ms = now_ms;
		s->st.join_timeouts_total++;
		flush_pending(s, p, j, now_ms);
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

static struct agent *agent_find(struct store *s, const Flowlens__V1__Batch *b)
{
	struct agent_key ak;
	struct agent *a;

	agent_key_of(b, &ak);
	HASH_FIND(hh, s->agents, &ak, sizeof(ak), a);
	return a;
}

/* The least recently seen agent, if it may make room for a new one. */
static struct agent *agent_evictable(struct store *s, uint64_t now_ms)
{
	struct agent *a = s->agents; /* kept in order of last batch: the head is the oldest */

	return a && a->last_seen_ms + s->cfg.agent_protect_ms <= now_ms ? a : NULL;
}

enum store_result store_check(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms)
{
	struct agent *a = agent_find(s, b);

	if (a)
		return b->seq <= a->last_seq ? STORE_DUPLICATE : STORE_APPLIED;
	if (s->n_agents >= s->cfg.max_agents && !agent_evictable(s, now_ms))
		return STORE_TOO_MANY_AGENTS;
	return STORE_APPLIED;
}

enum store_result store_apply(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms)
{
	struct agent *a = agent_find(s, b);
	uint64_t when, start;

	if (!a) {
		/*
		 * Full (--max-agents): the agent seen longest ago gives its place, unless it
		 * sent within agent_protect_ms. Forgetting its last seq only matters if
		 * it later retries a batch already applied; that is counted as an eviction.
		 */
		if (s->n_agents >= s->cfg.max_agents) {
			struct agent *old = agent_evictable(s, now_ms);

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
	if (b->seq <= a->last_seq)
		return STORE_DUPLICATE;
	a->last_seq = b->seq;
	a->dropped_batches = b->dropped_batches;

	/* Addresses are named as they were when the interval ended (IPs are reused). */
	when = b->interval_end_unix_ms ? b->interval_end_unix_ms : clock_unix_ms();
	start = b->interval_start_unix_ms && b->interval_start_unix_ms <= when ?
			b->interval_start_unix_ms :
			when;
	for (size_t i = 0; i < b->n_flows; i++) {
		s->st.aggregates_total++;
		apply_flow(s, b, b->flows[i], start, when, now_ms);
	}
	return STORE_APPLIED;
}

void store_expire(struct store *s, uint64_t now_ms)
{
	struct series *x, *xt;
	struct agent *a, *at;
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

/*
 * Whether a series is exported as 0 (its hold): new series start from 0 so that increase()
 * sees their first delta. While draining, a series that has been shown as 0 is shown at its
 * real value (the last scrapes must see it); one never shown keeps 0: a scraper that saw no
 * 0 first would lose its first value (with --state-dir the next process shows it).
 */
static int series_held(struct store *s, struct series *x, uint64_t now_ms)
{
	if (x->created_ms + s->cfg.zero_hold_ms <= now_ms)
		return 0;
	return !(s->draining && x->zero_shown);
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

struct render_pace {
	void (*yield)(void *);
	void *arg;
	unsigned int since;
};

static void pace(struct render_pace *p)
{
	if (p->yield && ++p->since >= STORE_RENDER_CHUNK) {
		p->since = 0;
		p->yield(p->arg);
	}
}

static void render_family(struct store *s, struct expo *e, enum family fam, const char *name,
			  const char *help, int bytes, uint64_t now_ms, struct render_pace *rp)
{
	size_t nlen = strlen(name);
	char num[26];
	struct series *x;

	expo_family(e, name, "counter", help);
	/* Only this thread writes to the stream: skip stdio's per-call locking. */
	for (x = s->series; x; x = x->hh.next) {
		uint64_t v;
		size_t n;

		pace(rp);
		if (x->key[0] != (char)fam)
			continue;
		v = series_held(s, x, now_ms) ? 0 : bytes ? x->bytes : x->packets;
		n = u64_str(v, num + 1);
		num[0] = ' ';
		num[n + 1] = '\n';
		fwrite_unlocked(name, 1, nlen, e->f);
		fwrite_unlocked(x->key + 1, 1, x->key_len - 1u, e->f);
		fwrite_unlocked(num, 1, n + 2, e->f);
	}
}

static const char *const hist_help[HIST_KINDS] = {
	"TCP connect latency: from the first SYN to the SYN-ACK, as seen at the reporter's "
	"interface (a retransmitted SYN counts from the first).",
	"HTTP/1.x request duration: from the request line's first segment to the status line's, "
	"as seen at the reporter's interface.",
	"DNS query duration: from the query to its answer (same client tuple and id), as seen "
	"at the reporter's interface; unanswered queries are not in it.",
};

static void render_histograms(struct store *s, struct expo *e, uint64_t now_ms,
			      struct render_pace *rp)
{
	static const uint64_t zeros[WIRE_HIST_BOUNDS_MAX + 1];
	char name[128], labels[LABELS_TEXT_MAX];

	for (size_t h = 0; h < HIST_KINDS; h++) {
		size_t nl = strlen(vocab_hist[h]);

		snprintf(name, sizeof(name), "flowlens_%s", vocab_hist[h]);
		expo_family(e, name, "histogram", hist_help[h]);
		for (struct series *x = s->series; x; x = x->hh.next) {
			size_t ll;
			int held;

			pace(rp);
			if (x->key[0] != (char)FAM_HIST || !x->h || x->h->name_len != nl ||
			    memcmp(x->key + 1, vocab_hist[h], nl))
				continue;
			/* "{a=\"b\",...}" -> "a=\"b\",..." */
			ll = x->key_len - 1u - nl;
			if (ll < 2 || ll - 2 >= sizeof(labels))
				continue;
			memcpy(labels, x->key + 1 + nl + 1, ll - 2);
			labels[ll - 2] = 0;
			held = series_held(s, x, now_ms);
			expo_histogram(e, name, labels, x->h->bounds, held ? zeros : x->h->counts,
				       x->h->nb, held ? 0 : x->h->sum);
		}
	}
}

void store_render(struct store *s, struct expo *e, uint64_t now_ms, void (*yield)(void *),
		  void *yield_arg)
{
	struct render_pace rp = { .yield = yield, .arg = yield_arg };

	s->rendering++;
	render_family(s, e, FAM_FLOW, "flowlens_flow_bytes_total",
		      "L3 bytes of flows from the source (the initiator) to the destination (the "
		      "backend that answered; destination_service and destination_port are what "
		      "the client dialed) or back (direction), as counted at the reporter.",
		      1, now_ms, &rp);
	render_family(s, e, FAM_FLOW, "flowlens_flow_packets_total",
		      "Packets of flows, labelled like flowlens_flow_bytes_total.", 0, now_ms, &rp);
	render_family(s, e, FAM_ZONE, "flowlens_zone_bytes_total",
		      "L3 bytes by the availability zone they left (source_zone) and entered "
		      "(destination_zone), per reporter; \"\" where the zone is not known. Count "
		      "one reporter (client) to see each byte once.",
		      1, now_ms, &rp);
	render_family(s, e, FAM_TCP, "flowlens_tcp_connections_total",
		      "TCP connection attempts by result: established (SYN answered by SYN-ACK), "
		      "refused (SYN answered by RST), timeout (no answer within the agent's "
		      "--tcp-connect-timeout), reset (established, then reset); per reporter.",
		      0, now_ms, &rp);
	render_family(
		s, e, FAM_HTTP, "flowlens_http_requests_total",
		"HTTP/1.x requests, by method and status class (other: no valid status "
		"line), from request start to response start on the connection; per reporter.",
		0, now_ms, &rp);
	render_family(s, e, FAM_DNS, "flowlens_dns_requests_total",
		      "DNS queries over UDP, by rcode (timeout: no answer within the agent's "
		      "--dns-timeout) and question type; per reporter.",
		      0, now_ms, &rp);
	render_family(s, e, FAM_RETRANS, "flowlens_tcp_retransmits_total",
		      "TCP retransmissions by the sending pod's socket, counted at that pod's side "
		      "(reporter client: the client retransmitted; server: the server did).",
		      0, now_ms, &rp);
	render_family(s, e, FAM_DROP, "flowlens_drops_total",
		      "Packets of the flow the kernel dropped, by the kernel's drop reason "
		      "(enum skb_drop_reason, lowercase), at the receiving pod's node when it has "
		      "an agent, else the sending pod's.",
		      0, now_ms, &rp);
	render_histograms(s, e, now_ms, &rp);
	/*
	 * Marked after every family: a series is shown as 0 in all of them in one scrape. One
	 * created during this render's yields may have missed a family: not marked.
	 */
	for (struct series *x = s->series; x; x = x->hh.next)
		if (series_held(s, x, now_ms) && x->created_ms <= now_ms)
			x->zero_shown = 1;
	s->rendering--;
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
	struct node_seen *nodes = NULL, *n, *nt;
	struct agent *a;

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
	HASH_ITER (hh, nodes, n, nt) {
		HASH_DEL(nodes, n);
		free(n);
	}
}

/*
 * Snapshot format (native byte order; a snapshot is read back by the same build on the same
 * node): "FLWS", version, series count, series records (header + key bytes), agent count,
 * agent records, pending count, pending records, and a CRC-32 of everything before it.
 */
#define SNAP_MAGIC 0x53574c46u /* "FLWS" */
#define SNAP_VERSION 4u /* 4 adds the join table; 3 (without it) is still read */

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
	if (err || hdr[0] != SNAP_MAGIC || (hdr[1] != SNAP_VERSION && hdr[1] != 3u))
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
	}
	if (hdr[1] >= 4u) {
		uint64_t saved_ms = store_mono_of_unix(now_ms, now_unix_ms, saved_unix_ms);

		if (get(f, &crc, &n, sizeof(n)))
			return -EINVAL;
		for (uint64_t i = 0; i < n; i++) {
			struct snap_join r;
			struct join *j;

			if (get(f, &crc, &r, sizeof(r)))
				return -EINVAL;
			HASH_FIND(hh, s->joins, &r.key, sizeof(r.key), j);
			if (!j && !(j = join_add(s, &r.key)))
				return -ENOMEM;
			memcpy(j->dialed, r.dialed, sizeof(j->dialed));
			j->dialed_port = r.dialed_port;
			j->direct = r.direct;
			j->updated_ms = saved_ms > r.age_ms ? saved_ms - r.age_ms : 0;
		}
	}
	s->series_gen++;
	if (fread(&crc32v, 1, sizeof(crc32v), f) != sizeof(crc32v) || crc32v != (uint32_t)crc)
		return -EINVAL;
	return 0;
}
