/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent -> collector wire format (proto/flowlens.proto): a Batch, serialized with
 * protobuf-c and compressed with zlib. Decoding bounds the decompressed size and validates
 * everything a collector relies on before it touches stored data.
 */
#ifndef FLOWLENS_WIRE_H
#define FLOWLENS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "flowlens.pb-c.h"

#define WIRE_SCHEMA_VERSION 1
#define WIRE_CONTENT_TYPE "application/x-protobuf"
#define WIRE_CONTENT_ENCODING "deflate"
#define WIRE_PATH "/v1/batches"
#define WIRE_HIST_BOUNDS_MAX 32
#define WIRE_BOOT_ID_LEN 16

enum wire_result {
	WIRE_OK = 0,
	WIRE_ERR_COMPRESSION, /* not a zlib stream, or truncated */
	WIRE_ERR_TOO_LARGE, /* decompresses beyond the limit */
	WIRE_ERR_PROTOBUF, /* not a valid serialized Batch */
	WIRE_ERR_INVALID, /* a Batch, but not one we can apply (reason in *why) */
	WIRE_ERR_VERSION, /* a schema version newer than ours */
	WIRE_ERR_NOMEM,
	WIRE_ERR_AMPLIFIED, /* would unpack to more than WIRE_DECODE_FACTOR times its size */
};

/*
 * Memory a decoded batch may take: WIRE_DECODE_FACTOR times its decompressed size (the
 * smallest valid aggregate, two IPv4 addresses in 14 bytes, unpacks to ~210), and never more
 * than WIRE_DECODE_CAP_FACTOR times max_decompressed; plus the slack.
 */
#define WIRE_DECODE_FACTOR 24
#define WIRE_DECODE_FACTOR_TEXT "24"
#define WIRE_DECODE_CAP_FACTOR 8
#define WIRE_DECODE_SLACK (64u << 10)

/* Serializes and compresses b. *out is malloc'd. Returns 0 or -errno. */
int wire_encode(const Flowlens__V1__Batch *b, uint8_t **out, size_t *len);

/* A decoded batch; its memory (one arena) goes with wire_free(). */
struct wire_batch {
	Flowlens__V1__Batch *b;
	struct wire_arena *arena;
};

/*
 * Inflates (at most max_decompressed bytes), unpacks and validates. On WIRE_OK out must be
 * released with wire_free(). *why names the problem otherwise.
 */
enum wire_result wire_decode(const uint8_t *in, size_t len, size_t max_decompressed,
			     struct wire_batch *out, const char **why);
void wire_free(struct wire_batch *wb);

const char *wire_reporter_name(int reporter);

#endif
