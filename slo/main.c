// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* flowlens-slo: SLO files in, Prometheus recording rules and burn-rate alerts out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "slo.h"

static const char usage_text[] =
	"Usage: flowlens-slo [OPTIONS] SLO-FILE...\n"
	"\n"
	"Reads one SLO file per service or workload and writes Prometheus recording rules (error\n"
	"ratios over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period; error budget remaining) and\n"
	"multi-window multi-burn-rate alerts (page: 14.4x over 1h+5m, 6x over 6h+30m; ticket:\n"
	"3x over 1d+2h, 1x over 3d+6h), from flowlens's client-side metrics.\n"
	"\n"
	"Options:\n"
	"  -f, --format FORMAT     rules (a Prometheus rule file, what Amazon Managed Service for\n"
	"                          Prometheus and `promtool` take) or prometheusrule (a Prometheus\n"
	"                          Operator PrometheusRule) [rules]\n"
	"  -o, --output FILE       write here instead of standard output\n"
	"      --name NAME         PrometheusRule metadata.name [flowlens-slos]\n"
	"      --namespace NS      PrometheusRule metadata.namespace\n"
	"      --label KEY=VALUE   PrometheusRule metadata label (repeatable), e.g. the\n"
	"                          release=... your Prometheus's ruleSelector wants\n"
	"      --check             only check the SLO files\n"
	"  -h, --help\n"
	"      --version\n"
	"\n"
	"An SLO file:\n"
	"  service: web            # a Service (destination_service), or workload: web\n"
	"  namespace: shop\n"
	"  period: 30d             # optional, default 30d\n"
	"  availability:\n"
	"    from: http            # http (5xx answers), tcp (refused or timed-out connects),\n"
	"    objective: 99.9       # dns (answers other than NOERROR/NXDOMAIN, timeouts),\n"
	"                          # grpc (statuses in errors, by default UNKNOWN,\n"
	"                          # DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,\n"
	"                          # DATA_LOSS)\n"
	"    errors: [UNAVAILABLE] # optional, grpc only: which statuses are errors\n"
	"  latency:\n"
	"    from: http            # http request, tcp connect, dns or grpc request duration\n"
	"    threshold: 250ms      # must be a histogram bucket bound of the agent\n"
	"    objective: 99         # share of requests at or under the threshold\n"
	"  labels: {team: shop}    # optional, added to the alerts\n"
	"  runbook: https://...    # optional, the alerts' runbook_url\n"
	"\n"
	"Examples:\n"
	"  flowlens-slo deploy/slo/*.yaml > slo-rules.yaml && promtool check rules slo-rules.yaml\n"
	"  flowlens-slo -f prometheusrule --namespace monitoring --label release=kps web.yaml\n";

static int parse_label(const char *arg, struct slo_output *out)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) >= SLO_NAME_MAX ||
	    strlen(eq + 1) >= SLO_NAME_MAX || out->n_rule_labels == SLO_MAX_LABELS)
		return -EINVAL;
	memcpy(out->rule_labels[out->n_rule_labels][0], arg, (size_t)(eq - arg));
	out->rule_labels[out->n_rule_labels][0][eq - arg] = '\0';
	strcpy(out->rule_labels[out->n_rule_labels][1], eq + 1);
	out->n_rule_labels++;
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_NAME = 256, OPT_NAMESPACE, OPT_LABEL, OPT_CHECK, OPT_VERSION };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "namespace", required_argument, NULL, OPT_NAMESPACE },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	struct slo_output out = { .format = SLO_FORMAT_RULES, .rule_name = "flowlens-slos" };
	const char *output = NULL;
	struct slo_spec *specs;
	int check = 0, c, bad = 0;
	size_t n;
	FILE *f = stdout;

	while ((c = getopt_long(argc, argv, "f:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "rules"))
				out.format = SLO_FORMAT_RULES;
			else if (!strcmp(optarg, "prometheusrule"))
				out.format = SLO_FORMAT_PROMETHEUSRULE;
			else {
				fprintf(stderr, "flowlens-slo: --format must be rules or "
						"prometheusrule\n");
				return 2;
			}
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_NAME:
			out.rule_name = optarg;
			break;
		case OPT_NAMESPACE:
			out.rule_namespace = optarg;
			break;
		case OPT_LABEL:
			if (parse_label(optarg, &out)) {
				fprintf(stderr,
					"flowlens-slo: --label wants KEY=VALUE, got \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case OPT_CHECK:
			check = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("flowlens-slo %s\n", FLOWLENS_VERSION);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "flowlens-slo: give at least one SLO file (--help shows one)\n");
		return 2;
	}
	n = (size_t)(argc - optind);
	specs = calloc(n, sizeof(*specs));
	if (!specs) {
		fprintf(stderr, "flowlens-slo: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char err[1024];

		if (slo_parse_file(argv[optind + (int)i], &specs[i], err, sizeof(err))) {
			fprintf(stderr, "flowlens-slo: %s\n", err);
			bad = 1;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(specs[j].name, specs[i].name)) {
				fprintf(stderr,
					"flowlens-slo: %s:1: SLO name %s is also in %s: set name: in "
					"one of them\n",
					specs[i].file, specs[i].name, specs[j].file);
				bad = 1;
			}
	}
	if (bad || check) {
		free(specs);
		return bad;
	}
	if (output) {
		f = fopen(output, "w");
		if (!f) {
			fprintf(stderr, "flowlens-slo: %s: %s\n", output, strerror(errno));
			free(specs);
			return 1;
		}
	}
	if (slo_write_rules(&out, specs, n, f) || fflush(f) == EOF || ferror(f)) {
		fprintf(stderr, "flowlens-slo: writing %s failed\n", output ? output : "the rules");
		bad = 1;
	}
	if (output && fclose(f) == EOF)
		bad = 1;
	if (bad && output)
		remove(output);
	free(specs);
	return bad;
}
