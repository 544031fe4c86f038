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

/* Keys of every cell of an ni x nj vocabulary written and read back; returns how many agree. */
static int round_trip(enum vocab_count_kind kind, int ni, int nj)
{
	char buf[VOCAB_KEY_MAX];
	struct vocab_count c, back;
	int ok = 0;

	for (int i = 0; i < ni; i++) {
		for (int j = 0; j < nj; j++) {
			c = (struct vocab_count){ .kind = kind, .i = i, .j = j };
			ok += vocab_count_key(&c, buf, sizeof(buf)) > 0 &&
			      vocab_parse_count(buf, &back) == kind && back.i == i &&
			      (nj == 1 || back.j == j);
		}
	}
	return ok;
}

/* Every key the agent can write, the collector reads back as the same signal. */
static void test_vocab_round_trip(void)
{
	char buf[VOCAB_KEY_MAX];
	struct vocab_count c;
	int ok = round_trip(COUNT_TCP, TCP_RESULT_MAX, 1) +
		 round_trip(COUNT_HTTP, HTTP_METHODS, HTTP_CLASSES) +
		 round_trip(COUNT_DNS, DNS_RCODES, DNS_QTYPES);

	CHECK(ok == 4 + 8 * 6 + 8 * 11, "%d of %d keys round-trip", ok, 4 + 8 * 6 + 8 * 11);
	c = (struct vocab_count){ .kind = COUNT_DNS, .i = 0, .j = 0 };
	CHECK(vocab_count_key(&c, buf, 8) == -ENOSPC, "a short buffer is refused");
}

void test_vocab(void)
{
	test_vocab_literal_keys();
	test_vocab_round_trip();
}
