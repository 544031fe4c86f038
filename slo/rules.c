// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Turns SLO specs into Prometheus recording rules and multi-window, multi-burn-rate alerts
 * (the Google SRE workbook's "alerting on SLOs", method 6), written with libyaml's emitter. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "expo.h"
#include "slo.h"

/* The windows of the error ratios; every alert below reads two of them. */
static const char *const windows[] = { "5m", "30m", "1h", "2h", "6h", "1d", "3d" };

/* Burn-rate alerts: (factor, long window, short window, severity). A factor f spends the
 * whole period's budget in period/f: 14.4 spends 2% of 30 days' budget in an hour. */
static const struct burn {
	const char *factor;
	const char *long_w, *short_w;
	int page;
} burns[] = {
	{ "14.4", "1h", "5m", 1 },
	{ "6", "6h", "30m", 1 },
	{ "3", "1d", "2h", 0 },
	{ "1", "3d", "6h", 0 },
};

struct em {
	yaml_emitter_t e;
	int err;
};

static void ev(struct em *m, yaml_event_t *event, int ok)
{
	if (!ok || m->err) {
		m->err = 1;
		if (ok)
			yaml_event_delete(event);
		return;
	}
	if (!yaml_emitter_emit(&m->e, event))
		m->err = 1;
}

static void str_style(struct em *m, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t event;

	ev(m, &event,
	   yaml_scalar_event_initialize(&event, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
					style));
}

static void str(struct em *m, const char *s)
{
	str_style(m, s, YAML_ANY_SCALAR_STYLE);
}

/* Strings that look like numbers ("1", "0.999") must stay strings: label values are. */
static void quoted(struct em *m, const char *s)
{
	str_style(m, s, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

static void map_start(struct em *m)
{
	yaml_event_t event;

	ev(m, &event,
	   yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(struct em *m)
{
	yaml_event_t event;

	ev(m, &event, yaml_mapping_end_event_initialize(&event));
}

static void seq_start(struct em *m)
{
	yaml_event_t event;

	ev(m, &event,
	   yaml_sequence_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_end(struct em *m)
{
	yaml_event_t event;

	ev(m, &event, yaml_sequence_end_event_initialize(&event));
}

static void kv(struct em *m, const char *k, const char *v)
{
	str(m, k);
	quoted(m, v);
}

/* PromQL in block literal style, so a reader sees it as written. */
static void expr(struct em *m, const char *e)
{
	str(m, "expr");
	str_style(m, e, strchr(e, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
}

struct objective_ctx {
	const struct slo_spec *spec;
	const struct slo_objective *o;
	int latency;
	char slo[SLO_NAME_MAX * 2];
	char sli[32];
	char sel[256]; /* destination_namespace="..",destination_service="..",reporter="client" */
	char budget[32]; /* 1 - target, "0.001" */
	char target[32];
	char threshold[32];
};

static const char *source_name(enum slo_source s)
{
	static const char *const names[] = {
		[SLO_HTTP] = "http", [SLO_TCP] = "tcp", [SLO_DNS] = "dns", [SLO_GRPC] = "grpc"
	};

	return names[s];
}

/*
 * Number of bad and of all events per second over window w, as PromQL. By cluster: several
 * clusters in one Prometheus or AMP workspace (the collector's --cluster-name, or an external
 * label) never burn each other's budget; without the label it is one sum, as before.
 */
static void rates(const struct objective_ctx *c, const char *w, char *bad, char *all, size_t size)
{
	static const char *const counters[] = {
		[SLO_HTTP] = "flowlens_http_requests_total",
		[SLO_TCP] = "flowlens_tcp_connections_total",
		[SLO_DNS] = "flowlens_dns_requests_total",
		[SLO_GRPC] = "flowlens_grpc_requests_total",
	};
	static const char *const bad_match[] = {
		[SLO_HTTP] = "status_class=\"5xx\"",
		[SLO_TCP] = "result=~\"refused|timeout\"",
		[SLO_DNS] = "rcode!~\"NOERROR|NXDOMAIN\"",
		[SLO_GRPC] = NULL, /* the objective's own list */
	};
	static const char *const hists[] = {
		[SLO_HTTP] = "flowlens_http_request_duration_seconds",
		[SLO_TCP] = "flowlens_tcp_connect_duration_seconds",
		[SLO_DNS] = "flowlens_dns_request_duration_seconds",
		[SLO_GRPC] = "flowlens_grpc_request_duration_seconds",
	};
	char grpc_bad[SLO_GRPC_ERRORS_MAX + 32];

	if (c->latency) {
		const char *h = hists[c->o->from];

		snprintf(all, size, "sum by (cluster) (rate(%s_count{%s}[%s]))", h, c->sel, w);
		snprintf(bad, size, "%s\n  -\nsum by (cluster) (rate(%s_bucket{%s,le=\"%s\"}[%s]))",
			 all, h, c->sel, c->threshold, w);
	} else {
		const char *ctr = counters[c->o->from];
		/* No bad events yet means no bad series: 0, not "no data", while there is
		 * traffic. */
		const char *bm = bad_match[c->o->from];

		if (c->o->from == SLO_GRPC) {
			snprintf(grpc_bad, sizeof(grpc_bad), "grpc_status=~\"%s\"",
				 c->o->grpc_errors);
			bm = grpc_bad;
		}
		snprintf(all, size, "sum by (cluster) (rate(%s{%s}[%s]))", ctr, c->sel, w);
		snprintf(bad, size, "sum by (cluster) (rate(%s{%s,%s}[%s]))\n  or\n0 * %s", ctr,
			 c->sel, bm, w, all);
	}
}

static void slo_labels(struct em *m, const struct objective_ctx *c)
{
	kv(m, "slo", c->slo);
	kv(m, "slo_namespace", c->spec->namespace_);
	kv(m, c->spec->by_workload ? "slo_workload" : "slo_service", c->spec->target);
	/* The same name under one label whatever the kind, for dashboards to select by. */
	kv(m, "slo_target", c->spec->target);
	kv(m, "sli", c->sli);
}

static void record(struct em *m, const struct objective_ctx *c, const char *name, const char *e)
{
	map_start(m);
	str(m, "record");
	str(m, name);
	expr(m, e);
	str(m, "labels");
	map_start(m);
	slo_labels(m, c);
	map_end(m);
	map_end(m);
}

static void period_text(uint64_t s, char *buf, size_t size)
{
	if (s % 86400 == 0)
		snprintf(buf, size, "%llud", (unsigned long long)(s / 86400));
	else
		snprintf(buf, size, "%lluh", (unsigned long long)(s / 3600));
}

/* "0.999" from 0.99900000000000000022: twelve significant digits, trailing zeros dropped. */
static void ratio_text(double v, char *buf, size_t size)
{
	snprintf(buf, size, "%.12g", v);
}

static void write_objective(struct em *m, const struct slo_spec *s, const struct slo_objective *o,
			    int latency)
{
	struct objective_ctx c = { .spec = s, .o = o, .latency = latency };
	char bad[2048], all[1024], e[8192], name[64], period[24], sel[160];

	snprintf(c.slo, sizeof(c.slo), "%s-%s", s->name, latency ? "latency" : "availability");
	snprintf(c.sli, sizeof(c.sli), "%s-%s", source_name(o->from),
		 latency ? "latency" : "availability");
	snprintf(c.sel, sizeof(c.sel), "destination_namespace=\"%s\",%s=\"%s\",reporter=\"client\"",
		 s->namespace_, s->by_workload ? "destination_workload" : "destination_service",
		 s->target);
	ratio_text(o->target, c.target, sizeof(c.target));
	ratio_text(1 - o->target, c.budget, sizeof(c.budget));
	expo_format_double(c.threshold, sizeof(c.threshold), o->threshold);
	period_text(s->period_s, period, sizeof(period));
	snprintf(sel, sizeof(sel), "{slo=\"%s\"}", c.slo);

	rates(&c, "5m", bad, all, sizeof(all));
	record(m, &c, "flowlens_slo:requests:rate5m", all);
	snprintf(e, sizeof(e), "%s", bad);
	record(m, &c, "flowlens_slo:errors:rate5m", e);
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		rates(&c, windows[i], bad, all, sizeof(all));
		snprintf(e, sizeof(e), "(\n%s\n)\n/\n%s", bad, all);
		snprintf(name, sizeof(name), "flowlens_slo:sli_error:ratio_rate%s", windows[i]);
		record(m, &c, name, e);
	}
	/* The period's ratio from the 5m rates: summing rates over the period weighs every
	 * moment by its traffic, as one big ratio would, at the cost of one series per SLO. */
	snprintf(e, sizeof(e),
		 "sum_over_time(flowlens_slo:errors:rate5m%s[%s])\n/\n"
		 "sum_over_time(flowlens_slo:requests:rate5m%s[%s])",
		 sel, period, sel, period);
	record(m, &c, "flowlens_slo:sli_error:ratio_period", e);
	snprintf(e, sizeof(e), "vector(%s)", c.target);
	record(m, &c, "flowlens_slo:objective:ratio", e);
	snprintf(e, sizeof(e), "vector(%s)", c.budget);
	record(m, &c, "flowlens_slo:error_budget:ratio", e);
	snprintf(e, sizeof(e), "1 - flowlens_slo:sli_error:ratio_period%s / %s", sel, c.budget);
	record(m, &c, "flowlens_slo:period_error_budget_remaining:ratio", e);
	snprintf(e, sizeof(e), "flowlens_slo:sli_error:ratio_rate1h%s / %s", sel, c.budget);
	record(m, &c, "flowlens_slo:burn_rate:1h", e);

	for (int page = 1; page >= 0; page--) {
		char summary[512], desc[1024], bad_what[128], pct[32], budget_pct[32];
		size_t off = 0;

		for (size_t i = 0; i < sizeof(burns) / sizeof(burns[0]); i++) {
			if (burns[i].page != page)
				continue;
			off += (size_t)snprintf(
				e + off, sizeof(e) - off,
				"%s(\n  flowlens_slo:sli_error:ratio_rate%s%s > (%s * %s)\n  and\n"
				"  flowlens_slo:sli_error:ratio_rate%s%s > (%s * %s)\n)",
				off ? "\nor\n" : "", burns[i].long_w, sel, burns[i].factor,
				c.budget, burns[i].short_w, sel, burns[i].factor, c.budget);
		}
		if (latency)
			snprintf(bad_what, sizeof(bad_what), "%s slower than %ss",
				 o->from == SLO_TCP ? "connects" : "requests", c.threshold);
		else
			snprintf(bad_what, sizeof(bad_what), "%s",
				 o->from == SLO_HTTP ?
					 "requests answered 5xx" :
				 o->from == SLO_TCP ?
					 "connections refused or timed out" :
				 o->from == SLO_GRPC ?
					 "gRPC requests failed (server-side statuses)" :
					 "DNS queries failed (SERVFAIL, REFUSED, timeout)");
		ratio_text(o->target * 100, pct, sizeof(pct));
		ratio_text((1 - o->target) * 100, budget_pct, sizeof(budget_pct));
		snprintf(summary, sizeof(summary), "%s/%s: %s burning the %s error budget %s",
			 s->namespace_, s->target, latency ? "latency SLO" : "availability SLO",
			 period, page ? "fast (page)" : "steadily (ticket)");
		snprintf(
			desc, sizeof(desc),
			"{{ $value | humanizePercentage }} of %s to %s %s/%s (client side) in the "
			"last %s; the objective %s%% allows %s%%. At this rate the %s budget is gone "
			"in %s.",
			bad_what, s->by_workload ? "workload" : "service", s->namespace_, s->target,
			page ? "hour or 6 hours" : "day or 3 days", pct, budget_pct, period,
			page ? "2-5 days or less" : "10-30 days or less");
		map_start(m);
		str(m, "alert");
		str(m, "FlowlensSLOErrorBudgetBurn");
		expr(m, e);
		str(m, "labels");
		map_start(m);
		slo_labels(m, &c);
		kv(m, "severity", page ? "page" : "ticket");
		for (unsigned int i = 0; i < s->n_labels; i++)
			kv(m, s->labels[i][0], s->labels[i][1]);
		map_end(m);
		str(m, "annotations");
		map_start(m);
		kv(m, "summary", summary);
		kv(m, "description", desc);
		if (s->runbook[0])
			kv(m, "runbook_url", s->runbook);
		map_end(m);
		map_end(m);
	}
}

static void write_groups(struct em *m, const struct slo_spec *specs, size_t n)
{
	str(m, "groups");
	seq_start(m);
	for (size_t i = 0; i < n; i++) {
		char gname[SLO_NAME_MAX + 16];

		snprintf(gname, sizeof(gname), "flowlens-slo-%s", specs[i].name);
		map_start(m);
		str(m, "name");
		str(m, gname);
		str(m, "rules");
		seq_start(m);
		if (specs[i].availability.set)
			write_objective(m, &specs[i], &specs[i].availability, 0);
		if (specs[i].latency.set)
			write_objective(m, &specs[i], &specs[i].latency, 1);
		seq_end(m);
		map_end(m);
	}
	seq_end(m);
}

static int write_handler(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, data) == size;
}

int slo_write_rules(const struct slo_output *out, const struct slo_spec *specs, size_t n, FILE *f)
{
	struct em m = { 0 };
	yaml_event_t event;
	int ret;

	if (!yaml_emitter_initialize(&m.e))
		return -ENOMEM;
	yaml_emitter_set_output(&m.e, write_handler, f);
	yaml_emitter_set_width(&m.e, 100);
	yaml_emitter_set_unicode(&m.e, 1);
	ev(&m, &event, yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING));
	ev(&m, &event, yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1));
	map_start(&m);
	if (out->format == SLO_FORMAT_PROMETHEUSRULE) {
		str(&m, "apiVersion");
		str(&m, "monitoring.coreos.com/v1");
		str(&m, "kind");
		str(&m, "PrometheusRule");
		str(&m, "metadata");
		map_start(&m);
		str(&m, "name");
		str(&m, out->rule_name);
		if (out->rule_namespace) {
			str(&m, "namespace");
			str(&m, out->rule_namespace);
		}
		str(&m, "labels");
		map_start(&m);
		kv(&m, "app.kubernetes.io/name", "flowlens");
		kv(&m, "app.kubernetes.io/component", "slo-rules");
		for (unsigned int i = 0; i < out->n_rule_labels; i++)
			kv(&m, out->rule_labels[i][0], out->rule_labels[i][1]);
		map_end(&m);
		map_end(&m);
		str(&m, "spec");
		map_start(&m);
		write_groups(&m, specs, n);
		map_end(&m);
	} else {
		write_groups(&m, specs, n);
	}
	map_end(&m);
	ev(&m, &event, yaml_document_end_event_initialize(&event, 1));
	ev(&m, &event, yaml_stream_end_event_initialize(&event));
	ret = m.err ? -EIO : 0;
	yaml_emitter_delete(&m.e);
	return ret;
}
