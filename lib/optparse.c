// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <net/if.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "log.h"
#include "optparse.h"

int opt_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long v;
	uint64_t mult;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		return -EINVAL;
	if (v == 0 || v > UINT64_MAX / mult / 1000)
		return -EINVAL;
	*ms = v * mult;
	return 0;
}

int opt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int opt_parse_listen(const char *s, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(s, ':');
	unsigned char tmp[16];
	uint64_t p;
	size_t hlen;

	if (!colon || opt_parse_u64(colon + 1, 1, 65535, &p))
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen >= host_size)
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (hlen == 0)
		strcpy(host, "0.0.0.0");
	if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

int opt_parse_buckets(const char *s, double *out, unsigned int max)
{
	char *copy = strdup(s), *tok, *save = NULL, *end;
	unsigned int n = 0;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		double v = strtod(tok, &end);

		if (end == tok || *end || !(v > 0) || v > 1e9 || n == max ||
		    (n && v <= out[n - 1])) {
			err = -EINVAL;
			break;
		}
		out[n++] = v;
	}
	free(copy);
	return err ? err : n ? (int)n : -EINVAL;
}

const struct opt_choice opt_log_levels[] = { { "error", LOG_LVL_ERROR },
					     { "warn", LOG_LVL_WARN },
					     { "info", LOG_LVL_INFO },
					     { "debug", LOG_LVL_DEBUG },
					     { NULL, 0 } };

/* Comma-separated globs or names, each shorter than maxlen; returns the count or -errno. */
static int parse_globs(const char *s, char **out, int max, size_t maxlen)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int n = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (n == max || strlen(tok) >= maxlen || !(out[n] = strdup(tok))) {
			while (n > 0)
				free(out[--n]);
			n = -EINVAL;
			break;
		}
		n++;
	}
	free(copy);
	return n ? n : -EINVAL;
}

static void free_globs(char **g, int *n)
{
	for (int i = 0; i < *n; i++)
		free(g[i]);
	*n = 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static int parse_int(const struct opt_def *d, const char *v, uint64_t *out)
{
	if (opt_parse_u64(v, d->min, d->max, out))
		return -EINVAL;
	if ((d->flags & OPT_POW2) && (*out & (*out - 1)))
		return -EINVAL;
	return 0;
}

/* Parses v into the field(s) d names; 0 or -EINVAL (the fields unchanged). */
static int apply(const struct opt_def *d, void *opts, const char *v)
{
	char *field = (char *)opts + d->offset, *field2 = (char *)opts + d->offset2;
	uint64_t u;
	int n;

	switch (d->kind) {
	case OPT_STR: {
		char *copy = strdup(v);

		if (!copy)
			return -EINVAL;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case OPT_U64:
	case OPT_U32:
	case OPT_U16:
		if (parse_int(d, v, &u))
			return -EINVAL;
		if (d->kind == OPT_U64)
			*(uint64_t *)field = u;
		else if (d->kind == OPT_U32)
			*(uint32_t *)field = (uint32_t)u;
		else
			*(uint16_t *)field = (uint16_t)u;
		return 0;
	case OPT_DURATION:
		if ((d->flags & OPT_ZERO_OK) && !strcmp(v, "0"))
			u = 0;
		else if (opt_parse_duration(v, &u) || u < d->min || (d->max && u > d->max))
			return -EINVAL;
		*(uint64_t *)field = u;
		return 0;
	case OPT_BOOL:
		return parse_bool(v, (int *)field);
	case OPT_CHOICE:
		for (const struct opt_choice *c = d->choices; c && c->name; c++) {
			if (!strcmp(c->name, v)) {
				*(int *)field = c->value;
				return 0;
			}
		}
		return -EINVAL;
	case OPT_LISTEN: {
		char host[OPT_HOST_MAX];
		int port;

		if (opt_parse_listen(v, host, sizeof(host), &port))
			return -EINVAL;
		memcpy(field, host, sizeof(host));
		*(int *)field2 = port;
		return 0;
	}
	case OPT_BUCKETS: {
		double b[OPT_BUCKETS_MAX];

		n = opt_parse_buckets(v, b, OPT_BUCKETS_MAX);
		if (n < 0)
			return -EINVAL;
		memcpy(field, b, sizeof(b));
		*(unsigned int *)field2 = (unsigned int)n;
		return 0;
	}
	case OPT_GLOBS:
	case OPT_NAMES: {
		char *g[OPT_GLOBS_MAX];

		n = parse_globs(v, g, OPT_GLOBS_MAX,
				d->kind == OPT_GLOBS ? IF_NAMESIZE : OPT_NAME_MAX);
		if (n < 0)
			return -EINVAL;
		free_globs((char **)field, (int *)field2);
		memcpy(field, g, (size_t)n * sizeof(g[0]));
		*(int *)field2 = n;
		return 0;
	}
	case OPT_FUNC:
		return d->parse(opts, v);
	}
	return -EINVAL;
}

static int invalid(const struct opt_program *p, const char *v, const char *source)
{
	fprintf(stderr, "%s: invalid value '%s' for %s (see --help)\n", p->name, v, source);
	return -EINVAL;
}

int opts_parse(const struct opt_program *p, void *opts, int argc, char **argv)
{
	struct option longs[p->n_defs + 3];
	char shorts[2 * p->n_defs + 8], flag[80];
	size_t nl = 0, ns = 0;
	int c;

	/* Defaults first: a default that does not parse is a bug in the table. */
	for (size_t i = 0; i < p->n_defs; i++) {
		const struct opt_def *d = &p->defs[i];

		if (d->name && d->def && apply(d, opts, d->def)) {
			fprintf(stderr, "%s: default '%s' of --%s does not parse\n", p->name,
				d->def, d->name);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < p->n_defs; i++) {
		const struct opt_def *d = &p->defs[i];
		const char *v = d->name && d->env ? getenv(d->env) : NULL;

		if (v && *v && apply(d, opts, v))
			return invalid(p, v, d->env);
	}

	shorts[ns++] = ':';
	for (size_t i = 0; i < p->n_defs; i++) {
		const struct opt_def *d = &p->defs[i];

		if (!d->name)
			continue;
		longs[nl++] =
			(struct option){ d->name,
					 d->kind == OPT_BOOL ? no_argument : required_argument,
					 NULL, 256 + (int)i };
		if (d->short_flag) {
			shorts[ns++] = (char)d->short_flag;
			if (d->kind != OPT_BOOL)
				shorts[ns++] = ':';
		}
	}
	longs[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[nl++] = (struct option){ "version", no_argument, NULL, 'V' };
	longs[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns++] = 'h';
	shorts[ns++] = 'V';
	shorts[ns] = '\0';

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct opt_def *d = NULL;

		if (c == 'h') {
			opts_usage(p, stdout);
			return 1;
		}
		if (c == 'V') {
			printf("%s %s\n", p->name, FLOWLENS_VERSION);
			return 1;
		}
		if (c >= 256 && (size_t)(c - 256) < p->n_defs) {
			d = &p->defs[c - 256];
		} else {
			for (size_t i = 0; i < p->n_defs && !d; i++)
				if (p->defs[i].name && p->defs[i].short_flag == c)
					d = &p->defs[i];
		}
		if (!d) {
			if (c == ':')
				fprintf(stderr, "%s: %s needs a value (see --help)\n", p->name,
					argv[optind - 1]);
			else
				fprintf(stderr, "%s: unrecognized option '%s' (see --help)\n",
					p->name, argv[optind - 1]);
			return -EINVAL;
		}
		snprintf(flag, sizeof(flag), "--%s", d->name);
		if (apply(d, opts, d->kind == OPT_BOOL ? "1" : optarg))
			return invalid(p, d->kind == OPT_BOOL ? "" : optarg, flag);
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", p->name,
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

void opts_free(const struct opt_program *p, void *opts)
{
	for (size_t i = 0; i < p->n_defs; i++) {
		const struct opt_def *d = &p->defs[i];
		char *field = (char *)opts + d->offset;

		if (!d->name)
			continue;
		if (d->kind == OPT_STR) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (d->kind == OPT_GLOBS || d->kind == OPT_NAMES) {
			free_globs((char **)field, (int *)((char *)opts + d->offset2));
		}
	}
}

/* Words of text, wrapped to width, each line after the first indented by indent. */
static void wrap(FILE *f, const char *text, int col, int indent, int width)
{
	const char *w = text;

	while (*w) {
		const char *end = w;
		int len;

		while (*end && *end != ' ')
			end++;
		len = (int)(end - w);
		if (col > indent && col + 1 + len > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(w, 1, (size_t)len, f);
		col += len;
		w = *end ? end + 1 : end;
	}
	fputc('\n', f);
}

#define USAGE_INDENT 32
#define USAGE_WIDTH 96

void opts_usage(const struct opt_program *p, FILE *f)
{
	fprintf(f, "Usage: %s %s\n\n", p->name, p->synopsis);
	wrap(f, p->about, 0, 0, USAGE_WIDTH);
	fprintf(f, "\nOptions (each also read from the FLOWLENS_* environment variable shown):\n");
	for (size_t i = 0; i < p->n_defs; i++) {
		const struct opt_def *d = &p->defs[i];
		char head[96], tail[160], text[1024];
		int col;

		if (!d->name) {
			fprintf(f, "\n%s\n", d->help);
			continue;
		}
		snprintf(head, sizeof(head), "  %c%c%s --%s%s%s", d->short_flag ? '-' : ' ',
			 d->short_flag ? d->short_flag : ' ', d->short_flag ? "," : " ", d->name,
			 d->arg ? " " : "", d->arg ? d->arg : "");
		col = fprintf(f, "%s", head);
		if (col >= USAGE_INDENT - 1) {
			fprintf(f, "\n%*s", USAGE_INDENT, "");
			col = USAGE_INDENT;
		} else {
			col += fprintf(f, "%*s", USAGE_INDENT - col, "");
		}
		if (d->def)
			snprintf(tail, sizeof(tail), "[%s, default %s]", d->env,
				 d->def_shown ? d->def_shown : d->def);
		else
			snprintf(tail, sizeof(tail), "[%s]", d->env);
		snprintf(text, sizeof(text), "%s %s", d->help, tail);
		wrap(f, text, col, USAGE_INDENT, USAGE_WIDTH);
	}
	fprintf(f, "  -h, --help                    this text\n"
		   "  -V, --version                 print the version\n");
	if (p->examples)
		fprintf(f, "\nExamples:\n%s", p->examples);
}

const char *opt_choice_name(const struct opt_choice *c, int value)
{
	for (; c && c->name; c++)
		if (c->value == value)
			return c->name;
	return "?";
}
