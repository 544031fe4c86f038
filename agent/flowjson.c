// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include "addr.h"
#include "flowjson.h"
#include "ipproto.h"

static json_object *jtime(uint64_t unix_ms)
{
	char buf[40];
	time_t s = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03uZ",
		 (unsigned int)(unix_ms % 1000));
	return json_object_new_string(buf);
}

static json_object *jdir(const struct agg_dir *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "packets", json_object_new_uint64(d->packets));
	json_object_object_add(o, "bytes", json_object_new_uint64(d->bytes));
	return o;
}

static json_object *agg_object(const struct flow_agg *a, const struct flowjson_interval *iv)
{
	json_object *o = json_object_new_object();
	json_object *flags = json_object_new_object();
	char addr[64], pbuf[8];
	int family;

	if (iv->node)
		json_object_object_add(o, "node", json_object_new_string(iv->node));
	json_object_object_add(o, "interval_start", jtime(iv->start_unix_ms));
	json_object_object_add(o, "interval_end", jtime(iv->end_unix_ms));
	family = addr_str(a->key.client, addr, sizeof(addr));
	json_object_object_add(o, "family", json_object_new_string(family == 10 ? "ipv6" : "ipv4"));
	json_object_object_add(o, "client_ip", json_object_new_string(addr));
	addr_str(a->key.server, addr, sizeof(addr));
	json_object_object_add(o, "server_ip", json_object_new_string(addr));
	json_object_object_add(o, "server_port", json_object_new_int(a->key.server_port));
	if (a->key.dialed_port) {
		addr_str(a->key.dialed, addr, sizeof(addr));
		json_object_object_add(o, "dialed_ip", json_object_new_string(addr));
		json_object_object_add(o, "dialed_port", json_object_new_int(a->key.dialed_port));
	}
	json_object_object_add(
		o, "protocol",
		json_object_new_string(ipproto_name(a->key.proto, pbuf, sizeof(pbuf))));
	json_object_object_add(o, "reporter",
			       json_object_new_string(vocab_reporter_name(a->key.reporter)));
	json_object_object_add(
		o, "interface_kind",
		json_object_new_string(a->key.reporter == REPORTER_NODE ? "node" : "pod"));
	json_object_object_add(o, "initiator",
			       json_object_new_string(a->by_heuristic ? "heuristic" : "syn"));
	json_object_object_add(o, "forward", jdir(&a->fwd));
	json_object_object_add(o, "reply", jdir(&a->rev));
	json_object_object_add(flags, "syn", json_object_new_uint64(a->syn));
	json_object_object_add(flags, "synack", json_object_new_uint64(a->synack));
	json_object_object_add(flags, "fin", json_object_new_uint64(a->fin));
	json_object_object_add(flags, "rst", json_object_new_uint64(a->rst));
	json_object_object_add(flags, "forward_or", json_object_new_int(a->flags_fwd));
	json_object_object_add(flags, "reply_or", json_object_new_int(a->flags_rev));
	json_object_object_add(o, "tcp_flags", flags);
	if (a->tcp[TCP_ESTABLISHED] || a->tcp[TCP_REFUSED] || a->tcp[TCP_TIMEOUT] ||
	    a->tcp[TCP_RESET]) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "established",
				       json_object_new_uint64(a->tcp[TCP_ESTABLISHED]));
		json_object_object_add(t, "refused", json_object_new_uint64(a->tcp[TCP_REFUSED]));
		json_object_object_add(t, "timeout", json_object_new_uint64(a->tcp[TCP_TIMEOUT]));
		json_object_object_add(t, "reset", json_object_new_uint64(a->tcp[TCP_RESET]));
		json_object_object_add(o, "tcp_connections", t);
	}
	if (a->connect && a->connect->n) {
		json_object *c = json_object_new_object();

		json_object_object_add(c, "count", json_object_new_uint64(a->connect->n));
		json_object_object_add(c, "sum_seconds", json_object_new_double(a->connect->sum));
		json_object_object_add(o, "tcp_connect", c);
	}
	if (a->first_ns) {
		json_object_object_add(
			o, "first_seen",
			jtime((uint64_t)((int64_t)a->first_ns + iv->mono_to_unix_ns) / 1000000));
		json_object_object_add(
			o, "last_seen",
			jtime((uint64_t)((int64_t)a->last_ns + iv->mono_to_unix_ns) / 1000000));
	}
	return o;
}

static uint64_t agg_bytes(const struct flow_agg *a)
{
	return a->fwd.bytes + a->rev.bytes;
}

static int by_bytes_desc(const void *x, const void *y)
{
	uint64_t a = agg_bytes(*(const struct flow_agg *const *)x);
	uint64_t b = agg_bytes(*(const struct flow_agg *const *)y);

	return a < b ? 1 : a > b ? -1 : 0;
}

char *flowjson_document(const struct flow_agg *aggs, const struct flowjson_interval *iv, size_t max)
{
	json_object *doc = json_object_new_object();
	json_object *arr = json_object_new_array();
	const struct flow_agg **v = NULL;
	size_t n = 0, i = 0;
	char *out;

	for (const struct flow_agg *a = aggs; a; a = a->hh.next)
		n++;
	if (n)
		v = malloc(n * sizeof(*v));
	for (const struct flow_agg *a = aggs; a && v; a = a->hh.next)
		v[i++] = a;
	if (v)
		qsort(v, n, sizeof(*v), by_bytes_desc);

	if (iv->node)
		json_object_object_add(doc, "node", json_object_new_string(iv->node));
	json_object_object_add(doc, "interval_start", jtime(iv->start_unix_ms));
	json_object_object_add(doc, "interval_end", jtime(iv->end_unix_ms));
	for (i = 0; v && i < n && i < max; i++)
		json_object_array_add(arr, agg_object(v[i], iv));
	free(v);
	json_object_object_add(doc, "aggregates", json_object_new_uint64(n));
	json_object_object_add(doc, "flows", arr);
	out = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
	json_object_put(doc);
	return out;
}

int flowjson_write_lines(FILE *f, const struct flow_agg *aggs, const struct flowjson_interval *iv)
{
	int err = 0;

	for (const struct flow_agg *a = aggs; a; a = a->hh.next) {
		json_object *o = agg_object(a, iv);

		if (fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) <
		    0)
			err = -EIO;
		json_object_put(o);
	}
	if (fflush(f) != 0)
		err = -EIO;
	return err;
}
