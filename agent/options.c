// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The agent's options: one table row each (flag, variable, type, default, bounds, help). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "export.h"
#include "options.h"

#define F(field) offsetof(struct agent_options, field)

static const struct opt_choice attach_modes[] = { { "auto", ATTACH_AUTO },
						  { "tcx", ATTACH_TCX },
						  { "tc", ATTACH_TC },
						  { NULL, 0 } };
const struct opt_choice options_translations[] = { { "auto", XLATE_AUTO },
						   { "kfunc", XLATE_KFUNC },
						   { "netlink", XLATE_NETLINK },
						   { "off", XLATE_OFF },
						   { NULL, 0 } };
static const struct opt_choice on_off[] = { { "on", 1 }, { "off", 0 }, { NULL, 0 } };
static const struct opt_choice outputs[] = { { "none", OUTPUT_NONE },
					     { "json", OUTPUT_JSON },
					     { NULL, 0 } };
/* "tcp,http,dns,drops", or "none". */
static int parse_signals(void *opts, const char *val)
{
	struct agent_options *o = opts;
	char *copy = strdup(val), *tok, *save = NULL;
	int tcp = 0, http = 0, dns = 0, drops = 0, ok = copy != NULL;

	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "tcp"))
			tcp = 1;
		else if (!strcmp(tok, "http"))
			http = 1;
		else if (!strcmp(tok, "dns"))
			dns = 1;
		else if (!strcmp(tok, "drops"))
			drops = 1;
		else if (strcmp(tok, "none"))
			ok = 0;
	}
	free(copy);
	if (!ok)
		return -EINVAL;
	o->signal_tcp = tcp;
	o->signal_http = http;
	o->signal_dns = dns;
	o->signal_drops = drops;
	return 0;
}

static int parse_collector_url(void *opts, const char *val)
{
	struct agent_options *o = opts;
	char *copy;

	/* One URL, or the replicas of a highly available collector separated by commas; shards
	 * (each such a list) separated by semicolons. */
	unsigned int shards = 1;

	for (const char *p = val; *p; p++)
		shards += *p == ';';
	if (shards > EXPORT_MAX_SHARDS)
		return -EINVAL;
	for (const char *p = val;;) {
		size_t len = strcspn(p, ",;");
		size_t scheme = strncmp(p, "http://", 7) == 0  ? 7 :
				strncmp(p, "https://", 8) == 0 ? 8 :
								 0;

		if (!scheme || len <= scheme)
			return -EINVAL;
		if (!p[len])
			break;
		p += len + 1;
	}
	copy = strdup(val);
	if (!copy)
		return -ENOMEM;
	free(o->collector_url);
	o->collector_url = copy;
	return 0;
}

static const struct opt_def defs[] = {
	{ .name = "interfaces",
	  .short_flag = 'i',
	  .env = "FLOWLENS_INTERFACES",
	  .kind = OPT_GLOBS,
	  .offset = F(interfaces),
	  .offset2 = F(n_interfaces),
	  .def = "eni*,eth*,ens*,veth*,vlan[0-9a-f]*",
	  .arg = "GLOBS",
	  .help = "interfaces to watch, comma-separated globs" },
	{ .name = "pod-interfaces",
	  .env = "FLOWLENS_POD_INTERFACES",
	  .kind = OPT_GLOBS,
	  .offset = F(pod_interfaces),
	  .offset2 = F(n_pod_interfaces),
	  .def = "eni*,veth*,vlan[0-9a-f]*",
	  .arg = "GLOBS",
	  .help = "which watched interfaces are host-side pod veths; the rest are node "
		  "interfaces (ENIs). vlan<hex>: the host side of a pod with its own security "
		  "groups (VPC CNI branch ENI); its VLAN device vlan.eth.N is not a pod" },
	{ .name = "interval",
	  .short_flag = 't',
	  .env = "FLOWLENS_INTERVAL",
	  .kind = OPT_DURATION,
	  .offset = F(interval_ms),
	  .def = "10s",
	  .min = 100,
	  .arg = "DURATION",
	  .help = "export interval, e.g. 500ms, 10s, 1m (at least 100ms)" },
	{ .name = "idle-timeout",
	  .env = "FLOWLENS_IDLE_TIMEOUT",
	  .kind = OPT_DURATION,
	  .offset = F(idle_timeout_ms),
	  .def = "60s",
	  .arg = "DURATION",
	  .help = "forget flows idle this long" },
	{ .name = "reconcile-interval",
	  .env = "FLOWLENS_RECONCILE_INTERVAL",
	  .kind = OPT_DURATION,
	  .offset = F(reconcile_ms),
	  .def = "30s",
	  .min = 1000,
	  .arg = "DURATION",
	  .help = "compare attachments with the live interfaces this often and repair" },
	{ .name = "netlink-rcvbuf-bytes",
	  .env = "FLOWLENS_NETLINK_RCVBUF_BYTES",
	  .kind = OPT_U64,
	  .offset = F(netlink_rcvbuf),
	  .def = "8388608",
	  .min = 4096,
	  .max = 1 << 30,
	  .arg = "N",
	  .help = "buffer for interface notifications; a burst past it costs a full resync" },
	{ .name = "ethtool-stats",
	  .env = "FLOWLENS_ETHTOOL_STATS",
	  .kind = OPT_NAMES,
	  .offset = F(ethtool_stats),
	  .offset2 = F(n_ethtool_stats),
	  .def = "bw_in_allowance_exceeded,bw_out_allowance_exceeded,pps_allowance_exceeded,"
		 "conntrack_allowance_exceeded,linklocal_allowance_exceeded",
	  .arg = "NAMES",
	  .help = "driver counters of node interfaces (ethtool -S) exported every interval as "
		  "flowlens_node_ethtool_stat_total; the default: the ENA driver's allowance "
		  "counters (EKS), packets the instance's network limits queued or dropped" },
	{ .name = "listen",
	  .short_flag = 'l',
	  .env = "FLOWLENS_LISTEN",
	  .kind = OPT_LISTEN,
	  .offset = F(listen_host),
	  .offset2 = F(listen_port),
	  .def = "0.0.0.0:9810",
	  .arg = "ADDR:PORT",
	  .help = "HTTP server address (/metrics, /healthz, /v1/flows); [::]:PORT serves both "
		  "IPv4 and IPv6" },
	{ .name = "flow-table-size",
	  .env = "FLOWLENS_FLOW_TABLE_SIZE",
	  .kind = OPT_U32,
	  .offset = F(flow_table_size),
	  .def = "65536",
	  .min = 1,
	  .max = 1 << 24,
	  .arg = "N",
	  .help = "kernel flow table entries" },
	{ .name = "flow-slots",
	  .env = "FLOWLENS_FLOW_SLOTS",
	  .kind = OPT_CHOICE,
	  .offset = F(flow_slots),
	  .def = "on",
	  .choices = on_off,
	  .arg = "on|off",
	  .help = "count a known flow's packets in a per-CPU last-flow slot, flushed into the table "
		  "before every drain (needs 5.10+; off: every packet updates the table)" },
	{ .name = "ringbuf-size",
	  .env = "FLOWLENS_RINGBUF_SIZE",
	  .kind = OPT_U32,
	  .offset = F(ringbuf_size),
	  .def = "1048576",
	  .min = 4096,
	  .max = 1 << 30,
	  .flags = OPT_POW2,
	  .arg = "BYTES",
	  .help = "overflow ring buffer, a power of two >= 4096" },
	{ .name = "attach-mode",
	  .env = "FLOWLENS_ATTACH_MODE",
	  .kind = OPT_CHOICE,
	  .offset = F(attach_mode),
	  .def = "auto",
	  .choices = attach_modes,
	  .arg = "MODE",
	  .help = "auto, tcx or tc (legacy clsact)" },
	{ .name = "tc-priority",
	  .env = "FLOWLENS_TC_PRIORITY",
	  .kind = OPT_U16,
	  .offset = F(tc_priority),
	  .def = "1",
	  .min = 1,
	  .max = 65535,
	  .arg = "N",
	  .help = "legacy TC filter priority, 1-65535 (lower runs first)" },
	{ .name = "output",
	  .short_flag = 'o',
	  .env = "FLOWLENS_OUTPUT",
	  .kind = OPT_CHOICE,
	  .offset = F(output),
	  .def = "none",
	  .choices = outputs,
	  .arg = "MODE",
	  .help = "none, or json: one JSON line per flow aggregate per interval on stdout" },
	{ .name = "log-level",
	  .env = "FLOWLENS_LOG_LEVEL",
	  .kind = OPT_CHOICE,
	  .offset = F(log_level),
	  .def = "info",
	  .choices = opt_log_levels,
	  .arg = "LEVEL",
	  .help = "error, warn, info, debug" },
	{ .name = "collector",
	  .short_flag = 'c',
	  .env = "FLOWLENS_COLLECTOR",
	  .kind = OPT_FUNC,
	  .parse = parse_collector_url,
	  .arg = "URL[,URL][;URL[,URL]]",
	  .help = "send every interval's aggregates to this collector (http:// or https://); "
		  "the replicas of a highly available collector separated by commas each get "
		  "every batch, with a buffer of their own; shards separated by semicolons "
		  "each get the aggregates whose server address hashes to them" },
	{ .name = "token-file",
	  .env = "FLOWLENS_TOKEN_FILE",
	  .kind = OPT_STR,
	  .offset = F(token_file),
	  .arg = "FILE",
	  .help = "bearer token for the collector, re-read for every send (required with "
		  "--collector)" },
	{ .name = "collector-ca-file",
	  .env = "FLOWLENS_COLLECTOR_CA_FILE",
	  .kind = OPT_STR,
	  .offset = F(collector_ca_file),
	  .arg = "FILE",
	  .help = "CA bundle to verify an https collector" },
	{ .name = "export-buffer-bytes",
	  .env = "FLOWLENS_EXPORT_BUFFER_BYTES",
	  .kind = OPT_U32,
	  .offset = F(export_buffer_bytes),
	  .def = "16777216",
	  .min = 4096,
	  .max = 1 << 30,
	  .arg = "N",
	  .help = "unsent batches kept while the collector is away; the oldest are dropped (and "
		  "counted) beyond it" },
	{ .name = "translation",
	  .env = "FLOWLENS_TRANSLATION",
	  .kind = OPT_CHOICE,
	  .offset = F(translation),
	  .def = "auto",
	  .choices = options_translations,
	  .arg = "MODE",
	  .help = "where ClusterIP (DNAT) translations come from: auto (kfunc, else netlink), "
		  "kfunc (conntrack lookups in the TC programs), netlink (user-space conntrack "
		  "queries), off" },
	{ .name = "signals",
	  .env = "FLOWLENS_SIGNALS",
	  .kind = OPT_FUNC,
	  .parse = parse_signals,
	  .def = "tcp,http,dns,drops",
	  .arg = "LIST",
	  .help = "signals besides bytes and packets, comma-separated: tcp (connection outcomes, "
		  "connect latency), http (HTTP/1.x and HTTP/2 requests: method, status, duration; "
		  "gRPC status), dns "
		  "(queries over UDP: rcode, type, duration, timeouts), drops (packets the kernel "
		  "dropped, by reason), or none; an off signal costs nothing per packet" },
	{ .name = "dns-timeout",
	  .env = "FLOWLENS_DNS_TIMEOUT",
	  .kind = OPT_DURATION,
	  .offset = F(dns_timeout_ms),
	  .def = "5s",
	  .min = 100,
	  .arg = "DURATION",
	  .help = "a query unanswered this long is a timeout" },
	{ .name = "dns-buckets",
	  .env = "FLOWLENS_DNS_BUCKETS",
	  .kind = OPT_BUCKETS,
	  .offset = F(dns_buckets),
	  .offset2 = F(n_dns_buckets),
	  .def = OPT_DEFAULT_BUCKETS,
	  .def_shown = "0.0001 ... 30",
	  .arg = "LIST",
	  .help = "DNS duration histogram bounds, seconds" },
	{ .name = "http-buckets",
	  .env = "FLOWLENS_HTTP_BUCKETS",
	  .kind = OPT_BUCKETS,
	  .offset = F(http_buckets),
	  .offset2 = F(n_http_buckets),
	  .def = OPT_DEFAULT_BUCKETS,
	  .def_shown = "0.0001 ... 30",
	  .arg = "LIST",
	  .help = "request duration histogram bounds, seconds" },
	{ .name = "tcp-connect-timeout",
	  .env = "FLOWLENS_TCP_CONNECT_TIMEOUT",
	  .kind = OPT_DURATION,
	  .offset = F(tcp_connect_timeout_ms),
	  .def = "10s",
	  .min = 100,
	  .arg = "DURATION",
	  .help = "a SYN unanswered this long is a timeout" },
	{ .name = "tcp-connect-buckets",
	  .env = "FLOWLENS_TCP_CONNECT_BUCKETS",
	  .kind = OPT_BUCKETS,
	  .offset = F(tcp_connect_buckets),
	  .offset2 = F(n_tcp_connect_buckets),
	  .def = OPT_DEFAULT_BUCKETS,
	  .def_shown = "0.0001 ... 30",
	  .arg = "LIST",
	  .help = "connect latency histogram bounds, seconds" },
};

static const struct opt_program program = {
	.name = "flowlens-agent",
	.synopsis = "[OPTIONS]",
	.about = "eBPF flow agent: attaches TC programs to pod veths and node ENIs, drains the "
		 "flow table every interval and serves /metrics, /healthz and /v1/flows.",
	.examples =
		"  flowlens-agent                                  # EKS defaults: eni*, eth*, ens*, vlan<hex>\n"
		"  flowlens-agent -i 'eni*,eth0' -t 5s -l 127.0.0.1:9810\n"
		"  flowlens-agent --output json -t 1s | jq .      # a flow log without a collector\n"
		"  FLOWLENS_ATTACH_MODE=tc FLOWLENS_TC_PRIORITY=1 flowlens-agent\n"
		"  flowlens-agent -c http://flowlens-collector:9900 --token-file /etc/flowlens/token\n",
	.defs = defs,
	.n_defs = sizeof(defs) / sizeof(defs[0]),
};

int options_parse(struct agent_options *o, int argc, char **argv)
{
	int err;

	memset(o, 0, sizeof(*o));
	err = opts_parse(&program, o, argc, argv);
	if (err)
		return err;
	if (o->collector_url && !o->token_file) {
		fprintf(stderr, "flowlens-agent: --collector needs --token-file (or "
				"FLOWLENS_TOKEN_FILE)\n");
		return -EINVAL;
	}
	/* Distinct flows that overflowed, held until the next drain (~200 bytes each). */
	o->overflow_pending_max = o->flow_table_size > 16384 ? o->flow_table_size : 16384;
	return 0;
}

void options_free(struct agent_options *o)
{
	opts_free(&program, o);
	free(o->collector_url);
	o->collector_url = NULL;
}
