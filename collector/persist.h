/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Crash safety for the collector (--state-dir): every batch is appended to a write-ahead log
 * and synced before it is applied and acknowledged, so an acknowledgement means durable; a
 * failed append leaves no partial record behind and the batch is refused (the agent retries).
 * A snapshot of all series and all dedup state is written periodically and at shutdown,
 * after which the log starts empty. At start the snapshot is loaded and the log replayed, so
 * counters continue where they were, and every logged batch is applied exactly once (the
 * dedup state travels with the series).
 *
 * Damage is survived, loudly: a record whose header or body fails its CRC is skipped and
 * the scan resumes at the next intact record, so one flipped bit costs one batch, not the
 * rest of the log; a snapshot that cannot be read is moved aside (snapshot.corrupt-<time>)
 * and the collector starts from the log alone instead of crash-looping.
 */
#ifndef FLOWLENS_PERSIST_H
#define FLOWLENS_PERSIST_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

struct persist;

struct persist_load_stats {
	uint64_t replayed; /* logged batches applied */
	uint64_t duplicates; /* logged batches already in the snapshot */
	uint64_t corrupt_records; /* damaged stretches of the log skipped */
	uint64_t corrupt_bytes;
	int snapshot_corrupt; /* the snapshot was unreadable and moved aside */
};

/* Opens (creating) DIR/wal and remembers DIR. Returns 0 or -errno. */
int persist_open(struct persist **out, const char *dir, int sync);
/*
 * Loads DIR/snapshot into *s (if there is one), then replays the log; max_decompressed bounds
 * each logged batch like a live one. When the snapshot is damaged, it is renamed, *s is
 * replaced by a new empty store made with cfg, and only the log is replayed. Returns 0 or
 * -errno for what cannot be survived (an unreadable directory, out of memory).
 */
int persist_load(struct persist *p, struct store **s, const struct store_config *cfg,
		 size_t max_decompressed, uint64_t now_ms, struct persist_load_stats *st);
/*
 * Appends one accepted (compressed) batch body and syncs it. Returns 0 when the record is
 * durable; otherwise -errno and the log is as it was before the call (or, if even that
 * cannot be ensured, refuses every append with -EIO until the next successful snapshot).
 */
int persist_append(struct persist *p, const uint8_t *body, size_t len);
/* Whether appends are refused until a snapshot succeeds. */
int persist_broken(const struct persist *p);
/* Writes a new snapshot and empties the log. Call with the store quiescent. */
int persist_snapshot(struct persist *p, struct store *s, uint64_t now_ms);
void persist_close(struct persist *p);

#endif
