// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* HTTP/2 requests from the datapath's header-block records (see h2.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include <uthash.h>
#include "h2.h"
#include "vocab.h"

#define H2_NAME(e, name) [e] = name,
const char *const h2_reason_name[H2_REASONS] = { [H2_OK] = "ok", H2_UNDECODABLE(H2_NAME) };
#undef H2_NAME

#define H2_CONNS_MAX 16384 /* connections followed at once; more are not decoded */
#define H2_STREAMS_MAX 4096 /* open streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) */
#define H2_STREAMS_TOTAL_MAX 262144 /* open streams of all connections (about 20 MiB) */
#define H2_BLOCK_MAX (64 * 1024) /* a larger header block is not decoded */
#define H2_BUFFER_BUDGET (64ULL << 20) /* frame and block buffers of all connections */

struct h2_stream {
	uint32_t id;
	uint8_t method; /* enum fl_http_method */
	uint8_t grpc; /* content-type application/grpc seen */
	uint8_t responded; /* the response's HEADERS (with :status) seen */
	uint8_t reason; /* enum h2_reason: part of it read without the dynamic table */
	uint16_t status;
	int16_t grpc_status; /* -1: none seen */
	uint64_t start_ns;
	UT_hash_handle hh;
};

/* A growing byte buffer, bounded by H2_BLOCK_MAX. */
struct h2_buf {
	uint8_t *p;
	size_t len, cap;
};

struct h2_side {
	nghttp2_hd_inflater *inf;
	uint32_t next_rec; /* the record sequence number expected next */
	uint8_t broken; /* enum h2_reason: read without the dynamic table from now on */
	/* the frame whose payload is coming in records */
	int in_frame;
	uint8_t ftype, fflags;
	uint32_t fstream;
	uint64_t fts;
	struct h2_buf frame;
	/* the header block (HEADERS, then CONTINUATIONs) being put together */
	int in_block;
	uint8_t bflags; /* the HEADERS frame's flags (END_STREAM) */
	uint32_t bstream;
	uint64_t bts;
	struct h2_buf block;
};

struct h2_conn {
	struct fl_key key;
	struct h2_side side[2]; /* [0] client to server, [1] server to client */
	struct h2_stream *streams;
	unsigned int n_streams;
	uint64_t last_ns;
	UT_hash_handle hh;
};

struct h2 {
	uint64_t idle_ns;
	uint64_t buffered; /* bytes allocated to frame and block buffers */
	uint64_t streams; /* open streams, all connections */
	h2_emit_fn emit;
	void *ctx;
	struct h2_conn *conns;
	nghttp2_hd_inflater *scratch; /* literals of blocks read without their dynamic table */
	struct h2_stats st;
};

/* What a header block said. */
struct h2_headers {
	int status; /* -1: none */
	int method; /* enum fl_http_method, -1: none */
	int grpc; /* content-type application/grpc */
	int grpc_status; /* -1: none */
};

int h2_new(struct h2 **out, uint64_t idle_ns, h2_emit_fn emit, void *ctx)
{
	struct h2 *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	if (nghttp2_hd_inflate_new(&h->scratch)) {
		free(h);
		return -ENOMEM;
	}
	h->idle_ns = idle_ns;
	h->emit = emit;
	h->ctx = ctx;
	*out = h;
	return 0;
}

static void side_free(struct h2 *h, struct h2_side *s)
{
	if (s->inf)
		nghttp2_hd_inflate_del(s->inf);
	h->buffered -= s->frame.cap + s->block.cap;
	free(s->frame.p);
	free(s->block.p);
}

static void conn_free(struct h2 *h, struct h2_conn *c)
{
	struct h2_stream *s, *tmp;

	HASH_ITER (hh, c->streams, s, tmp) {
		HASH_DEL(c->streams, s);
		h->streams--;
		free(s);
	}
	side_free(h, &c->side[0]);
	side_free(h, &c->side[1]);
	HASH_DEL(h->conns, c);
	h->st.connections--;
	free(c);
}

void h2_free(struct h2 *h)
{
	struct h2_conn *c, *tmp;

	if (!h)
		return;
	HASH_ITER (hh, h->conns, c, tmp)
		conn_free(h, c);
	nghttp2_hd_inflate_del(h->scratch);
	free(h);
}

const struct h2_stats *h2_stats(const struct h2 *h)
{
	return &h->st;
}

void h2_sweep(struct h2 *h, uint64_t now_ns)
{
	struct h2_conn *c, *tmp;

	HASH_ITER (hh, h->conns, c, tmp) {
		if (c->last_ns + h->idle_ns <= now_ns)
			conn_free(h, c);
	}
}

/* Appends to a buffer within H2_BLOCK_MAX and the budget of all buffers (h->buffered). */
static int buf_add(struct h2 *h, struct h2_buf *b, const uint8_t *p, size_t n)
{
	if (b->len + n > H2_BLOCK_MAX)
		return -E2BIG;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		uint8_t *q;

		while (cap < b->len + n)
			cap *= 2;
		if (h->buffered + (cap - b->cap) > H2_BUFFER_BUDGET) {
			h->st.buffers_refused++;
			return -ENOBUFS;
		}
		q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		h->buffered += cap - b->cap;
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* From now on this side is read without its dynamic table; a block in progress is lost. */
static void side_break(struct h2_side *s, enum h2_reason why)
{
	if (!s->broken)
		s->broken = (uint8_t)why;
	s->in_frame = 0;
	s->in_block = 0;
}

static struct h2_conn *conn_new(struct h2 *h, const struct fl_key *k)
{
	struct h2_conn *c;

	if (h->st.connections >= H2_CONNS_MAX) {
		h->st.connections_refused++;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (nghttp2_hd_inflate_new(&c->side[0].inf) || nghttp2_hd_inflate_new(&c->side[1].inf)) {
		side_free(h, &c->side[0]);
		free(c);
		return NULL;
	}
	c->key = *k;
	c->side[0].next_rec = 1;
	c->side[1].next_rec = 1;
	HASH_ADD(hh, h->conns, key, sizeof(c->key), c);
	h->st.connections++;
	return c;
}

static int method_of(const uint8_t *v, size_t n)
{
	static const char *const names[FL_HTTP_METHODS] = {
		[FL_HTTP_GET] = "GET",	       [FL_HTTP_POST] = "POST", [FL_HTTP_PUT] = "PUT",
		[FL_HTTP_DELETE] = "DELETE",   [FL_HTTP_HEAD] = "HEAD", [FL_HTTP_PATCH] = "PATCH",
		[FL_HTTP_OPTIONS] = "OPTIONS",
	};

	for (int i = 1; i < FL_HTTP_METHODS; i++)
		if (strlen(names[i]) == n && !memcmp(names[i], v, n))
			return i;
	return FL_HTTP_OTHER;
}

/* A non-negative decimal of at most 5 digits, or -1. */
static int number(const uint8_t *v, size_t n)
{
	int x = 0;

	if (!n || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

static void header(struct h2_headers *hd, const uint8_t *name, size_t nl, const uint8_t *v,
		   size_t vl)
{
	static const char ct[] = "application/grpc";

#define IS(s) (nl == sizeof(s) - 1 && !memcmp(name, s, nl))
	if (IS(":status"))
		hd->status = vl == 3 ? number(v, vl) : -1;
	else if (IS(":method"))
		hd->method = method_of(v, vl);
	else if (IS("content-type"))
		hd->grpc = vl >= sizeof(ct) - 1 && !memcmp(v, ct, sizeof(ct) - 1);
	else if (IS("grpc-status"))
		hd->grpc_status = number(v, vl);
#undef IS
}

/* Decodes a whole block with inf; -1 when the inflater refuses it (its state is then lost). */
static int inflate_block(nghttp2_hd_inflater *inf, const uint8_t *in, size_t len,
			 struct h2_headers *hd)
{
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(inf, &nv, &fl, in, len, 1);

		if (rv < 0)
			return -1;
		in += rv;
		len -= (size_t)rv;
		if (fl & NGHTTP2_HD_INFLATE_EMIT)
			header(hd, nv.name, nv.namelen, nv.value, nv.valuelen);
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(inf);
			return 0;
		}
		if (rv == 0 && !(fl & NGHTTP2_HD_INFLATE_EMIT))
			return -1;
	}
}

/* An HPACK integer with an n-bit prefix (RFC 7541 5.1); -1 when malformed or truncated. */
static long hpack_int(const uint8_t **p, const uint8_t *end, int n)
{
	long max = (1 << n) - 1, v;
	int shift = 0;

	if (*p >= end)
		return -1;
	v = **p & max;
	(*p)++;
	if (v < max)
		return v;
	while (*p < end && shift <= 21) {
		uint8_t b = **p;

		(*p)++;
		v += (long)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
		shift += 7;
	}
	return -1;
}

/* Skips an HPACK string literal; -1 when truncated. */
static int hpack_skip_string(const uint8_t **p, const uint8_t *end)
{
	long n = hpack_int(p, end, 7);

	if (n < 0 || n > end - *p)
		return -1;
	*p += n;
	return 0;
}

/*
 * A block read without its dynamic table: indexed static fields (:status 200, 204, 206, 304,
 * 400, 404, 500; :method GET, POST) directly, literals whose name is static or literal through
 * the scratch inflater (which decodes Huffman; references to the dynamic table are never
 * fed to it), references to the dynamic table skipped.
 */
static void read_stateless(struct h2 *h, const uint8_t *in, size_t len, struct h2_headers *hd)
{
	static const int statuses[] = { 200, 204, 206, 304, 400, 404, 500 }; /* indexes 8-14 */
	const uint8_t *p = in, *end = in + len;

	while (p < end) {
		const uint8_t *start = p;
		uint8_t b = *p;
		long idx;

		if (b & 0x80) {
			idx = hpack_int(&p, end, 7);
			if (idx < 0)
				return;
			if (idx == 2 || idx == 3)
				hd->method = idx == 2 ? FL_HTTP_GET : FL_HTTP_POST;
			else if (idx >= 8 && idx <= 14)
				hd->status = statuses[idx - 8];
			continue;
		}
		if ((b & 0xe0) == 0x20) { /* dynamic table size update */
			if (hpack_int(&p, end, 5) < 0)
				return;
			continue;
		}
		idx = hpack_int(&p, end, (b & 0x40) ? 6 : 4);
		if (idx < 0 || (idx == 0 && hpack_skip_string(&p, end)) ||
		    hpack_skip_string(&p, end))
			return;
		if (idx <= 61) {
			/* As a block of its own: "without indexing" leaves the scratch table alone,
			 * but an incremental one only adds to it, which nothing reads. */
			struct h2_headers one = { -1, -1, 0, -1 };

			if (inflate_block(h->scratch, start, (size_t)(p - start), &one) == 0) {
				if (one.status >= 0)
					hd->status = one.status;
				if (one.method >= 0)
					hd->method = one.method;
				hd->grpc |= one.grpc;
				if (one.grpc_status >= 0)
					hd->grpc_status = one.grpc_status;
			} else {
				nghttp2_hd_inflate_del(h->scratch);
				if (nghttp2_hd_inflate_new(&h->scratch))
					h->scratch = NULL;
				if (!h->scratch)
					return;
			}
		}
	}
}

static void emit(struct h2 *h, const struct h2_conn *c, enum fl_sample_kind kind, uint64_t from,
		 uint64_t to, uint16_t status, uint8_t method)
{
	struct fl_sample sm;

	memset(&sm, 0, sizeof(sm));
	sm.key = c->key;
	sm.duration_ns = to > from ? to - from : 0;
	sm.kind = (uint8_t)kind;
	sm.status = status;
	sm.method = method;
	h->emit(h->ctx, &sm);
}

static struct h2_stream *stream_find(struct h2_conn *c, uint32_t id)
{
	struct h2_stream *s;

	HASH_FIND(hh, c->streams, &id, sizeof(id), s);
	return s;
}

/* The stream ended (END_STREAM from the server, or RST_STREAM): its samples go out. */
static void stream_finish(struct h2 *h, struct h2_conn *c, struct h2_stream *s, uint64_t ts)
{
	if (!s->responded)
		emit(h, c, FL_SAMPLE_HTTP2, s->start_ns, ts, 0, s->method);
	if (s->grpc && s->grpc_status >= 0)
		emit(h, c, FL_SAMPLE_GRPC, s->start_ns, ts,
		     s->grpc_status < GRPC_STATUS_OTHER ? (uint16_t)s->grpc_status :
							  GRPC_STATUS_OTHER,
		     s->method);
	h->st.requests++;
	if (s->reason)
		h->st.undecodable[s->reason]++;
	HASH_DEL(c->streams, s);
	c->n_streams--;
	h->streams--;
	free(s);
}

static void on_request(struct h2 *h, struct h2_conn *c, uint32_t id, uint64_t ts,
		       const struct h2_headers *hd, uint8_t reason)
{
	struct h2_stream *s = stream_find(c, id);

	if (s || !id)
		return; /* trailers of the request, or a repeated block */
	if (c->n_streams >= H2_STREAMS_MAX || h->streams >= H2_STREAMS_TOTAL_MAX ||
	    !(s = calloc(1, sizeof(*s)))) {
		h->st.streams_refused++;
		return;
	}
	s->id = id;
	s->start_ns = ts;
	s->method = hd->method >= 0 ? (uint8_t)hd->method : FL_HTTP_OTHER;
	s->grpc = (uint8_t)hd->grpc;
	s->grpc_status = -1;
	s->reason = reason;
	HASH_ADD(hh, c->streams, id, sizeof(s->id), s);
	c->n_streams++;
	h->streams++;
}

static void on_response(struct h2 *h, struct h2_conn *c, uint32_t id, uint64_t ts,
			const struct h2_headers *hd, int end_stream, uint8_t reason)
{
	struct h2_stream *s = stream_find(c, id);

	if (!s) {
		h->st.unmatched++;
		return;
	}
	if (reason && !s->reason)
		s->reason = reason;
	s->grpc |= (uint8_t)hd->grpc;
	if (!s->responded && hd->status >= 0) {
		s->responded = 1;
		s->status = (uint16_t)hd->status;
		emit(h, c, FL_SAMPLE_HTTP2, s->start_ns, ts, s->status, s->method);
	} else if (!s->responded && !end_stream && reason) {
		/* A response whose :status the table-less read could not see. */
		s->responded = 1;
		emit(h, c, FL_SAMPLE_HTTP2, s->start_ns, ts, 0, s->method);
	}
	if (hd->grpc_status >= 0)
		s->grpc_status = (int16_t)hd->grpc_status;
	if (end_stream)
		stream_finish(h, c, s, ts);
}

/* The gRPC status a client reports for a stream reset with an HTTP/2 error code. */
static int grpc_of_reset(uint32_t code)
{
	switch (code) {
	case 0x7: /* REFUSED_STREAM */
		return GRPC_UNAVAILABLE;
	case 0x8: /* CANCEL */
		return GRPC_CANCELLED;
	case 0xb: /* ENHANCE_YOUR_CALM */
		return GRPC_RESOURCE_EXHAUSTED;
	case 0xc: /* INADEQUATE_SECURITY */
		return GRPC_PERMISSION_DENIED;
	default:
		return GRPC_INTERNAL;
	}
}

/* A complete header block of one side. */
static void block_done(struct h2 *h, struct h2_conn *c, int side)
{
	struct h2_side *sd = &c->side[side];
	struct h2_headers hd = { -1, -1, 0, -1 };

	/* An empty block is valid HPACK; its buffer may never have been allocated. */
	const uint8_t *blk = sd->block.p ? sd->block.p : (const uint8_t *)"";

	sd->in_block = 0;
	if (!sd->broken && inflate_block(sd->inf, blk, sd->block.len, &hd)) {
		side_break(sd, H2_DECODE_ERROR);
		hd = (struct h2_headers){ -1, -1, 0, -1 };
	}
	if (sd->broken && h->scratch)
		read_stateless(h, blk, sd->block.len, &hd);
	if (side == 0)
		on_request(h, c, sd->bstream, sd->bts, &hd, sd->broken);
	else
		on_response(h, c, sd->bstream, sd->bts, &hd, sd->bflags & FL_H2_END_STREAM,
			    sd->broken);
}

/* A complete frame payload (HEADERS, CONTINUATION, RST_STREAM) of one side. */
static void frame_done(struct h2 *h, struct h2_conn *c, int side)
{
	struct h2_side *sd = &c->side[side];
	const uint8_t *p = sd->frame.p;
	size_t n = sd->frame.len;

	sd->in_frame = 0;
	switch (sd->ftype) {
	case FL_H2_RST_STREAM: {
		struct h2_stream *s = stream_find(c, sd->fstream);
		uint32_t code = n >= 4 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
						 (uint32_t)p[2] << 8 | p[3] :
					 0;

		if (s) {
			if (s->grpc && s->grpc_status < 0)
				s->grpc_status = (int16_t)grpc_of_reset(code);
			stream_finish(h, c, s, sd->fts);
		}
		return;
	}
	case FL_H2_HEADERS:
		if (sd->fflags & FL_H2_PADDED) {
			size_t pad = n ? p[0] : 0;

			if (!n || pad >= n) {
				side_break(sd, H2_DECODE_ERROR);
				return;
			}
			p++;
			n -= 1 + pad;
		}
		if (sd->fflags & FL_H2_PRIORITY_FLAG) {
			if (n < 5) {
				side_break(sd, H2_DECODE_ERROR);
				return;
			}
			p += 5;
			n -= 5;
		}
		sd->in_block = 1;
		sd->block.len = 0;
		sd->bstream = sd->fstream;
		sd->bflags = sd->fflags;
		sd->bts = sd->fts;
		break;
	case FL_H2_CONTINUATION:
		if (!sd->in_block || sd->fstream != sd->bstream)
			return; /* its HEADERS was lost with the side's state */
		break;
	default:
		return;
	}
	if (buf_add(h, &sd->block, p, n)) {
		side_break(sd, H2_DECODE_ERROR);
		return;
	}
	if (sd->fflags & FL_H2_END_HEADERS)
		block_done(h, c, side);
}

void h2_record(struct h2 *h, const struct fl_h2_rec *r)
{
	struct h2_conn *c;
	struct h2_side *sd;
	int side = r->side & 1;

	h->st.records++;
	HASH_FIND(hh, h->conns, &r->key, sizeof(r->key), c);
	if (r->type == FL_H2_REC_PREFACE) {
		/* A new connection on this tuple: whatever was known of an old one goes. */
		if (c)
			conn_free(h, c);
		c = conn_new(h, &r->key);
		if (!c)
			return;
		c->last_ns = r->ts_ns;
		c->side[0].next_rec = r->seq + 1;
		if (r->chunk & FL_H2_MIDSTREAM) {
			side_break(&c->side[0], H2_NO_PREFACE);
			side_break(&c->side[1], H2_NO_PREFACE);
		}
		return;
	}
	if (!c) {
		/* Its preface record was lost: nothing of its state is known. */
		c = conn_new(h, &r->key);
		if (!c)
			return;
		side_break(&c->side[0], H2_RECORD_GAP);
		side_break(&c->side[1], H2_RECORD_GAP);
	}
	c->last_ns = r->ts_ns;
	sd = &c->side[side];
	if (r->seq != sd->next_rec)
		side_break(sd, H2_RECORD_GAP);
	sd->next_rec = r->seq + 1;
	switch (r->type) {
	case FL_H2_REC_DESYNC:
		side_break(sd, H2_DESYNC);
		return;
	case FL_H2_REC_DATA_END:
		if (side == 1) {
			struct h2_stream *s = stream_find(c, r->stream);

			if (s)
				stream_finish(h, c, s, r->ts_ns);
		}
		return;
	case FL_H2_REC_FRAME:
		break;
	default:
		return;
	}
	if (r->chunk & FL_H2_FIRST) {
		sd->in_frame = 1;
		sd->ftype = r->frame;
		sd->fflags = r->flags;
		sd->fstream = r->stream;
		sd->fts = r->ts_ns;
		sd->frame.len = 0;
	} else if (!sd->in_frame || r->stream != sd->fstream) {
		return; /* the rest of a frame whose start was lost */
	}
	if (buf_add(h, &sd->frame, r->data, r->len < FL_H2_CHUNK ? r->len : FL_H2_CHUNK)) {
		side_break(sd, H2_DECODE_ERROR);
		return;
	}
	if (r->chunk & FL_H2_LAST)
		frame_done(h, c, side);
}
