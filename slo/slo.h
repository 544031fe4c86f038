/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* SLO files: what one service's or workload's objectives are, read from a small YAML file. */
#ifndef FLOWLENS_SLO_H
#define FLOWLENS_SLO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SLO_NAME_MAX 64
#define SLO_MAX_LABELS 16
#define SLO_MAX_BUCKETS 32

/* Which of the agent's signals an objective is computed from. */
enum slo_source {
	SLO_HTTP, /* flowlens_http_requests_total / flowlens_http_request_duration_seconds */
	SLO_TCP, /* flowlens_tcp_connections_total / flowlens_tcp_connect_duration_seconds */
	SLO_DNS, /* flowlens_dns_requests_total / flowlens_dns_request_duration_seconds */
	SLO_GRPC, /* flowlens_grpc_requests_total / flowlens_grpc_request_duration_seconds */
};

/* The gRPC status codes availability counts as errors unless the file says otherwise: the
 * ones the gRPC status code guidance attributes to the server. */
#define SLO_GRPC_ERRORS_DEFAULT \
	"UNKNOWN|DEADLINE_EXCEEDED|UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS"
#define SLO_GRPC_ERRORS_MAX 256

struct slo_objective {
	int set;
	enum slo_source from;
	double target; /* share of good events, 0 < target < 1 */
	double threshold; /* latency only: seconds, one of the bucket bounds */
	char grpc_errors[SLO_GRPC_ERRORS_MAX]; /* availability from grpc: "A|B|..." */
};

struct slo_spec {
	char file[256];
	char name[SLO_NAME_MAX]; /* default "<namespace>-<service or workload>" */
	char namespace_[SLO_NAME_MAX];
	char target[SLO_NAME_MAX]; /* the Service or workload name */
	int by_workload; /* 1: destination_workload, 0: destination_service */
	uint64_t period_s; /* default 30 days */
	struct slo_objective availability;
	struct slo_objective latency;
	char labels[SLO_MAX_LABELS][2][SLO_NAME_MAX]; /* extra labels on the alerts */
	unsigned int n_labels;
	char runbook[256];
	double buckets[SLO_MAX_BUCKETS];
	unsigned int n_buckets;
};

/* Reads and checks one SLO file. On error returns -EINVAL and writes "FILE:LINE: what is
 * wrong" to err. */
int slo_parse_file(const char *path, struct slo_spec *spec, char *err, size_t err_size);
/* The same, from a buffer; `name` is what messages call it. */
int slo_parse(const char *name, const char *text, size_t len, struct slo_spec *spec, char *err,
	      size_t err_size);

enum slo_format {
	SLO_FORMAT_RULES, /* a Prometheus rule file: { groups: [...] } */
	SLO_FORMAT_PROMETHEUSRULE, /* a monitoring.coreos.com/v1 PrometheusRule */
};

struct slo_output {
	enum slo_format format;
	const char *rule_name; /* PrometheusRule metadata.name */
	const char *rule_namespace; /* PrometheusRule metadata.namespace, may be NULL */
	char rule_labels[SLO_MAX_LABELS][2][SLO_NAME_MAX]; /* PrometheusRule metadata.labels */
	unsigned int n_rule_labels;
};

/* Writes recording rules and burn-rate alerts for every spec. Returns 0 or -EIO. */
int slo_write_rules(const struct slo_output *out, const struct slo_spec *specs, size_t n, FILE *f);

#endif
