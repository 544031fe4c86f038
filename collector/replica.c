// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A collector as one replica of a shard (docs/design/collector-ha.md): whether it exports,
 * copying a peer's state at start or after missed batches, and what it serves its peers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clock.h"
#include "collector.h"
#include "log.h"
#include "secret.h"

#define STATE_MAGIC "flowlens-state 1"
#define STATE_MAX_BYTES (4ULL << 30)
#define PROGRESS_MAX_BYTES (64u << 20)
#define REBOOTSTRAP_EVERY_MS 5000

/*
 * Refuses a peer request without the peers' token (--peer-token-file, else the agents');
 * 1 if it answered.
 */
static int peer_refused(struct collector *c, const struct httpd_request *req,
			struct httpd_response *resp)
{
	const char *auth = httpd_header(req, "Authorization");
	int ok;

	if (c->o.peer_token_file) {
		/* Re-read for every request: the Secret may rotate under both replicas. */
		char *tok = secret_read(c->o.peer_token_file);

		ok = tok && secret_bearer_ok(auth, tok, strlen(tok));
		free(tok);
	} else {
		pthread_mutex_lock(&c->lock);
		ok = collector_token_ok(c, auth);
		pthread_mutex_unlock(&c->lock);
	}
	if (!ok)
		httpd_text(resp, 401, "missing or wrong bearer token\n");
	return !ok;
}

/* Whether missed batches are still to be made good. Called with c->lock held. */
static int gapped(struct collector *c)
{
	struct store_stats st;

	store_stats(c->store, clock_mono_ms(), &st);
	return st.gaps_total > c->gaps_accepted;
}

/* What a peer asked for, written under c->lock into a memory stream; 0 or -errno. */
static int write_state(struct collector *c, FILE *f)
{
	fprintf(f, STATE_MAGIC " gaps=%d bootstrapping=%d\n", gapped(c), c->bootstrapping);
	c->states_served++;
	return c->bootstrapping ? 0 : store_save(c->store, f, clock_mono_ms(), clock_unix_ms());
}

static int write_progress(struct collector *c, FILE *f)
{
	store_progress(c->store, f);
	return 0;
}

static void serve_peer(struct collector *c, const struct httpd_request *req,
		       struct httpd_response *resp, int (*write)(struct collector *, FILE *),
		       const char *content_type)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (peer_refused(c, req, resp))
		return;
	f = open_memstream(&buf, &len);
	if (!f) {
		httpd_text(resp, 503, "out of memory\n");
		return;
	}
	pthread_mutex_lock(&c->lock);
	err = write(c, f);
	pthread_mutex_unlock(&c->lock);
	if (fclose(f) != 0 || err) {
		free(buf);
		httpd_text(resp, 503, "could not write it\n");
		return;
	}
	resp->status = 200;
	resp->content_type = content_type;
	resp->body = buf;
	resp->len = len;
}

void replica_serve_state(struct collector *c, const struct httpd_request *req,
			 struct httpd_response *resp)
{
	serve_peer(c, req, resp, write_state, "application/octet-stream");
}

void replica_serve_progress(struct collector *c, const struct httpd_request *req,
			    struct httpd_response *resp)
{
	serve_peer(c, req, resp, write_progress, "text/plain; charset=utf-8");
}

/*
 * Replaces the store with a complete peer's. Ingest is refused (503, agents retry) from
 * before the copy is asked for until it is in place, so no batch is acknowledged into the
 * store being replaced. accept_gapped: a peer that missed batches itself will do (a replica
 * with nothing is better off with it). Returns 0, -EAGAIN (no complete peer now:
 * *peer_gapped says whether one answered with missed batches of its own), -ENODATA (the peer is starting without state
 * itself), or -errno.
 */
int replica_bootstrap(struct collector *c, int accept_gapped, int *peer_gapped)
{
	struct store *ns = NULL, *old;
	struct store_stats st;
	unsigned int gaps = 0, booting = 0;
	char *body = NULL, *nl;
	size_t len;
	FILE *f;
	int err;

	*peer_gapped = 0;
	pthread_mutex_lock(&c->lock);
	c->bootstrapping = 1;
	pthread_mutex_unlock(&c->lock);
	err = ha_peer_get(c->ha, "/v1/state", STATE_MAX_BYTES, 30000, &body, &len);
	if (err)
		goto out;
	nl = memchr(body, '\n', len);
	if (!nl || sscanf(body, STATE_MAGIC " gaps=%u bootstrapping=%u", &gaps, &booting) != 2) {
		pr_warn("ha: a peer's state does not start with '" STATE_MAGIC "'");
		err = -EAGAIN;
		goto out;
	}
	if (booting) {
		err = -ENODATA;
		goto out;
	}
	if (gaps && !accept_gapped) {
		*peer_gapped = 1;
		err = -EAGAIN;
		goto out;
	}
	err = store_new(&ns, &c->scfg);
	if (err)
		goto out;
	f = fmemopen(nl + 1, len - (size_t)(nl + 1 - body), "rb");
	if (!f) {
		err = -errno;
		goto out;
	}
	err = store_restore(ns, f, clock_mono_ms(), clock_unix_ms(), clock_unix_ms());
	fclose(f);
	if (err) {
		pr_warn("ha: a peer's state could not be read: %s", strerror(-err));
		goto out;
	}
	store_tick(ns, clock_mono_ms());
	pthread_mutex_lock(&c->lock);
	/* A /metrics render yields the lock between chunks: never free the store under it. */
	while (store_rendering(c->store)) {
		pthread_mutex_unlock(&c->lock);
		usleep(10000);
		pthread_mutex_lock(&c->lock);
	}
	old = c->store;
	store_stats(old, clock_mono_ms(), &st);
	c->gaps_carried += st.gaps_total;
	c->gaps_accepted = 0;
	c->store = ns;
	ns = old;
	/* The log held batches of the replaced store: a snapshot of the new one empties it. */
	if (c->persist && persist_snapshot(c->persist, c->store, clock_mono_ms()))
		pr_warn("ha: writing a snapshot of the copied state failed");
	store_stats(c->store, clock_mono_ms(), &st);
	pthread_mutex_unlock(&c->lock);
	pr_info("ha: copied a peer's state: %llu series, %llu agents (%zu bytes)",
		(unsigned long long)st.series, (unsigned long long)st.agents_tracked, len);
out:
	store_free(ns);
	free(body);
	pthread_mutex_lock(&c->lock);
	c->bootstrapping = c->startup_bootstrap;
	c->bootstraps[err ? 1 : 0]++;
	pthread_mutex_unlock(&c->lock);
	return err;
}

/*
 * Series whose new-series hold ran out while no replica exported were never shown at their
 * value, maybe not at all, and Prometheus' increase() would miss their first value: they are
 * held at 0 for a whole hold again. An exporter un-holds a series only once its hold ended before the
 * exporter's last Lease renewal (replica_exporting), so every series whose hold ended after
 * the previous holder's last renewal (the renewTime this replica took over) was never shown
 * at its value. Called with c->lock held.
 */
static void rehold(struct collector *c)
{
	uint64_t renewed, horizon, now = clock_mono_ms();
	size_t n;

	ha_horizons(c->ha, &renewed, &horizon);
	n = store_rehold(c->store, horizon ? store_mono_of_unix(now, clock_unix_ms(), horizon) : 0,
			 now);
	if (n)
		pr_info("ha: %zu series the previous exporter never showed at their value start "
			"from 0",
			n);
}

/*
 * After taking the Lease: export only once this replica has every batch the previous exporter
 * could have shown. A peer that answers (it is draining, or lost the Lease and stopped
 * exporting before this one took it) gives its progress: exact. A peer that is gone cannot:
 * then every active agent must first deliver here a batch of an interval that ended after the
 * takeover, which the peer cannot have had (agents send in order, so everything before it is
 * here too). Agents in backoff after this replica was away take up to their backoff maximum.
 */
#define TAKEOVER_ACTIVE_MS 60000
#define TAKEOVER_MAX_WAIT_MS 60000
static void catch_up(struct collector *c, uint64_t since)
{
	char *body = NULL;
	size_t len, behind;
	int err;

	pthread_mutex_lock(&c->lock);
	if (c->takeover_since != since) {
		c->takeover_since = since;
		c->caught_up = 0;
		c->takeover_unix_ms = clock_unix_ms();
		c->takeover_deadline_ms = clock_mono_ms() + TAKEOVER_MAX_WAIT_MS;
		free(c->takeover_progress);
		c->takeover_progress = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->caught_up)
		return;
	err = ha_peer_get(c->ha, "/v1/progress", PROGRESS_MAX_BYTES, 1000, &body, &len);
	pthread_mutex_lock(&c->lock);
	if (!err) {
		free(c->takeover_progress);
		c->takeover_progress = body;
		body = NULL;
	}
	if (c->takeover_progress) {
		behind = store_behind(c->store, c->takeover_progress);
		if (!behind)
			pr_info("ha: caught up with the peer's progress: exporting");
	} else {
		behind = store_lagging(c->store, c->takeover_unix_ms, TAKEOVER_ACTIVE_MS,
				       clock_mono_ms());
		if (!behind)
			pr_info("ha: no peer answers; every active agent delivered a batch newer "
				"than the takeover: exporting");
	}
	if (!behind) {
		/*
		 * The same batches as the peer: release what their batch time released there
		 * (the join's clock moved with the last batches applied) before the first export.
		 */
		store_tick(c->store, clock_mono_ms());
		c->caught_up = 1;
		rehold(c);
	} else if (clock_mono_ms() >= c->takeover_deadline_ms) {
		c->caught_up = 1;
		pr_warn("ha: still behind for %zu agents after %d s: exporting anyway", behind,
			TAKEOVER_MAX_WAIT_MS / 1000);
		rehold(c);
	}
	pthread_mutex_unlock(&c->lock);
	free(body);
}

/* A cheap look before batches are refused for a copy: is a peer there at all? */
static int peer_answers(struct collector *c)
{
	char *body = NULL;
	size_t len;
	int ok = ha_peer_get(c->ha, "/v1/progress", PROGRESS_MAX_BYTES, 1000, &body, &len) == 0;

	free(body);
	if (!ok)
		c->last_rebootstrap_ms = clock_mono_ms();
	return ok;
}

void replica_tick(struct collector *c)
{
	uint64_t now = clock_mono_ms(), since;
	int draining, gap, peer_gapped;

	if (!c->ha)
		return;
	pthread_mutex_lock(&c->lock);
	draining = c->draining;
	gap = gapped(c);
	pthread_mutex_unlock(&c->lock);
	if (gap && !draining && ha_has_peers(c->ha) &&
	    now - c->last_rebootstrap_ms >= REBOOTSTRAP_EVERY_MS && peer_answers(c)) {
		c->last_rebootstrap_ms = now;
		pr_info("ha: batches were missed (an agent's sequence jumped): copying a peer's "
			"state");
		if (replica_bootstrap(c, 0, &peer_gapped) == 0) {
			gap = 0;
		} else if (peer_gapped) {
			/* Missed there too: nobody has those batches; carry on with what is here. */
			struct store_stats st;

			pthread_mutex_lock(&c->lock);
			store_stats(c->store, clock_mono_ms(), &st);
			c->gaps_accepted = st.gaps_total;
			pthread_mutex_unlock(&c->lock);
			pr_warn("ha: the peer missed batches too; keeping this state");
			gap = 0;
		}
	}
	/*
	 * Missed batches do not make a replica give up exporting: it copies a complete peer's
	 * state as soon as one answers (values only go up), and without one it is the best
	 * there is.
	 */
	(void)gap;
	ha_set_eligibility(c->ha, draining ? HA_NEVER : HA_ELIGIBLE);
	if (c->o.ha_lease && ha_holding(c->ha, &since))
		catch_up(c, since);
}

int replica_exporting(struct collector *c)
{
	uint64_t since, renewed, horizon, now = clock_mono_ms();

	if (!c->o.ha_lease)
		return 1;
	if (!(ha_holding(c->ha, &since) && since == c->takeover_since && c->caught_up))
		return 0;
	/* No series un-held after the last renewal: the next exporter knows what was shown. */
	ha_horizons(c->ha, &renewed, &horizon);
	store_set_hold_horizon(c->store, store_mono_of_unix(now, clock_unix_ms(), renewed));
	return 1;
}
