// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Reads SLO files (YAML via libyaml's document loader, whose marks give every message its
 * line) and refuses anything it does not understand: unknown keys, duplicate keys, objectives
 * out of range, latency thresholds that are not histogram bucket bounds. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "optparse.h"
#include "slo.h"

struct ctx {
	const char *name;
	yaml_document_t *doc;
	char *err;
	size_t err_size;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const yaml_node_t *node,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->err_size, "%s:%zu: ", c->name,
		     node ? (size_t)node->start_mark.line + 1 : (size_t)1);
	if (n < 0 || (size_t)n >= c->err_size)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Kubernetes object names (DNS-1123 labels) and our own names: they end up unescaped inside
 * PromQL label matchers, so nothing else may pass. */
static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SLO_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return 0;
	}
	return s[0] != '-' && s[n - 1] != '-';
}

static int valid_label_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SLO_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return 0;
	}
	return strncmp(s, "__", 2) != 0;
}

static int name_field(struct ctx *c, const yaml_node_t *v, const char *key, char *out)
{
	const char *s = scalar(v);

	if (!s)
		return fail(c, v, "%s must be a name", key);
	if (!valid_name(s))
		return fail(c, v,
			    "%s \"%s\" is not a valid name (lower-case letters, digits and '-', at "
			    "most %d characters)",
			    key, s, SLO_NAME_MAX - 1);
	strcpy(out, s);
	return 0;
}

/* "99.9" or "99.9%": the share of good events in percent, 0 < p < 100. */
static int percent_field(struct ctx *c, const yaml_node_t *v, const char *key, double *out)
{
	const char *s = scalar(v);
	char *end;
	double p;

	if (!s)
		return fail(c, v, "%s must be a percentage such as 99.9", key);
	errno = 0;
	p = strtod(s, &end);
	if (*end == '%')
		end++;
	if (errno || end == s || *end || !(p > 0 && p < 100))
		return fail(c, v,
			    "%s \"%s\" must be a percentage above 0 and below 100, such as 99.9",
			    key, s);
	*out = p / 100;
	return 0;
}

/* "250ms", "100us", "1s" or a bare number of seconds. */
static int seconds_field(struct ctx *c, const yaml_node_t *v, const char *key, double *out)
{
	const char *s = scalar(v);
	char *end;
	double x, mult = 1;

	if (!s)
		return fail(c, v, "%s must be a duration such as 250ms", key);
	errno = 0;
	x = strtod(s, &end);
	if (!strcmp(end, "ms"))
		mult = 1e-3;
	else if (!strcmp(end, "us"))
		mult = 1e-6;
	else if (!strcmp(end, "s") || !*end)
		mult = 1;
	else
		end = (char *)s;
	if (errno || end == s || !(x > 0) || !isfinite(x))
		return fail(c, v, "%s \"%s\" must be a positive duration such as 250ms or 0.25",
			    key, s);
	*out = x * mult;
	return 0;
}

/* "30d", "4w", "720h". At least one day: the ticket alert looks back three. */
static int period_field(struct ctx *c, const yaml_node_t *v, uint64_t *out)
{
	const char *s = scalar(v);
	char *end;
	unsigned long long n;
	uint64_t mult;

	if (!s)
		return fail(c, v, "period must be a duration such as 30d");
	errno = 0;
	n = strtoull(s, &end, 10);
	if (!strcmp(end, "h"))
		mult = 3600;
	else if (!strcmp(end, "d"))
		mult = 86400;
	else if (!strcmp(end, "w"))
		mult = 7 * 86400;
	else
		mult = 0;
	if (errno || end == s || !mult || s[0] == '-' || n == 0 || n > 366ULL * 86400 / mult ||
	    n * mult < 86400)
		return fail(c, v,
			    "period \"%s\" must be whole hours, days or weeks (\"30d\", \"4w\"), "
			    "from 1d to 366d",
			    s);
	*out = n * mult;
	return 0;
}

static int source_field(struct ctx *c, const yaml_node_t *v, enum slo_source *out)
{
	const char *s = scalar(v);

	if (s && !strcmp(s, "http"))
		*out = SLO_HTTP;
	else if (s && !strcmp(s, "grpc"))
		*out = SLO_GRPC;
	else if (s && !strcmp(s, "tcp"))
		*out = SLO_TCP;
	else if (s && !strcmp(s, "dns"))
		*out = SLO_DNS;
	else
		return fail(c, v, "from must be http, grpc, tcp or dns");
	return 0;
}

/* Calls fn for every key of a mapping, refusing duplicate and non-scalar keys. */
static int each_pair(struct ctx *c, const yaml_node_t *map, const char *what,
		     int (*fn)(struct ctx *, const char *, yaml_node_t *, yaml_node_t *, void *),
		     void *arg)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return fail(c, map, "%s must be a mapping of keys to values", what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = scalar(k);
		int err;

		if (!key)
			return fail(c, k, "keys in %s must be plain words", what);
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *prev = scalar(yaml_document_get_node(c->doc, q->key));

			if (prev && !strcmp(prev, key))
				return fail(c, k, "%s appears twice in %s", key, what);
		}
		err = fn(c, key, k, v, arg);
		if (err)
			return err;
	}
	return 0;
}

/* An availability or latency mapping: which keys it had, to tell what is missing. */
struct objective_keys {
	struct slo_objective *o;
	int latency;
	int from, objective, threshold, errors;
	yaml_node_t *errors_key;
};

/* gRPC status names (lib/vocab.h has them for the agent; the generator keeps its own list
 * to stay a small binary): the codes 1..16 that can be errors. */
static const char *const grpc_codes[] = {
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
};

/* errors: [UNAVAILABLE, ...]: which gRPC statuses count against availability. */
static int grpc_errors_field(struct ctx *c, const yaml_node_t *v, char *out, size_t size)
{
	size_t n = 0;

	if (!v || v->type != YAML_SEQUENCE_NODE ||
	    v->data.sequence.items.start == v->data.sequence.items.top)
		return fail(
			c, v,
			"errors must be a list of gRPC status names, e.g. [UNAVAILABLE, INTERNAL]");
	out[0] = 0;
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
	     i++) {
		const yaml_node_t *e = yaml_document_get_node(c->doc, *i);
		const char *name = scalar(e);
		size_t k;

		for (k = 0; name && k < sizeof(grpc_codes) / sizeof(grpc_codes[0]); k++)
			if (!strcmp(name, grpc_codes[k]))
				break;
		if (!name || k == sizeof(grpc_codes) / sizeof(grpc_codes[0]))
			return fail(
				c, e,
				"\"%s\" is not a gRPC error status (CANCELLED ... UNAUTHENTICATED; "
				"OK never is one)",
				name ? name : "");
		n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "|" : "", name);
		if (n >= size)
			return fail(c, e, "errors: too many");
	}
	return 0;
}

static int objective_pair(struct ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct objective_keys *ok = arg;

	if (!strcmp(key, "from")) {
		ok->from = 1;
		return source_field(c, v, &ok->o->from);
	}
	if (!strcmp(key, "objective")) {
		ok->objective = 1;
		return percent_field(c, v, "objective", &ok->o->target);
	}
	if (!strcmp(key, "threshold") && ok->latency) {
		ok->threshold = 1;
		return seconds_field(c, v, "threshold", &ok->o->threshold);
	}
	if (!strcmp(key, "errors") && !ok->latency) {
		ok->errors = 1;
		ok->errors_key = k;
		return grpc_errors_field(c, v, ok->o->grpc_errors, sizeof(ok->o->grpc_errors));
	}
	return fail(c, k, "unknown key \"%s\" (known: from, objective%s)", key,
		    ok->latency ? ", threshold" : ", errors (grpc)");
}

/* Parses one objective mapping and says, at its key's line, what it lacks. */
static int objective(struct ctx *c, const char *what, yaml_node_t *k, yaml_node_t *v,
		     struct slo_objective *o, int latency)
{
	struct objective_keys ok = { .o = o, .latency = latency };
	int err;

	o->set = 1;
	err = each_pair(c, v, what, objective_pair, &ok);
	if (err)
		return err;
	if (!ok.from)
		return fail(c, k, "%s needs from: http, grpc, tcp or dns", what);
	if (ok.errors && o->from != SLO_GRPC)
		return fail(c, ok.errors_key, "errors is for from: grpc only");
	if (!ok.errors)
		snprintf(o->grpc_errors, sizeof(o->grpc_errors), "%s", SLO_GRPC_ERRORS_DEFAULT);
	if (!ok.objective)
		return fail(c, k, "%s needs an objective (a percentage such as 99.9)", what);
	if (latency && !ok.threshold)
		return fail(c, k,
			    "latency needs a threshold (a histogram bucket bound, e.g. 250ms)");
	return 0;
}

static int labels_pair(struct ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct slo_spec *s = arg;
	const char *val = scalar(v);
	static const char *const reserved[] = { "slo",		"slo_namespace", "slo_service",
						"slo_workload", "slo_target",	 "sli",
						"severity",	"alertname" };

	if (!valid_label_name(key))
		return fail(c, k, "\"%s\" is not a Prometheus label name", key);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (!strcmp(key, reserved[i]))
			return fail(c, k, "label \"%s\" is set by the generator", key);
	if (!val || strlen(val) >= SLO_NAME_MAX || strpbrk(val, "\"\\\n{}"))
		return fail(c, v, "label %s must be a short string without quotes or braces", key);
	if (s->n_labels == SLO_MAX_LABELS)
		return fail(c, k, "at most %d labels", SLO_MAX_LABELS);
	strcpy(s->labels[s->n_labels][0], key);
	strcpy(s->labels[s->n_labels][1], val);
	s->n_labels++;
	return 0;
}

static int parse_buckets(struct ctx *c, yaml_node_t *v, struct slo_spec *s)
{
	s->n_buckets = 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v,
			    "buckets must be a list of the agent's histogram bounds in seconds");
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top;
	     i++) {
		yaml_node_t *b = yaml_document_get_node(c->doc, *i);
		double x;
		int err = seconds_field(c, b, "bucket bound", &x);

		if (err)
			return err;
		if (s->n_buckets == SLO_MAX_BUCKETS)
			return fail(c, b, "at most %d buckets", SLO_MAX_BUCKETS);
		if (s->n_buckets && x <= s->buckets[s->n_buckets - 1])
			return fail(c, b, "bucket bounds must increase");
		s->buckets[s->n_buckets++] = x;
	}
	if (!s->n_buckets)
		return fail(c, v, "buckets must not be empty");
	return 0;
}

struct top {
	struct slo_spec *s;
	yaml_node_t *latency_key, *name_node;
	int have_target;
};

static int top_pair(struct ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct top *t = arg;
	struct slo_spec *s = t->s;

	if (!strcmp(key, "service") || !strcmp(key, "workload")) {
		if (t->have_target)
			return fail(c, k, "give either service or workload, not both");
		t->have_target = 1;
		s->by_workload = key[0] == 'w';
		return name_field(c, v, key, s->target);
	}
	if (!strcmp(key, "namespace"))
		return name_field(c, v, key, s->namespace_);
	if (!strcmp(key, "name")) {
		t->name_node = v;
		return name_field(c, v, key, s->name);
	}
	if (!strcmp(key, "period"))
		return period_field(c, v, &s->period_s);
	if (!strcmp(key, "availability"))
		return objective(c, key, k, v, &s->availability, 0);
	if (!strcmp(key, "latency")) {
		t->latency_key = k;
		return objective(c, key, k, v, &s->latency, 1);
	}
	if (!strcmp(key, "labels"))
		return each_pair(c, v, "labels", labels_pair, s);
	if (!strcmp(key, "runbook")) {
		const char *u = scalar(v);

		if (!u || strlen(u) >= sizeof(s->runbook) || strpbrk(u, "\"\\\n{}"))
			return fail(c, v, "runbook must be a URL");
		strcpy(s->runbook, u);
		return 0;
	}
	if (!strcmp(key, "buckets"))
		return parse_buckets(c, v, s);
	return fail(c, k,
		    "unknown key \"%s\" (known: service, workload, namespace, name, period, "
		    "availability, latency, labels, runbook, buckets)",
		    key);
}

int slo_parse(const char *name, const char *text, size_t len, struct slo_spec *spec, char *err,
	      size_t err_size)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct ctx c = { .name = name, .doc = &doc, .err = err, .err_size = err_size };
	struct top t = { .s = spec };
	yaml_node_t *root;
	int ret;

	memset(spec, 0, sizeof(*spec));
	snprintf(spec->file, sizeof(spec->file), "%s", name);
	spec->period_s = 30 * 86400;
	spec->n_buckets = (unsigned int)opt_parse_buckets(OPT_DEFAULT_BUCKETS, spec->buckets,
							  SLO_MAX_BUCKETS);

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.context)
			snprintf(err, err_size, "%s:%zu: not YAML: %s, %s (at line %zu)", name,
				 (size_t)parser.context_mark.line + 1, parser.context,
				 parser.problem ? parser.problem : "parse error",
				 (size_t)parser.problem_mark.line + 1);
		else
			snprintf(err, err_size, "%s:%zu: not YAML: %s", name,
				 (size_t)parser.problem_mark.line + 1,
				 parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		ret = fail(&c, NULL,
			   "empty file: an SLO file names a service or workload and at "
			   "least one objective");
		goto out;
	}
	ret = each_pair(&c, root, "an SLO file", top_pair, &t);
	if (ret)
		goto out;
	if (!t.have_target) {
		ret = fail(&c, root, "name the service (or workload) the objectives are for");
		goto out;
	}
	if (!spec->namespace_[0]) {
		ret = fail(&c, root, "namespace is required");
		goto out;
	}
	if (!spec->availability.set && !spec->latency.set) {
		ret = fail(&c, root, "no objective: give availability, latency or both");
		goto out;
	}
	if (spec->latency.set) {
		unsigned int i;

		for (i = 0; i < spec->n_buckets; i++)
			if (fabs(spec->buckets[i] - spec->latency.threshold) <=
			    1e-9 * spec->buckets[i])
				break;
		if (i == spec->n_buckets) {
			char list[512] = "";
			size_t off = 0;

			for (unsigned int j = 0; j < spec->n_buckets && off < sizeof(list); j++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%g",
							j ? ", " : "", spec->buckets[j]);
			ret = fail(&c, t.latency_key,
				   "latency threshold %gs is not a histogram bucket bound, so the "
				   "share of requests under it cannot be counted (bounds: %s; set "
				   "buckets: if the agent runs with other --*-buckets)",
				   spec->latency.threshold, list);
			goto out;
		}
		spec->latency.threshold = spec->buckets[i];
	}
	if (!spec->name[0]) {
		if (strlen(spec->namespace_) + 1 + strlen(spec->target) >= SLO_NAME_MAX) {
			ret = fail(&c, root, "namespace-service is too long for a name: set name:");
			goto out;
		}
		strcpy(spec->name, spec->namespace_);
		strcat(spec->name, "-");
		strcat(spec->name, spec->target);
	}
	ret = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

int slo_parse_file(const char *path, struct slo_spec *spec, char *err, size_t err_size)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret;

	if (!f) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			char *nb;

			if (cap > (1u << 20)) {
				snprintf(err, err_size, "%s: larger than 1 MiB: not an SLO file",
					 path);
				free(buf);
				fclose(f);
				return -EFBIG;
			}
			nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, err_size, "%s: read error", path);
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	ret = slo_parse(path, buf ? buf : "", len, spec, err, err_size);
	free(buf);
	return ret;
}
