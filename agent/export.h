/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shipping flow aggregates to the collector: every interval's aggregates become one Batch
 * (node, boot id, sequence number), queued in a bounded buffer and POSTed by a sender thread
 * with libcurl. Failed sends are retried with exponential backoff and full jitter, oldest
 * first, so the collector can apply each (node, boot id, seq) exactly once. When the buffer
 * is full the oldest batch is dropped and counted.
 *
 * Several URLs (comma-separated: the replicas of a highly available collector) get the same
 * batches, each with its own buffer (of buffer_bytes), sender thread and backoff: a replica
 * that is away costs the others nothing, and its copies wait or are dropped on their own.
 * Several shards (';'-separated lists of replicas) split each interval's aggregates by the
 * server address (export_shard_of); every shard gets a batch every interval.
 */
#ifndef FLOWLENS_EXPORT_H
#define FLOWLENS_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include "agg.h"

struct export_config {
	/* collector base URLs, http:// or https://: replicas separated by ',', shards by ';' */
	const char *url;
	const char *token_file; /* bearer token, re-read for every attempt (rotation) */
	const char *ca_file; /* CA bundle for https, or NULL for the system's */
	size_t buffer_bytes; /* bound on queued compressed batches */
	const char *node;
	uint64_t timeout_ms; /* per request */
	uint64_t backoff_min_ms;
	uint64_t backoff_max_ms;
};

struct export_stats {
	uint64_t sent;
	uint64_t rejected; /* refused by the collector as bad input: dropped */
	uint64_t dropped; /* buffer full: oldest dropped */
	uint64_t retries;
	uint64_t queued_batches;
	uint64_t queued_bytes;
	uint64_t last_success_unix_ms;
	uint64_t seq;
};

struct exporter;

#define EXPORT_MAX_SHARDS 64

/* The shard (0..shards-1) of a server address (4 or 16 bytes): rendezvous hashing. */
unsigned int export_shard_of(const uint8_t *addr, size_t len, unsigned int shards);

int export_start(struct exporter **out, const struct export_config *cfg);
/* Queues the interval's batch; never waits for the network. Returns 0 or -errno. */
int export_submit(struct exporter *x, const struct flow_agg *aggs, uint64_t start_unix_ms,
		  uint64_t end_unix_ms, const struct sig_config *sig);
/* How drop reasons are named in batches ("drop:<name>"); without it they are not sent. */
void export_set_drop_names(const char *(*fn)(void *ctx, unsigned int reason), void *ctx);
/* Sends what is queued for up to flush_ms, then stops the sender and frees everything. */
void export_stop(struct exporter *x, uint64_t flush_ms);
/* Summed over the destinations; last_success_unix_ms is the latest of any. */
void export_get_stats(struct exporter *x, struct export_stats *out);
size_t export_destinations(const struct exporter *x);
/* Destination i's stats; returns its URL (with the batch path). */
const char *export_destination(const struct exporter *x, size_t i, struct export_stats *out);

#endif
