// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
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
		for (size_t h = 0; h < f->n_histograms; h++) {
			const Flowlens__V1__Histogram *hg = f->histograms[h];

			if (hg->n_counts != hg->n_bounds + 1)
				return "histogram needs one more count than bounds";
		}
	}
	return NULL;
}

enum wire_result wire_decode(const uint8_t *in, size_t len, size_t max_decompressed,
			     Flowlens__V1__Batch **out, const char **why)
{
	Flowlens__V1__Batch *b;
	uint8_t *raw;
	size_t raw_len;
	int err;

	*out = NULL;
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
	b = flowlens__v1__batch__unpack(NULL, raw_len, raw);
	free(raw);
	if (!b) {
		*why = "body is not a serialized flowlens.v1.Batch";
		return WIRE_ERR_PROTOBUF;
	}
	if (b->schema_version == 0 || b->schema_version > WIRE_SCHEMA_VERSION) {
		int newer = b->schema_version != 0;

		*why = newer ? "schema_version newer than this collector" :
			       "schema_version missing";
		flowlens__v1__batch__free_unpacked(b, NULL);
		return newer ? WIRE_ERR_VERSION : WIRE_ERR_INVALID;
	}
	*why = validate(b);
	if (*why) {
		flowlens__v1__batch__free_unpacked(b, NULL);
		return WIRE_ERR_INVALID;
	}
	*out = b;
	return WIRE_OK;
}

void wire_free(Flowlens__V1__Batch *b)
{
	if (b)
		flowlens__v1__batch__free_unpacked(b, NULL);
}

const char *wire_reporter_name(int reporter)
{
	switch (reporter) {
	case FLOWLENS__V1__REPORTER__REPORTER_CLIENT:
		return "client";
	case FLOWLENS__V1__REPORTER__REPORTER_SERVER:
		return "server";
	case FLOWLENS__V1__REPORTER__REPORTER_NODE:
		return "node";
	default:
		return "unknown";
	}
}
