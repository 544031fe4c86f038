// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE /* fopencookie */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "expo.h"

#define EXPO_BLOCK (1u << 20)

struct expo_block {
	struct expo_block *next;
	size_t used;
	char data[EXPO_BLOCK];
};

static ssize_t block_write(void *cookie, const char *buf, size_t n)
{
	struct expo *e = cookie;
	size_t done = 0;

	while (done < n) {
		struct expo_block *b = e->tail;
		size_t k;

		if (!b || b->used == EXPO_BLOCK) {
			b = malloc(sizeof(*b));
			if (!b) {
				e->nomem = 1;
				errno = ENOMEM;
				return done ? (ssize_t)done : -1;
			}
			b->next = NULL;
			b->used = 0;
			if (e->tail)
				e->tail->next = b;
			else
				e->head = b;
			e->tail = b;
		}
		k = EXPO_BLOCK - b->used < n - done ? EXPO_BLOCK - b->used : n - done;
		memcpy(b->data + b->used, buf + done, k);
		b->used += k;
		done += k;
	}
	e->len += n;
	return (ssize_t)n;
}

int expo_open(struct expo *e)
{
	cookie_io_functions_t io = { .write = block_write };

	e->head = e->tail = NULL;
	e->len = 0;
	e->nomem = 0;
	e->f = fopencookie(e, "w", io);
	if (!e->f)
		return -errno;
	setvbuf(e->f, NULL, _IOFBF, 65536);
	return 0;
}

int expo_close(struct expo *e, char **out, size_t *len)
{
	int err = ferror(e->f) ? -ENOMEM : 0;
	struct expo_block *b, *next;
	char *buf = NULL;
	size_t off = 0;

	if (fclose(e->f) != 0 && !err)
		err = -errno;
	e->f = NULL;
	if (e->nomem)
		err = -ENOMEM;
	if (!err) {
		buf = malloc(e->len + 1);
		if (!buf)
			err = -ENOMEM;
	}
	for (b = e->head; b; b = next) {
		next = b->next;
		if (buf) {
			memcpy(buf + off, b->data, b->used);
			off += b->used;
		}
		free(b);
	}
	e->head = e->tail = NULL;
	if (err)
		return err;
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
}

/* HELP text escapes backslash and newline. */
static void write_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void expo_family(struct expo *e, const char *name, const char *type, const char *help)
{
	fprintf(e->f, "# HELP %s ", name);
	write_help(e->f, help);
	fprintf(e->f, "\n# TYPE %s %s\n", name, type);
}

void expo_begin(struct expo *e, const struct expo_def *d)
{
	e->family = d->name;
	expo_family(e, d->name, d->type, d->help);
}

void expo_put(struct expo *e, const char *labels, uint64_t v)
{
	expo_u64(e, e->family, labels, v);
}

void expo_put_double(struct expo *e, const char *labels, double v)
{
	expo_double(e, e->family, labels, v);
}

void expo_single(struct expo *e, const struct expo_def *d, uint64_t v)
{
	expo_begin(e, d);
	expo_put(e, NULL, v);
}

void expo_single_double(struct expo *e, const struct expo_def *d, double v)
{
	expo_begin(e, d);
	expo_put_double(e, NULL, v);
}

/* Label values escape backslash, double quote and newline. Returns bytes written or -1. */
static int escape_value(char *out, size_t size, const char *v)
{
	size_t n = 0;

	for (; *v; v++) {
		const char *rep = NULL;

		if (*v == '\\')
			rep = "\\\\";
		else if (*v == '"')
			rep = "\\\"";
		else if (*v == '\n')
			rep = "\\n";
		if (rep) {
			if (n + 2 >= size)
				return -1;
			memcpy(out + n, rep, 2);
			n += 2;
		} else {
			if (n + 1 >= size)
				return -1;
			out[n++] = *v;
		}
	}
	out[n] = '\0';
	return (int)n;
}

char *expo_labels(char *buf, size_t size, ...)
{
	va_list ap;
	size_t n = 0;
	const char *k;
	int first = 1;

	buf[0] = '\0';
	va_start(ap, size);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		int w;

		if (!v)
			continue;
		w = snprintf(buf + n, size - n, "%s%s=\"", first ? "{" : ",", k);
		if (w < 0 || (size_t)w >= size - n)
			goto overflow;
		n += (size_t)w;
		w = escape_value(buf + n, size - n, v);
		if (w < 0)
			goto overflow;
		n += (size_t)w;
		if (n + 2 >= size)
			goto overflow;
		buf[n++] = '"';
		buf[n] = '\0';
		first = 0;
	}
	va_end(ap);
	if (!first) {
		if (n + 2 > size)
			goto overflow_end;
		buf[n++] = '}';
		buf[n] = '\0';
	}
	return buf;
overflow:
	va_end(ap);
overflow_end:
	/* A label set that does not fit is a programming error; emit it unlabelled. */
	buf[0] = '\0';
	return buf;
}

void expo_format_double(char *buf, size_t size, double v)
{
	if (isinf(v))
		snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (isnan(v))
		snprintf(buf, size, "NaN");
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		snprintf(buf, size, "%lld", (long long)v);
	else {
		/* Shortest form that reads back as the same double: 0.005, not 0.0050000000000000001. */
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
}

void expo_u64(struct expo *e, const char *name, const char *labels, uint64_t v)
{
	fprintf(e->f, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

void expo_double(struct expo *e, const char *name, const char *labels, double v)
{
	char num[40];

	expo_format_double(num, sizeof(num), v);
	fprintf(e->f, "%s%s %s\n", name, labels ? labels : "", num);
}

void expo_histogram(struct expo *e, const char *name, const char *extra_labels,
		    const double *bounds, const uint64_t *counts, size_t n, double sum)
{
	const char *sep = extra_labels && extra_labels[0] ? "," : "";
	const char *xl = extra_labels ? extra_labels : "";
	uint64_t cum = 0;
	char num[40];

	for (size_t i = 0; i <= n; i++) {
		cum += counts[i];
		if (i < n)
			expo_format_double(num, sizeof(num), bounds[i]);
		else
			snprintf(num, sizeof(num), "+Inf");
		fprintf(e->f, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, xl, sep, num,
			(unsigned long long)cum);
	}
	expo_format_double(num, sizeof(num), sum);
	if (xl[0]) {
		fprintf(e->f, "%s_sum{%s} %s\n", name, xl, num);
		fprintf(e->f, "%s_count{%s} %llu\n", name, xl, (unsigned long long)cum);
	} else {
		fprintf(e->f, "%s_sum %s\n", name, num);
		fprintf(e->f, "%s_count %llu\n", name, (unsigned long long)cum);
	}
}
