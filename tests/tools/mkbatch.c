// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mkbatch: writes a wire-format batch (or a deliberately bad body) to stdout, for tests that
 * talk to the collector with curl.
 *
 *   mkbatch --node N --boot HEX32 --seq S [--version V] [--future-field]
 *           [--end-ms UNIX_MS]
 *           [--flow CLIENT,SERVER,PORT,PROTO,REPORTER,FPKTS,FBYTES,RPKTS,RBYTES
 *            [--dialed IP,PORT]]...   (--dialed: what the client of the flow before dialed)
 *           [--empty-flows N]   N empty aggregates (2 bytes each on the wire)
 *           [--join-flows N]    N client-side reports, each of its own client, that dialed
 *                               10.100.0.10:80 to reach 10.1.1.3:80 (grows the join table)
 *   mkbatch --bomb BYTES      a zlib stream that inflates to BYTES zero bytes
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "wire.h"

#define MAX_FLOWS 64

static int hexbytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	Flowlens__V1__Batch b = FLOWLENS__V1__BATCH__INIT;
	static Flowlens__V1__FlowAggregate flows[MAX_FLOWS];
	static Flowlens__V1__FlowAggregate *ptrs[MAX_FLOWS];
	static Flowlens__V1__Counters ctr[2 * MAX_FLOWS];
	static uint8_t addrs[2 * MAX_FLOWS][16];
	static uint8_t dialed[MAX_FLOWS][16];
	uint8_t boot[16] = { 0 };
	int future = 0;
	size_t n = 0, n_empty = 0, n_join = 0;

	b.schema_version = WIRE_SCHEMA_VERSION;
	b.boot_id.data = boot;
	b.boot_id.len = sizeof(boot);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--bomb") == 0 && v) {
			size_t len = strtoull(v, NULL, 10), clen = compressBound(len);
			uint8_t *zero = calloc(1, len), *out = malloc(clen);
			uLongf cl = clen;

			compress2(out, &cl, zero, len, 9);
			fwrite(out, 1, cl, stdout);
			return 0;
		} else if (strcmp(a, "--node") == 0 && v) {
			b.node = (char *)v;
			i++;
		} else if (strcmp(a, "--boot") == 0 && v) {
			if (hexbytes(v, boot, 16))
				return 2;
			i++;
		} else if (strcmp(a, "--seq") == 0 && v) {
			b.seq = strtoull(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--version") == 0 && v) {
			b.schema_version = (uint32_t)strtoul(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--end-ms") == 0 && v) {
			b.interval_end_unix_ms = strtoull(v, NULL, 10);
			b.interval_start_unix_ms = b.interval_end_unix_ms - 1000;
			i++;
		} else if (strcmp(a, "--dialed") == 0 && v && n > 0) {
			char ip[64];
			unsigned port;
			int fam;

			if (sscanf(v, "%63[^,],%u", ip, &port) != 2)
				return 2;
			fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
			if (inet_pton(fam, ip, dialed[n - 1]) != 1)
				return 2;
			flows[n - 1].dialed_ip.data = dialed[n - 1];
			flows[n - 1].dialed_ip.len = fam == AF_INET ? 4 : 16;
			flows[n - 1].dialed_port = port;
			i++;
		} else if (strcmp(a, "--empty-flows") == 0 && v) {
			n_empty = strtoull(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--join-flows") == 0 && v) {
			n_join = strtoull(v, NULL, 10);
			i++;
		} else if (strcmp(a, "--future-field") == 0) {
			future = 1;
		} else if (strcmp(a, "--flow") == 0 && v && n < MAX_FLOWS) {
			char cli[64], srv[64], proto[8], rep[8];
			unsigned port;
			unsigned long long fp, fb, rp, rb;
			Flowlens__V1__FlowAggregate *f = &flows[n];
			int fam;

			if (sscanf(v, "%63[^,],%63[^,],%u,%7[^,],%7[^,],%llu,%llu,%llu,%llu", cli,
				   srv, &port, proto, rep, &fp, &fb, &rp, &rb) != 9)
				return 2;
			flowlens__v1__flow_aggregate__init(f);
			flowlens__v1__counters__init(&ctr[2 * n]);
			flowlens__v1__counters__init(&ctr[2 * n + 1]);
			fam = strchr(cli, ':') ? AF_INET6 : AF_INET;
			if (inet_pton(fam, cli, addrs[2 * n]) != 1 ||
			    inet_pton(fam, srv, addrs[2 * n + 1]) != 1)
				return 2;
			f->client_ip.data = addrs[2 * n];
			f->server_ip.data = addrs[2 * n + 1];
			f->client_ip.len = f->server_ip.len = fam == AF_INET ? 4 : 16;
			f->server_port = port;
			f->protocol = strcmp(proto, "tcp") == 0 ? 6 :
				      strcmp(proto, "udp") == 0 ? 17 :
								  1;
			f->reporter = strcmp(rep, "client") == 0 ? 1 :
				      strcmp(rep, "server") == 0 ? 2 :
								   3;
			ctr[2 * n].packets = fp;
			ctr[2 * n].bytes = fb;
			ctr[2 * n + 1].packets = rp;
			ctr[2 * n + 1].bytes = rb;
			f->forward = &ctr[2 * n];
			f->reply = &ctr[2 * n + 1];
			ptrs[n] = f;
			n++;
			i++;
		} else {
			fprintf(stderr, "mkbatch: bad argument %s\n", a);
			return 2;
		}
	}
	b.n_flows = n;
	b.flows = ptrs;
	if (n_empty || n_join) {
		static Flowlens__V1__FlowAggregate empty = FLOWLENS__V1__FLOW_AGGREGATE__INIT;
		static Flowlens__V1__Counters one = {
			PROTOBUF_C_MESSAGE_INIT(&flowlens__v1__counters__descriptor), 1, 100
		};
		static uint8_t srv[4] = { 10, 1, 1, 3 }, vip[4] = { 10, 100, 0, 10 };
		size_t total = n + n_empty + n_join;
		Flowlens__V1__FlowAggregate **all = calloc(total, sizeof(*all));
		Flowlens__V1__FlowAggregate *jf = calloc(n_join ? n_join : 1, sizeof(*jf));
		uint8_t(*cli)[4] = calloc(n_join ? n_join : 1, 4);

		for (size_t k = 0; k < n; k++)
			all[k] = ptrs[k];
		for (size_t k = 0; k < n_empty; k++)
			all[n + k] = &empty;
		for (size_t k = 0; k < n_join; k++) {
			Flowlens__V1__FlowAggregate *f = &jf[k];

			flowlens__v1__flow_aggregate__init(f);
			cli[k][0] = 10;
			cli[k][1] = 9;
			cli[k][2] = (uint8_t)(k >> 8);
			cli[k][3] = (uint8_t)k;
			if (k >= 65536)
				cli[k][1] = (uint8_t)(10 + (k >> 16));
			f->client_ip = (ProtobufCBinaryData){ 4, cli[k] };
			f->server_ip = (ProtobufCBinaryData){ 4, srv };
			f->dialed_ip = (ProtobufCBinaryData){ 4, vip };
			f->server_port = 80;
			f->dialed_port = 80;
			f->protocol = 6;
			f->reporter = 1;
			f->forward = &one;
			all[n + n_empty + k] = f;
		}
		b.n_flows = total;
		b.flows = all;
	}
	{
		size_t plen = flowlens__v1__batch__get_packed_size(&b);
		uint8_t *buf = malloc(plen + 16), *out;
		uLongf cl;

		flowlens__v1__batch__pack(&b, buf);
		if (future) {
			/* field 1000, varint 42: a field from a newer agent */
			buf[plen++] = 0xc0;
			buf[plen++] = 0x3e;
			buf[plen++] = 42;
		}
		cl = compressBound(plen);
		out = malloc(cl);
		compress2(out, &cl, buf, plen, 6);
		fwrite(out, 1, cl, stdout);
	}
	return 0;
}
