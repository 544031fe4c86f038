// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <curl/curl.h>
#include "clock.h"
#include "addr.h"
#include "export.h"
#include "log.h"
#include "secret.h"
#include "vocab.h"
#include "wire.h"

struct queued_batch {
	uint64_t seq;
	uint8_t *data;
	size_t len;
	struct queued_batch *next;
};

/*
 * One collector replica: its own queue, sender thread and backoff, so that a replica that is
 * away delays and drops only its own copies.
 */
struct dest {
	struct exporter *x;
	char *url;
	unsigned int shard; /* which shard's replicas this is one of */
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct queued_batch *head, *tail;
	struct queued_batch *in_flight; /* never dropped while curl uses it */
	int stopping;
	uint64_t flush_deadline_ms;
	struct export_stats st;
	int last_status_logged;
};

struct exporter {
	struct export_config cfg;
	uint8_t boot_id[WIRE_BOOT_ID_LEN];
	pthread_mutex_t seq_lock;
	uint64_t seq;
	unsigned int n_shards;
	size_t n;
	struct dest d[];
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

/* POSTs one batch. Returns the HTTP status, or 0 when no response was received. */
static long post(struct dest *d, CURL *curl, const struct queued_batch *it)
{
	const struct exporter *x = d->x;
	struct curl_slist *hdrs = NULL;
	char auth[SECRET_MAX_LEN + 32];
	char *token = secret_read(x->cfg.token_file);
	long status = 0;
	CURLcode rc;

	if (!token) {
		pr_warn("export: token file %s: %s", x->cfg.token_file,
			errno == EFBIG ? "longer than 4096 characters" : strerror(errno));
		return 0;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	free(token);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: " WIRE_CONTENT_TYPE);
	hdrs = curl_slist_append(hdrs, "Content-Encoding: " WIRE_CONTENT_ENCODING);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, d->url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)it->data);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)x->cfg.timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)x->cfg.timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	if (x->cfg.ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, x->cfg.ca_file);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else
		pr_debug("export: %s: seq %llu: %s", d->url, (unsigned long long)it->seq,
			 curl_easy_strerror(rc));
	curl_slist_free_all(hdrs);
	return status;
}

static void pop_head(struct dest *x)
{
	struct queued_batch *it = x->head;

	x->head = it->next;
	if (!x->head)
		x->tail = NULL;
	x->st.queued_batches--;
	x->st.queued_bytes -= it->len;
	free(it->data);
	free(it);
}

/* Waits until deadline_ms or a stop; returns 1 when stopping without a flush to do. */
static int wait_until(struct dest *x, uint64_t deadline_ms)
{
	while (!x->stopping && clock_mono_ms() < deadline_ms) {
		struct timespec ts =
			clock_deadline_ms(CLOCK_MONOTONIC, deadline_ms - clock_mono_ms());

		pthread_cond_timedwait(&x->cond, &x->lock, &ts);
	}
	return x->stopping && (!x->head || clock_mono_ms() >= x->flush_deadline_ms);
}

static void *sender(void *arg)
{
	struct dest *x = arg;
	CURL *curl = curl_easy_init();
	unsigned int attempt = 0;

	pthread_mutex_lock(&x->lock);
	for (;;) {
		struct queued_batch *it;
		long status;

		while (!x->head && !x->stopping)
			pthread_cond_wait(&x->cond, &x->lock);
		if (!x->head || (x->stopping && clock_mono_ms() >= x->flush_deadline_ms))
			break;
		it = x->head;
		x->in_flight = it;
		pthread_mutex_unlock(&x->lock);
		status = curl ? post(x, curl, it) : 0;
		pthread_mutex_lock(&x->lock);
		x->in_flight = NULL;

		if (status >= 200 && status < 300) {
			x->st.sent++;
			x->st.last_success_unix_ms = clock_unix_ms();
			pop_head(x);
			attempt = 0;
			if (x->last_status_logged) {
				pr_info("export: collector %s reachable again", x->url);
				x->last_status_logged = 0;
			}
			continue;
		}
		if (status == 400 || status == 413 || status == 415) {
			/* The collector will never take this batch: retrying cannot help. */
			pr_warn("export: collector %s refused batch %llu with HTTP %ld; dropped",
				x->url, (unsigned long long)it->seq, status);
			x->st.rejected++;
			pop_head(x);
			continue;
		}
		/* Unreachable, 401/403 (token rotation), 429, 5xx: back off and retry. */
		if (!x->last_status_logged) {
			pr_warn("export: sending batch %llu to %s failed (%s%ld); retrying with "
				"backoff",
				(unsigned long long)it->seq, x->url,
				status ? "HTTP " : "no response ", status);
			x->last_status_logged = 1;
		}
		x->st.retries++;
		{
			uint64_t cap = x->x->cfg.backoff_min_ms << (attempt < 16 ? attempt : 16);
			uint32_t r;

			if (cap > x->x->cfg.backoff_max_ms)
				cap = x->x->cfg.backoff_max_ms;
			if (getrandom(&r, sizeof(r), 0) != sizeof(r))
				r = (uint32_t)clock_mono_ms();
			attempt++;
			/* Full jitter: a random wait in [cap/2, cap) spreads agents apart. */
			if (wait_until(x, clock_mono_ms() + cap / 2 + r % (cap / 2 + 1)))
				break;
		}
	}
	pthread_mutex_unlock(&x->lock);
	if (curl)
		curl_easy_cleanup(curl);
	return NULL;
}

static void dest_free(struct dest *d)
{
	while (d->head)
		pop_head(d);
	if (d->started) {
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
	}
	free(d->url);
}

/*
 * The destinations of --collector: shards separated by ';', each a list of replica URLs
 * separated by ','; every URL gets WIRE_PATH appended.
 */
static size_t count_urls(const char *list, unsigned int *shards)
{
	size_t n = 1;

	*shards = 1;
	for (const char *p = list; *p; p++) {
		n += *p == ',' || *p == ';';
		*shards += *p == ';';
	}
	return n;
}

/*
 * The shard of a server address: rendezvous (highest random weight) hashing over the shard
 * numbers, so that adding a shard moves only the addresses it wins (about 1/N of them) and
 * nothing else. Both reports of a connection (client side, server side) carry the backend's
 * address: the collector's cross-node join always happens within one shard.
 */
static unsigned int shard_of(const uint8_t *addr, size_t len, unsigned int shards)
{
	uint64_t key = 1469598103934665603ULL, best = 0;
	unsigned int pick = 0;

	for (size_t i = 0; i < len; i++)
		key = (key ^ addr[i]) * 1099511628211ULL;
	for (unsigned int k = 0; k < shards; k++) {
		/* splitmix64 of the address's hash and the shard number */
		uint64_t z = key + (k + 1) * 0x9e3779b97f4a7c15ULL;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		if (k == 0 || z > best) {
			best = z;
			pick = k;
		}
	}
	return pick;
}

unsigned int export_shard_of(const uint8_t *addr, size_t len, unsigned int shards)
{
	return shards ? shard_of(addr, len, shards) : 0;
}

static int dest_init(struct exporter *x, struct dest *d, const char *url, size_t n)
{
	pthread_condattr_t ca;

	d->x = x;
	while (n && url[n - 1] == '/')
		n--;
	if (!n)
		return -EINVAL;
	d->url = malloc(n + sizeof(WIRE_PATH));
	if (!d->url)
		return -ENOMEM;
	memcpy(d->url, url, n);
	memcpy(d->url + n, WIRE_PATH, sizeof(WIRE_PATH));
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	d->started = 1;
	return 0;
}

static void dest_stop(struct dest *d, uint64_t flush_ms)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	d->flush_deadline_ms = clock_mono_ms() + flush_ms;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

int export_start(struct exporter **out, const struct export_config *cfg)
{
	unsigned int shards, shard = 0;
	size_t n = count_urls(cfg->url, &shards), i;
	struct exporter *x = calloc(1, sizeof(*x) + n * sizeof(x->d[0]));
	const char *p = cfg->url;
	int err = 0;

	if (!x)
		return -ENOMEM;
	x->cfg = *cfg;
	x->n = n;
	x->n_shards = shards;
	pthread_mutex_init(&x->seq_lock, NULL);
	if (getrandom(x->boot_id, sizeof(x->boot_id), 0) != sizeof(x->boot_id))
		err = -EIO;
	for (i = 0; i < n && !err; i++) {
		size_t len = strcspn(p, ",;");

		err = dest_init(x, &x->d[i], p, len);
		x->d[i].shard = shard;
		if (p[len] == ';')
			shard++;
		p += len + (p[len] != 0);
	}
	if (!err)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	for (i = 0; i < n && !err; i++) {
		if (pthread_create(&x->d[i].thread, NULL, sender, &x->d[i]))
			err = -EAGAIN;
		else
			x->d[i].started = 2;
	}
	if (err) {
		for (i = 0; i < n; i++) {
			if (x->d[i].started == 2) {
				dest_stop(&x->d[i], 0);
				pthread_join(x->d[i].thread, NULL);
			}
			dest_free(&x->d[i]);
		}
		pthread_mutex_destroy(&x->seq_lock);
		free(x);
		return err;
	}
	*out = x;
	return 0;
}

/* Protobuf storage for one aggregate's signals, alive until the batch is encoded. */
#define EC_MAX                                                                  \
	(TCP_RESULT_MAX + 1 + 2 * HTTP_METHODS * HTTP_CLASSES + GRPC_STATUSES + \
	 DNS_RCODES * DNS_QTYPES + AGG_DROP_REASONS)

/* Encodes b (with what this destination dropped) and queues it, dropping the oldest for room. */
static int dest_queue(struct dest *x, Flowlens__V1__Batch *b)
{
	struct queued_batch *it = calloc(1, sizeof(*it));
	int err;

	if (!it)
		return -ENOMEM;
	pthread_mutex_lock(&x->lock);
	it->seq = b->seq;
	x->st.seq = b->seq;
	b->dropped_batches = x->st.dropped;
	err = wire_encode(b, &it->data, &it->len);
	if (err) {
		pthread_mutex_unlock(&x->lock);
		free(it);
		return err;
	}
	/* Make room: drop the oldest batches that are not being sent right now. */
	while (x->head && x->st.queued_bytes + it->len > x->x->cfg.buffer_bytes) {
		struct queued_batch **pp = &x->head;

		if (*pp == x->in_flight)
			pp = &(*pp)->next;
		if (!*pp)
			break;
		{
			struct queued_batch *victim = *pp;

			*pp = victim->next;
			if (x->tail == victim)
				x->tail = pp == &x->head ? NULL : x->head;
			x->st.queued_batches--;
			x->st.queued_bytes -= victim->len;
			x->st.dropped++;
			free(victim->data);
			free(victim);
		}
	}
	if (x->tail)
		x->tail->next = it;
	else
		x->head = it;
	x->tail = it;
	x->st.queued_batches++;
	x->st.queued_bytes += it->len;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return 0;
}

static const char *(*drop_name_fn)(void *ctx, unsigned int reason);
static void *drop_name_ctx;

void export_set_drop_names(const char *(*fn)(void *ctx, unsigned int reason), void *ctx)
{
	drop_name_fn = fn;
	drop_name_ctx = ctx;
}

struct sig_scratch {
	Flowlens__V1__FlowAggregate__ErrorCountsEntry ec[EC_MAX];
	Flowlens__V1__FlowAggregate__ErrorCountsEntry *ecp[EC_MAX];
	char keys[EC_MAX][VOCAB_KEY_MAX];
	Flowlens__V1__Histogram h[HIST_KINDS];
	Flowlens__V1__Histogram *hp[HIST_KINDS];
	uint64_t counts[HIST_KINDS][HIST_BOUNDS_MAX + 1];
};

static void add_hist(Flowlens__V1__FlowAggregate *f, struct sig_scratch *sc, enum hist_kind kind,
		     const struct hist *h, const double *bounds, unsigned int nb)
{
	size_t i = f->n_histograms;

	flowlens__v1__histogram__init(&sc->h[i]);
	sc->h[i].name = (char *)vocab_hist[kind];
	sc->h[i].n_bounds = nb;
	sc->h[i].bounds = (double *)bounds;
	memcpy(sc->counts[i], h->counts, sizeof(sc->counts[i]));
	sc->h[i].n_counts = nb + 1;
	sc->h[i].counts = sc->counts[i];
	sc->h[i].sum = h->sum;
	sc->hp[i] = &sc->h[i];
	f->n_histograms++;
	f->histograms = sc->hp;
}

/* One error_counts entry, keyed as lib/vocab.h says. */
static void add_count(Flowlens__V1__FlowAggregate *f, struct sig_scratch *sc,
		      const struct vocab_count *c, uint64_t v)
{
	size_t i = f->n_error_counts;

	if (i == EC_MAX || vocab_count_key(c, sc->keys[i], sizeof(sc->keys[i])) < 0)
		return;
	flowlens__v1__flow_aggregate__error_counts_entry__init(&sc->ec[i]);
	sc->ec[i].key = sc->keys[i];
	sc->ec[i].value = v;
	sc->ecp[i] = &sc->ec[i];
	f->n_error_counts++;
	f->error_counts = sc->ecp;
}

/* The non-zero cells of a ni x nj matrix of counts (requests by method and class, ...). */
static void add_counts(Flowlens__V1__FlowAggregate *f, struct sig_scratch *sc,
		       enum vocab_count_kind kind, const uint32_t *m, int ni, int nj)
{
	for (int i = 0; i < ni; i++)
		for (int j = 0; j < nj; j++)
			if (m[i * nj + j])
				add_count(f, sc,
					  &(struct vocab_count){ .kind = kind, .i = i, .j = j },
					  m[i * nj + j]);
}

/* Connection outcomes, requests, queries and drops as error_counts; latencies as histograms. */
static void fill_signals(Flowlens__V1__FlowAggregate *f, struct sig_scratch *sc,
			 const struct flow_agg *a, const struct sig_config *sig)
{
	for (int r = 0; r < TCP_RESULT_MAX; r++)
		if (a->tcp[r])
			add_count(f, sc, &(struct vocab_count){ .kind = COUNT_TCP, .i = r },
				  a->tcp[r]);
	if (a->retransmits)
		add_count(f, sc, &(struct vocab_count){ .kind = COUNT_RETRANSMITS },
			  a->retransmits);
	for (int i = 0; a->drops && i < a->drops->n && drop_name_fn; i++) {
		struct vocab_count c = { .kind = COUNT_DROP };

		c.reason = drop_name_fn(drop_name_ctx, a->drops->d[i].reason);
		add_count(f, sc, &c, a->drops->d[i].count);
	}
	if (!sig)
		return;
	if (a->connect && a->connect->n)
		add_hist(f, sc, HIST_CONNECT, a->connect, sig->connect_bounds,
			 sig->n_connect_bounds);
	if (a->http) {
		add_counts(f, sc, COUNT_HTTP, &a->http->requests[0][0], HTTP_METHODS, HTTP_CLASSES);
		if (a->http->duration.n)
			add_hist(f, sc, HIST_HTTP, &a->http->duration, sig->http_bounds,
				 sig->n_http_bounds);
	}
	if (a->http2) {
		add_counts(f, sc, COUNT_HTTP2, &a->http2->requests[0][0], HTTP_METHODS,
			   HTTP_CLASSES);
		if (a->http2->duration.n)
			add_hist(f, sc, HIST_HTTP2, &a->http2->duration, sig->http_bounds,
				 sig->n_http_bounds);
	}
	if (a->grpc) {
		add_counts(f, sc, COUNT_GRPC, a->grpc->requests, GRPC_STATUSES, 1);
		if (a->grpc->duration.n)
			add_hist(f, sc, HIST_GRPC, &a->grpc->duration, sig->http_bounds,
				 sig->n_http_bounds);
	}
	if (a->dns) {
		add_counts(f, sc, COUNT_DNS, &a->dns->requests[0][0], DNS_RCODES, DNS_QTYPES);
		if (a->dns->duration.n)
			add_hist(f, sc, HIST_DNS, &a->dns->duration, sig->dns_bounds,
				 sig->n_dns_bounds);
	}
}

static void fill_flow(Flowlens__V1__FlowAggregate *f, Flowlens__V1__Counters *fwd,
		      Flowlens__V1__Counters *rev, const struct flow_agg *a)
{
	int v4 = addr_is_v4(a->key.client);
	size_t off = v4 ? 12 : 0, len = v4 ? 4 : 16;

	flowlens__v1__flow_aggregate__init(f);
	flowlens__v1__counters__init(fwd);
	flowlens__v1__counters__init(rev);
	f->client_ip.data = (uint8_t *)a->key.client + off;
	f->client_ip.len = len;
	f->server_ip.data = (uint8_t *)a->key.server + off;
	f->server_ip.len = len;
	f->server_port = a->key.server_port;
	if (a->key.dialed_port || memcmp(a->key.dialed, (uint32_t[4]){ 0 }, 16)) {
		f->dialed_ip.data = (uint8_t *)a->key.dialed + off;
		f->dialed_ip.len = len;
		f->dialed_port = a->key.dialed_port;
	}
	f->protocol = a->key.proto;
	/* (wire value = reporter + 1, asserted in lib/wire.c) */
	f->reporter = (Flowlens__V1__Reporter)(a->key.reporter < REPORTERS ? a->key.reporter + 1 :
									     REPORTER_NODE + 1);
	fwd->packets = a->fwd.packets;
	fwd->bytes = a->fwd.bytes;
	rev->packets = a->rev.packets;
	rev->bytes = a->rev.bytes;
	f->forward = fwd;
	f->reply = rev;
	f->tcp_syn = a->syn;
	f->tcp_synack = a->synack;
	f->tcp_fin = a->fin;
	f->tcp_rst = a->rst;
	f->initiator_heuristic = a->by_heuristic;
}

int export_submit(struct exporter *x, const struct flow_agg *aggs, uint64_t start_unix_ms,
		  uint64_t end_unix_ms, const struct sig_config *sig)
{
	struct sig_scratch *sc = NULL;
	Flowlens__V1__Batch b = FLOWLENS__V1__BATCH__INIT;
	Flowlens__V1__FlowAggregate *flows = NULL, **ptrs = NULL;
	Flowlens__V1__Counters *ctrs = NULL;
	uint64_t seq;
	size_t n = 0, i = 0;
	int err = 0;

	for (const struct flow_agg *a = aggs; a; a = a->hh.next)
		n++;
	if (n) {
		flows = calloc(n, sizeof(*flows));
		ptrs = calloc(n, sizeof(*ptrs));
		ctrs = calloc(2 * n, sizeof(*ctrs));
		sc = calloc(n, sizeof(*sc));
		if (!flows || !ptrs || !ctrs || !sc) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (const struct flow_agg *a = aggs; a; a = a->hh.next, i++) {
		fill_flow(&flows[i], &ctrs[2 * i], &ctrs[2 * i + 1], a);
		fill_signals(&flows[i], &sc[i], a, sig);
		ptrs[i] = &flows[i];
	}
	pthread_mutex_lock(&x->seq_lock);
	seq = ++x->seq;
	pthread_mutex_unlock(&x->seq_lock);
	b.schema_version = WIRE_SCHEMA_VERSION;
	b.node = (char *)x->cfg.node;
	b.boot_id.data = x->boot_id;
	b.boot_id.len = sizeof(x->boot_id);
	b.seq = seq;
	b.interval_start_unix_ms = start_unix_ms;
	b.interval_end_unix_ms = end_unix_ms;
	b.agent_version = FLOWLENS_VERSION;
	b.n_flows = n;
	b.flows = ptrs;
	if (x->n_shards > 1) {
		/* Grouped by shard (a counting sort): each shard's batch is a slice of ptrs. */
		size_t start[EXPORT_MAX_SHARDS + 1] = { 0 }, fill[EXPORT_MAX_SHARDS] = { 0 };
		Flowlens__V1__FlowAggregate **sorted = n ? calloc(n, sizeof(*sorted)) : NULL;
		uint8_t *which = n ? malloc(n) : NULL;

		if (n && (!sorted || !which)) {
			free(sorted);
			free(which);
			err = -ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			which[i] = (uint8_t)shard_of(ptrs[i]->server_ip.data,
						     ptrs[i]->server_ip.len, x->n_shards);
			start[which[i] + 1]++;
		}
		for (unsigned int sh = 0; sh < x->n_shards; sh++)
			start[sh + 1] += start[sh];
		for (i = 0; i < n; i++)
			sorted[start[which[i]] + fill[which[i]]++] = ptrs[i];
		if (n)
			memcpy(ptrs, sorted, n * sizeof(*ptrs));
		free(sorted);
		free(which);
		/* Every shard gets a batch every interval, empty or not: its replicas see the
		 * agent is alive and its sequence has no holes. */
		for (i = 0; i < x->n && !err; i++) {
			unsigned int sh = x->d[i].shard;

			b.flows = ptrs + start[sh];
			b.n_flows = start[sh + 1] - start[sh];
			err = dest_queue(&x->d[i], &b);
		}
	} else {
		/* Every replica gets the same batch; only what it lost itself differs. */
		for (i = 0; i < x->n && !err; i++)
			err = dest_queue(&x->d[i], &b);
	}
out:
	free(flows);
	free(ptrs);
	free(ctrs);
	free(sc);
	return err;
}

void export_stop(struct exporter *x, uint64_t flush_ms)
{
	size_t i;

	if (!x)
		return;
	/* The replicas flush in parallel, each for up to flush_ms. */
	for (i = 0; i < x->n; i++)
		dest_stop(&x->d[i], flush_ms);
	for (i = 0; i < x->n; i++) {
		pthread_join(x->d[i].thread, NULL);
		if (x->d[i].head)
			pr_warn("export: %llu batches not delivered to %s at exit",
				(unsigned long long)x->d[i].st.queued_batches, x->d[i].url);
		dest_free(&x->d[i]);
	}
	curl_global_cleanup();
	pthread_mutex_destroy(&x->seq_lock);
	free(x);
}

size_t export_destinations(const struct exporter *x)
{
	return x->n;
}

const char *export_destination(const struct exporter *x, size_t i, struct export_stats *out)
{
	struct dest *d = (struct dest *)&x->d[i];

	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
	return d->url;
}

void export_get_stats(struct exporter *x, struct export_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < x->n; i++) {
		struct export_stats s;

		export_destination(x, i, &s);
		out->sent += s.sent;
		out->rejected += s.rejected;
		out->dropped += s.dropped;
		out->retries += s.retries;
		out->queued_batches += s.queued_batches;
		out->queued_bytes += s.queued_bytes;
		/* Data reaches the collector while any replica takes it. */
		if (s.last_success_unix_ms > out->last_success_unix_ms)
			out->last_success_unix_ms = s.last_success_unix_ms;
	}
	out->seq = x->seq;
}
