// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE /* asprintf */
/* The shard's Lease and its peers (ha.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include "clock.h"
#include "ha.h"
#include "kubeauth.h"
#include "log.h"
#include "secret.h"

#define LEASE_MAX_BYTES (64u << 10)

struct ha {
	struct ha_config cfg;
	struct kube_auth auth;
	char *lease_url; /* .../namespaces/NS/leases/NAME */
	char *lease_ns, *lease_name;
	char **peers;
	size_t n_peers;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;
	int released;
	int release_done;
	enum ha_eligibility elig;
	uint64_t held_until_ms; /* holding while now < this */
	uint64_t holding_since_ms;
	int was_holding;
	/* The record as last seen, and when (this replica's clock) it last changed. */
	char observed[256];
	uint64_t observed_ms;
	uint64_t renewed_unix_ms; /* the renewTime of this replica's last successful write */
	uint64_t horizon_unix_ms; /* the renewTime of the record this replica took over */
	struct ha_stats st;
};

struct buf {
	char *p;
	size_t len, max;
	int over;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	char *np;

	if (b->len + n + 1 > b->max) {
		b->over = 1;
		return 0;
	}
	np = realloc(b->p, b->len + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

/* One request to the API server: returns the HTTP status (0: none), *out the body. */
static long api(struct ha *h, const char *method, const char *url, const char *json, char **out)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = { .max = LEASE_MAX_BYTES };
	CURL *c = kubeauth_curl(&h->auth, url, &hdrs);
	long status = 0;

	*out = NULL;
	if (!c)
		return 0;
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->cfg.renew_ms + 1000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->cfg.renew_ms + 1000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (json) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	*out = b.p;
	return status;
}

/* Kubernetes MicroTime: 2006-01-02T15:04:05.000000Z; returns the time written, in Unix ms. */
static uint64_t micro_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)(ts.tv_nsec / 1000000);
}

/* A MicroTime (or RFC 3339 time) in Unix ms; 0 when it is not one. */
static uint64_t parse_time(const char *t)
{
	struct tm tm;
	const char *p;
	uint64_t ms = 0;

	memset(&tm, 0, sizeof(tm));
	p = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (uint64_t)(*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p != 'Z')
		return 0;
	return (uint64_t)timegm(&tm) * 1000 + ms;
}

static const char *spec_str(json_object *spec, const char *key)
{
	json_object *v;

	return spec && json_object_object_get_ex(spec, key, &v) &&
			       json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) :
		       "";
}

static int64_t spec_int(json_object *spec, const char *key)
{
	json_object *v;

	return spec && json_object_object_get_ex(spec, key, &v) ? json_object_get_int64(v) : 0;
}

/*
 * Writes the Lease with this replica as holder (take or renew) or with no holder (release).
 * lease: the object read (its resourceVersion guards the write), or NULL to create it.
 */
static long write_lease(struct ha *h, json_object *lease, int take, int renew_only,
			uint64_t *written_unix_ms)
{
	char now[40], *resp = NULL;
	json_object *obj, *spec, *md;
	long status;

	*written_unix_ms = micro_time(now, sizeof(now));
	if (lease) {
		obj = json_object_get(lease);
	} else {
		obj = json_object_new_object();
		md = json_object_new_object();
		json_object_object_add(obj, "apiVersion",
				       json_object_new_string("coordination.k8s.io/v1"));
		json_object_object_add(obj, "kind", json_object_new_string("Lease"));
		json_object_object_add(md, "name", json_object_new_string(h->lease_name));
		json_object_object_add(md, "namespace", json_object_new_string(h->lease_ns));
		json_object_object_add(obj, "metadata", md);
	}
	if (!json_object_object_get_ex(obj, "spec", &spec) ||
	    !json_object_is_type(spec, json_type_object)) {
		spec = json_object_new_object();
		json_object_object_add(obj, "spec", spec);
	}
	if (take) {
		if (!renew_only) {
			json_object_object_add(spec, "acquireTime", json_object_new_string(now));
			json_object_object_add(
				spec, "leaseTransitions",
				json_object_new_int64(spec_int(spec, "leaseTransitions") +
						      (lease != NULL)));
		}
		json_object_object_add(spec, "holderIdentity",
				       json_object_new_string(h->cfg.identity));
		json_object_object_add(
			spec, "leaseDurationSeconds",
			json_object_new_int64((int64_t)(h->cfg.lease_ms + 999) / 1000));
		json_object_object_add(spec, "renewTime", json_object_new_string(now));
	} else {
		/* As client-go releases: no holder, a one-second duration. */
		json_object_object_add(spec, "holderIdentity", json_object_new_string(""));
		json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int64(1));
		json_object_object_add(spec, "renewTime", json_object_new_string(now));
	}
	if (lease) {
		char url[1024];

		snprintf(url, sizeof(url), "%s/%s", h->lease_url, h->lease_name);
		status = api(h, "PUT", url,
			     json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN), &resp);
	} else {
		status = api(h, "POST", h->lease_url,
			     json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN), &resp);
	}
	free(resp);
	json_object_put(obj);
	return status;
}

/* One look at the Lease, and the write this replica's state calls for. */
static void lease_round(struct ha *h)
{
	char url[1024], *body = NULL, key[256];
	uint64_t t0 = clock_mono_ms(), dur_ms;
	json_object *lease = NULL, *spec = NULL;
	enum ha_eligibility elig;
	int released, mine, take = 0, release = 0, renew = 0;
	uint64_t written = 0, prev_renew = 0;
	const char *holder;
	long status;

	pthread_mutex_lock(&h->lock);
	elig = h->elig;
	released = h->released;
	pthread_mutex_unlock(&h->lock);
	snprintf(url, sizeof(url), "%s/%s", h->lease_url, h->lease_name);
	status = api(h, "GET", url, NULL, &body);
	if (status == 404) {
		free(body);
		if (elig == HA_ELIGIBLE && !released) {
			status = write_lease(h, NULL, 1, 0, &written);
			if (status == 201 || status == 200) {
				/* No one held it before: nothing was shown that this replica missed. */
				prev_renew = written;
				goto held;
			}
			if (status != 409)
				goto error;
		}
		return;
	}
	if (status != 200 || !body || !(lease = json_tokener_parse(body))) {
		free(body);
		goto error;
	}
	free(body);
	json_object_object_get_ex(lease, "spec", &spec);
	holder = spec_str(spec, "holderIdentity");
	dur_ms = (uint64_t)spec_int(spec, "leaseDurationSeconds") * 1000;
	if (!dur_ms)
		dur_ms = h->cfg.lease_ms;
	snprintf(key, sizeof(key), "%s|%s", holder, spec_str(spec, "renewTime"));
	pthread_mutex_lock(&h->lock);
	if (strcmp(key, h->observed) != 0 || !h->observed_ms) {
		snprintf(h->observed, sizeof(h->observed), "%s", key);
		h->observed_ms = t0;
	}
	snprintf(h->st.holder, sizeof(h->st.holder), "%s", holder);
	mine = strcmp(holder, h->cfg.identity) == 0;
	if (mine) {
		if (elig == HA_ELIGIBLE && !released)
			renew = 1;
		else
			release = 1;
	} else if (elig == HA_ELIGIBLE && !released) {
		/* Free (released), or not renewed for its duration as this replica saw it. */
		take = !*holder || t0 - h->observed_ms >= dur_ms;
	}
	/* What the previous holder last wrote: it showed no series un-held after it. */
	prev_renew = parse_time(spec_str(spec, "renewTime"));
	if (!mine)
		h->held_until_ms = 0;
	pthread_mutex_unlock(&h->lock);
	if (renew || take) {
		status = write_lease(h, lease, 1, renew, &written);
		json_object_put(lease);
		if (status == 200)
			goto held;
		if (status == 409) /* someone else wrote first: look again next round */
			return;
		goto error;
	}
	if (release) {
		status = write_lease(h, lease, 0, 0, &written);
		json_object_put(lease);
		pthread_mutex_lock(&h->lock);
		h->held_until_ms = 0;
		pthread_mutex_unlock(&h->lock);
		if (status == 200)
			pr_info("ha: released lease %s/%s", h->lease_ns, h->lease_name);
		else
			goto error;
		return;
	}
	json_object_put(lease);
	return;
held:
	pthread_mutex_lock(&h->lock);
	/*
	 * The last renewal the record held before this write: the previous holder's when taken
	 * over, this replica's own (or its previous incarnation's, after a container restart)
	 * when renewed. Consulted only when a holding period starts (catch_up's re-hold): after
	 * an API blip that lapsed this replica's hold, what it had not shown is what began after
	 * its own last renewal, not after the takeover it made long ago.
	 */
	h->horizon_unix_ms = prev_renew;
	h->renewed_unix_ms = written;
	{
		uint64_t margin = 2 * h->cfg.renew_ms;

		h->held_until_ms = t0 + (h->cfg.lease_ms > margin + h->cfg.renew_ms ?
						 h->cfg.lease_ms - margin :
						 h->cfg.renew_ms);
	}
	snprintf(h->st.holder, sizeof(h->st.holder), "%s", h->cfg.identity);
	pthread_mutex_unlock(&h->lock);
	return;
error:
	pthread_mutex_lock(&h->lock);
	h->st.errors_total++;
	pthread_mutex_unlock(&h->lock);
	pr_debug("ha: lease request failed (HTTP %ld)", status);
}

/* Notes transitions, for the log and the counters. Called with h->lock held. */
static void note_holding(struct ha *h, uint64_t now)
{
	int holding = now < h->held_until_ms;

	if (holding && !h->was_holding) {
		h->st.acquired_total++;
		h->holding_since_ms = now;
		pr_info("ha: holding lease %s/%s as %s: exporting", h->lease_ns, h->lease_name,
			h->cfg.identity);
	} else if (!holding && h->was_holding) {
		if (!h->released && h->elig == HA_ELIGIBLE)
			h->st.lost_total++;
		pr_info("ha: not holding lease %s/%s: not exporting flow series", h->lease_ns,
			h->lease_name);
	}
	h->was_holding = holding;
}

static void *lease_main(void *arg)
{
	struct ha *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		struct timespec ts;

		pthread_mutex_unlock(&h->lock);
		lease_round(h);
		pthread_mutex_lock(&h->lock);
		note_holding(h, clock_mono_ms());
		if (h->released && h->held_until_ms == 0) {
			h->release_done = 1;
			pthread_cond_broadcast(&h->cond);
		}
		ts = clock_deadline_ms(CLOCK_MONOTONIC, h->cfg.renew_ms);
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* The peers: every URL of the list but this replica's own. */
static int split_peers(struct ha *h)
{
	const char *p = h->cfg.peers;
	size_t idl = h->cfg.identity ? strlen(h->cfg.identity) : 0;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		const char *host = strstr(p, "://");
		char **np;

		host = host && host < p + len ? host + 3 : p;
		/* Its own URL: the host's first DNS label is the identity (StatefulSet pods). */
		if (!(idl && (size_t)(p + len - host) >= idl &&
		      strncmp(host, h->cfg.identity, idl) == 0 && strchr(".:/,", host[idl]))) {
			np = realloc(h->peers, (h->n_peers + 1) * sizeof(*np));
			if (!np)
				return -ENOMEM;
			h->peers = np;
			h->peers[h->n_peers] = strndup(p, len);
			if (!h->peers[h->n_peers])
				return -ENOMEM;
			while (len && h->peers[h->n_peers][len - 1] == '/')
				h->peers[h->n_peers][--len] = 0;
			h->n_peers++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int ha_start(struct ha **out, const struct ha_config *cfg)
{
	struct ha *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;
	int err = 0;

	if (!h)
		return -ENOMEM;
	h->cfg = *cfg;
	h->elig = HA_NEVER;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = split_peers(h);
	if (!err && cfg->lease) {
		const char *slash = strchr(cfg->lease, '/');

		h->lease_ns = strndup(cfg->lease, (size_t)(slash - cfg->lease));
		h->lease_name = strdup(slash + 1);
		err = cfg->kubeconfig ? kubeauth_from_kubeconfig(&h->auth, cfg->kubeconfig) :
					kubeauth_in_cluster(&h->auth);
		if (err)
			pr_err("ha: credentials for the lease (%s): %s",
			       cfg->kubeconfig ? cfg->kubeconfig : "in-cluster", strerror(-err));
		if (!err &&
		    (!h->lease_ns || !h->lease_name ||
		     asprintf(&h->lease_url, "%s/apis/coordination.k8s.io/v1/namespaces/%s/leases",
			      h->auth.server, h->lease_ns) < 0))
			err = -ENOMEM;
		if (!err && pthread_create(&h->thread, NULL, lease_main, h))
			err = -EAGAIN;
		h->started = !err;
	}
	if (err) {
		ha_stop(h);
		return err;
	}
	*out = h;
	return 0;
}

void ha_stop(struct ha *h)
{
	if (!h)
		return;
	if (h->started) {
		ha_release(h);
		pthread_mutex_lock(&h->lock);
		h->stopping = 1;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	for (size_t i = 0; i < h->n_peers; i++)
		free(h->peers[i]);
	free(h->peers);
	free(h->lease_url);
	free(h->lease_ns);
	free(h->lease_name);
	kubeauth_free(&h->auth);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void ha_horizons(struct ha *h, uint64_t *renewed_unix_ms, uint64_t *takeover_unix_ms)
{
	*renewed_unix_ms = UINT64_MAX;
	*takeover_unix_ms = 0;
	if (!h || !h->started)
		return;
	pthread_mutex_lock(&h->lock);
	*renewed_unix_ms = h->renewed_unix_ms;
	*takeover_unix_ms = h->horizon_unix_ms;
	pthread_mutex_unlock(&h->lock);
}

int ha_holding(struct ha *h, uint64_t *since_ms)
{
	int r;

	if (!h || !h->started) {
		if (since_ms)
			*since_ms = 0;
		return 1;
	}
	pthread_mutex_lock(&h->lock);
	note_holding(h, clock_mono_ms());
	r = h->was_holding && !h->released;
	if (since_ms)
		*since_ms = h->holding_since_ms;
	pthread_mutex_unlock(&h->lock);
	return r;
}

void ha_set_eligibility(struct ha *h, enum ha_eligibility e)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->elig != e && h->started)
		pr_info("ha: %s",
			e == HA_ELIGIBLE ? "eligible to export" : "not eligible to export");
	h->elig = e;
	pthread_mutex_unlock(&h->lock);
}

void ha_release(struct ha *h)
{
	struct timespec ts;

	if (!h || !h->started)
		return;
	pthread_mutex_lock(&h->lock);
	h->released = 1;
	h->elig = HA_NEVER;
	/* Not holding it: nothing to write, nothing to wait for. */
	if (!h->held_until_ms)
		h->release_done = 1;
	pthread_cond_broadcast(&h->cond);
	ts = clock_deadline_ms(CLOCK_MONOTONIC, 2000);
	while (!h->release_done && !h->stopping &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&h->lock);
}

void ha_stats(struct ha *h, struct ha_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	*out = h->st;
	pthread_mutex_unlock(&h->lock);
}

int ha_has_peers(const struct ha *h)
{
	return h && h->n_peers > 0;
}

int ha_peer_get(struct ha *h, const char *path, size_t max, uint64_t timeout_ms, char **body,
		size_t *len)
{
	int err = -ENOENT;

	*body = NULL;
	*len = 0;
	for (size_t i = 0; h && i < h->n_peers; i++) {
		struct buf b = { .max = max };
		struct curl_slist *hdrs = NULL;
		char url[1024], auth[SECRET_MAX_LEN + 32];
		char *token = secret_read(h->cfg.token_file);
		long status = 0;
		CURL *c;

		if (!token)
			return -errno;
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		free(token);
		snprintf(url, sizeof(url), "%s%s", h->peers[i], path);
		c = curl_easy_init();
		if (!c)
			return -ENOMEM;
		hdrs = curl_slist_append(hdrs, auth);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_USERAGENT, "flowlens-collector");
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		/* A peer that is away must not hold anything up for long. */
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
				 timeout_ms < 2000 ? (long)timeout_ms : 2000L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		if (h->cfg.peer_ca_file)
			curl_easy_setopt(c, CURLOPT_CAINFO, h->cfg.peer_ca_file);
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		if (status == 200 && !b.over) {
			*body = b.p ? b.p : strdup("");
			*len = b.len;
			return *body ? 0 : -ENOMEM;
		}
		if (b.over)
			err = -EFBIG;
		pr_debug("ha: peer %s: %s%ld", url, status ? "HTTP " : "no answer ", status);
		free(b.p);
	}
	return err;
}
