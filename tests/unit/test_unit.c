// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit tests of user-space modules that need no kernel: exposition format, options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expo.h"
#include "optparse.h"
#include "options.h"

static int failures, checks;

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		checks++;                                                               \
		if (!(cond)) {                                                          \
			failures++;                                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __func__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
		}                                                                       \
	} while (0)

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

int main(void)
{
	test_expo_escaping();
	test_expo_doubles();
	test_expo_histogram();
	test_durations();
	test_options();
	printf("test-unit: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
