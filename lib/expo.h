/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Prometheus text exposition (version 0.0.4) into a memory buffer. The caller writes one
 * family at a time: expo_family() (HELP and TYPE), then that family's samples. Label values
 * are escaped here; no timestamps are ever written.
 */
#ifndef FLOWLENS_EXPO_H
#define FLOWLENS_EXPO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define EXPO_LABELS_MAX 1024

/*
 * The text goes into a chain of fixed blocks, never moved while it is written (a 100 MB
 * exposition grown by realloc would copy tens of MB while the caller holds its lock);
 * expo_close() joins them, after the caller has let go.
 */
struct expo_block;

struct expo {
	FILE *f;
	struct expo_block *head, *tail;
	size_t len;
	int nomem;
	const char *family; /* the family expo_begin() started */
};

/*
 * A metric family declared as data. A program lists its families once as an X-macro of
 * X(id, name, type, help) rows and makes the enum and the table from it:
 *   enum my_metric { MY_METRICS(EXPO_ENUM) };
 *   static const struct expo_def my_metrics[] = { MY_METRICS(EXPO_DEF) };
 */
struct expo_def {
	const char *name;
	const char *type; /* "counter", "gauge", "histogram" */
	const char *help;
};
#define EXPO_ENUM(id, name, type, help) id,
#define EXPO_DEF(id, name, type, help) [id] = { name, type, help },

/* Returns 0 or -errno. */
int expo_open(struct expo *e);
/* Finishes the text; *out is malloc'd and owned by the caller. Returns 0 or -errno. */
int expo_close(struct expo *e, char **out, size_t *len);

void expo_family(struct expo *e, const char *name, const char *type, const char *help);
/* Starts family d: HELP and TYPE, then the samples expo_put*() write under its name. */
void expo_begin(struct expo *e, const struct expo_def *d);
void expo_put(struct expo *e, const char *labels, uint64_t v);
void expo_put_double(struct expo *e, const char *labels, double v);
/* A family with one unlabelled sample. */
void expo_single(struct expo *e, const struct expo_def *d, uint64_t v);
void expo_single_double(struct expo *e, const struct expo_def *d, double v);

/*
 * Formats {k1="v1",k2="v2"} into buf from NULL-terminated key/value pairs; pairs with a NULL
 * value are skipped. Returns buf ("" when there are no labels).
 */
char *expo_labels(char *buf, size_t size, ...) __attribute__((sentinel));

void expo_u64(struct expo *e, const char *name, const char *labels, uint64_t v);
void expo_double(struct expo *e, const char *name, const char *labels, double v);

/*
 * A histogram sample set: counts[i] is the number of observations in (bounds[i-1],
 * bounds[i]], counts[n] those above the last bound. Written cumulatively with le labels,
 * +Inf, _sum and _count. extra_labels is a preformatted list without braces (may be "").
 */
void expo_histogram(struct expo *e, const char *name, const char *extra_labels,
		    const double *bounds, const uint64_t *counts, size_t n, double sum);

/* Formats a double as Prometheus expects (shortest round-trip form, +Inf/-Inf/NaN). */
void expo_format_double(char *buf, size_t size, double v);

#endif
