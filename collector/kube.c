// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <yaml.h>
#include "clock.h"
#include "kube.h"
#include "kubeauth.h"
#include "log.h"
#include "secret.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define LINE_MAX_BYTES (16u << 20) /* one watch event */

static const char *const api_paths[META_KINDS] = {
	[META_POD] = "/api/v1/pods",	    [META_SERVICE] = "/api/v1/services",
	[META_NODE] = "/api/v1/nodes",	    [META_REPLICASET] = "/apis/apps/v1/replicasets",
	[META_JOB] = "/apis/batch/v1/jobs",
};

/* ---- the watcher ---- */

struct kube;

struct watcher {
	struct kube *k;
	enum meta_kind kind;
	pthread_t thread;
	int started;
	/* Streaming state of the current request. */
	char *buf;
	size_t len, cap;
	int gone; /* the stream said 410 */
	int fatal; /* the stream is unusable (bad JSON, huge line) */
	pthread_mutex_t lock; /* guards st */
	struct kube_kind_stats st;
};

struct kube {
	struct kube_config cfg;
	struct kube_auth auth;
	struct meta *m;
	volatile int stop;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	struct watcher w[META_KINDS];
};

static int sleep_or_stop(struct kube *k, uint64_t ms)
{
	struct timespec ts = clock_deadline_ms(CLOCK_REALTIME, ms);
	int stop;

	pthread_mutex_lock(&k->stop_lock);
	while (!k->stop && pthread_cond_timedwait(&k->stop_cond, &k->stop_lock, &ts) == 0)
		;
	stop = k->stop;
	pthread_mutex_unlock(&k->stop_lock);
	return stop;
}

static int progress_cb(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct watcher *w = ctx;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return w->k->stop ? 1 : 0;
}

static void stat_add(struct watcher *w, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&w->lock);
	*field += n;
	pthread_mutex_unlock(&w->lock);
}

static int buf_append(struct watcher *w, const char *p, size_t n, size_t max)
{
	if (w->len + n + 1 > max)
		return -E2BIG;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 65536;
		char *nb;

		while (cap < w->len + n + 1)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb)
			return -ENOMEM;
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = 0;
	return 0;
}

static size_t list_write(char *p, size_t size, size_t n, void *ctx)
{
	struct watcher *w = ctx;

	if (buf_append(w, p, size * n, w->k->cfg.max_list_bytes))
		return 0; /* aborts the transfer */
	return size * n;
}

static void set_rv(struct watcher *w, const char *rv)
{
	pthread_mutex_lock(&w->lock);
	snprintf(w->st.resource_version, sizeof(w->st.resource_version), "%s", rv ? rv : "");
	pthread_mutex_unlock(&w->lock);
}

/* One watch event line. */
static void on_event(struct watcher *w, const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *ev, *obj = NULL, *t;
	const char *type = "";

	ev = json_tokener_parse_ex(tok, line, (int)len);
	json_tokener_free(tok);
	if (!ev) {
		w->fatal = 1;
		stat_add(w, &w->st.errors_total, 1);
		return;
	}
	if (json_object_object_get_ex(ev, "type", &t) && json_object_is_type(t, json_type_string))
		type = json_object_get_string(t);
	json_object_object_get_ex(ev, "object", &obj);
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
		json_object *md, *rv;

		meta_lock(w->k->m);
		meta_apply(w->k->m, w->kind, type[0] == 'D' ? META_DELETED : META_ADDED, obj,
			   clock_unix_ms());
		meta_unlock(w->k->m);
		if (json_object_object_get_ex(obj, "metadata", &md) &&
		    json_object_object_get_ex(md, "resourceVersion", &rv))
			set_rv(w, json_object_get_string(rv));
		stat_add(w, &w->st.events_total, 1);
	} else if (!strcmp(type, "BOOKMARK")) {
		json_object *md, *rv;

		if (json_object_object_get_ex(obj, "metadata", &md) &&
		    json_object_object_get_ex(md, "resourceVersion", &rv))
			set_rv(w, json_object_get_string(rv));
		stat_add(w, &w->st.bookmarks_total, 1);
	} else if (!strcmp(type, "ERROR")) {
		json_object *code;

		if (json_object_object_get_ex(obj, "code", &code) &&
		    json_object_get_int(code) == 410)
			w->gone = 1;
		else
			stat_add(w, &w->st.errors_total, 1);
		w->fatal = 1;
	} else {
		stat_add(w, &w->st.errors_total, 1);
	}
	json_object_put(ev);
}

static size_t watch_write(char *p, size_t size, size_t n, void *ctx)
{
	struct watcher *w = ctx;
	size_t total = size * n, start = 0;
	char *nl;

	if (buf_append(w, p, total, LINE_MAX_BYTES)) {
		stat_add(w, &w->st.errors_total, 1);
		return 0;
	}
	while (!w->fatal && (nl = memchr(w->buf + start, '\n', w->len - start))) {
		size_t l = (size_t)(nl - (w->buf + start));

		if (l)
			on_event(w, w->buf + start, l);
		start += l + 1;
	}
	if (w->fatal)
		return 0; /* ends the stream: relist (410) or reconnect */
	memmove(w->buf, w->buf + start, w->len - start);
	w->len -= start;
	return total;
}

static CURL *request(struct watcher *w, const char *url, struct curl_slist **hdrs, int watch)
{
	CURL *c = kubeauth_curl(&w->k->auth, url, hdrs);

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch ? watch_write : list_write);
	/* A silently dead connection: nothing, not even a bookmark, for longer than a watch. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)w->k->cfg.watch_timeout_s + 60);
	if (!watch)
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	return c;
}

/* Runs a request to its end and frees it; returns curl's result, *status the HTTP status. */
static CURLcode perform(CURL *c, struct curl_slist *hdrs, long *status)
{
	CURLcode rc = curl_easy_perform(c);

	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return rc;
}

/*
 * A full list, page by page; what is missing from it is deleted. Returns 0, or -EAGAIN after
 * an error (the caller backs off), -ESTALE when a continue token expired (list again).
 */
static int do_list(struct watcher *w)
{
	struct kube *k = w->k;
	char cont[4096] = "", rv[64] = "";
	int first = 1, err = 0;

	for (;;) {
		struct curl_slist *hdrs = NULL;
		json_object *doc = NULL, *items, *md, *v;
		char *url, *esc = NULL;
		long status = 0;
		CURL *c;
		CURLcode rc;

		if (*cont) {
			CURL *e = curl_easy_init();

			esc = e ? curl_easy_escape(e, cont, 0) : NULL;
			if (e)
				curl_easy_cleanup(e);
		}
		if (asprintf(&url, "%s%s?limit=500%s%s", k->auth.server, api_paths[w->kind],
			     esc ? "&continue=" : "", esc ? esc : "") < 0) {
			curl_free(esc);
			return -EAGAIN;
		}
		curl_free(esc);
		w->len = 0;
		c = request(w, url, &hdrs, 0);
		free(url);
		if (!c)
			return -EAGAIN;
		rc = perform(c, hdrs, &status);
		if (k->stop)
			return -EINTR;
		if (rc != CURLE_OK || status != 200) {
			if (status == 410)
				return -ESTALE;
			pr_warn("kube: list %s: %s (HTTP %ld)", meta_kind_name(w->kind),
				rc != CURLE_OK ? curl_easy_strerror(rc) : "bad status", status);
			stat_add(w, &w->st.errors_total, 1);
			return -EAGAIN;
		}
		doc = json_tokener_parse(w->buf ? w->buf : "");
		if (!doc || !json_object_object_get_ex(doc, "items", &items) ||
		    !json_object_is_type(items, json_type_array)) {
			pr_warn("kube: list %s: not a list", meta_kind_name(w->kind));
			json_object_put(doc);
			stat_add(w, &w->st.errors_total, 1);
			return -EAGAIN;
		}
		cont[0] = 0;
		if (json_object_object_get_ex(doc, "metadata", &md)) {
			if (json_object_object_get_ex(md, "resourceVersion", &v))
				snprintf(rv, sizeof(rv), "%s", json_object_get_string(v));
			if (json_object_object_get_ex(md, "continue", &v))
				snprintf(cont, sizeof(cont), "%s", json_object_get_string(v));
		}
		meta_lock(k->m);
		if (first)
			meta_relist_begin(k->m, w->kind);
		for (size_t i = 0; i < json_object_array_length(items); i++)
			meta_apply(k->m, w->kind, META_ADDED, json_object_array_get_idx(items, i),
				   clock_unix_ms());
		if (!*cont)
			meta_relist_end(k->m, w->kind, clock_unix_ms());
		meta_unlock(k->m);
		json_object_put(doc);
		first = 0;
		if (!*cont)
			break;
	}
	set_rv(w, rv);
	pthread_mutex_lock(&w->lock);
	w->st.lists_total++;
	w->st.synced = 1;
	pthread_mutex_unlock(&w->lock);
	return err;
}

/* One watch from the last resourceVersion: 0 ended normally, -ESTALE 410, -EAGAIN error. */
static int do_watch(struct watcher *w)
{
	struct kube *k = w->k;
	struct curl_slist *hdrs = NULL;
	char rv[64], *url;
	long status = 0;
	CURLcode rc;
	CURL *c;

	pthread_mutex_lock(&w->lock);
	snprintf(rv, sizeof(rv), "%s", w->st.resource_version);
	pthread_mutex_unlock(&w->lock);
	if (asprintf(&url,
		     "%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%llu&resourceVersion=%s",
		     k->auth.server, api_paths[w->kind], (unsigned long long)k->cfg.watch_timeout_s,
		     rv) < 0)
		return -EAGAIN;
	w->len = 0;
	w->gone = 0;
	w->fatal = 0;
	c = request(w, url, &hdrs, 1);
	free(url);
	if (!c)
		return -EAGAIN;
	stat_add(w, &w->st.watches_total, 1);
	rc = perform(c, hdrs, &status);
	if (k->stop)
		return -EINTR;
	if (w->gone || status == 410)
		return -ESTALE;
	if (status != 200 || rc != CURLE_OK || w->fatal) {
		pr_warn("kube: watch %s from %s: %s (HTTP %ld)", meta_kind_name(w->kind), rv,
			rc != CURLE_OK ? curl_easy_strerror(rc) : "bad status", status);
		stat_add(w, &w->st.errors_total, 1);
		return -EAGAIN;
	}
	return 0;
}

static void *watch_main(void *arg)
{
	struct watcher *w = arg;
	struct kube *k = w->k;
	uint64_t backoff = k->cfg.backoff_min_ms;
	int need_list = 1, just_listed = 0;

	while (!k->stop) {
		int r;

		if (need_list) {
			r = do_list(w);
			if (r == -EINTR)
				break;
			if (r) {
				/* Full jitter: a thousand collectors must not list in step. */
				uint64_t d = backoff / 2 + (uint64_t)rand() % (backoff / 2 + 1);

				if (sleep_or_stop(k, d))
					break;
				backoff = backoff * 2 > k->cfg.backoff_max_ms ?
						  k->cfg.backoff_max_ms :
						  backoff * 2;
				continue;
			}
			need_list = 0;
			just_listed = 1;
			pr_info("kube: %s listed at resourceVersion %s", meta_kind_name(w->kind),
				w->st.resource_version);
		}
		r = do_watch(w);
		if (r == -EINTR)
			break;
		if (r == -ESTALE) {
			stat_add(w, &w->st.gone_total, 1);
			pr_info("kube: %s watch expired (410 Gone): listing again",
				meta_kind_name(w->kind));
			need_list = 1;
			/* Gone right after a list: do not hammer the API server with lists. */
			if (just_listed && sleep_or_stop(k, backoff))
				break;
			if (just_listed)
				backoff = backoff * 2 > k->cfg.backoff_max_ms ?
						  k->cfg.backoff_max_ms :
						  backoff * 2;
			just_listed = 0;
			continue;
		}
		just_listed = 0;
		if (r == 0) {
			backoff = k->cfg.backoff_min_ms;
			continue; /* the server ended the watch (timeoutSeconds): watch on */
		}
		/* Broken stream or refused watch: resume from the last version after a pause. */
		if (sleep_or_stop(k, backoff / 2 + (uint64_t)rand() % (backoff / 2 + 1)))
			break;
		backoff = backoff * 2 > k->cfg.backoff_max_ms ? k->cfg.backoff_max_ms : backoff * 2;
	}
	return NULL;
}

int kube_start(struct kube **out, const struct kube_config *cfg, struct meta *m)
{
	struct kube *k = calloc(1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	k->cfg = *cfg;
	if (!k->cfg.watch_timeout_s)
		k->cfg.watch_timeout_s = 300;
	if (!k->cfg.backoff_min_ms)
		k->cfg.backoff_min_ms = 200;
	if (!k->cfg.backoff_max_ms)
		k->cfg.backoff_max_ms = 30000;
	if (!k->cfg.max_list_bytes)
		k->cfg.max_list_bytes = 256u << 20;
	k->m = m;
	pthread_mutex_init(&k->stop_lock, NULL);
	pthread_cond_init(&k->stop_cond, NULL);
	err = cfg->in_cluster ? kubeauth_in_cluster(&k->auth) :
				kubeauth_from_kubeconfig(&k->auth, cfg->kubeconfig);
	if (err) {
		kube_stop(k);
		return err;
	}
	for (int i = 0; i < META_KINDS; i++) {
		struct watcher *w = &k->w[i];

		w->k = k;
		w->kind = (enum meta_kind)i;
		pthread_mutex_init(&w->lock, NULL);
		err = -pthread_create(&w->thread, NULL, watch_main, w);
		if (err) {
			kube_stop(k);
			return err;
		}
		w->started = 1;
	}
	pr_info("kube: watching %s", k->auth.server);
	*out = k;
	return 0;
}

void kube_stop(struct kube *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->stop_lock);
	k->stop = 1;
	pthread_cond_broadcast(&k->stop_cond);
	pthread_mutex_unlock(&k->stop_lock);
	for (int i = 0; i < META_KINDS; i++) {
		if (k->w[i].started)
			pthread_join(k->w[i].thread, NULL);
		if (k->w[i].k)
			pthread_mutex_destroy(&k->w[i].lock);
		free(k->w[i].buf);
	}
	kubeauth_free(&k->auth);
	pthread_mutex_destroy(&k->stop_lock);
	pthread_cond_destroy(&k->stop_cond);
	free(k);
}

void kube_stats(struct kube *k, enum meta_kind kind, struct kube_kind_stats *out)
{
	struct watcher *w = &k->w[kind];

	pthread_mutex_lock(&w->lock);
	*out = w->st;
	pthread_mutex_unlock(&w->lock);
}

const char *kube_server(struct kube *k)
{
	return k->auth.server;
}
