// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The collector's options: one table row each (flag, variable, type, default, bounds, help). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "meta.h"
#include "options.h"
#include "store.h"
#include "wire.h"

#define F(field) offsetof(struct collector_options, field)
#define STR_(x) #x
#define STR(x) STR_(x)

static const struct opt_choice in_cluster_modes[] = { { "auto", -1 },
						      { "on", 1 },
						      { "off", 0 },
						      { NULL, 0 } };

/* Label values we write without escaping: a DNS-label-like name. */
static int label_value_ok(const char *v)
{
	if (!*v || strlen(v) > 63)
		return 0;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

static int set_str(char **dst, const char *val)
{
	char *copy = strdup(val);

	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int parse_cluster_name(void *opts, const char *val)
{
	return label_value_ok(val) ?
		       set_str(&((struct collector_options *)opts)->cluster_name, val) :
		       -EINVAL;
}

static int parse_shard(void *opts, const char *val)
{
	return label_value_ok(val) ? set_str(&((struct collector_options *)opts)->shard, val) :
				     -EINVAL;
}

static int parse_lease(void *opts, const char *val)
{
	const char *slash = strchr(val, '/');

	if (!slash || slash == val || !label_value_ok(slash + 1) || strchr(slash + 1, '/'))
		return -EINVAL;
	return set_str(&((struct collector_options *)opts)->ha_lease, val);
}

static const struct opt_def defs[] = {
	{ .name = "listen",
	  .short_flag = 'l',
	  .env = "FLOWLENS_LISTEN",
	  .kind = OPT_LISTEN,
	  .offset = F(listen_host),
	  .offset2 = F(listen_port),
	  .def = "0.0.0.0:9900",
	  .arg = "ADDR:PORT",
	  .help = "HTTP(S) server address" },
	{ .name = "token-file",
	  .env = "FLOWLENS_TOKEN_FILE",
	  .kind = OPT_STR,
	  .offset = F(token_file),
	  .arg = "FILE",
	  .help = "bearer token agents must present (a mounted Secret); re-read when it changes "
		  "(required)" },
	{ .name = "tls-cert-file",
	  .env = "FLOWLENS_TLS_CERT_FILE",
	  .kind = OPT_STR,
	  .offset = F(tls_cert_file),
	  .arg = "FILE",
	  .help = "serve HTTPS with this PEM certificate (with --tls-key-file)" },
	{ .name = "tls-key-file",
	  .env = "FLOWLENS_TLS_KEY_FILE",
	  .kind = OPT_STR,
	  .offset = F(tls_key_file),
	  .arg = "FILE",
	  .help = "...and this key" },
	{ .name = "max-body-bytes",
	  .env = "FLOWLENS_MAX_BODY_BYTES",
	  .kind = OPT_U64,
	  .offset = F(max_body),
	  .def = "4194304",
	  .min = 1024,
	  .max = 1ULL << 30,
	  .arg = "N",
	  .help = "largest accepted request body" },
	{ .name = "max-decompressed-bytes",
	  .env = "FLOWLENS_MAX_DECOMPRESSED_BYTES",
	  .kind = OPT_U64,
	  .offset = F(max_decompressed),
	  .def = "67108864",
	  .min = 1024,
	  .max = 1ULL << 32,
	  .arg = "N",
	  .help = "largest decompressed batch" },
	{ .name = "max-series",
	  .env = "FLOWLENS_MAX_SERIES",
	  .kind = OPT_U64,
	  .offset = F(max_series),
	  .def = "100000",
	  .min = 1,
	  .max = 100000000,
	  .arg = "N",
	  .help = "flow label sets kept; new ones beyond fold into an overflow series" },
	{ .name = "series-ttl",
	  .env = "FLOWLENS_SERIES_TTL",
	  .kind = OPT_DURATION,
	  .offset = F(ttl_ms),
	  .def = "5m",
	  .arg = "DURATION",
	  .help = "stop exporting a series not updated for this long" },
	{ .name = "max-agents",
	  .env = "FLOWLENS_MAX_AGENTS",
	  .kind = OPT_U64,
	  .offset = F(max_agents),
	  .def = "10000",
	  .min = 1,
	  .max = 10000000,
	  .arg = "N",
	  .help = "agent processes tracked for de-duplication; when full, the one seen longest "
		  "ago gives its place" },
	{ .name = "agent-protect",
	  .env = "FLOWLENS_AGENT_PROTECT",
	  .kind = OPT_DURATION,
	  .offset = F(agent_protect_ms),
	  .def = "2m" /* STORE_DEFAULT_AGENT_PROTECT_MS */,
	  .arg = "DURATION",
	  .help = "...unless it sent within this long (then the new agent gets 503 and retries)" },
	{ .name = "shutdown-grace",
	  .env = "FLOWLENS_SHUTDOWN_GRACE",
	  .kind = OPT_DURATION,
	  .offset = F(shutdown_grace_ms),
	  .def = "15s",
	  .flags = OPT_ZERO_OK,
	  .arg = "DURATION",
	  .help = "after SIGTERM, refuse batches (agents retry them) and keep serving /metrics "
		  "this long so the last values are scraped" },
	{ .name = "new-series-hold",
	  .env = "FLOWLENS_NEW_SERIES_HOLD",
	  .kind = OPT_DURATION,
	  .offset = F(zero_hold_ms),
	  .def = "70s",
	  .flags = OPT_ZERO_OK,
	  .arg = "DURATION",
	  .help = "export a new series as 0 this long first, so every scraper sees it start from "
		  "zero (set it above the scrape interval; 0 disables)" },
	{ .name = "state-dir",
	  .env = "FLOWLENS_STATE_DIR",
	  .kind = OPT_STR,
	  .offset = F(state_dir),
	  .arg = "DIR",
	  .help = "survive crashes: log every applied batch (synced) before acknowledging it and "
		  "snapshot all series; on start, counters continue where they were" },
	{ .name = "snapshot-interval",
	  .env = "FLOWLENS_SNAPSHOT_INTERVAL",
	  .kind = OPT_DURATION,
	  .offset = F(snapshot_ms),
	  .def = "60s",
	  .arg = "DURATION",
	  .help = "how often the log is folded into a snapshot" },
	{ .name = "log-level",
	  .env = "FLOWLENS_LOG_LEVEL",
	  .kind = OPT_CHOICE,
	  .offset = F(log_level),
	  .def = "info",
	  .choices = opt_log_levels,
	  .arg = "LEVEL",
	  .help = "error, warn, info, debug" },
	{ .help = "Names for addresses (pods, workloads, services, nodes, zones) come from one "
		  "of:" },
	{ .name = "metadata-file",
	  .env = "FLOWLENS_METADATA_FILE",
	  .kind = OPT_STR,
	  .offset = F(metadata_file),
	  .arg = "FILE",
	  .help = "the JSON of `kubectl get pods,svc,nodes,rs,jobs -o json`, reloaded when it "
		  "changes" },
	{ .name = "kubeconfig",
	  .env = "FLOWLENS_KUBECONFIG",
	  .kind = OPT_STR,
	  .offset = F(kubeconfig),
	  .arg = "FILE",
	  .help = "watch the API server of this kubeconfig's current context" },
	{ .name = "in-cluster",
	  .env = "FLOWLENS_IN_CLUSTER",
	  .kind = OPT_CHOICE,
	  .offset = F(in_cluster),
	  .def = "auto",
	  .choices = in_cluster_modes,
	  .arg = "MODE",
	  .help = "auto, on or off: watch the API server with the pod's service account (auto: "
		  "when KUBERNETES_SERVICE_HOST is set)" },
	{ .name = "cluster-cidrs",
	  .env = "FLOWLENS_CLUSTER_CIDRS",
	  .kind = OPT_STR,
	  .offset = F(cluster_cidrs),
	  .arg = "LIST",
	  .def = META_DEFAULT_CLUSTER_CIDRS,
	  .help = "pod and service ranges: addresses outside are \"world\", inside and unknown "
		  "\"unknown\"" },
	{ .name = "pod-labels",
	  .env = "FLOWLENS_POD_LABELS",
	  .kind = OPT_BOOL,
	  .offset = F(pod_labels),
	  .help = "add source_pod and destination_pod (cardinality!)" },
	{ .name = "ip-labels",
	  .env = "FLOWLENS_IP_LABELS",
	  .kind = OPT_BOOL,
	  .offset = F(ip_labels),
	  .help = "add source_ip and destination_ip" },
	{ .name = "join-wait",
	  .env = "FLOWLENS_JOIN_WAIT",
	  .kind = OPT_DURATION,
	  .offset = F(join_wait_ms),
	  .def = "25s",
	  .flags = OPT_ZERO_OK,
	  .arg = "DURATION",
	  .help = "how long a server-side report waits for the client side's (which knows the "
		  "ClusterIP dialed)" },
	{ .name = "ip-history",
	  .env = "FLOWLENS_IP_HISTORY",
	  .kind = OPT_DURATION,
	  .offset = F(ip_history_ms),
	  .def = "10m",
	  .arg = "DURATION",
	  .help = "how long a deleted pod's IP keeps naming late reports" },
	{ .name = "max-joins",
	  .env = "FLOWLENS_MAX_JOINS",
	  .kind = OPT_U64,
	  .offset = F(max_joins),
	  .def = STR(STORE_DEFAULT_MAX_JOINS),
	  .min = 1,
	  .max = 100000000,
	  .arg = "N",
	  .help = "connections whose dialed ClusterIP is remembered for the cross-node join; the "
		  "oldest go first" },
	{ .help = "High availability and shards (docs/design/collector-ha.md):" },
	{ .name = "cluster-name",
	  .env = "FLOWLENS_CLUSTER_NAME",
	  .kind = OPT_FUNC,
	  .parse = parse_cluster_name,
	  .arg = "NAME",
	  .help = "label every flow series cluster=\"NAME\" (several clusters in one Prometheus "
		  "or AMP workspace)" },
	{ .name = "shard",
	  .env = "FLOWLENS_SHARD",
	  .kind = OPT_FUNC,
	  .parse = parse_shard,
	  .arg = "NAME",
	  .help = "label every flow series shard=\"NAME\": the replicas of a shard export the "
		  "same series (Prometheus sets instance from it)" },
	{ .name = "ha-lease",
	  .env = "FLOWLENS_HA_LEASE",
	  .kind = OPT_FUNC,
	  .parse = parse_lease,
	  .arg = "NAMESPACE/NAME",
	  .help = "export flow series only while holding this Kubernetes Lease (coordination.k8s.io), "
		  "so one replica of the shard exports at a time; credentials as for the "
		  "watch (--kubeconfig or in-cluster)" },
	{ .name = "ha-identity",
	  .env = "FLOWLENS_HA_IDENTITY",
	  .kind = OPT_STR,
	  .offset = F(ha_identity),
	  .arg = "NAME",
	  .help = "this replica's name in the Lease (default: the host name, the pod's name)" },
	{ .name = "ha-lease-duration",
	  .env = "FLOWLENS_HA_LEASE_DURATION",
	  .kind = OPT_DURATION,
	  .offset = F(ha_lease_ms),
	  .def = "10s",
	  .min = 3000,
	  .max = 300000,
	  .arg = "DURATION",
	  .help = "a Lease not renewed for this long is taken over by the other replica" },
	{ .name = "ha-renew-interval",
	  .env = "FLOWLENS_HA_RENEW_INTERVAL",
	  .kind = OPT_DURATION,
	  .offset = F(ha_renew_ms),
	  .def = "2s",
	  .min = 200,
	  .max = 60000,
	  .arg = "DURATION",
	  .help = "how often the holder renews the Lease and the other replica looks at it" },
	{ .name = "peers",
	  .env = "FLOWLENS_PEERS",
	  .kind = OPT_STR,
	  .offset = F(peers),
	  .arg = "URL[,URL]",
	  .help = "the shard's replicas (this one included: an URL whose host starts with "
		  "--ha-identity is skipped); a replica without state, or one that missed "
		  "batches, copies a complete peer's state (GET /v1/state)" },
	{ .name = "peer-token-file",
	  .env = "FLOWLENS_PEER_TOKEN_FILE",
	  .kind = OPT_STR,
	  .offset = F(peer_token_file),
	  .arg = "FILE",
	  .help = "the bearer token replicas present to each other (re-read for every request); "
		  "without it the agents' token, which lets any agent read the shard's state" },
	{ .name = "peer-ca-file",
	  .env = "FLOWLENS_PEER_CA_FILE",
	  .kind = OPT_STR,
	  .offset = F(peer_ca_file),
	  .arg = "FILE",
	  .help = "CA bundle to verify https peers" },
	{ .name = "peer-bootstrap-timeout",
	  .env = "FLOWLENS_PEER_BOOTSTRAP_TIMEOUT",
	  .kind = OPT_DURATION,
	  .offset = F(peer_bootstrap_ms),
	  .def = "30s",
	  .flags = OPT_ZERO_OK,
	  .arg = "DURATION",
	  .help = "at start without state, how long to try the peers before starting empty" },
	{ .help = "HTTP limits (hostile or broken clients):" },
	{ .name = "max-connections",
	  .env = "FLOWLENS_MAX_CONNECTIONS",
	  .kind = OPT_U64,
	  .offset = F(max_connections),
	  .def = STR(HTTPD_DEFAULT_MAX_CONNECTIONS),
	  .min = 4,
	  .max = 1000000,
	  .arg = "N",
	  .help = "open connections" },
	{ .name = "max-connections-per-ip",
	  .env = "FLOWLENS_MAX_CONNECTIONS_PER_IP",
	  .kind = OPT_U64,
	  .offset = F(max_connections_per_ip),
	  .def = STR(HTTPD_DEFAULT_MAX_PER_IP),
	  .min = 1,
	  .max = 1000000,
	  .arg = "N",
	  .help = "open connections from one address" },
	{ .name = "max-buffered-bytes",
	  .env = "FLOWLENS_MAX_BUFFERED_BYTES",
	  .kind = OPT_U64,
	  .offset = F(max_buffered),
	  .def = "67108864",
	  .min = 1024,
	  .max = 1ULL << 34,
	  .arg = "N",
	  .help = "request bodies held at once, all connections together; past it a batch gets "
		  "503 before its body is read" },
	{ .name = "request-timeout",
	  .env = "FLOWLENS_REQUEST_TIMEOUT",
	  .kind = OPT_DURATION,
	  .offset = F(request_timeout_ms),
	  .def = STR(HTTPD_DEFAULT_TIMEOUT_S) "s",
	  .min = 1000,
	  .arg = "DURATION",
	  .help = "a request must arrive whole within this long of its connection opening or its "
		  "previous answer; also the idle timeout" },
};

static const struct opt_program program = {
	.name = "flowlens-collector",
	.synopsis = "--token-file FILE [OPTIONS]",
	.about = "Receives flow batches from flowlens agents (POST " WIRE_PATH "), applies each "
		 "once, and serves the cluster's flow series on /metrics; /healthz and /readyz "
		 "for probes.",
	.examples = "  flowlens-collector --token-file /var/run/secrets/flowlens/token\n"
		    "  flowlens-collector -l 127.0.0.1:9900 --token-file token --max-series 20000 "
		    "--series-ttl 2m\n"
		    "  flowlens-collector --token-file token --kubeconfig ~/.kube/config\n"
		    "  kubectl get pods,svc,nodes,rs,jobs -A -o json > meta.json\n"
		    "  flowlens-collector --token-file token --metadata-file meta.json\n"
		    "  FLOWLENS_TOKEN_FILE=/etc/flowlens/token flowlens-collector --tls-cert-file "
		    "tls.crt \\\n"
		    "      --tls-key-file tls.key\n",
	.defs = defs,
	.n_defs = sizeof(defs) / sizeof(defs[0]),
};

int collector_options_parse(struct collector_options *o, int argc, char **argv)
{
	int err;

	memset(o, 0, sizeof(*o));
	err = opts_parse(&program, o, argc, argv);
	if (err)
		return err;
	if (!o->token_file) {
		fprintf(stderr, "flowlens-collector: --token-file (or FLOWLENS_TOKEN_FILE) is "
				"required: agents must authenticate\n");
		return -EINVAL;
	}
	if (o->ha_lease_ms < 3 * o->ha_renew_ms) {
		fprintf(stderr,
			"flowlens-collector: invalid value for --ha-lease-duration: it must be at "
			"least 3 x --ha-renew-interval (the holder stops exporting 2 renewals "
			"before the lease runs out)\n");
		return -EINVAL;
	}
	if (o->peers && !o->ha_lease)
		fprintf(stderr, "flowlens-collector: --peers without --ha-lease: every replica "
				"exports the flow series (Prometheus gets them twice)\n");
	if (o->ha_lease && !o->peers)
		fprintf(stderr, "flowlens-collector: --ha-lease without --peers: a replica that "
				"loses its state cannot copy its peer's (counters restart)\n");
	if (!o->tls_cert_file != !o->tls_key_file) {
		fprintf(stderr,
			"flowlens-collector: --tls-cert-file and --tls-key-file go together\n");
		return -EINVAL;
	}
	return 0;
}

void collector_options_free(struct collector_options *o)
{
	free(o->cluster_name);
	free(o->shard);
	free(o->ha_lease);
	o->cluster_name = o->shard = o->ha_lease = NULL;
	opts_free(&program, o);
}
