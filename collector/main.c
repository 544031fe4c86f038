// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-collector: authenticates agents, applies their delta batches once each, and
 * exports cumulative flow series for Prometheus.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "clock.h"
#include "expo.h"
#include "httpd.h"
#include "kube.h"
#include "meta.h"
#include "log.h"
#include "options.h"
#include "persist.h"
#include "secret.h"
#include "store.h"
#include "vocab.h"
#include "wire.h"

/* What became of a batch: flowlens_collector_batches_total{result}. */
#define BATCH_RESULTS(X)                                        \
	X(RES_APPLIED, "applied")                               \
	X(RES_DUPLICATE, "duplicate")                           \
	X(RES_UNAUTHORIZED, "unauthorized")                     \
	X(RES_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type") \
	X(RES_TOO_LARGE, "too_large")                           \
	X(RES_DECOMPRESSED_TOO_LARGE, "decompressed_too_large") \
	X(RES_DECODED_TOO_LARGE, "decoded_too_large")           \
	X(RES_MALFORMED, "malformed")                           \
	X(RES_INVALID, "invalid")                               \
	X(RES_UNSUPPORTED_VERSION, "unsupported_version")       \
	X(RES_UNAVAILABLE, "unavailable")                       \
	X(RES_NOT_DURABLE, "not_durable")                       \
	X(RES_TOO_MANY_AGENTS, "too_many_agents")

enum batch_result { BATCH_RESULTS(VOCAB_ENUM2) RES_MAX };
#define RESULT_NAME(e, name) [e] = name,
static const char *const result_names[RES_MAX] = { BATCH_RESULTS(RESULT_NAME) };

struct collector {
	struct collector_options o;
	pthread_mutex_t lock;
	/* One batch is decoded at a time: bounds decode memory whatever the thread count. */
	pthread_mutex_t decode_lock;
	struct httpd *http;
	int token_err; /* the last token file error logged, so it is logged once */
	int last_wal_err;
	struct store *store;
	char *token;
	size_t token_len;
	struct timespec token_mtime;
	uint64_t results[RES_MAX];
	int ready;
	int draining; /* SIGTERM seen: batches get 503 so agents retry elsewhere */
	struct persist *persist;
	struct meta *meta;
	struct kube *kube;
	struct metafile *mfile;
	uint64_t wal_errors;
	struct persist_load_stats restored;
	uint64_t snapshots;
	uint64_t snapshot_errors;
};

static char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/*
 * (Re)reads the token when the file changed. Called with c->lock held. A token the agent
 * would send differently (longer than SECRET_MAX_LEN, empty, short) is an error, never cut.
 */
static int load_token(struct collector *c)
{
	struct stat st;
	char *t;
	size_t n;

	if (stat(c->o.token_file, &st) == -1)
		return -errno;
	if (st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
		return c->token ? 0 : c->token_err;
	c->token_mtime = st.st_mtim;
	t = secret_read(c->o.token_file);
	if (!t)
		return -errno;
	n = strlen(t);
	if (n < 16) {
		free(t);
		return -EINVAL;
	}
	if (c->token)
		pr_info("token file %s changed: new token in effect", c->o.token_file);
	free(c->token);
	c->token = t;
	c->token_len = n;
	return 0;
}

static const char *token_error(int err)
{
	if (err == -EFBIG)
		return "longer than 4096 characters";
	if (err == -EINVAL || err == -ENODATA)
		return "shorter than 16 characters";
	return strerror(-err);
}

/* Constant-time comparison of the presented bearer token. */
static int token_ok(struct collector *c, const char *auth)
{
	const char *p;
	size_t n, i;
	unsigned char diff = 0;

	/* The scheme is case-insensitive (RFC 9110 11.1). */
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !c->token)
		return 0;
	p = auth + 7;
	n = strlen(p);
	for (i = 0; i < c->token_len; i++)
		diff |= (unsigned char)(c->token[i] ^ (i < n ? p[i] : 0));
	return diff == 0 && n == c->token_len;
}

/* Answers a batch and counts the result; returns 0 so handlers can end with it. */
static int reply(struct collector *c, struct httpd_response *resp, enum batch_result r, int status,
		 const char *msg)
{
	char text[256];

	pthread_mutex_lock(&c->lock);
	c->results[r]++;
	pthread_mutex_unlock(&c->lock);
	snprintf(text, sizeof(text), "%s: %s\n", result_names[r], msg);
	httpd_text(resp, status, text);
	if (status >= 400)
		pr_debug("batch refused (%d): %s", status, text);
	return 0;
}

/* A media type equal to want, ignoring case and any parameters (RFC 9110 8.3.1). */
static int media_type_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	if (!v || strncasecmp(v, want, n) != 0)
		return 0;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';';
}

/*
 * Everything about a batch that its headers tell: checked before the body is read (the
 * server's precheck) so that nothing unauthenticated or oversized is ever buffered.
 * Returns 1 when it answered.
 */
static int batch_precheck(struct collector *c, const struct httpd_request *req,
			  struct httpd_response *resp)
{
	const char *cenc = httpd_header(req, "Content-Encoding");
	int ok;

	pthread_mutex_lock(&c->lock);
	ok = token_ok(c, httpd_header(req, "Authorization"));
	pthread_mutex_unlock(&c->lock);
	if (c->draining)
		return !reply(c, resp, RES_UNAVAILABLE, 503, "shutting down; retry");
	if (!ok)
		return !reply(c, resp, RES_UNAUTHORIZED, 401, "missing or wrong bearer token");
	if (!media_type_is(httpd_header(req, "Content-Type"), WIRE_CONTENT_TYPE) || !cenc ||
	    strcasecmp(cenc, WIRE_CONTENT_ENCODING) != 0)
		return !reply(c, resp, RES_UNSUPPORTED_MEDIA_TYPE, 415,
			      "expected Content-Type " WIRE_CONTENT_TYPE
			      " with Content-Encoding " WIRE_CONTENT_ENCODING);
	if (req->body_len > c->o.max_body)
		return !reply(c, resp, RES_TOO_LARGE, 413, "body over --max-body-bytes");
	return 0;
}

static void http_precheck(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct collector *c = ctx;

	if (strcmp(req->path, WIRE_PATH) == 0 && strcmp(req->method, "POST") == 0)
		batch_precheck(c, req, resp);
	else if (strcmp(req->path, WIRE_PATH) == 0)
		httpd_text(resp, 405, "POST only\n");
	else
		httpd_text(resp, 405, "method not allowed\n");
}

static int handle_batch(struct collector *c, const struct httpd_request *req,
			struct httpd_response *resp)
{
	struct wire_batch wb;
	enum store_result sr;
	enum wire_result wr;
	const char *why;
	int err = 0;

	if (batch_precheck(c, req, resp))
		return 0;
	pthread_mutex_lock(&c->decode_lock);
	wr = wire_decode(req->body, req->body_len, c->o.max_decompressed, &wb, &why);
	pthread_mutex_unlock(&c->decode_lock);
	switch (wr) {
	case WIRE_OK:
		break;
	case WIRE_ERR_TOO_LARGE:
		return reply(c, resp, RES_DECOMPRESSED_TOO_LARGE, 413, why);
	case WIRE_ERR_VERSION:
		return reply(c, resp, RES_UNSUPPORTED_VERSION, 400, why);
	case WIRE_ERR_INVALID:
		return reply(c, resp, RES_INVALID, 400, why);
	case WIRE_ERR_AMPLIFIED:
		return reply(c, resp, RES_DECODED_TOO_LARGE, 413, why);
	case WIRE_ERR_NOMEM:
		return reply(c, resp, RES_UNAVAILABLE, 503, why);
	default:
		return reply(c, resp, RES_MALFORMED, 400, why);
	}
	pthread_mutex_lock(&c->lock);
	/*
	 * Durable before applied, applied before acknowledged: the log holds the batch when
	 * the agent gets its 200; a batch that could not be logged is neither applied nor
	 * acknowledged, and the agent retries it.
	 */
	sr = store_check(c->store, wb.b, clock_mono_ms());
	if (sr == STORE_APPLIED && c->persist) {
		err = persist_append(c->persist, req->body, req->body_len);
		if (err)
			c->wal_errors++;
	}
	if (sr == STORE_APPLIED && !err)
		sr = store_apply(c->store, wb.b, clock_mono_ms());
	pthread_mutex_unlock(&c->lock);
	wire_free(&wb);
	if (err) {
		/* Once per distinct error run, not once per refused batch. */
		if (err != c->last_wal_err)
			pr_err("state log append failed: %s; batches are refused (agents retry "
			       "them) until the log works again",
			       strerror(-err));
		c->last_wal_err = err;
		return reply(c, resp, RES_NOT_DURABLE, 503,
			     "could not log the batch durably; retry");
	}
	c->last_wal_err = 0;
	if (sr == STORE_APPLIED)
		return reply(c, resp, RES_APPLIED, 200, "applied");
	if (sr == STORE_DUPLICATE)
		return reply(c, resp, RES_DUPLICATE, 200, "already applied");
	return reply(c, resp, RES_TOO_MANY_AGENTS, 503,
		     "--max-agents reached by agents that all sent within --agent-protect; retry");
}

static void render_meta_metrics(struct collector *c, struct expo *e)
{
	char lb[EXPO_LABELS_MAX];
	struct meta_stats ms;

	meta_lock(c->meta);
	meta_stats(c->meta, &ms);
	meta_unlock(c->meta);
	expo_family(e, "flowlens_collector_metadata_objects", "gauge",
		    "Kubernetes objects known, by kind.");
	for (int k = 0; k < META_KINDS; k++)
		expo_u64(e, "flowlens_collector_metadata_objects",
			 expo_labels(lb, sizeof(lb), "kind", meta_kind_name((enum meta_kind)k),
				     NULL),
			 ms.objects[k]);
	expo_family(e, "flowlens_collector_metadata_ip_bindings", "gauge",
		    "Pod IP bindings kept, those of deleted pods (--ip-history) included.");
	expo_u64(e, "flowlens_collector_metadata_ip_bindings", NULL, ms.ip_bindings);
	expo_family(e, "flowlens_collector_metadata_bad_objects_total", "counter",
		    "Objects without the fields the collector needs (ignored).");
	expo_u64(e, "flowlens_collector_metadata_bad_objects_total", NULL, ms.bad_objects_total);
	if (c->mfile) {
		expo_family(e, "flowlens_collector_metadata_file_loads_total", "counter",
			    "Loads of --metadata-file, by result.");
		expo_u64(e, "flowlens_collector_metadata_file_loads_total",
			 expo_labels(lb, sizeof(lb), "result", "ok", NULL),
			 metafile_loads(c->mfile));
		expo_u64(e, "flowlens_collector_metadata_file_loads_total",
			 expo_labels(lb, sizeof(lb), "result", "error", NULL),
			 metafile_errors(c->mfile));
	}
	if (c->kube) {
		static const struct {
			const char *name, *help;
			size_t off;
		} f[] = {
			{ "flowlens_collector_kube_lists_total", "Full lists, by kind.",
			  offsetof(struct kube_kind_stats, lists_total) },
			{ "flowlens_collector_kube_watches_total", "Watch requests, by kind.",
			  offsetof(struct kube_kind_stats, watches_total) },
			{ "flowlens_collector_kube_events_total", "Watch events applied, by kind.",
			  offsetof(struct kube_kind_stats, events_total) },
			{ "flowlens_collector_kube_bookmarks_total", "Watch bookmarks, by kind.",
			  offsetof(struct kube_kind_stats, bookmarks_total) },
			{ "flowlens_collector_kube_gone_total",
			  "410 Gone answers (resourceVersion too old), each followed by a list.",
			  offsetof(struct kube_kind_stats, gone_total) },
			{ "flowlens_collector_kube_errors_total",
			  "Failed API requests, broken watch streams and bad JSON, by kind.",
			  offsetof(struct kube_kind_stats, errors_total) },
		};
		struct kube_kind_stats ks[META_KINDS];

		for (int k = 0; k < META_KINDS; k++)
			kube_stats(c->kube, (enum meta_kind)k, &ks[k]);
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			expo_family(e, f[i].name, "counter", f[i].help);
			for (int k = 0; k < META_KINDS; k++)
				expo_u64(e, f[i].name,
					 expo_labels(lb, sizeof(lb), "kind",
						     meta_kind_name((enum meta_kind)k), NULL),
					 *(const uint64_t *)((const char *)&ks[k] + f[i].off));
		}
		expo_family(e, "flowlens_collector_kube_synced", "gauge",
			    "1 once the kind has been listed.");
		for (int k = 0; k < META_KINDS; k++)
			expo_u64(e, "flowlens_collector_kube_synced",
				 expo_labels(lb, sizeof(lb), "kind",
					     meta_kind_name((enum meta_kind)k), NULL),
				 (uint64_t)ks[k].synced);
	}
}

/* Between chunks of a large /metrics: batches waiting for the lock go first. */
static void render_yield(void *arg)
{
	struct collector *c = arg;

	pthread_mutex_unlock(&c->lock);
	sched_yield();
	pthread_mutex_lock(&c->lock);
}

static int render_metrics(struct collector *c, char **out, size_t *len)
{
	char lb[EXPO_LABELS_MAX];
	struct store_stats st;
	struct expo e;
	int err = expo_open(&e);

	if (err)
		return err;
	pthread_mutex_lock(&c->lock);
	store_stats(c->store, clock_mono_ms(), &st);
	expo_family(&e, "flowlens_collector_build_info", "gauge",
		    "Build of the running collector (always 1).");
	expo_u64(&e, "flowlens_collector_build_info",
		 expo_labels(lb, sizeof(lb), "version", FLOWLENS_VERSION, NULL), 1);
	expo_family(&e, "flowlens_collector_batches_total", "counter",
		    "Batches received from agents, by result.");
	for (int r = 0; r < RES_MAX; r++)
		expo_u64(&e, "flowlens_collector_batches_total",
			 expo_labels(lb, sizeof(lb), "result", result_names[r], NULL),
			 c->results[r]);
	expo_family(&e, "flowlens_collector_series", "gauge",
		    "Flow label sets exported (each in both flow families), overflow included.");
	expo_u64(&e, "flowlens_collector_series", NULL, st.series);
	expo_family(
		&e, "flowlens_collector_series_limit", "gauge",
		"Label sets kept before new ones fold into the overflow series (--max-series).");
	expo_u64(&e, "flowlens_collector_series_limit", NULL, c->o.max_series);
	expo_family(&e, "flowlens_collector_series_overflow_total", "counter",
		    "Aggregate directions folded into the overflow series because of the limit.");
	expo_u64(&e, "flowlens_collector_series_overflow_total", NULL, st.series_overflow_total);
	expo_family(&e, "flowlens_collector_series_expired_total", "counter",
		    "Series that stopped being exported after --series-ttl without updates.");
	expo_u64(&e, "flowlens_collector_series_expired_total", NULL, st.series_expired_total);
	expo_family(&e, "flowlens_collector_aggregates_total", "counter",
		    "Flow aggregates applied.");
	expo_u64(&e, "flowlens_collector_aggregates_total", NULL, st.aggregates_total);
	expo_family(&e, "flowlens_collector_agents", "gauge",
		    "Agents (nodes) that sent a batch within --series-ttl.");
	expo_u64(&e, "flowlens_collector_agents", NULL, st.agents);
	expo_family(&e, "flowlens_collector_agents_tracked", "gauge",
		    "(node, boot id) de-duplication entries held, against --max-agents.");
	expo_u64(&e, "flowlens_collector_agents_tracked", NULL, st.agents_tracked);
	expo_family(&e, "flowlens_collector_agents_limit", "gauge", "--max-agents.");
	expo_u64(&e, "flowlens_collector_agents_limit", NULL, c->o.max_agents);
	expo_family(&e, "flowlens_collector_agents_evicted_total", "counter",
		    "De-duplication entries of the agent seen longest ago, dropped to make room "
		    "for a new agent at --max-agents.");
	expo_u64(&e, "flowlens_collector_agents_evicted_total", NULL, st.agents_evicted_total);
	expo_family(&e, "flowlens_collector_agent_dropped_batches", "gauge",
		    "Batches agents report having dropped (their buffer was full), summed.");
	expo_u64(&e, "flowlens_collector_agent_dropped_batches", NULL, st.agents_dropped_batches);
	if (c->persist) {
		expo_family(&e, "flowlens_collector_wal_errors_total", "counter",
			    "Batches refused (503, retried by the agent) because the state log "
			    "could not hold them durably.");
		expo_u64(&e, "flowlens_collector_wal_errors_total", NULL, c->wal_errors);
		expo_family(&e, "flowlens_collector_state_restore_corrupt", "gauge",
			    "What was damaged in the state found at start, by part: snapshot (1: "
			    "unreadable, moved aside, counters restarted), log_records (damaged "
			    "stretches skipped; the intact records around them were replayed).");
		expo_u64(&e, "flowlens_collector_state_restore_corrupt",
			 expo_labels(lb, sizeof(lb), "part", "snapshot", NULL),
			 (uint64_t)c->restored.snapshot_corrupt);
		expo_u64(&e, "flowlens_collector_state_restore_corrupt",
			 expo_labels(lb, sizeof(lb), "part", "log_records", NULL),
			 c->restored.corrupt_records);
		expo_family(&e, "flowlens_collector_state_replayed_batches", "gauge",
			    "Logged batches applied at start.");
		expo_u64(&e, "flowlens_collector_state_replayed_batches", NULL,
			 c->restored.replayed);
		expo_family(&e, "flowlens_collector_snapshots_total", "counter",
			    "State snapshots written, by result.");
		expo_u64(&e, "flowlens_collector_snapshots_total",
			 expo_labels(lb, sizeof(lb), "result", "ok", NULL), c->snapshots);
		expo_u64(&e, "flowlens_collector_snapshots_total",
			 expo_labels(lb, sizeof(lb), "result", "error", NULL), c->snapshot_errors);
	}
	expo_family(&e, "flowlens_collector_join_total", "counter",
		    "Server-side aggregates whose client dialed a ClusterIP translated on another "
		    "node, by how that was settled: joined (named by the client side's report), "
		    "timeout (no report within --join-wait: named as dialed directly), full (could "
		    "not wait).");
	expo_u64(&e, "flowlens_collector_join_total",
		 expo_labels(lb, sizeof(lb), "result", "joined", NULL), st.joined_total);
	expo_u64(&e, "flowlens_collector_join_total",
		 expo_labels(lb, sizeof(lb), "result", "timeout", NULL), st.join_timeouts_total);
	expo_u64(&e, "flowlens_collector_join_total",
		 expo_labels(lb, sizeof(lb), "result", "full", NULL), st.pending_full_total);
	expo_family(&e, "flowlens_collector_signals_discarded_total", "counter",
		    "Signal data not exported, by reason: unknown (an error count or histogram "
		    "name this collector does not know), series_limit (past --max-series), "
		    "bounds_mismatch (a histogram whose bounds differ from its series').");
	expo_u64(&e, "flowlens_collector_signals_discarded_total",
		 expo_labels(lb, sizeof(lb), "reason", "unknown", NULL), st.signals_ignored_total);
	expo_u64(&e, "flowlens_collector_signals_discarded_total",
		 expo_labels(lb, sizeof(lb), "reason", "series_limit", NULL),
		 st.signals_dropped_total);
	expo_u64(&e, "flowlens_collector_signals_discarded_total",
		 expo_labels(lb, sizeof(lb), "reason", "bounds_mismatch", NULL),
		 st.histogram_mismatch_total);
	expo_family(&e, "flowlens_collector_join_pending", "gauge",
		    "Server-side aggregates waiting for their client side's report.");
	expo_u64(&e, "flowlens_collector_join_pending", NULL, st.pending);
	expo_family(&e, "flowlens_collector_join_entries", "gauge",
		    "Connections whose dialed address is remembered (--max-joins).");
	expo_u64(&e, "flowlens_collector_join_entries", NULL, st.joins);
	expo_family(&e, "flowlens_collector_join_evicted_total", "counter",
		    "Remembered dialed addresses dropped, oldest first, at --max-joins.");
	expo_u64(&e, "flowlens_collector_join_evicted_total", NULL, st.joins_evicted_total);
	if (c->http)
		httpd_render_metrics(c->http, &e, "flowlens_collector");
	render_meta_metrics(c, &e);
	store_render(c->store, &e, clock_mono_ms(), render_yield, c);
	pthread_mutex_unlock(&c->lock);
	return expo_close(&e, out, len);
}

/* Called with c->lock held. */
static void take_snapshot(struct collector *c)
{
	int err = persist_snapshot(c->persist, c->store, clock_mono_ms());

	if (err) {
		c->snapshot_errors++;
		pr_warn("snapshot to %s: %s", c->o.state_dir, strerror(-err));
	} else {
		c->snapshots++;
	}
}

static int metadata_ready(struct collector *c)
{
	int r;

	if (!c->kube)
		return 1;
	meta_lock(c->meta);
	r = meta_synced(c->meta);
	meta_unlock(c->meta);
	return r;
}

/* Where names come from: the file, a kubeconfig, the in-cluster service account, or none. */
static int start_metadata(struct collector *c)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	struct kube_config kc = { 0 };
	int err = meta_new(&c->meta, c->o.ip_history_ms);

	if (err)
		return err;
	if (c->o.cluster_cidrs && meta_set_cluster_cidrs(c->meta, c->o.cluster_cidrs)) {
		pr_err("--cluster-cidrs: '%s' is not a list of CIDRs", c->o.cluster_cidrs);
		return -EINVAL;
	}
	if (c->o.metadata_file) {
		err = metafile_open(&c->mfile, c->o.metadata_file, c->meta);
		if (!err)
			pr_info("names from %s", c->o.metadata_file);
		return err;
	}
	if (c->o.kubeconfig) {
		kc.kubeconfig = c->o.kubeconfig;
	} else if (c->o.in_cluster == 1 || (c->o.in_cluster == -1 && host && *host)) {
		kc.in_cluster = 1;
	} else {
		pr_warn("no --metadata-file, --kubeconfig or in-cluster API: addresses are named "
			"only unknown or world");
		return 0;
	}
	err = kube_start(&c->kube, &kc, c->meta);
	if (err)
		return err;
	/* Name what is replayed and first received with a synced view, if it comes soon. */
	for (int i = 0; i < 100 && !metadata_ready(c); i++)
		usleep(100000);
	if (!metadata_ready(c))
		pr_warn("kube: not all kinds listed after 10 s; going on (ready when they are)");
	return 0;
}

static void http_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct collector *c = ctx;

	if (strcmp(req->path, WIRE_PATH) == 0) {
		if (strcmp(req->method, "POST") != 0)
			httpd_text(resp, 405, "POST only\n");
		else
			handle_batch(c, req, resp);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_text(resp, 405, "method not allowed\n");
		return;
	}
	if (strcmp(req->path, "/metrics") == 0) {
		if (render_metrics(c, &resp->body, &resp->len) == 0) {
			resp->status = 200;
			resp->content_type = EXPO_CONTENT_TYPE;
		}
	} else if (strcmp(req->path, "/healthz") == 0) {
		httpd_text(resp, 200, "ok\n");
	} else if (strcmp(req->path, "/readyz") == 0) {
		/* Ready once names are known: series named "unknown" would linger a TTL. */
		int ready = c->ready && !c->draining && metadata_ready(c);

		httpd_text(resp, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
	}
}

int main(int argc, char **argv)
{
	struct store_config scfg;
	struct httpd_options hopts = { 0 };
	struct collector c;
	struct httpd *http = NULL;
	char *cert = NULL, *key = NULL;
	sigset_t mask;
	int err, sig;
	struct timespec tick = { .tv_sec = 1 };
	uint64_t last_snapshot;

	memset(&c, 0, sizeof(c));
	err = collector_options_parse(&c.o, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	log_level = c.o.log_level;
	pthread_mutex_init(&c.lock, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	err = load_token(&c);
	if (err) {
		pr_err("token file %s: %s (a token needs at least 16 and at most 4096 characters)",
		       c.o.token_file, token_error(err));
		goto out;
	}
	pthread_mutex_init(&c.decode_lock, NULL);
	pr_info("open files limit %lu", httpd_raise_nofile());
	err = start_metadata(&c);
	if (err)
		goto out;
	memset(&scfg, 0, sizeof(scfg));
	scfg.meta = c.meta;
	scfg.labels.pod_labels = c.o.pod_labels;
	scfg.labels.ip_labels = c.o.ip_labels;
	/* Without names the collector cannot tell a client on another node: nothing waits. */
	scfg.join_wait_ms = c.mfile || c.kube ? c.o.join_wait_ms : 0;
	scfg.max_series = c.o.max_series;
	scfg.ttl_ms = c.o.ttl_ms;
	scfg.max_agents = c.o.max_agents;
	scfg.zero_hold_ms = c.o.zero_hold_ms;
	scfg.max_joins = c.o.max_joins;
	scfg.agent_protect_ms = c.o.agent_protect_ms;
	err = store_new(&c.store, &scfg);
	if (err)
		goto out;
	if (c.o.state_dir) {
		err = persist_open(&c.persist, c.o.state_dir, 1);
		if (!err)
			err = persist_load(c.persist, &c.store, &scfg, c.o.max_decompressed,
					   clock_mono_ms(), &c.restored);
		if (err) {
			pr_err("state in %s: %s", c.o.state_dir, strerror(-err));
			goto out;
		}
		{
			struct store_stats st;

			store_stats(c.store, clock_mono_ms(), &st);
			pr_info("state restored from %s: %llu series, %llu logged batches replayed "
				"(%llu already in the snapshot)",
				c.o.state_dir, (unsigned long long)st.series,
				(unsigned long long)c.restored.replayed,
				(unsigned long long)c.restored.duplicates);
		}
		/*
		 * What waited past its time while the collector was down is applied before the
		 * first scrape: Prometheus saw the old process apply it.
		 */
		store_tick(c.store, clock_mono_ms());
		/* Fold the replayed log into a snapshot right away. */
		if (persist_snapshot(c.persist, c.store, clock_mono_ms()))
			pr_warn("writing a snapshot to %s failed", c.o.state_dir);
	}
	if (c.o.tls_cert_file) {
		cert = read_file(c.o.tls_cert_file, 1 << 20, NULL);
		key = read_file(c.o.tls_key_file, 1 << 20, NULL);
		if (!cert || !key) {
			err = -errno;
			pr_err("reading TLS certificate/key: %s", strerror(errno));
			goto out;
		}
	}
	hopts.host = c.o.listen_host;
	hopts.port = c.o.listen_port;
	hopts.max_body = c.o.max_body;
	hopts.tls_cert_pem = cert;
	hopts.tls_key_pem = key;
	hopts.precheck = http_precheck;
	hopts.max_connections = (unsigned int)c.o.max_connections;
	hopts.max_per_ip = (unsigned int)c.o.max_connections_per_ip;
	hopts.max_buffered = c.o.max_buffered;
	hopts.timeout_s = (unsigned int)((c.o.request_timeout_ms + 999) / 1000);
	/* /metrics and health answer while a batch is decoded or applied. */
	hopts.threads = 4;
	pthread_mutex_lock(&c.lock);
	err = httpd_start(&http, &hopts, http_handler, &c);
	c.http = http;
	pthread_mutex_unlock(&c.lock);
	if (err) {
		pr_err("HTTP%s server on %s:%d: %s", cert ? "S" : "", c.o.listen_host,
		       c.o.listen_port, strerror(-err));
		goto out;
	}
	c.ready = 1;
	pr_info("flowlens-collector %s listening on %s:%d (%s), max series %llu, series ttl %llu ms",
		FLOWLENS_VERSION, c.o.listen_host, c.o.listen_port, cert ? "https" : "http",
		(unsigned long long)c.o.max_series, (unsigned long long)c.o.ttl_ms);

	/* Housekeeping once a second until SIGINT/SIGTERM: TTL expiry, token rotation. */
	last_snapshot = clock_mono_ms();
	for (;;) {
		sig = sigtimedwait(&mask, NULL, &tick);
		if (sig > 0) {
			/*
			 * Drain: refuse batches (agents keep and retry them) and keep serving
			 * /metrics for the grace period so Prometheus scrapes the final values;
			 * nothing applied is then lost and nothing is applied twice.
			 */
			pr_info("signal %d: refusing batches, serving /metrics for %llu ms more",
				sig, (unsigned long long)c.o.shutdown_grace_ms);
			pthread_mutex_lock(&c.lock);
			c.draining = 1;
			/* The last scrapes see real values (held series that were shown as 0). */
			store_set_draining(c.store);
			/* Nothing may wait past the end; with --state-dir it waits in the snapshot. */
			if (!c.persist)
				store_tick(c.store, UINT64_MAX);
			pthread_mutex_unlock(&c.lock);
			if (c.o.shutdown_grace_ms) {
				struct timespec g = {
					.tv_sec = (time_t)(c.o.shutdown_grace_ms / 1000),
					.tv_nsec = (long)(c.o.shutdown_grace_ms % 1000) * 1000000L
				};

				if (sigtimedwait(&mask, NULL, &g) > 0)
					pr_info("second signal: exiting now");
			}
			break;
		}
		if (c.mfile && metafile_poll(c.mfile) > 0)
			pr_info("metadata file %s reloaded", c.o.metadata_file);
		meta_lock(c.meta);
		meta_expire(c.meta, (uint64_t)time(NULL) * 1000);
		meta_unlock(c.meta);
		pthread_mutex_lock(&c.lock);
		store_tick(c.store, clock_mono_ms());
		store_expire(c.store, clock_mono_ms());
		/* A log that failed is repaired by the next snapshot: try it every second. */
		if (c.persist && (clock_mono_ms() - last_snapshot >= c.o.snapshot_ms ||
				  persist_broken(c.persist))) {
			take_snapshot(&c);
			last_snapshot = clock_mono_ms();
		}
		err = load_token(&c);
		if (err && err != c.token_err)
			pr_warn("token file %s: %s; keeping the previous token", c.o.token_file,
				token_error(err));
		c.token_err = err;
		pthread_mutex_unlock(&c.lock);
	}
	err = 0;
out:
	pthread_mutex_lock(&c.lock);
	c.http = NULL;
	pthread_mutex_unlock(&c.lock);
	httpd_stop(http);
	if (c.persist && c.ready) {
		pthread_mutex_lock(&c.lock);
		take_snapshot(&c);
		pthread_mutex_unlock(&c.lock);
	}
	persist_close(c.persist);
	store_free(c.store);
	kube_stop(c.kube);
	metafile_close(c.mfile);
	meta_free(c.meta);
	free(c.token);
	free(cert);
	free(key);
	collector_options_free(&c.o);
	pthread_mutex_destroy(&c.lock);
	return err ? 1 : 0;
}
