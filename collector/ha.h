/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A collector shard's replicas (docs/design/collector-ha.md): agents send every batch to
 * every replica; one replica at a time exports the flow series, the one holding the shard's
 * Kubernetes Lease (coordination.k8s.io/v1), and a replica without state, or one that missed
 * batches, copies a complete peer's state.
 *
 * The Lease follows client-go's leader election: the holder renews it every renew_ms and
 * counts itself the holder only until lease_ms - 2 x renew_ms after its last successful
 * renewal (so it stops before another replica may take over); another replica takes it when
 * it has seen no change of the record for lease_ms by its own clock (no clock comparison
 * between machines), or at once when the holder released it (holderIdentity ""). Writes carry
 * the resourceVersion read, so two replicas cannot both take it.
 */
#ifndef FLOWLENS_HA_H
#define FLOWLENS_HA_H

#include <stddef.h>
#include <stdint.h>

struct ha_config {
	const char *lease; /* NAMESPACE/NAME, or NULL: no election */
	const char *identity;
	uint64_t lease_ms;
	uint64_t renew_ms;
	const char *kubeconfig; /* credentials for the Lease: a kubeconfig, or in-cluster */
	const char *peers; /* URLs separated by commas; the one whose host is identity skipped */
	const char *peer_ca_file;
	const char *token_file; /* the agents' token, which peers accept too */
};

/* Whether this replica may take the Lease. */
enum ha_eligibility {
	HA_NEVER = 0, /* starting or shutting down: release it if held */
	HA_ELIGIBLE,
};

struct ha_stats {
	uint64_t acquired_total; /* times this replica took the Lease */
	uint64_t lost_total; /* ...and stopped holding it without releasing it */
	uint64_t errors_total; /* failed Lease requests */
	char holder[128]; /* the holder last read, "" when none */
};

struct ha;

/* Starts the election thread when cfg->lease is set. Returns 0 or -errno. */
int ha_start(struct ha **out, const struct ha_config *cfg);
/* Stops the thread; releases the Lease if held. */
void ha_stop(struct ha *h);
/* 1 while this replica holds the Lease (always 1 without --ha-lease); *since_ms: from when. */
int ha_holding(struct ha *h, uint64_t *since_ms);
void ha_set_eligibility(struct ha *h, enum ha_eligibility e);
/*
 * The new-series holds of replicas (docs/design/collector-ha.md): *renewed_unix_ms is this
 * replica's last successful Lease write (the exporter shows no series un-held after it;
 * UINT64_MAX without a Lease); *takeover_unix_ms the renewTime of the record it took over,
 * the previous exporter's last write (0: there was none).
 */
void ha_horizons(struct ha *h, uint64_t *renewed_unix_ms, uint64_t *takeover_unix_ms);
/* Gives the Lease up now (SIGTERM) and never takes it again; waits up to 2 s for the write. */
void ha_release(struct ha *h);
void ha_stats(struct ha *h, struct ha_stats *out);
/* Whether there are peers to ask. */
int ha_has_peers(const struct ha *h);
/*
 * GETs path from the peers in turn; the first 200 wins. *body is malloc'd (NUL-terminated,
 * at most max bytes). Returns 0, -ENOENT when no peer answered 200, -EFBIG past max.
 */
int ha_peer_get(struct ha *h, const char *path, size_t max, uint64_t timeout_ms, char **body,
		size_t *len);

#endif
