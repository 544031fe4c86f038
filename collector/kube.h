/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where the collector's metadata (meta.h) comes from:
 *  - the Kubernetes API: list, then watch from the list's resourceVersion with bookmarks, a
 *    relist on 410 Gone, reconnects with exponential backoff and jitter; one thread per kind
 *    (pods, services, nodes, replicasets, jobs), libcurl + json-c. Credentials from the
 *    in-cluster service account or a kubeconfig file (libyaml).
 *  - a static metadata file: the JSON of `kubectl get pods,svc,nodes,rs,jobs -o json` (a List
 *    of objects with their kind), reloaded when it changes.
 */
#ifndef FLOWLENS_KUBE_H
#define FLOWLENS_KUBE_H

#include <stdint.h>
#include "meta.h"

struct kube_config {
	/* API server: "in-cluster", or a kubeconfig path; NULL for none. */
	const char *kubeconfig;
	int in_cluster;
	uint64_t watch_timeout_s; /* asked of the server per watch (timeoutSeconds) */
	uint64_t backoff_min_ms;
	uint64_t backoff_max_ms;
	uint64_t max_list_bytes; /* per list page */
};

struct kube_kind_stats {
	uint64_t lists_total; /* full relists (all pages) */
	uint64_t watches_total; /* watch requests made */
	uint64_t events_total; /* ADDED/MODIFIED/DELETED applied */
	uint64_t bookmarks_total;
	uint64_t gone_total; /* 410 Gone: resourceVersion too old, relisted */
	uint64_t errors_total; /* failed requests, broken streams, bad JSON */
	int synced;
	char resource_version[64];
};

struct kube;

/* Starts the watcher threads. Returns 0 or -errno (bad kubeconfig, no in-cluster env). */
int kube_start(struct kube **out, const struct kube_config *cfg, struct meta *m);
void kube_stop(struct kube *k);
void kube_stats(struct kube *k, enum meta_kind kind, struct kube_kind_stats *out);
/* The API server URL in use. */
const char *kube_server(struct kube *k);

/* Static metadata file. */
struct metafile;

int metafile_open(struct metafile **out, const char *path, struct meta *m);
/* Reloads when the file's mtime, size or inode changed. 1 reloaded, 0 unchanged, -errno. */
int metafile_poll(struct metafile *f);
void metafile_close(struct metafile *f);
uint64_t metafile_loads(struct metafile *f);
uint64_t metafile_errors(struct metafile *f);

/* Applies every object of a List (or one object) with a "kind"; used by the file and tests. */
int kube_apply_list(struct meta *m, json_object *list, uint64_t now_unix_ms);

#endif
