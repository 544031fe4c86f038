/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Agent configuration from flags and FLOWLENS_* environment variables. */
#ifndef FLOWLENS_OPTIONS_H
#define FLOWLENS_OPTIONS_H

#include <stdint.h>
#include "log.h"
#include "optparse.h"

enum attach_mode {
	ATTACH_AUTO = 0, /* tcx where the kernel has it, else legacy clsact */
	ATTACH_TCX,
	ATTACH_TC,
};

enum xlate_mode {
	XLATE_AUTO = 0, /* kfunc where the kernel has it, else netlink */
	XLATE_KFUNC,
	XLATE_NETLINK,
	XLATE_OFF,
};

enum output_mode {
	OUTPUT_NONE = 0,
	OUTPUT_JSON, /* one JSON line per flow aggregate per interval on stdout */
};

struct agent_options {
	char *interfaces[OPT_GLOBS_MAX];
	int n_interfaces;
	char *pod_interfaces[OPT_GLOBS_MAX];
	int n_pod_interfaces;
	uint64_t interval_ms;
	uint64_t idle_timeout_ms;
	uint64_t reconcile_ms; /* attachments checked against live interfaces this often */
	uint64_t netlink_rcvbuf; /* interface notification buffer, bytes */
	char listen_host[OPT_HOST_MAX];
	int listen_port;
	uint32_t flow_table_size;
	uint32_t ringbuf_size;
	uint32_t overflow_pending_max;
	enum attach_mode attach_mode;
	uint16_t tc_priority;
	enum output_mode output;
	enum log_level log_level;
	char *collector_url;
	char *token_file;
	char *collector_ca_file;
	uint32_t export_buffer_bytes;
	enum xlate_mode translation;
	int flow_slots; /* per-CPU last-flow slots (bpf/cache.bpf.h) */
	int signal_tcp; /* TCP connection outcomes and connect latency */
	int signal_http; /* HTTP/1.x requests */
	int signal_dns; /* DNS queries */
	int signal_drops; /* kernel drops with their reason */
	uint64_t dns_timeout_ms;
	double dns_buckets[OPT_BUCKETS_MAX];
	unsigned int n_dns_buckets;
	double http_buckets[OPT_BUCKETS_MAX];
	unsigned int n_http_buckets;
	uint64_t tcp_connect_timeout_ms;
	double tcp_connect_buckets[OPT_BUCKETS_MAX];
	unsigned int n_tcp_connect_buckets;
	char *ethtool_stats[OPT_GLOBS_MAX]; /* driver counters of node interfaces to export */
	int n_ethtool_stats;
};

/*
 * Fills opts from defaults, then the environment, then argv. Returns 0 to run, 1 when the
 * program should exit successfully (--help, --version), or -EINVAL after printing why.
 */
int options_parse(struct agent_options *opts, int argc, char **argv);
void options_free(struct agent_options *opts);

/* Names of enum xlate_mode values, as --translation takes them. */
extern const struct opt_choice options_translations[];

#endif
