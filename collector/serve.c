// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What the collector serves: routing, its own /metrics families and the store's, /healthz, /readyz. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "collector.h"
#include "expo.h"
#include "log.h"
#include "wire.h"

int collector_metadata_ready(struct collector *c)
{
	int r;

	if (!c->kube)
		return 1;
	meta_lock(c->meta);
	r = meta_synced(c->meta);
	meta_unlock(c->meta);
	return r;
}

/*
 * The collector's own metric families, one row each: identifier, name, type, help. (The flow
 * families are the store's: render.c.)
 */
#define COLLECTOR_METRICS(X)                                                                      \
	X(M_METADATA_OBJECTS, "flowlens_collector_metadata_objects", "gauge",                     \
	  "Kubernetes objects known, by kind.")                                                   \
	X(M_METADATA_IP_BINDINGS, "flowlens_collector_metadata_ip_bindings", "gauge",             \
	  "Pod IP bindings kept, those of deleted pods (--ip-history) included.")                 \
	X(M_METADATA_BAD_OBJECTS_TOTAL, "flowlens_collector_metadata_bad_objects_total",          \
	  "counter", "Objects without the fields the collector needs (ignored).")                 \
	X(M_METADATA_FILE_LOADS_TOTAL, "flowlens_collector_metadata_file_loads_total", "counter", \
	  "Loads of --metadata-file, by result.")                                                 \
	X(M_KUBE_SYNCED, "flowlens_collector_kube_synced", "gauge",                               \
	  "1 once the kind has been listed.")                                                     \
	X(M_BUILD_INFO, "flowlens_collector_build_info", "gauge",                                 \
	  "Build of the running collector (always 1).")                                           \
	X(M_BATCHES_TOTAL, "flowlens_collector_batches_total", "counter",                         \
	  "Batches received from agents, by result.")                                             \
	X(M_SERIES, "flowlens_collector_series", "gauge",                                         \
	  "Flow label sets exported (each in both flow families), overflow "                      \
	  "included.")                                                                            \
	X(M_SERIES_LIMIT, "flowlens_collector_series_limit", "gauge",                             \
	  "Label sets kept before new ones fold into the overflow series "                        \
	  "(--max-series).")                                                                      \
	X(M_SERIES_OVERFLOW_TOTAL, "flowlens_collector_series_overflow_total", "counter",         \
	  "Aggregate directions folded into the overflow series because of the "                  \
	  "limit.")                                                                               \
	X(M_SERIES_EXPIRED_TOTAL, "flowlens_collector_series_expired_total", "counter",           \
	  "Series that stopped being exported after --series-ttl without "                        \
	  "updates.")                                                                             \
	X(M_AGGREGATES_TOTAL, "flowlens_collector_aggregates_total", "counter",                   \
	  "Flow aggregates applied.")                                                             \
	X(M_AGENTS, "flowlens_collector_agents", "gauge",                                         \
	  "Agents (nodes) that sent a batch within --series-ttl.")                                \
	X(M_AGENTS_TRACKED, "flowlens_collector_agents_tracked", "gauge",                         \
	  "(node, boot id) de-duplication entries held, against --max-agents.")                   \
	X(M_AGENTS_LIMIT, "flowlens_collector_agents_limit", "gauge", "--max-agents.")            \
	X(M_AGENTS_EVICTED_TOTAL, "flowlens_collector_agents_evicted_total", "counter",           \
	  "De-duplication entries of the agent seen longest ago, dropped to "                     \
	  "make room for a new agent at --max-agents.")                                           \
	X(M_AGENT_DROPPED_BATCHES, "flowlens_collector_agent_dropped_batches", "gauge",           \
	  "Batches agents report having dropped (their buffer was full), "                        \
	  "summed.")                                                                              \
	X(M_WAL_ERRORS_TOTAL, "flowlens_collector_wal_errors_total", "counter",                   \
	  "Batches refused (503, retried by the agent) because the state log "                    \
	  "could not hold them durably.")                                                         \
	X(M_STATE_RESTORE_CORRUPT, "flowlens_collector_state_restore_corrupt", "gauge",           \
	  "What was damaged in the state found at start, by part: snapshot (1: "                  \
	  "unreadable, moved aside, counters restarted), log_records (damaged "                   \
	  "stretches skipped; the intact records around them were replayed).")                    \
	X(M_STATE_REPLAYED_BATCHES, "flowlens_collector_state_replayed_batches", "gauge",         \
	  "Logged batches applied at start.")                                                     \
	X(M_SNAPSHOTS_TOTAL, "flowlens_collector_snapshots_total", "counter",                     \
	  "State snapshots written, by result.")                                                  \
	X(M_JOIN_TOTAL, "flowlens_collector_join_total", "counter",                               \
	  "Server-side aggregates whose client dialed a ClusterIP translated on "                 \
	  "another node, by how that was settled: joined (named by the client "                   \
	  "side's report), timeout (no report within --join-wait: named as "                      \
	  "dialed directly), full (could not wait).")                                             \
	X(M_SIGNALS_DISCARDED_TOTAL, "flowlens_collector_signals_discarded_total", "counter",     \
	  "Signal data not exported, by reason: unknown (an error count or "                      \
	  "histogram name this collector does not know), series_limit (past "                     \
	  "--max-series), bounds_mismatch (a histogram whose bounds differ from "                 \
	  "its series').")                                                                        \
	X(M_JOIN_PENDING, "flowlens_collector_join_pending", "gauge",                             \
	  "Server-side aggregates waiting for their client side's report.")                       \
	X(M_JOIN_ENTRIES, "flowlens_collector_join_entries", "gauge",                             \
	  "Connections whose dialed address is remembered (--max-joins).")                        \
	X(M_JOIN_EVICTED_TOTAL, "flowlens_collector_join_evicted_total", "counter",               \
	  "Remembered dialed addresses dropped, oldest first, at --max-joins.")                   \
	X(M_GAPS_TOTAL, "flowlens_collector_missed_batches_total", "counter",                     \
	  "Batches of known agents this replica never received (an agent's sequence number "      \
	  "jumped: dropped at the agent, or sent while this replica was away).")                  \
	X(M_HA_EXPORTING, "flowlens_collector_ha_exporting", "gauge",                             \
	  "1 while this collector exports the flow series (always without --ha-lease; with it, "  \
	  "while it holds the shard's Lease and has caught up with its peer).")                   \
	X(M_HA_ACQUIRED_TOTAL, "flowlens_collector_ha_lease_acquired_total", "counter",           \
	  "Times this replica took the shard's Lease.")                                           \
	X(M_HA_LOST_TOTAL, "flowlens_collector_ha_lease_lost_total", "counter",                   \
	  "Times this replica stopped holding the Lease without giving it up (not renewed in "    \
	  "time).")                                                                               \
	X(M_HA_ERRORS_TOTAL, "flowlens_collector_ha_lease_errors_total", "counter",               \
	  "Failed Lease requests to the API server.")                                             \
	X(M_PEER_COPIES_TOTAL, "flowlens_collector_peer_state_copies_total", "counter",           \
	  "Copies of a peer's state taken (at start without state, or after missed batches), "    \
	  "by result (failed: no complete peer answered).")                                       \
	X(M_PEER_STATES_SERVED_TOTAL, "flowlens_collector_peer_states_served_total", "counter",   \
	  "This replica's state sent to a peer (GET /v1/state).")

enum collector_metric { COLLECTOR_METRICS(EXPO_ENUM) };

static const struct expo_def collector_metrics[] = { COLLECTOR_METRICS(EXPO_DEF) };

static void render_meta_metrics(struct collector *c, struct expo *e)
{
	char lb[EXPO_LABELS_MAX];
	struct meta_stats ms;

	meta_lock(c->meta);
	meta_stats(c->meta, &ms);
	meta_unlock(c->meta);
	expo_begin(e, &collector_metrics[M_METADATA_OBJECTS]);
	for (int k = 0; k < META_KINDS; k++)
		expo_put(e,
			 expo_labels(lb, sizeof(lb), "kind", meta_kind_name((enum meta_kind)k),
				     NULL),
			 ms.objects[k]);
	expo_begin(e, &collector_metrics[M_METADATA_IP_BINDINGS]);
	expo_put(e, NULL, ms.ip_bindings);
	expo_begin(e, &collector_metrics[M_METADATA_BAD_OBJECTS_TOTAL]);
	expo_put(e, NULL, ms.bad_objects_total);
	if (c->mfile) {
		expo_begin(e, &collector_metrics[M_METADATA_FILE_LOADS_TOTAL]);
		expo_put(e, expo_labels(lb, sizeof(lb), "result", "ok", NULL),
			 metafile_loads(c->mfile));
		expo_put(e, expo_labels(lb, sizeof(lb), "result", "error", NULL),
			 metafile_errors(c->mfile));
	}
	if (c->kube) {
		/* Counters of the API watchers, by kind: a family per field. */
		static const struct {
			struct expo_def def;
			size_t off;
		} f[] = {
			{ { "flowlens_collector_kube_lists_total", "counter",
			    "Full lists, by kind." },
			  offsetof(struct kube_kind_stats, lists_total) },
			{ { "flowlens_collector_kube_watches_total", "counter",
			    "Watch requests, by kind." },
			  offsetof(struct kube_kind_stats, watches_total) },
			{ { "flowlens_collector_kube_events_total", "counter",
			    "Watch events applied, by kind." },
			  offsetof(struct kube_kind_stats, events_total) },
			{ { "flowlens_collector_kube_bookmarks_total", "counter",
			    "Watch bookmarks, by kind." },
			  offsetof(struct kube_kind_stats, bookmarks_total) },
			{ { "flowlens_collector_kube_gone_total", "counter",
			    "410 Gone answers (resourceVersion too old), each followed by a list." },
			  offsetof(struct kube_kind_stats, gone_total) },
			{ { "flowlens_collector_kube_errors_total", "counter",
			    "Failed API requests, broken watch streams and bad JSON, by kind." },
			  offsetof(struct kube_kind_stats, errors_total) },
		};
		struct kube_kind_stats ks[META_KINDS];

		for (int k = 0; k < META_KINDS; k++)
			kube_stats(c->kube, (enum meta_kind)k, &ks[k]);
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			expo_begin(e, &f[i].def);
			for (int k = 0; k < META_KINDS; k++)
				expo_put(e,
					 expo_labels(lb, sizeof(lb), "kind",
						     meta_kind_name((enum meta_kind)k), NULL),
					 *(const uint64_t *)((const char *)&ks[k] + f[i].off));
		}
		expo_begin(e, &collector_metrics[M_KUBE_SYNCED]);
		for (int k = 0; k < META_KINDS; k++)
			expo_put(e,
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

static int serve_metrics(struct collector *c, char **out, size_t *len)
{
	char lb[EXPO_LABELS_MAX];
	struct store_stats st;
	struct expo e;
	int exporting;
	int err = expo_open(&e);

	if (err)
		return err;
	pthread_mutex_lock(&c->lock);
	exporting = replica_exporting(c);
	store_stats(c->store, clock_mono_ms(), &st);
	expo_begin(&e, &collector_metrics[M_BUILD_INFO]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "version", FLOWLENS_VERSION, NULL), 1);
	expo_begin(&e, &collector_metrics[M_BATCHES_TOTAL]);
	for (int r = 0; r < RES_MAX; r++)
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", result_names[r], NULL),
			 c->results[r]);
	expo_begin(&e, &collector_metrics[M_SERIES]);
	expo_put(&e, NULL, st.series);
	expo_begin(&e, &collector_metrics[M_SERIES_LIMIT]);
	expo_put(&e, NULL, c->o.max_series);
	expo_begin(&e, &collector_metrics[M_SERIES_OVERFLOW_TOTAL]);
	expo_put(&e, NULL, st.series_overflow_total);
	expo_begin(&e, &collector_metrics[M_SERIES_EXPIRED_TOTAL]);
	expo_put(&e, NULL, st.series_expired_total);
	expo_begin(&e, &collector_metrics[M_AGGREGATES_TOTAL]);
	expo_put(&e, NULL, st.aggregates_total);
	expo_begin(&e, &collector_metrics[M_AGENTS]);
	expo_put(&e, NULL, st.agents);
	expo_begin(&e, &collector_metrics[M_AGENTS_TRACKED]);
	expo_put(&e, NULL, st.agents_tracked);
	expo_begin(&e, &collector_metrics[M_AGENTS_LIMIT]);
	expo_put(&e, NULL, c->o.max_agents);
	expo_begin(&e, &collector_metrics[M_AGENTS_EVICTED_TOTAL]);
	expo_put(&e, NULL, st.agents_evicted_total);
	expo_begin(&e, &collector_metrics[M_AGENT_DROPPED_BATCHES]);
	expo_put(&e, NULL, st.agents_dropped_batches);
	if (c->persist) {
		expo_begin(&e, &collector_metrics[M_WAL_ERRORS_TOTAL]);
		expo_put(&e, NULL, c->wal_errors);
		expo_begin(&e, &collector_metrics[M_STATE_RESTORE_CORRUPT]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "part", "snapshot", NULL),
			 (uint64_t)c->restored.snapshot_corrupt);
		expo_put(&e, expo_labels(lb, sizeof(lb), "part", "log_records", NULL),
			 c->restored.corrupt_records);
		expo_begin(&e, &collector_metrics[M_STATE_REPLAYED_BATCHES]);
		expo_put(&e, NULL, c->restored.replayed);
		expo_begin(&e, &collector_metrics[M_SNAPSHOTS_TOTAL]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "ok", NULL), c->snapshots);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "error", NULL),
			 c->snapshot_errors);
	}
	expo_begin(&e, &collector_metrics[M_JOIN_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "result", "joined", NULL), st.joined_total);
	expo_put(&e, expo_labels(lb, sizeof(lb), "result", "timeout", NULL),
		 st.join_timeouts_total);
	expo_put(&e, expo_labels(lb, sizeof(lb), "result", "full", NULL), st.pending_full_total);
	expo_begin(&e, &collector_metrics[M_SIGNALS_DISCARDED_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "reason", "unknown", NULL),
		 st.signals_ignored_total);
	expo_put(&e, expo_labels(lb, sizeof(lb), "reason", "series_limit", NULL),
		 st.signals_dropped_total);
	expo_put(&e, expo_labels(lb, sizeof(lb), "reason", "bounds_mismatch", NULL),
		 st.histogram_mismatch_total);
	expo_begin(&e, &collector_metrics[M_JOIN_PENDING]);
	expo_put(&e, NULL, st.pending);
	expo_begin(&e, &collector_metrics[M_JOIN_ENTRIES]);
	expo_put(&e, NULL, st.joins);
	expo_begin(&e, &collector_metrics[M_JOIN_EVICTED_TOTAL]);
	expo_put(&e, NULL, st.joins_evicted_total);
	expo_begin(&e, &collector_metrics[M_GAPS_TOTAL]);
	expo_put(&e, NULL, c->gaps_carried + st.gaps_total);
	/* Always: dashboards count the exporting replica's series (1 without replicas). */
	expo_begin(&e, &collector_metrics[M_HA_EXPORTING]);
	expo_put(&e, NULL, (uint64_t)exporting);
	if (c->ha) {
		struct ha_stats hs;

		ha_stats(c->ha, &hs);
		if (c->o.ha_lease) {
			expo_single(&e, &collector_metrics[M_HA_ACQUIRED_TOTAL], hs.acquired_total);
			expo_single(&e, &collector_metrics[M_HA_LOST_TOTAL], hs.lost_total);
			expo_single(&e, &collector_metrics[M_HA_ERRORS_TOTAL], hs.errors_total);
		}
		expo_begin(&e, &collector_metrics[M_PEER_COPIES_TOTAL]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "ok", NULL), c->bootstraps[0]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "failed", NULL),
			 c->bootstraps[1]);
		expo_single(&e, &collector_metrics[M_PEER_STATES_SERVED_TOTAL], c->states_served);
	}
	if (c->http)
		httpd_render_metrics(c->http, &e, "flowlens_collector");
	render_meta_metrics(c, &e);
	/* Only one replica of a shard exports flow series: the same series, never two values. */
	if (exporting)
		store_render(c->store, &e, clock_mono_ms(), render_yield, c);
	pthread_mutex_unlock(&c->lock);
	return expo_close(&e, out, len);
}

void collector_serve_http(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct collector *c = ctx;

	if (strcmp(req->path, WIRE_PATH) == 0) {
		if (strcmp(req->method, "POST") != 0)
			httpd_text(resp, 405, "POST only\n");
		else
			ingest_batch(c, req, resp);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_text(resp, 405, "method not allowed\n");
		return;
	}
	if (strcmp(req->path, "/v1/state") == 0) {
		replica_serve_state(c, req, resp);
	} else if (strcmp(req->path, "/v1/progress") == 0) {
		replica_serve_progress(c, req, resp);
	} else if (strcmp(req->path, "/metrics") == 0) {
		if (serve_metrics(c, &resp->body, &resp->len) == 0) {
			resp->status = 200;
			resp->content_type = EXPO_CONTENT_TYPE;
		}
	} else if (strcmp(req->path, "/healthz") == 0) {
		httpd_text(resp, 200, "ok\n");
	} else if (strcmp(req->path, "/readyz") == 0) {
		/* Ready once names are known: series named "unknown" would linger a TTL. */
		int ready = c->ready && !c->draining && !c->bootstrapping &&
			    collector_metadata_ready(c);

		httpd_text(resp, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
	}
}
