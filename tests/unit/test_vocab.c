// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The signal vocabulary (lib/vocab.h): names, wire keys both ways, unknown keys refused. */
#include <errno.h>
#include <string.h>
#include "flow.h"
#include "vocab.h"

#include "check.h"

/* Keys as the wire contract documents them (proto/flowlens.proto, lib/vocab.h). */
static void test_vocab_literal_keys(void)
{
	struct vocab_count c;

	CHECK(vocab_parse_count("tcp_refused", &c) == COUNT_TCP && c.i == TCP_REFUSED,
	      "tcp_refused");
	CHECK(vocab_parse_count("tcp_retransmits", &c) == COUNT_RETRANSMITS, "tcp_retransmits");
	CHECK(vocab_parse_count("http:GET:5xx", &c) == COUNT_HTTP && c.i == FL_HTTP_GET &&
		      c.j == HTTP_CLASS_5XX,
	      "http:GET:5xx");
	CHECK(vocab_parse_count("dns:NXDOMAIN:AAAA", &c) == COUNT_DNS && c.i == DNS_NXDOMAIN &&
		      c.j == DNS_QTYPE_AAAA,
	      "dns:NXDOMAIN:AAAA");
	CHECK(vocab_parse_count("drop:netfilter_drop", &c) == COUNT_DROP &&
		      !strcmp(c.reason, "netfilter_drop"),
	      "drop:netfilter_drop");
	for (const char *const *k =
		     (const char *const[]){ "tcp_bogus", "http:GET", "http:GET:6xx",
					    "dns:NOERROR:ZZZ", "dns::A", "tcp_", "", NULL };
	     *k; k++)
		CHECK(vocab_parse_count(*k, &c) == COUNT_UNKNOWN, "'%s' is not a key", *k);
	CHECK(vocab_dns_qtype_index(28) == DNS_QTYPE_AAAA &&
		      vocab_dns_qtype_index(65) == DNS_QTYPE_HTTPS &&
		      vocab_dns_qtype_index(999) == DNS_QTYPE_OTHER,
	      "qtype numbers");
	CHECK(vocab_http_class_of(404) == HTTP_CLASS_4XX &&
		      vocab_http_class_of(99) == HTTP_CLASS_OTHER &&
		      vocab_http_class_of(600) == HTTP_CLASS_OTHER,
	      "status classes");
	CHECK(!strcmp(vocab_reporter_name(REPORTER_SERVER), "server") &&
		      !strcmp(vocab_reporter_name(200), "node"),
	      "reporters");
}

/* Every key the agent can write, the collector reads back as the same signal. */
static void test_vocab_round_trip(void)
{
	char buf[VOCAB_KEY_MAX];
	struct vocab_count c, back;
	int n = 0, ok = 0;

	for (int r = 0; r < TCP_RESULT_MAX; r++) {
		c = (struct vocab_count){ .kind = COUNT_TCP, .i = r };
		n++;
		ok += vocab_count_key(&c, buf, sizeof(buf)) > 0 &&
		      vocab_parse_count(buf, &back) == COUNT_TCP && back.i == r;
	}
	for (int m = 0; m < HTTP_METHODS; m++)
		for (int k = 0; k < HTTP_CLASSES; k++) {
			c = (struct vocab_count){ .kind = COUNT_HTTP, .i = m, .j = k };
			n++;
			ok += vocab_count_key(&c, buf, sizeof(buf)) > 0 &&
			      vocab_parse_count(buf, &back) == COUNT_HTTP && back.i == m &&
			      back.j == k;
		}
	for (int r = 0; r < DNS_RCODES; r++)
		for (int q = 0; q < DNS_QTYPES; q++) {
			c = (struct vocab_count){ .kind = COUNT_DNS, .i = r, .j = q };
			n++;
			ok += vocab_count_key(&c, buf, sizeof(buf)) > 0 &&
			      vocab_parse_count(buf, &back) == COUNT_DNS && back.i == r &&
			      back.j == q;
		}
	CHECK(n == 4 + 8 * 6 + 8 * 11 && ok == n, "%d of %d keys round-trip", ok, n);
	c = (struct vocab_count){ .kind = COUNT_DNS, .i = 0, .j = 0 };
	CHECK(vocab_count_key(&c, buf, 8) == -ENOSPC, "a short buffer is refused");
}

void test_vocab(void)
{
	test_vocab_literal_keys();
	test_vocab_round_trip();
}
