// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Names from a static metadata file: the JSON of `kubectl get pods,svc,nodes,rs,jobs -o json`,
 * reloaded when it changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "clock.h"
#include "kube.h"
#include "log.h"

/* The kind field of each object in the List. */
static const char *const kind_of_object[META_KINDS] = {
	[META_POD] = "Pod",   [META_SERVICE] = "Service",
	[META_NODE] = "Node", [META_REPLICASET] = "ReplicaSet",
	[META_JOB] = "Job",
};

int kube_apply_list(struct meta *m, json_object *list, uint64_t now_unix_ms)
{
	json_object *items;
	int seen[META_KINDS] = { 0 };
	size_t n;

	if (!json_object_is_type(list, json_type_object))
		return -EINVAL;
	if (!json_object_object_get_ex(list, "items", &items) ||
	    !json_object_is_type(items, json_type_array))
		return -EINVAL;
	n = json_object_array_length(items);
	meta_lock(m);
	for (int k = 0; k < META_KINDS; k++)
		meta_relist_begin(m, (enum meta_kind)k);
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(items, i), *kv;
		const char *kind = "";

		if (json_object_object_get_ex(o, "kind", &kv) &&
		    json_object_is_type(kv, json_type_string))
			kind = json_object_get_string(kv);
		for (int k = 0; k < META_KINDS; k++) {
			if (strcmp(kind, kind_of_object[k]) == 0) {
				meta_apply(m, (enum meta_kind)k, META_ADDED, o, now_unix_ms);
				seen[k]++;
				break;
			}
		}
	}
	for (int k = 0; k < META_KINDS; k++)
		meta_relist_end(m, (enum meta_kind)k, now_unix_ms);
	meta_unlock(m);
	return 0;
}

/* ---- static metadata file ---- */

struct metafile {
	char *path;
	struct meta *m;
	struct stat last;
	int loaded;
	uint64_t loads;
	uint64_t errors;
};

static int metafile_load(struct metafile *f)
{
	json_object *doc = json_object_from_file(f->path);
	int err;

	if (!doc) {
		pr_warn("metadata file %s: %s", f->path, json_util_get_last_err());
		f->errors++;
		return -EINVAL;
	}
	err = kube_apply_list(f->m, doc, clock_unix_ms());
	json_object_put(doc);
	if (err) {
		pr_warn("metadata file %s: not a List with items", f->path);
		f->errors++;
		return err;
	}
	f->loads++;
	return 1;
}

int metafile_open(struct metafile **out, const char *path, struct meta *m)
{
	struct metafile *f = calloc(1, sizeof(*f));
	int err;

	if (!f || !(f->path = strdup(path))) {
		free(f);
		return -ENOMEM;
	}
	f->m = m;
	err = metafile_poll(f);
	if (err < 0) {
		metafile_close(f);
		return err;
	}
	*out = f;
	return 0;
}

int metafile_poll(struct metafile *f)
{
	struct stat st;
	int r;

	if (stat(f->path, &st)) {
		if (!f->loaded) {
			pr_err("metadata file %s: %s", f->path, strerror(errno));
			return -errno;
		}
		return 0; /* vanished (being replaced): keep what we have */
	}
	if (f->loaded && st.st_mtim.tv_sec == f->last.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == f->last.st_mtim.tv_nsec && st.st_size == f->last.st_size &&
	    st.st_ino == f->last.st_ino)
		return 0;
	r = metafile_load(f);
	f->last = st; /* a bad version is not retried until it changes again */
	if (r > 0 || f->loaded) {
		f->loaded = 1;
		return r > 0 ? 1 : 0;
	}
	return r;
}

void metafile_close(struct metafile *f)
{
	if (!f)
		return;
	free(f->path);
	free(f);
}

uint64_t metafile_loads(struct metafile *f)
{
	return f ? f->loads : 0;
}

uint64_t metafile_errors(struct metafile *f)
{
	return f ? f->errors : 0;
}
