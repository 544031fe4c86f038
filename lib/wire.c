// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "vocab.h"
#include "wire.h"

int wire_encode(const Flowlens__V1__Batch *b, uint8_t **out, size_t *len)
{
	size_t plen = flowlens__v1__batch__get_packed_size(b);
	uLongf clen = compressBound((uLong)plen);
	uint8_t *packed = malloc(plen ? plen : 1);
	uint8_t *comp = malloc(clen);

	if (!packed || !comp) {
		free(packed);
		free(comp);
		return -ENOMEM;
	}
	flowlens__v1__batch__pack(b, packed);
	if (compress2(comp, &clen, packed, (uLong)plen, Z_DEFAULT_COMPRESSION) != Z_OK) {
		free(packed);
		free(comp);
		return -EIO;
	}
	free(packed);
	*out = comp;
	*len = clen;
	return 0;
}

/* Inflates into a buffer that grows up to max; -E2BIG past it, -EINVAL on a bad stream. */
static int inflate_bounded(const uint8_t *in, size_t len, size_t max, uint8_t **out,
			   size_t *out_len)
{
	z_stream zs;
	size_t cap = len * 4 < 4096 ? 4096 : len * 4, n = 0;
	uint8_t *buf;
	int ret, err = 0;

	if (cap > max + 1)
		cap = max + 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb;

			if (ncap <= cap) {
				err = -E2BIG;
				break;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		zs.next_out = buf + n;
		zs.avail_out = (uInt)(cap - n);
		ret = inflate(&zs, Z_NO_FLUSH);
		n = cap - zs.avail_out;
		if (n > max) {
			err = -E2BIG;
			break;
		}
		if (ret == Z_STREAM_END) {
			if (zs.avail_in != 0)
				err = -EINVAL; /* trailing garbage */
			break;
		}
		if (ret != Z_OK && ret != Z_BUF_ERROR) {
			err = -EINVAL;
			break;
		}
		if (ret == Z_BUF_ERROR && zs.avail_in == 0 && zs.avail_out != 0) {
			err = -EINVAL; /* truncated stream */
			break;
		}
	}
	inflateEnd(&zs);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/*
 * protobuf-c allocates every submessage on its own; a batch of 1,000 aggregates would be
 * ~4,000 mallocs and frees. A bump arena makes that a handful, freed at once.
 */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct wire_arena {
	struct arena_chunk *chunks;
	size_t next_cap;
	size_t budget; /* bytes the chunks may still take */
	int exhausted; /* an allocation was refused for the budget */
};

static void *arena_alloc(void *ud, size_t size)
{
	struct wire_arena *a = ud;
	struct arena_chunk *c = a->chunks;
	size_t need = (size + 15) & ~(size_t)15;

	if (!c || c->used + need > c->cap) {
		size_t cap = a->next_cap > need ? a->next_cap : need;

		if (cap > a->budget)
			cap = need; /* the last chunk: exactly what is asked, if the budget has it */
		if (cap > a->budget) {
			a->exhausted = 1;
			return NULL; /* protobuf-c then fails the unpack */
		}
		a->budget -= cap;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->chunks;
		a->chunks = c;
		if (a->next_cap < (1u << 24))
			a->next_cap *= 2;
	}
	c->used += need;
	return (char *)c->data + c->used - need;
}

static void arena_free_one(void *ud, void *ptr)
{
	(void)ud;
	(void)ptr; /* everything goes at once in arena_release() */
}

static void arena_release(struct wire_arena *a)
{
	while (a && a->chunks) {
		struct arena_chunk *c = a->chunks;

		a->chunks = c->next;
		free(c);
	}
	free(a);
}

static const char *validate(const Flowlens__V1__Batch *b)
{
	if (!b->node || !b->node[0] || strlen(b->node) > 253)
		return "node name missing or longer than 253 bytes";
	if (b->boot_id.len != WIRE_BOOT_ID_LEN)
		return "boot_id must be 16 bytes";
	if (b->seq == 0)
		return "seq must start at 1";
	for (size_t i = 0; i < b->n_flows; i++) {
		const Flowlens__V1__FlowAggregate *f = b->flows[i];

		if ((f->client_ip.len != 4 && f->client_ip.len != 16) ||
		    f->server_ip.len != f->client_ip.len)
			return "flow addresses must both be 4 or both 16 bytes";
		if (f->server_port > 65535 || f->protocol > 255)
			return "flow port or protocol out of range";
		if (f->dialed_ip.len && f->dialed_ip.len != f->client_ip.len)
			return "dialed address of another family";
		if (f->dialed_port > 65535)
			return "dialed port out of range";
		for (size_t h = 0; h < f->n_histograms; h++) {
			const Flowlens__V1__Histogram *hg = f->histograms[h];

			if (!hg->name || !hg->name[0] || strlen(hg->name) > 64)
				return "histogram name missing or longer than 64 bytes";
			if (hg->n_bounds == 0 || hg->n_bounds > WIRE_HIST_BOUNDS_MAX)
				return "histogram needs 1 to 32 bounds";
			if (hg->n_counts != hg->n_bounds + 1)
				return "histogram needs one more count than bounds";
			for (size_t k = 0; k < hg->n_bounds; k++)
				if (!isfinite(hg->bounds[k]) ||
				    (k && hg->bounds[k] <= hg->bounds[k - 1]))
					return "histogram bounds must be finite and increasing";
			if (!isfinite(hg->sum) || hg->sum < 0)
				return "histogram sum must be finite and not negative";
		}
		for (size_t e = 0; e < f->n_error_counts; e++)
			if (!f->error_counts[e]->key || strlen(f->error_counts[e]->key) > 64)
				return "error count name missing or longer than 64 bytes";
	}
	return NULL;
}

enum wire_result wire_decode(const uint8_t *in, size_t len, size_t max_decompressed,
			     struct wire_batch *out, const char **why)
{
	ProtobufCAllocator alloc = { .alloc = arena_alloc, .free = arena_free_one };
	struct wire_arena *arena;
	Flowlens__V1__Batch *b;
	uint8_t *raw;
	size_t raw_len;
	int err;

	out->b = NULL;
	out->arena = NULL;
	err = inflate_bounded(in, len, max_decompressed, &raw, &raw_len);
	if (err == -E2BIG) {
		*why = "decompressed body over the limit";
		return WIRE_ERR_TOO_LARGE;
	}
	if (err == -ENOMEM) {
		*why = "out of memory";
		return WIRE_ERR_NOMEM;
	}
	if (err) {
		*why = "body is not a complete zlib stream";
		return WIRE_ERR_COMPRESSION;
	}
	arena = calloc(1, sizeof(*arena));
	if (!arena) {
		free(raw);
		*why = "out of memory";
		return WIRE_ERR_NOMEM;
	}
	/*
	 * Protobuf amplifies: an empty FlowAggregate is 2 bytes on the wire and a ~200-byte
	 * struct once unpacked. Real batches unpack to less than WIRE_DECODE_FACTOR times their
	 * size; anything that would need more is refused before it can take the memory.
	 */
	arena->budget = raw_len * WIRE_DECODE_FACTOR;
	if (arena->budget > max_decompressed * WIRE_DECODE_CAP_FACTOR)
		arena->budget = max_decompressed * WIRE_DECODE_CAP_FACTOR;
	arena->budget += WIRE_DECODE_SLACK;
	arena->next_cap = raw_len * 2 + 4096;
	alloc.allocator_data = arena;
	b = flowlens__v1__batch__unpack(&alloc, raw_len, raw);
	free(raw);
	if (!b) {
		int over = arena->exhausted;

		arena_release(arena);
		*why = over ? "body unpacks to more than " WIRE_DECODE_FACTOR_TEXT
			      " times its size (empty messages?)" :
			      "body is not a serialized flowlens.v1.Batch";
		return over ? WIRE_ERR_AMPLIFIED : WIRE_ERR_PROTOBUF;
	}
	if (b->schema_version == 0 || b->schema_version > WIRE_SCHEMA_VERSION) {
		int newer = b->schema_version != 0;

		*why = newer ? "schema_version newer than this collector" :
			       "schema_version missing";
		arena_release(arena);
		return newer ? WIRE_ERR_VERSION : WIRE_ERR_INVALID;
	}
	*why = validate(b);
	if (*why) {
		arena_release(arena);
		return WIRE_ERR_INVALID;
	}
	out->b = b;
	out->arena = arena;
	return WIRE_OK;
}

void wire_free(struct wire_batch *wb)
{
	arena_release(wb->arena);
	wb->arena = NULL;
	wb->b = NULL;
}

/* The wire's Reporter values are the vocabulary's reporters shifted by one (0: unspecified). */
_Static_assert(FLOWLENS__V1__REPORTER__REPORTER_CLIENT == REPORTER_CLIENT + 1 &&
		       FLOWLENS__V1__REPORTER__REPORTER_SERVER == REPORTER_SERVER + 1 &&
		       FLOWLENS__V1__REPORTER__REPORTER_NODE == REPORTER_NODE + 1,
	       "wire reporters follow lib/vocab.h");

const char *wire_reporter_name(int reporter)
{
	return reporter >= 1 && reporter <= REPORTERS ? vocab_reporter[reporter - 1] : "unknown";
}
