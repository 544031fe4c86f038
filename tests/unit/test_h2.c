// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP/2 decoder (agent/h2.c) against header blocks made by nghttp2's own deflater (the
 * ground truth: what a real HTTP/2 peer would send, dynamic-table references and Huffman
 * included), cut into records at arbitrary points as the datapath would hand them up.
 */
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "check.h"
#include "h2.h"
#include "vocab.h"

#define GOT_MAX 64

struct got {
	struct fl_sample s[GOT_MAX];
	int n;
};

static void collect(void *ctx, const struct fl_sample *s)
{
	struct got *g = ctx;

	if (g->n < GOT_MAX)
		g->s[g->n++] = *s;
}

/* One connection as the datapath sees it: its key and each direction's record numbers. */
struct conn {
	struct h2 *h;
	struct fl_key key;
	uint32_t seq[2];
	nghttp2_hd_deflater *def[2];
	size_t chunk; /* bytes per record */
};

static void conn_init(struct conn *c, struct h2 *h, uint16_t port, size_t chunk, int midstream)
{
	struct fl_h2_rec r;

	memset(c, 0, sizeof(*c));
	c->h = h;
	c->key.saddr[3] = 0x0100000a;
	c->key.daddr[3] = 0x0200000a;
	c->key.sport = port;
	c->key.dport = 8080;
	c->key.proto = 6;
	c->key.ifindex = 3;
	c->chunk = chunk;
	nghttp2_hd_deflate_new(&c->def[0], 4096);
	nghttp2_hd_deflate_new(&c->def[1], 4096);
	memset(&r, 0, sizeof(r));
	r.key = c->key;
	r.type = FL_H2_REC_PREFACE;
	r.chunk = midstream ? FL_H2_MIDSTREAM : 0;
	r.seq = ++c->seq[0];
	h2_record(h, &r);
}

static void conn_done(struct conn *c)
{
	nghttp2_hd_deflate_del(c->def[0]);
	nghttp2_hd_deflate_del(c->def[1]);
}

/* A frame's payload as records of c->chunk bytes; drop: the index of a record not delivered. */
static void send_frame(struct conn *c, int side, uint8_t type, uint8_t flags, uint32_t stream,
		       const uint8_t *p, size_t n, uint64_t ts, int drop)
{
	size_t off = 0;
	int i = 0;

	do {
		struct fl_h2_rec r;
		size_t k = n - off < c->chunk ? n - off : c->chunk;

		memset(&r, 0, sizeof(r));
		r.key = c->key;
		r.side = (uint8_t)side;
		r.type = FL_H2_REC_FRAME;
		r.flags = flags;
		r.frame = type;
		r.stream = stream;
		r.ts_ns = ts;
		r.seq = ++c->seq[side];
		r.chunk = (off == 0 ? FL_H2_FIRST : 0) | (off + k == n ? FL_H2_LAST : 0);
		memcpy(r.data, p + off, k);
		r.len = (uint16_t)k;
		if (i++ != drop)
			h2_record(c->h, &r);
		off += k;
	} while (off < n);
}

/* A header block made by this side's deflater, as one HEADERS frame. */
static size_t send_headers(struct conn *c, int side, uint32_t stream, const nghttp2_nv *nv,
			   size_t nn, int end_stream, uint64_t ts, int drop)
{
	uint8_t buf[1024];
	ssize_t n = nghttp2_hd_deflate_hd(c->def[side], buf, sizeof(buf), (nghttp2_nv *)nv, nn);

	CHECK(n > 0, "deflate: %zd", n);
	send_frame(c, side, FL_H2_HEADERS, FL_H2_END_HEADERS | (end_stream ? FL_H2_END_STREAM : 0),
		   stream, buf, n > 0 ? (size_t)n : 0, ts, drop);
	return n > 0 ? (size_t)n : 0;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE \
	}

static const nghttp2_nv grpc_req[] = {
	NV(":method", "POST"),
	NV(":scheme", "http"),
	NV(":path", "/shop.Cart/Add"),
	NV(":authority", "cart.shop.svc:80"),
	NV("content-type", "application/grpc"),
	NV("te", "trailers"),
	NV("user-agent", "grpc-python/1.51.1 grpc-c/29.0.0 (linux; chttp2)"),
};
static const nghttp2_nv grpc_resp[] = {
	NV(":status", "200"),
	NV("content-type", "application/grpc"),
};

static void trailers(struct conn *c, uint32_t stream, const char *status, uint64_t ts, int drop)
{
	nghttp2_nv nv[2] = {
		{ (uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status),
		  NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"grpc-message", (uint8_t *)"injected", 12, 8, NGHTTP2_NV_FLAG_NONE },
	};

	send_headers(c, 1, stream, nv, 2, 1, ts, drop);
}

static int count_of(const struct got *g, int kind, uint16_t status)
{
	int n = 0;

	for (int i = 0; i < g->n; i++)
		n += g->s[i].kind == kind && g->s[i].status == status;
	return n;
}

static int find(const struct got *g, int kind, uint16_t status, uint64_t dur)
{
	for (int i = 0; i < g->n; i++)
		if (g->s[i].kind == kind && g->s[i].status == status && g->s[i].duration_ns == dur)
			return 1;
	return 0;
}

/* Multiplexed gRPC calls, blocks cut into 7-byte records: every status and duration exact. */
static void test_h2_multiplexed(void)
{
	static const char *const st[] = { "0", "5", "14", "0", "0", "4" };
	struct got g = { .n = 0 };
	struct h2 *h;
	struct conn c;
	size_t first = 0, later = 0;

	CHECK(h2_new(&h, 60000000000ULL, collect, &g) == 0, "h2_new");
	conn_init(&c, h, 40000, 7, 0);
	/* Six requests at once on streams 1..11, then their answers in another order. */
	for (uint32_t i = 0; i < 6; i++) {
		size_t n = send_headers(&c, 0, 2 * i + 1, grpc_req, 7, 0, 1000 + i, -1);

		if (i == 0)
			first = n;
		else
			later = n;
	}
	CHECK(later < first / 4, "later blocks reference the dynamic table (%zu vs %zu bytes)",
	      later, first);
	for (int k = 5; k >= 0; k--) {
		uint32_t id = 2 * (uint32_t)k + 1;

		send_headers(&c, 1, id, grpc_resp, 2, 0, 5000 + (uint64_t)k * 10, -1);
		trailers(&c, id, st[k], 9000 + (uint64_t)k * 100, -1);
	}
	CHECK(g.n == 12, "12 samples (6 HTTP/2, 6 gRPC): %d", g.n);
	for (int k = 0; k < 6; k++) {
		CHECK(find(&g, FL_SAMPLE_HTTP2, 200,
			   5000 + (uint64_t)k * 10 - (1000 + (uint64_t)k)),
		      "call %d: HTTP/2 200 at its response HEADERS", k);
		CHECK(find(&g, FL_SAMPLE_GRPC, (uint16_t)atoi(st[k]),
			   9000 + (uint64_t)k * 100 - (1000 + (uint64_t)k)),
		      "call %d: gRPC status %s at its trailers", k, st[k]);
	}
	for (int i = 0; i < g.n; i++)
		CHECK(g.s[i].method == FL_HTTP_POST, "method POST");
	CHECK(h2_stats(h)->requests == 6 && h2_stats(h)->undecodable[H2_RECORD_GAP] == 0,
	      "6 requests, all decoded");
	conn_done(&c);
	h2_free(h);
}

/* Trailers-only answers, a reset stream, padding, priority and a CONTINUATION. */
static void test_h2_frames(void)
{
	static const nghttp2_nv only[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
		NV("grpc-status", "12"),
	};
	struct got g = { .n = 0 };
	uint8_t blk[512], pay[600];
	struct h2 *h;
	struct conn c;
	ssize_t n;

	CHECK(h2_new(&h, 60000000000ULL, collect, &g) == 0, "h2_new");
	conn_init(&c, h, 40001, 256, 0);
	/* Trailers-only: UNIMPLEMENTED in the response's only HEADERS. */
	send_headers(&c, 0, 1, grpc_req, 7, 0, 100, -1);
	send_headers(&c, 1, 1, only, 3, 1, 350, -1);
	CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 250) &&
		      find(&g, FL_SAMPLE_GRPC, GRPC_UNIMPLEMENTED, 250),
	      "trailers-only response: 200 and UNIMPLEMENTED");
	/* The client cancels (RST_STREAM CANCEL) before any answer. */
	g.n = 0;
	send_headers(&c, 0, 3, grpc_req, 7, 0, 1000, -1);
	send_frame(&c, 0, FL_H2_RST_STREAM, 0, 3, (const uint8_t[]){ 0, 0, 0, 8 }, 4, 1700, -1);
	CHECK(g.n == 2 && find(&g, FL_SAMPLE_HTTP2, 0, 700) &&
		      find(&g, FL_SAMPLE_GRPC, GRPC_CANCELLED, 700),
	      "reset before the response: status 0 (other) and CANCELLED");
	/* A padded HEADERS with priority, its block continued in a CONTINUATION. */
	g.n = 0;
	n = nghttp2_hd_deflate_hd(c.def[0], blk, sizeof(blk), (nghttp2_nv *)grpc_req, 7);
	CHECK(n > 4, "deflate");
	pay[0] = 10; /* pad length */
	memset(pay + 1, 0, 5); /* stream dependency, weight */
	memcpy(pay + 6, blk, 3);
	memset(pay + 9, 0xee, 10); /* padding */
	send_frame(&c, 0, FL_H2_HEADERS, FL_H2_PADDED | FL_H2_PRIORITY_FLAG, 5, pay, 19, 2000, -1);
	send_frame(&c, 0, FL_H2_CONTINUATION, FL_H2_END_HEADERS, 5, blk + 3, (size_t)n - 3, 2001,
		   -1);
	send_headers(&c, 1, 5, grpc_resp, 2, 0, 2600, -1);
	trailers(&c, 5, "0", 2900, -1);
	CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 600) && find(&g, FL_SAMPLE_GRPC, GRPC_OK, 900),
	      "padded, prioritised, continued block decoded");

	CHECK(h2_stats(h)->requests == 3 && h2_stats(h)->undecodable[H2_DECODE_ERROR] == 0,
	      "3 requests, all decoded");
	conn_done(&c);
	h2_free(h);
}

/*
 * A lost record (the ring buffer was full): that side's table is lost; a later response's
 * :status 200 (a static index) still reads, its grpc-status (a dynamic reference) does not,
 * and the request is counted as undecodable. The same for a connection joined midstream.
 */
static void test_h2_undecodable(void)
{
	struct got g = { .n = 0 };
	struct h2 *h;
	struct conn c;

	CHECK(h2_new(&h, 60000000000ULL, collect, &g) == 0, "h2_new");
	conn_init(&c, h, 40002, 5, 0);
	for (uint32_t id = 1; id <= 5; id += 2) {
		send_headers(&c, 0, id, grpc_req, 7, 0, id * 1000, -1);
		send_headers(&c, 1, id, grpc_resp, 2, 0, id * 1000 + 40, id == 3 ? 0 : -1);
		trailers(&c, id, "0", id * 1000 + 90, -1);
	}
	/* stream 1: all decoded; 3: its response block lost (no 200 from it); 5: read without
	 * the table: 200 (static), no gRPC status (a dynamic reference by now). */
	CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 40) && find(&g, FL_SAMPLE_GRPC, GRPC_OK, 90),
	      "stream 1 decoded");
	CHECK(count_of(&g, FL_SAMPLE_HTTP2, 200) == 2,
	      "streams 1 and 5: 200 (5: without the table)");
	CHECK(count_of(&g, FL_SAMPLE_HTTP2, 0) == 1 && find(&g, FL_SAMPLE_HTTP2, 0, 90),
	      "stream 3: its response block lost: status 0 at its end");
	CHECK(count_of(&g, FL_SAMPLE_GRPC, GRPC_OK) == 1,
	      "only stream 1's grpc-status read (later ones are dynamic-table references)");
	CHECK(h2_stats(h)->undecodable[H2_RECORD_GAP] == 2, "streams 3 and 5 undecodable: %lu",
	      (unsigned long)h2_stats(h)->undecodable[H2_RECORD_GAP]);
	conn_done(&c);

	g.n = 0;
	conn_init(&c, h, 40003, 64, 1);
	/* The peer's tables are already warm: prime the deflaters as the earlier traffic did. */
	{
		uint8_t tmp[1024];

		nghttp2_hd_deflate_hd(c.def[0], tmp, sizeof(tmp), (nghttp2_nv *)grpc_req, 7);
		nghttp2_hd_deflate_hd(c.def[1], tmp, sizeof(tmp), (nghttp2_nv *)grpc_resp, 2);
	}
	send_headers(&c, 0, 41, grpc_req, 7, 0, 100, -1);
	send_headers(&c, 1, 41, grpc_resp, 2, 0, 130, -1);
	trailers(&c, 41, "3", 180, -1); /* a literal the first time: readable */
	CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 30), "midstream: :status 200 (static)");
	CHECK(g.n >= 1 && g.s[0].method == FL_HTTP_POST, "midstream: :method POST (static)");
	CHECK(h2_stats(h)->undecodable[H2_NO_PREFACE] == 1, "midstream: counted as no_preface");
	conn_done(&c);
	h2_free(h);
}

/* Hostile records: nonsense of every kind costs nothing but counts and never crashes. */
static void test_h2_hostile(void)
{
	struct got g = { .n = 0 };
	struct h2 *h;
	struct conn c;
	uint32_t x = 12345;

	CHECK(h2_new(&h, 60000000000ULL, collect, &g) == 0, "h2_new");
	conn_init(&c, h, 40004, 256, 0);
	/* A pad length beyond the frame, a garbage block, a CONTINUATION without HEADERS. */
	send_frame(&c, 0, FL_H2_HEADERS, FL_H2_PADDED | FL_H2_END_HEADERS, 1,
		   (const uint8_t[]){ 200, 1, 2 }, 3, 1, -1);
	send_frame(&c, 1, FL_H2_HEADERS, FL_H2_END_HEADERS, 1,
		   (const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f }, 6, 2, -1);
	send_frame(&c, 1, FL_H2_CONTINUATION, FL_H2_END_HEADERS, 9, (const uint8_t[]){ 0x88 }, 1, 3,
		   -1);
	/* Both sides now read without their tables: a request still counts, as decode_error. */
	send_headers(&c, 0, 11, grpc_req, 7, 0, 100, -1);
	send_headers(&c, 1, 11, grpc_resp, 2, 1, 160, -1);
	CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 60) && h2_stats(h)->undecodable[H2_DECODE_ERROR] == 1,
	      "after malformed frames: 200 read, counted as decode_error");
	/* 20,000 random records on 4 connections. */
	for (int i = 0; i < 20000; i++) {
		struct fl_h2_rec r;

		memset(&r, 0, sizeof(r));
		for (size_t k = 0; k < sizeof(r); k++) {
			x = x * 1103515245 + 12345;
			((uint8_t *)&r)[k] = (uint8_t)(x >> 16);
		}
		r.key = c.key;
		r.key.sport = (uint16_t)(40004 + (x & 3));
		r.len %= FL_H2_CHUNK + 1;
		h2_record(h, &r);
	}
	/* The garbage on other connections leaves a well-formed one decodable. */
	{
		struct conn ok;

		g.n = 0;
		conn_init(&ok, h, 50000, 256, 0);
		send_headers(&ok, 0, 1, grpc_req, 7, 0, 100, -1);
		send_headers(&ok, 1, 1, grpc_resp, 2, 0, 140, -1);
		trailers(&ok, 1, "14", 190, -1);
		CHECK(find(&g, FL_SAMPLE_HTTP2, 200, 40) &&
			      find(&g, FL_SAMPLE_GRPC, GRPC_UNAVAILABLE, 90),
		      "after 20,000 random records elsewhere: a new connection decodes (200, UNAVAILABLE)");
		conn_done(&ok);
	}
	/* 1,200 connections each sending a 60 KB header block that never ends: the buffers stop
	 * at their budget (64 MiB of all connections), the rest is refused and counted. */
	{
		static uint8_t big[60000];
		struct conn m;

		for (int i = 0; i < 1200; i++) {
			conn_init(&m, h, (uint16_t)(1000 + i), FL_H2_CHUNK, 0);
			send_frame(&m, 0, FL_H2_HEADERS, 0, 1, big, sizeof(big), 1, -1);
			conn_done(&m);
		}
		CHECK(h2_stats(h)->buffers_refused > 0 && h2_stats(h)->buffers_refused < 1200,
		      "buffers bounded: %lu blocks refused",
		      (unsigned long)h2_stats(h)->buffers_refused);
	}
	h2_sweep(h, UINT64_MAX);
	CHECK(h2_stats(h)->connections == 0, "sweep forgets idle connections");
	conn_done(&c);
	h2_free(h);
}

void test_h2(void)
{
	test_h2_multiplexed();
	test_h2_frames();
	test_h2_undecodable();
	test_h2_hostile();
}
