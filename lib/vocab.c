// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The signal vocabulary's names and the error_counts key codec, generated from vocab.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "flow.h"
#include "vocab.h"

_Static_assert(HTTP_METHODS == FL_HTTP_METHODS, "vocab.h lists every datapath HTTP method");

#define VOCAB_NAME2(e, name) [e] = name,
#define VOCAB_NAME3(e, name, value) [e] = name,
const char *const vocab_tcp_result[TCP_RESULT_MAX] = { VOCAB_TCP_RESULTS(VOCAB_NAME2) };
const char *const vocab_dns_rcode[DNS_RCODES] = { VOCAB_DNS_RCODES(VOCAB_NAME2) };
const char *const vocab_dns_qtype[DNS_QTYPES] = { VOCAB_DNS_QTYPES(VOCAB_NAME3) };
const char *const vocab_http_method[HTTP_METHODS] = { VOCAB_HTTP_METHODS(VOCAB_NAME2) };
const char *const vocab_http_class[HTTP_CLASSES] = { VOCAB_HTTP_CLASSES(VOCAB_NAME2) };
const char *const vocab_reporter[REPORTERS] = { VOCAB_REPORTERS(VOCAB_NAME2) };
const char *const vocab_hist[HIST_KINDS] = { VOCAB_HISTS(VOCAB_NAME2) };
const char *const vocab_grpc_status[GRPC_STATUSES] = { VOCAB_GRPC_STATUSES(VOCAB_NAME2) };
const char *const vocab_http_version[HTTP_VERSIONS] = { VOCAB_HTTP_VERSIONS(VOCAB_NAME2) };

int vocab_dns_qtype_index(uint16_t qtype)
{
#define VOCAB_QTYPE_CASE(e, name, value) \
	case value:                      \
		return e;
	switch (qtype) {
		VOCAB_DNS_QTYPES(VOCAB_QTYPE_CASE)
	}
	return DNS_QTYPE_OTHER;
#undef VOCAB_QTYPE_CASE
}

int vocab_dns_rcode_index(unsigned int rcode)
{
	return rcode < DNS_RCODE_OTHER ? (int)rcode : DNS_RCODE_OTHER;
}

int vocab_http_class_of(unsigned int status)
{
	return status >= 100 && status <= 599 ? (int)(status / 100) : HTTP_CLASS_OTHER;
}

const char *vocab_reporter_name(unsigned int reporter)
{
	return reporter < REPORTERS ? vocab_reporter[reporter] : vocab_reporter[REPORTER_NODE];
}

int vocab_find(const char *const *list, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(list[i]) == len && !strncmp(list[i], name, len))
			return i;
	return -1;
}

/* "<a>:<b>" after a prefix: both parts found in their lists. */
static int pair(const char *s, const char *const *la, int na, const char *const *lb, int nb, int *a,
		int *b)
{
	const char *colon = strchr(s, ':');

	if (!colon)
		return 0;
	*a = vocab_find(la, na, s, (size_t)(colon - s));
	*b = vocab_find(lb, nb, colon + 1, strlen(colon + 1));
	return *a >= 0 && *b >= 0;
}

enum vocab_count_kind vocab_parse_count(const char *key, struct vocab_count *out)
{
	memset(out, 0, sizeof(*out));
	if (!strcmp(key, "tcp_retransmits"))
		out->kind = COUNT_RETRANSMITS;
	else if (!strncmp(key, "tcp_", 4) && (out->i = vocab_find(vocab_tcp_result, TCP_RESULT_MAX,
								  key + 4, strlen(key + 4))) >= 0)
		out->kind = COUNT_TCP;
	else if (!strncmp(key, "http:", 5) &&
		 pair(key + 5, vocab_http_method, HTTP_METHODS, vocab_http_class, HTTP_CLASSES,
		      &out->i, &out->j))
		out->kind = COUNT_HTTP;
	else if (!strncmp(key, "http2:", 6) &&
		 pair(key + 6, vocab_http_method, HTTP_METHODS, vocab_http_class, HTTP_CLASSES,
		      &out->i, &out->j))
		out->kind = COUNT_HTTP2;
	else if (!strncmp(key, "grpc:", 5) && (out->i = vocab_find(vocab_grpc_status, GRPC_STATUSES,
								   key + 5, strlen(key + 5))) >= 0)
		out->kind = COUNT_GRPC;
	else if (!strncmp(key, "dns:", 4) && pair(key + 4, vocab_dns_rcode, DNS_RCODES,
						  vocab_dns_qtype, DNS_QTYPES, &out->i, &out->j))
		out->kind = COUNT_DNS;
	else if (!strncmp(key, "drop:", 5)) {
		out->kind = COUNT_DROP;
		out->reason = key + 5;
	}
	return out->kind;
}

int vocab_count_key(const struct vocab_count *c, char *buf, size_t size)
{
	int n;

	switch (c->kind) {
	case COUNT_TCP:
		n = snprintf(buf, size, "tcp_%s", vocab_tcp_result[c->i]);
		break;
	case COUNT_RETRANSMITS:
		n = snprintf(buf, size, "tcp_retransmits");
		break;
	case COUNT_HTTP:
		n = snprintf(buf, size, "http:%s:%s", vocab_http_method[c->i],
			     vocab_http_class[c->j]);
		break;
	case COUNT_DNS:
		n = snprintf(buf, size, "dns:%s:%s", vocab_dns_rcode[c->i], vocab_dns_qtype[c->j]);
		break;
	case COUNT_HTTP2:
		n = snprintf(buf, size, "http2:%s:%s", vocab_http_method[c->i],
			     vocab_http_class[c->j]);
		break;
	case COUNT_GRPC:
		n = snprintf(buf, size, "grpc:%s", vocab_grpc_status[c->i]);
		break;
	case COUNT_DROP:
		n = snprintf(buf, size, "drop:%s", c->reason ? c->reason : "other");
		break;
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}
