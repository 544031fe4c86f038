/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cumulative flow series built from agents' delta batches. Each (node, boot id, seq) is
 * applied once; series expire after a time to live; the number of series is bounded and what
 * does not fit is folded into an overflow series. Not thread-safe: the caller locks.
 */
#ifndef FLOWLENS_STORE_H
#define FLOWLENS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "expo.h"
#include "flowlens.pb-c.h"
#include "labels.h"
#include "meta.h"

struct store_config {
	size_t max_series; /* label sets; each is exported in both flow families */
	uint64_t ttl_ms; /* a series not updated for this long stops being exported */
	size_t max_agents; /* dedup state is kept per node, at most this many nodes */
	/*
	 * A new series is exported as 0 for this long before its real value: every scraper
	 * then sees it start from zero, so neither the first delta of a new series nor a
	 * collector restart (all series new again) escapes increase() and rate().
	 */
	uint64_t zero_hold_ms;
	struct labels_config labels;
	/* Names for addresses; NULL: the store makes an empty one (everything unknown/world). */
	struct meta *meta;
	/*
	 * How long a server-side aggregate whose client is a pod on another node waits for
	 * the client side's report of what it dialed (a ClusterIP translated on the client's
	 * node is invisible at the server's). 0: never wait.
	 */
	uint64_t join_wait_ms;
	size_t max_pending; /* aggregates waiting so; beyond it they are applied at once */
	size_t max_joins; /* connections whose dialed address is remembered; 0: the default */
	/* At max_agents, an agent that sent within this long keeps its place; 0: the default */
	uint64_t agent_protect_ms;
	/* Labels on every flow series, e.g. cluster="prod",shard="0" (values need no escaping). */
	const char *const_labels;
	/* Replicas of a shard: a new series' hold counts from its batch's interval end. */
	int hold_from_batch;
};

#define STORE_DEFAULT_MAX_JOINS 200000

enum store_result {
	STORE_APPLIED = 0,
	STORE_DUPLICATE, /* (node, boot id, seq) already applied: acknowledged, not counted */
	STORE_TOO_MANY_AGENTS,
};

/* Dedup state of an agent process idle this long is forgotten. */
#define STORE_AGENT_FORGET_MS (24ULL * 3600 * 1000)
#define STORE_DEFAULT_AGENT_PROTECT_MS (2ULL * 60 * 1000)

struct store_stats {
	uint64_t series;
	uint64_t series_overflow_total; /* aggregate directions folded into the overflow series */
	uint64_t series_expired_total;
	uint64_t aggregates_total;
	uint64_t agents; /* nodes that sent a batch within the TTL */
	uint64_t agents_tracked; /* (node, boot id) dedup entries held, against --max-agents */
	uint64_t agents_evicted_total; /* entries dropped to make room for a new agent */
	uint64_t joins; /* remembered dialed addresses */
	uint64_t joins_evicted_total; /* dropped to stay within max_joins */
	uint64_t agents_dropped_batches; /* sum of what agents report having dropped */
	uint64_t pending; /* server-side aggregates waiting for their client side */
	uint64_t joined_total; /* server-side aggregates named with what the client dialed */
	uint64_t join_timeouts_total; /* ...that waited in vain: applied as dialed directly */
	uint64_t pending_full_total; /* ...that could not wait: pending was full */
	uint64_t signals_ignored_total; /* error counts and histograms of unknown names */
	uint64_t signals_dropped_total; /* signal samples past --max-series */
	uint64_t histogram_mismatch_total; /* histograms whose bounds differ from the series' */
	uint64_t gaps_total; /* batches of a known agent skipped (seq jumped): never received */
};

struct store;

int store_new(struct store **out, const struct store_config *cfg);
void store_free(struct store *s);

/* What store_apply would answer, without changing anything (to log before applying). */
enum store_result store_check(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms);
enum store_result store_apply(struct store *s, const Flowlens__V1__Batch *b, uint64_t now_ms);
/* Drops series and agent activity older than the TTL. */
void store_expire(struct store *s, uint64_t now_ms);
/* Applies waiting server-side aggregates whose wait is over; call about once a second. */
void store_tick(struct store *s, uint64_t now_ms);
/*
 * Writes every exported family. yield (may be NULL) is called every STORE_RENDER_CHUNK
 * series: the caller may release its lock there and take it again, so that ingest is not
 * blocked for a whole large scrape. Series are not freed while a render runs (expiry waits
 * for the next tick), so the walk stays valid across yields.
 */
void store_render(struct store *s, struct expo *e, uint64_t now_ms, void (*yield)(void *),
		  void *yield_arg);
#define STORE_RENDER_CHUNK 4096
/*
 * Writes every series and every agent's dedup state to f, or reads them back into a store
 * (the caller builds it empty first). Returns 0, -EIO, -ENOMEM, or -EINVAL for a damaged
 * snapshot.
 */
int store_save(struct store *s, FILE *f, uint64_t now_ms, uint64_t now_unix_ms);
/* saved_unix_ms: when the snapshot was written; waits resume from then, not from now. */
int store_restore(struct store *s, FILE *f, uint64_t now_ms, uint64_t now_unix_ms,
		  uint64_t saved_unix_ms);
/* The monotonic time (as now_ms counts) of a past Unix time; 0 if before the clock began. */
uint64_t store_mono_of_unix(uint64_t now_ms, uint64_t now_unix_ms, uint64_t unix_ms);
/*
 * A replica that starts exporting at now_ms: every series whose hold was not over at since_ms
 * (the previous exporter's last Lease renewal) may never have been shown at its value, maybe
 * not at all, so it is held at 0 for a whole hold again from now_ms. Returns how many.
 */
size_t store_rehold(struct store *s, uint64_t since_ms, uint64_t now_ms);
/*
 * Holds are counted as if now were at most ms (UINT64_MAX: no bound): a replica's exporter
 * shows no series at its value whose hold ended after its last Lease renewal.
 */
void store_set_hold_horizon(struct store *s, uint64_t ms);
/* Whether a store_render is in progress (it may have yielded the caller's lock). */
int store_rendering(struct store *s);
/* Changes the new-series hold; 0 exports every real value from now on. */
void store_set_zero_hold(struct store *s, uint64_t ms);
/* Shutting down: held series already shown as 0 are shown at their real value. */
void store_set_draining(struct store *s);
void store_stats(struct store *s, uint64_t now_ms, struct store_stats *out);
/*
 * Progress for a replica's peer (issue 15): one line per agent, "NODE BOOT_HEX LAST_SEQ".
 * store_behind answers how many of the lines of another store's progress this one has not
 * reached yet (an agent it does not know, or a lower seq).
 */
void store_progress(struct store *s, FILE *f);
size_t store_behind(struct store *s, const char *progress);
/*
 * Agents seen within active_ms that have not yet delivered to this process a batch whose
 * interval ended at or after since_unix_ms (the agent's clock): until they have, another
 * replica may hold batches this one does not.
 */
size_t store_lagging(struct store *s, uint64_t since_unix_ms, uint64_t active_ms, uint64_t now_ms);

#endif
