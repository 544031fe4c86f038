// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "optparse.h"
#include "options.h"

#define DEFAULT_INTERFACES "eni*,eth*,ens*,veth*"
#define DEFAULT_POD_INTERFACES "eni*,veth*"

static const char usage_text[] =
	"Usage: flowlens-agent [OPTIONS]\n"
	"\n"
	"eBPF flow agent: attaches TC programs to pod veths and node ENIs, drains the flow\n"
	"table every interval and serves /metrics, /healthz and /v1/flows.\n"
	"\n"
	"Options (each also read from the FLOWLENS_* environment variable shown):\n"
	"  -i, --interfaces GLOBS     interfaces to watch, comma-separated globs\n"
	"                             [FLOWLENS_INTERFACES, default " DEFAULT_INTERFACES "]\n"
	"      --pod-interfaces GLOBS which watched interfaces are host-side pod veths; the\n"
	"                             rest are node interfaces (ENIs)\n"
	"                             [FLOWLENS_POD_INTERFACES, default " DEFAULT_POD_INTERFACES
	"]\n"
	"  -t, --interval DURATION    export interval, e.g. 500ms, 10s, 1m\n"
	"                             [FLOWLENS_INTERVAL, default 10s]\n"
	"      --idle-timeout DURATION forget flows idle this long [FLOWLENS_IDLE_TIMEOUT, 60s]\n"
	"      --reconcile-interval DURATION  compare attachments with the live interfaces\n"
	"                             this often and repair [FLOWLENS_RECONCILE_INTERVAL, 30s]\n"
	"      --netlink-rcvbuf-bytes N  buffer for interface notifications; a burst past it\n"
	"                             costs a full resync [FLOWLENS_NETLINK_RCVBUF_BYTES, 8388608]\n"
	"  -l, --listen ADDR:PORT     HTTP server address [FLOWLENS_LISTEN, default 0.0.0.0:9810]\n"
	"      --flow-table-size N    kernel flow table entries [FLOWLENS_FLOW_TABLE_SIZE, 65536]\n"
	"      --ringbuf-size BYTES   overflow ring buffer, a power of two >= 4096\n"
	"                             [FLOWLENS_RINGBUF_SIZE, 1048576]\n"
	"      --attach-mode MODE     auto, tcx or tc (legacy clsact) [FLOWLENS_ATTACH_MODE, auto]\n"
	"      --tc-priority N        legacy TC filter priority, 1-65535 (lower runs first)\n"
	"                             [FLOWLENS_TC_PRIORITY, 1]\n"
	"  -o, --output MODE          none, or json: one JSON line per flow aggregate per\n"
	"                             interval on stdout [FLOWLENS_OUTPUT, none]\n"
	"      --log-level LEVEL      error, warn, info, debug [FLOWLENS_LOG_LEVEL, info]\n"
	"  -c, --collector URL        send every interval's aggregates to this collector\n"
	"                             (http:// or https://) [FLOWLENS_COLLECTOR]\n"
	"      --token-file FILE      bearer token for the collector, re-read for every send\n"
	"                             [FLOWLENS_TOKEN_FILE, required with --collector]\n"
	"      --collector-ca-file FILE  CA bundle to verify an https collector\n"
	"                             [FLOWLENS_COLLECTOR_CA_FILE]\n"
	"      --export-buffer-bytes N  unsent batches kept while the collector is away; the\n"
	"                             oldest are dropped (and counted) beyond it\n"
	"                             [FLOWLENS_EXPORT_BUFFER_BYTES, 16777216]\n"
	"      --translation MODE     where ClusterIP (DNAT) translations come from: auto\n"
	"                             (kfunc, else netlink), kfunc (conntrack lookups in the\n"
	"                             TC programs), netlink (user-space conntrack queries), off\n"
	"                             [FLOWLENS_TRANSLATION, auto]\n"
	"      --signals LIST         signals besides bytes and packets, comma-separated: tcp\n"
	"                             (connection outcomes, connect latency), http (HTTP/1.x\n"
	"                             requests: method, status, duration), dns (queries over\n"
	"                             UDP: rcode, type, duration, timeouts), drops (packets the\n"
	"                             kernel dropped, by reason), or none; an off signal costs\n"
	"                             nothing per packet [FLOWLENS_SIGNALS, tcp,http,dns,drops]\n"
	"      --dns-timeout DURATION a query unanswered this long is a timeout\n"
	"                             [FLOWLENS_DNS_TIMEOUT, 5s]\n"
	"      --dns-buckets LIST     DNS duration histogram bounds, seconds\n"
	"                             [FLOWLENS_DNS_BUCKETS, 0.0001 ... 30]\n"
	"      --http-buckets LIST    request duration histogram bounds, seconds\n"
	"                             [FLOWLENS_HTTP_BUCKETS, 0.0001 ... 30]\n"
	"      --tcp-connect-timeout DURATION  a SYN unanswered this long is a timeout\n"
	"                             [FLOWLENS_TCP_CONNECT_TIMEOUT, 10s]\n"
	"      --tcp-connect-buckets LIST  connect latency histogram bounds, seconds\n"
	"                             [FLOWLENS_TCP_CONNECT_BUCKETS, 0.0001 ... 30]\n"
	"  -h, --help                 this text\n"
	"  -V, --version              print the version\n"
	"\n"
	"Examples:\n"
	"  flowlens-agent                                  # EKS defaults: eni*, eth*, ens*\n"
	"  flowlens-agent -i 'eni*,eth0' -t 5s -l 127.0.0.1:9810\n"
	"  flowlens-agent --output json -t 1s | jq .      # a flow log without a collector\n"
	"  FLOWLENS_ATTACH_MODE=tc FLOWLENS_TC_PRIORITY=1 flowlens-agent\n"
	"  flowlens-agent -c http://flowlens-collector:9900 --token-file /etc/flowlens/token\n";

enum {
	OPT_POD_INTERFACES = 256,
	OPT_IDLE_TIMEOUT,
	OPT_FLOW_TABLE_SIZE,
	OPT_RINGBUF_SIZE,
	OPT_ATTACH_MODE,
	OPT_TC_PRIORITY,
	OPT_LOG_LEVEL,
	OPT_TOKEN_FILE,
	OPT_CA_FILE,
	OPT_EXPORT_BUFFER,
	OPT_TRANSLATION,
	OPT_SIGNALS,
	OPT_CONNECT_TIMEOUT,
	OPT_CONNECT_BUCKETS,
	OPT_HTTP_BUCKETS,
	OPT_DNS_TIMEOUT,
	OPT_DNS_BUCKETS,
	OPT_RECONCILE,
	OPT_NETLINK_RCVBUF,
};

static const struct option long_opts[] = {
	{ "interfaces", required_argument, NULL, 'i' },
	{ "pod-interfaces", required_argument, NULL, OPT_POD_INTERFACES },
	{ "interval", required_argument, NULL, 't' },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "listen", required_argument, NULL, 'l' },
	{ "flow-table-size", required_argument, NULL, OPT_FLOW_TABLE_SIZE },
	{ "ringbuf-size", required_argument, NULL, OPT_RINGBUF_SIZE },
	{ "attach-mode", required_argument, NULL, OPT_ATTACH_MODE },
	{ "tc-priority", required_argument, NULL, OPT_TC_PRIORITY },
	{ "output", required_argument, NULL, 'o' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "collector", required_argument, NULL, 'c' },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "collector-ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "export-buffer-bytes", required_argument, NULL, OPT_EXPORT_BUFFER },
	{ "translation", required_argument, NULL, OPT_TRANSLATION },
	{ "signals", required_argument, NULL, OPT_SIGNALS },
	{ "tcp-connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "tcp-connect-buckets", required_argument, NULL, OPT_CONNECT_BUCKETS },
	{ "http-buckets", required_argument, NULL, OPT_HTTP_BUCKETS },
	{ "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "dns-buckets", required_argument, NULL, OPT_DNS_BUCKETS },
	{ "reconcile-interval", required_argument, NULL, OPT_RECONCILE },
	{ "netlink-rcvbuf-bytes", required_argument, NULL, OPT_NETLINK_RCVBUF },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Environment names, in the order of long_opts. */
static const char *const env_names[] = {
	"FLOWLENS_INTERFACES",
	"FLOWLENS_POD_INTERFACES",
	"FLOWLENS_INTERVAL",
	"FLOWLENS_IDLE_TIMEOUT",
	"FLOWLENS_LISTEN",
	"FLOWLENS_FLOW_TABLE_SIZE",
	"FLOWLENS_RINGBUF_SIZE",
	"FLOWLENS_ATTACH_MODE",
	"FLOWLENS_TC_PRIORITY",
	"FLOWLENS_OUTPUT",
	"FLOWLENS_LOG_LEVEL",
	"FLOWLENS_COLLECTOR",
	"FLOWLENS_TOKEN_FILE",
	"FLOWLENS_COLLECTOR_CA_FILE",
	"FLOWLENS_EXPORT_BUFFER_BYTES",
	"FLOWLENS_TRANSLATION",
	"FLOWLENS_SIGNALS",
	"FLOWLENS_TCP_CONNECT_TIMEOUT",
	"FLOWLENS_TCP_CONNECT_BUCKETS",
	"FLOWLENS_HTTP_BUCKETS",
	"FLOWLENS_DNS_TIMEOUT",
	"FLOWLENS_DNS_BUCKETS",
	"FLOWLENS_RECONCILE_INTERVAL",
	"FLOWLENS_NETLINK_RCVBUF_BYTES",
};

static int parse_u32(const char *s, uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t v;

	if (opt_parse_u64(s, min, max, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int options_parse_globs(const char *s, char **out, int max)
{
	char *copy, *tok, *save = NULL;
	int n = 0;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (n == max || strlen(tok) >= 16) {
			n = -EINVAL;
			break;
		}
		out[n] = strdup(tok);
		if (!out[n]) {
			n = -ENOMEM;
			break;
		}
		n++;
	}
	free(copy);
	if (n == 0)
		return -EINVAL;
	return n;
}

static void free_globs(char **g, int *n)
{
	for (int i = 0; i < *n; i++)
		free(g[i]);
	*n = 0;
}

/* Applies one option; source names the flag or variable for error messages. */
static int apply(struct agent_options *o, int id, const char *val, const char *source)
{
	uint32_t u;
	int n;

	switch (id) {
	case 'i':
		free_globs(o->interfaces, &o->n_interfaces);
		n = options_parse_globs(val, o->interfaces, OPT_GLOBS_MAX);
		if (n < 0)
			goto bad;
		o->n_interfaces = n;
		return 0;
	case OPT_POD_INTERFACES:
		free_globs(o->pod_interfaces, &o->n_pod_interfaces);
		n = options_parse_globs(val, o->pod_interfaces, OPT_GLOBS_MAX);
		if (n < 0)
			goto bad;
		o->n_pod_interfaces = n;
		return 0;
	case 't':
		if (opt_parse_duration(val, &o->interval_ms) || o->interval_ms < 100)
			goto bad;
		return 0;
	case OPT_RECONCILE:
		if (opt_parse_duration(val, &o->reconcile_ms) || o->reconcile_ms < 1000)
			goto bad;
		return 0;
	case OPT_NETLINK_RCVBUF:
		if (opt_parse_u64(val, 4096, 1 << 30, &o->netlink_rcvbuf))
			goto bad;
		return 0;
	case OPT_IDLE_TIMEOUT:
		if (opt_parse_duration(val, &o->idle_timeout_ms))
			goto bad;
		return 0;
	case 'l':
		if (opt_parse_listen(val, o->listen_host, sizeof(o->listen_host), &o->listen_port))
			goto bad;
		return 0;
	case OPT_FLOW_TABLE_SIZE:
		if (parse_u32(val, 1, 1U << 24, &o->flow_table_size))
			goto bad;
		return 0;
	case OPT_RINGBUF_SIZE:
		if (parse_u32(val, 4096, 1U << 30, &u) || (u & (u - 1)))
			goto bad;
		o->ringbuf_size = u;
		return 0;
	case OPT_ATTACH_MODE:
		if (strcmp(val, "auto") == 0)
			o->attach_mode = ATTACH_AUTO;
		else if (strcmp(val, "tcx") == 0)
			o->attach_mode = ATTACH_TCX;
		else if (strcmp(val, "tc") == 0)
			o->attach_mode = ATTACH_TC;
		else
			goto bad;
		return 0;
	case OPT_TRANSLATION:
		if (strcmp(val, "auto") == 0)
			o->translation = XLATE_AUTO;
		else if (strcmp(val, "kfunc") == 0)
			o->translation = XLATE_KFUNC;
		else if (strcmp(val, "netlink") == 0)
			o->translation = XLATE_NETLINK;
		else if (strcmp(val, "off") == 0)
			o->translation = XLATE_OFF;
		else
			goto bad;
		return 0;
	case OPT_SIGNALS: {
		char *copy = strdup(val), *tok, *save = NULL;
		int ok = copy != NULL;

		o->signal_tcp = 0;
		o->signal_http = 0;
		o->signal_dns = 0;
		o->signal_drops = 0;
		for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
		     tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, "tcp") == 0)
				o->signal_tcp = 1;
			else if (strcmp(tok, "http") == 0)
				o->signal_http = 1;
			else if (strcmp(tok, "dns") == 0)
				o->signal_dns = 1;
			else if (strcmp(tok, "drops") == 0)
				o->signal_drops = 1;
			else if (strcmp(tok, "none") != 0)
				ok = 0;
		}
		free(copy);
		if (!ok)
			goto bad;
		return 0;
	}
	case OPT_CONNECT_TIMEOUT:
		if (opt_parse_duration(val, &o->tcp_connect_timeout_ms) ||
		    o->tcp_connect_timeout_ms < 100)
			goto bad;
		return 0;
	case OPT_DNS_TIMEOUT:
		if (opt_parse_duration(val, &o->dns_timeout_ms) || o->dns_timeout_ms < 100)
			goto bad;
		return 0;
	case OPT_DNS_BUCKETS:
		n = opt_parse_buckets(val, o->dns_buckets, 32);
		if (n < 0)
			goto bad;
		o->n_dns_buckets = (unsigned int)n;
		return 0;
	case OPT_HTTP_BUCKETS:
		n = opt_parse_buckets(val, o->http_buckets, 32);
		if (n < 0)
			goto bad;
		o->n_http_buckets = (unsigned int)n;
		return 0;
	case OPT_CONNECT_BUCKETS:
		n = opt_parse_buckets(val, o->tcp_connect_buckets, 32);
		if (n < 0)
			goto bad;
		o->n_tcp_connect_buckets = (unsigned int)n;
		return 0;
	case OPT_TC_PRIORITY:
		if (parse_u32(val, 1, 65535, &u))
			goto bad;
		o->tc_priority = (uint16_t)u;
		return 0;
	case 'o':
		if (strcmp(val, "none") == 0)
			o->output = OUTPUT_NONE;
		else if (strcmp(val, "json") == 0)
			o->output = OUTPUT_JSON;
		else
			goto bad;
		return 0;
	case OPT_LOG_LEVEL:
		if (log_parse_level(val, &o->log_level))
			goto bad;
		return 0;
	case 'c':
		if (strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0)
			goto bad;
		free(o->collector_url);
		o->collector_url = strdup(val);
		return 0;
	case OPT_TOKEN_FILE:
		free(o->token_file);
		o->token_file = strdup(val);
		return 0;
	case OPT_CA_FILE:
		free(o->collector_ca_file);
		o->collector_ca_file = strdup(val);
		return 0;
	case OPT_EXPORT_BUFFER:
		if (parse_u32(val, 65536, 1U << 30, &o->export_buffer_bytes))
			goto bad;
		return 0;
	}
	return -EINVAL;
bad:
	fprintf(stderr, "flowlens-agent: invalid value '%s' for %s (see --help)\n", val, source);
	return -EINVAL;
}

int options_parse(struct agent_options *o, int argc, char **argv)
{
	char flag[64];
	int c, err;

	memset(o, 0, sizeof(*o));
	o->interval_ms = 10000;
	o->idle_timeout_ms = 60000;
	o->reconcile_ms = 30000;
	o->netlink_rcvbuf = 8 << 20;
	strcpy(o->listen_host, "0.0.0.0");
	o->listen_port = 9810;
	o->flow_table_size = 65536;
	o->ringbuf_size = 1 << 20;
	o->attach_mode = ATTACH_AUTO;
	o->tc_priority = 1;
	o->output = OUTPUT_NONE;
	o->log_level = LOG_LVL_INFO;
	o->export_buffer_bytes = 16 << 20;
	o->signal_tcp = 1;
	o->signal_http = 1;
	o->signal_dns = 1;
	o->signal_drops = 1;
	o->dns_timeout_ms = 5000;
	o->n_dns_buckets = (unsigned int)opt_parse_buckets(OPT_DEFAULT_BUCKETS, o->dns_buckets, 32);
	o->n_http_buckets =
		(unsigned int)opt_parse_buckets(OPT_DEFAULT_BUCKETS, o->http_buckets, 32);
	o->tcp_connect_timeout_ms = 10000;
	o->n_tcp_connect_buckets =
		(unsigned int)opt_parse_buckets(OPT_DEFAULT_BUCKETS, o->tcp_connect_buckets, 32);
	o->n_interfaces = options_parse_globs(DEFAULT_INTERFACES, o->interfaces, OPT_GLOBS_MAX);
	o->n_pod_interfaces =
		options_parse_globs(DEFAULT_POD_INTERFACES, o->pod_interfaces, OPT_GLOBS_MAX);

	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++) {
		const char *v = getenv(env_names[i]);

		if (v && *v && apply(o, long_opts[i].val, v, env_names[i]))
			return -EINVAL;
	}

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:t:l:o:c:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case 'V':
			printf("flowlens-agent %s\n", FLOWLENS_VERSION);
			return 1;
		case '?':
			fprintf(stderr, "flowlens-agent: see --help\n");
			return -EINVAL;
		default:
			for (size_t i = 0; long_opts[i].name; i++) {
				if (long_opts[i].val == c) {
					snprintf(flag, sizeof(flag), "--%s", long_opts[i].name);
					break;
				}
			}
			err = apply(o, c, optarg, flag);
			if (err)
				return err;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "flowlens-agent: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -EINVAL;
	}
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
	free(o->collector_url);
	free(o->token_file);
	free(o->collector_ca_file);
	free_globs(o->interfaces, &o->n_interfaces);
	free_globs(o->pod_interfaces, &o->n_pod_interfaces);
}
