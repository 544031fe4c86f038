/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Crash safety for the collector (--state-dir): every applied batch is appended to a
 * write-ahead log (and synced) before it is acknowledged; a snapshot of all series and all
 * dedup state is written periodically and at shutdown, after which the log starts empty.
 * At start the snapshot is loaded and the log replayed, so counters continue where they were
 * instead of resetting, and a batch is never applied twice.
 */
#ifndef FLOWLENS_PERSIST_H
#define FLOWLENS_PERSIST_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

struct persist;

/* Opens (creating) DIR/wal and remembers DIR. Returns 0 or -errno. */
int persist_open(struct persist **out, const char *dir, int sync);
/*
 * Loads DIR/snapshot into s (if there is one), then replays the log. max_decompressed bounds
 * each logged batch like a live one. Reports what it did in *series and *replayed.
 */
int persist_load(struct persist *p, struct store *s, size_t max_decompressed, uint64_t now_ms,
		 uint64_t *replayed);
/* Appends one accepted (compressed) batch body. Returns 0 or -errno. */
int persist_append(struct persist *p, const uint8_t *body, size_t len);
/* Writes a new snapshot and empties the log. Call with the store quiescent. */
int persist_snapshot(struct persist *p, struct store *s, uint64_t now_ms);
void persist_close(struct persist *p);

#endif
