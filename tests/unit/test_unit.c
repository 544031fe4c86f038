// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of user-space modules that need no kernel: exposition format, options, load
 * failure notes; and the entry point of test-unit (attribution, vocabulary and the
 * collector's store have files of their own).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <zlib.h>
#include "export.h"
#include "expo.h"
#include "kube.h"
#include "meta.h"
#include "optparse.h"
#include "options.h"
#include "../../collector/options.h"
#include "probe.h"
#include "store.h"
#include "wire.h"

#define CHECK_MAIN
#include "check.h"

static void test_expo_escaping(void)
{
	char lb[EXPO_LABELS_MAX];

	expo_labels(lb, sizeof(lb), "a", "x\"y\\z\nw", "skipped", NULL, "b", "", NULL);
	CHECK(strcmp(lb, "{a=\"x\\\"y\\\\z\\nw\",b=\"\"}") == 0, "got %s", lb);
	expo_labels(lb, sizeof(lb), NULL);
	CHECK(strcmp(lb, "") == 0, "no labels: got %s", lb);
	expo_labels(lb, 12, "key", "a-long-value", NULL);
	CHECK(strcmp(lb, "") == 0, "overflow must not truncate mid-label: got %s", lb);
}

static void test_expo_doubles(void)
{
	char b[40];

	expo_format_double(b, sizeof(b), 0.005);
	CHECK(strcmp(b, "0.005") == 0, "0.005 -> %s", b);
	expo_format_double(b, sizeof(b), 0.1);
	CHECK(strcmp(b, "0.1") == 0, "0.1 -> %s", b);
	expo_format_double(b, sizeof(b), 2.5);
	CHECK(strcmp(b, "2.5") == 0, "2.5 -> %s", b);
	expo_format_double(b, sizeof(b), 30);
	CHECK(strcmp(b, "30") == 0, "30 -> %s", b);
	expo_format_double(b, sizeof(b), 1.0 / 0.0);
	CHECK(strcmp(b, "+Inf") == 0, "inf -> %s", b);
}

static void test_expo_histogram(void)
{
	const double bounds[] = { 0.001, 0.01, 0.1 };
	const uint64_t counts[] = { 1, 0, 2, 3 };
	struct expo e;
	char *out;
	size_t len;
	const char *want = "# HELP h_seconds A \\\\ help\\nline\n"
			   "# TYPE h_seconds histogram\n"
			   "h_seconds_bucket{x=\"1\",le=\"0.001\"} 1\n"
			   "h_seconds_bucket{x=\"1\",le=\"0.01\"} 1\n"
			   "h_seconds_bucket{x=\"1\",le=\"0.1\"} 3\n"
			   "h_seconds_bucket{x=\"1\",le=\"+Inf\"} 6\n"
			   "h_seconds_sum{x=\"1\"} 1.25\n"
			   "h_seconds_count{x=\"1\"} 6\n";

	CHECK(expo_open(&e) == 0, "open");
	expo_family(&e, "h_seconds", "histogram", "A \\ help\nline");
	expo_histogram(&e, "h_seconds", "x=\"1\"", bounds, counts, 3, 1.25);
	CHECK(expo_close(&e, &out, &len) == 0, "close");
	CHECK(strcmp(out, want) == 0, "got:\n%s", out);
	CHECK(len == strlen(want), "len %zu", len);
	free(out);
}

static void test_durations(void)
{
	uint64_t ms;

	CHECK(opt_parse_duration("250ms", &ms) == 0 && ms == 250, "250ms");
	CHECK(opt_parse_duration("10s", &ms) == 0 && ms == 10000, "10s");
	CHECK(opt_parse_duration("2m", &ms) == 0 && ms == 120000, "2m");
	CHECK(opt_parse_duration("7", &ms) == 0 && ms == 7000, "bare seconds");
	CHECK(opt_parse_duration("", &ms) == -EINVAL, "empty");
	CHECK(opt_parse_duration("-1s", &ms) == -EINVAL, "negative");
	CHECK(opt_parse_duration("5d", &ms) == -EINVAL, "unknown unit");
	CHECK(opt_parse_duration("0s", &ms) == -EINVAL, "zero");
	CHECK(opt_parse_duration("99999999999999999999s", &ms) == -EINVAL, "overflow");
}

static int parse(const char *const *args)
{
	struct agent_options o;
	char *argv[16];
	int argc = 0, err;

	argv[argc++] = "flowlens-agent";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	err = options_parse(&o, argc, argv);
	options_free(&o);
	return err;
}

static void test_options(void)
{
	struct agent_options o;
	char *argv[] = { "flowlens-agent",
			 "-i",
			 "eni*, eth0",
			 "--interval",
			 "500ms",
			 "--listen",
			 "127.0.0.1:9999",
			 "--attach-mode",
			 "tc",
			 "--tc-priority",
			 "7",
			 "--flow-table-size",
			 "128",
			 NULL };
	const char *bad[][3] = {
		{ "--interval", "50ms", NULL },	    { "--listen", "nohost", NULL },
		{ "--listen", "1.2.3.4:0", NULL },  { "--attach-mode", "xdp", NULL },
		{ "--tc-priority", "0", NULL },	    { "--flow-table-size", "-5", NULL },
		{ "--ringbuf-size", "5000", NULL }, { "--output", "yaml", NULL },
		{ "--log-level", "loud", NULL },    { "-i", ",,", NULL },
		{ "extra-arg", NULL, NULL },
	};

	CHECK(options_parse(&o, 13, argv) == 0, "valid options refused");
	CHECK(o.n_interfaces == 2 && strcmp(o.interfaces[1], "eth0") == 0, "globs");
	CHECK(o.interval_ms == 500 && o.listen_port == 9999 &&
		      strcmp(o.listen_host, "127.0.0.1") == 0,
	      "interval/listen");
	CHECK(o.attach_mode == ATTACH_TC && o.tc_priority == 7 && o.flow_table_size == 128,
	      "attach/table");
	options_free(&o);

	setenv("FLOWLENS_INTERVAL", "3s", 1);
	CHECK(options_parse(&o, 1, argv) == 0 && o.interval_ms == 3000, "env interval");
	options_free(&o);
	setenv("FLOWLENS_INTERVAL", "bogus", 1);
	CHECK(options_parse(&o, 1, argv) == -EINVAL, "bad env value refused");
	options_free(&o);
	unsetenv("FLOWLENS_INTERVAL");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse(bad[i]) == -EINVAL, "accepted %s %s", bad[i][0],
		      bad[i][1] ? bad[i][1] : "");
}

/* The collector's table: documented defaults, a flag without value, "0" where it disables. */
static void test_collector_options(void)
{
	struct collector_options o;
	char *argv[] = {
		"flowlens-collector", "--token-file", "t", "--pod-labels", "--shutdown-grace", "0",
		"--in-cluster",	      "off",	      NULL
	};
	char *bad_grace[] = {
		"flowlens-collector", "--token-file", "t", "--series-ttl", "0", NULL
	};

	CHECK(collector_options_parse(&o, 8, argv) == 0, "valid collector options");
	CHECK(!strcmp(o.listen_host, "0.0.0.0") && o.listen_port == 9900 && o.max_body == 4194304 &&
		      o.max_decompressed == 67108864 && o.max_series == 100000 &&
		      o.ttl_ms == 300000 && o.zero_hold_ms == 70000 && o.join_wait_ms == 25000 &&
		      o.ip_history_ms == 600000 && o.max_joins == 200000 &&
		      o.agent_protect_ms == 120000 && o.max_connections == 1024 &&
		      o.max_connections_per_ip == 64 && o.request_timeout_ms == 10000 &&
		      o.snapshot_ms == 60000,
	      "documented defaults");
	CHECK(o.pod_labels == 1 && o.ip_labels == 0 && o.shutdown_grace_ms == 0 &&
		      o.in_cluster == 0 && !strcmp(o.token_file, "t"),
	      "flags");
	collector_options_free(&o);
	CHECK(collector_options_parse(&o, 5, bad_grace) == -EINVAL, "a zero TTL refused");
	collector_options_free(&o);
	setenv("FLOWLENS_IP_LABELS", "yes", 1);
	setenv("FLOWLENS_IN_CLUSTER", "auto", 1);
	CHECK(collector_options_parse(&o, 3, argv) == 0 && o.ip_labels == 1 && o.in_cluster == -1,
	      "environment");
	collector_options_free(&o);
	unsetenv("FLOWLENS_IP_LABELS");
	unsetenv("FLOWLENS_IN_CLUSTER");
}

/*
 * A failed load as libbpf reports it, in the messages the agent captured on Debian's 5.10 (the
 * drop program refused) and in those of a kernel without the conntrack kfuncs: the program and
 * the verifier's last word are found, the statistics lines skipped.
 */
static void test_load_failure(void)
{
	struct load_failure lf;

	memset(&lf, 0, sizeof(lf));
	load_failure_note(&lf,
			  "prog 'flowlens_drop': BPF program load failed: Permission denied\n");
	load_failure_note(&lf,
			  "prog 'flowlens_drop': -- BEGIN PROG LOAD LOG --\n"
			  "arg#0 type is not a struct\nUnrecognized arg#0 type PTR\n"
			  "; __u32 reason = (__u32)ctx[2];\n0: (79) r3 = *(u64 *)(r1 +16)\n"
			  "func 'kfree_skb' doesn't have 3-th argument\n"
			  "invalid bpf_context access off=16 size=8\n"
			  "processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 "
			  "peak_states 0 mark_read 0\n-- END PROG LOAD LOG --\n");
	load_failure_note(&lf,
			  "prog 'flowlens_ingress': BPF program load failed: Invalid argument\n");
	CHECK(strcmp(lf.prog, "flowlens_drop") == 0, "failed program '%s' (the first one)",
	      lf.prog);
	CHECK(strcmp(lf.verifier, "invalid bpf_context access off=16 size=8") == 0,
	      "verifier line '%s'", lf.verifier);
	CHECK(!lf.missing_extern, "no missing extern");
	memset(&lf, 0, sizeof(lf));
	load_failure_note(&lf, "extern (func ksym) 'bpf_ct_release': not found in kernel or module "
			       "BTFs\n");
	CHECK(lf.missing_extern && !lf.prog[0] && !lf.verifier[0], "a missing kfunc");
}

/*
 * Shards by server address (agent/export.c): every address has one shard; going from 3 to 4
 * shards moves addresses only to the new shard, about a quarter of them; both families.
 */
static void test_shards(void)
{
	unsigned int count[4] = { 0 }, moved = 0, elsewhere = 0, n = 4000;

	for (unsigned int i = 0; i < n; i++) {
		uint8_t a[16] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
		unsigned int s3 = export_shard_of(a, 4, 3), s4 = export_shard_of(a, 4, 4);

		count[s4]++;
		if (s3 != s4)
			moved++;
		if (s3 != s4 && s4 != 3)
			elsewhere++;
	}
	CHECK(elsewhere == 0, "3 -> 4 shards: %u addresses moved between old shards", elsewhere);
	CHECK(moved > n / 4 - n / 20 && moved < n / 4 + n / 20,
	      "3 -> 4 shards: %u of %u addresses moved (about a quarter)", moved, n);
	for (unsigned int k = 0; k < 4; k++)
		CHECK(count[k] > n / 4 - n / 20 && count[k] < n / 4 + n / 20,
		      "shard %u holds %u of %u addresses", k, count[k], n);
	{
		uint8_t v6[16] = { 0xfd, 0, 0, 1, [15] = 7 };

		CHECK(export_shard_of(v6, 16, 4) == export_shard_of(v6, 16, 4) &&
			      export_shard_of(v6, 16, 1) == 0,
		      "IPv6: stable; one shard is shard 0");
	}
}

void test_attrib(void);
void test_vocab(void);
void test_store(void);
void test_h2(void);

int main(void)
{
	test_attrib();
	test_h2();
	test_vocab();
	test_store();
	test_load_failure();
	test_expo_escaping();
	test_expo_doubles();
	test_expo_histogram();
	test_durations();
	test_options();
	test_collector_options();
	test_shards();
	printf("test-unit: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
