/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Collector configuration from flags and FLOWLENS_* environment variables. */
#ifndef FLOWLENS_COLLECTOR_OPTIONS_H
#define FLOWLENS_COLLECTOR_OPTIONS_H

#include <stdint.h>
#include "log.h"
#include "optparse.h"

struct collector_options {
	char listen_host[OPT_HOST_MAX];
	int listen_port;
	char *token_file;
	char *tls_cert_file;
	char *tls_key_file;
	uint64_t max_body;
	uint64_t max_decompressed;
	uint64_t max_series;
	uint64_t max_agents;
	uint64_t ttl_ms;
	uint64_t shutdown_grace_ms;
	uint64_t zero_hold_ms;
	char *state_dir;
	uint64_t snapshot_ms;
	enum log_level log_level;
	char *metadata_file;
	char *kubeconfig;
	int in_cluster; /* -1 auto (when KUBERNETES_SERVICE_HOST is set), 0 off, 1 on */
	char *cluster_cidrs;
	int pod_labels;
	int ip_labels;
	uint64_t join_wait_ms;
	uint64_t ip_history_ms;
	uint64_t max_joins;
	uint64_t agent_protect_ms;
	uint64_t max_connections;
	uint64_t max_connections_per_ip;
	uint64_t max_buffered;
	uint64_t request_timeout_ms;
	char *cluster_name; /* --cluster-name */
	char *shard;
	char *ha_lease; /* NAMESPACE/NAME */
	char *ha_identity;
	uint64_t ha_lease_ms;
	uint64_t ha_renew_ms;
	char *peers;
	char *peer_ca_file;
	char *peer_token_file;
	uint64_t peer_bootstrap_ms;
};

/* Returns 0 to run, 1 to exit successfully (--help, --version), -EINVAL after printing why. */
int collector_options_parse(struct collector_options *o, int argc, char **argv);
void collector_options_free(struct collector_options *o);

#endif
