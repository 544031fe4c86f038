/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The collector process's state, shared by its parts (not a library interface):
 *   main.c    startup, metadata sources, the tick (expiry, snapshots, token reload), shutdown
 *   ingest.c  POST /v1/batches: token, prechecks before the body, decode, log, apply, answer
 *   serve.c   routing; /metrics (the collector's own families and the store's), health
 */
#ifndef FLOWLENS_COLLECTOR_H
#define FLOWLENS_COLLECTOR_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "ha.h"
#include "httpd.h"
#include "kube.h"
#include "meta.h"
#include "options.h"
#include "persist.h"
#include "store.h"
#include "vocab.h"

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
	/* A shard's replicas (replica.c); c->lock guards these unless noted. */
	struct store_config scfg; /* to make a store for a peer's copy */
	char const_labels[256];
	struct ha *ha; /* NULL without --ha-lease and --peers */
	int bootstrapping; /* ingest refused: the store is being replaced */
	int startup_bootstrap; /* keep bootstrapping set between attempts at start */
	uint64_t gaps_carried; /* missed batches counted by stores since replaced */
	uint64_t gaps_accepted; /* missed here and at the peer: nothing to copy */
	uint64_t bootstraps[2]; /* peer copies: ok, failed */
	uint64_t states_served;
	uint64_t last_rebootstrap_ms; /* main thread only */
	uint64_t takeover_since; /* the Lease hold being caught up (ha_holding's since) */
	uint64_t takeover_deadline_ms;
	uint64_t takeover_unix_ms;
	char *takeover_progress; /* the peer's progress read since the takeover */
	int caught_up;
};

/* ingest.c */
/* A whole small file (at most max bytes), malloc'd; NULL with errno set. */
char *ingest_read_file(const char *path, size_t max, size_t *len);
extern const char *const result_names[RES_MAX];
/* Reads the token file when it changed; 0, or -errno (the previous token is kept). */
int ingest_load_token(struct collector *c);
const char *ingest_token_error(int err);
void ingest_precheck(void *ctx, const struct httpd_request *req, struct httpd_response *resp);
int ingest_batch(struct collector *c, const struct httpd_request *req, struct httpd_response *resp);

int collector_token_ok(struct collector *c, const char *auth);

/* replica.c */
void replica_serve_state(struct collector *c, const struct httpd_request *req,
			 struct httpd_response *resp);
void replica_serve_progress(struct collector *c, const struct httpd_request *req,
			    struct httpd_response *resp);
int replica_bootstrap(struct collector *c, int accept_gapped, int *peer_gapped);
/* Once a second from the main loop, without c->lock. */
void replica_tick(struct collector *c);
/* Whether the flow series are exported now. Called with c->lock held. */
int replica_exporting(struct collector *c);

/* serve.c */
/* Whether every metadata kind has been listed (always, without the Kubernetes API). */
int collector_metadata_ready(struct collector *c);
void collector_serve_http(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
