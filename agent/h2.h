/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/2 requests from the header blocks the datapath hands up (struct fl_h2_rec,
 * bpf/h2.bpf.h): per connection and direction, the records are put back together into
 * header blocks and decoded with nghttp2's HPACK inflater, whose dynamic table follows the
 * connection's. Per stream: request start (the client's HEADERS), response start (the
 * server's HEADERS with :status), end of stream (END_STREAM, or RST_STREAM) and, for gRPC,
 * grpc-status from the trailers. A finished request becomes fl_samples (FL_SAMPLE_HTTP2, and
 * FL_SAMPLE_GRPC for gRPC) for attribution, like the datapath's HTTP/1 samples.
 *
 * A direction whose blocks were not all seen (the agent joined the connection late, a record
 * lost, the datapath lost the frame boundaries, a block the inflater refused) cannot be
 * decoded any more: its blocks are read without the dynamic table (static-table :status and
 * :method, and literals), and each request finished on it is counted as undecodable, by
 * reason. Pure C over plain inputs: unit tests drive it with blocks nghttp2's deflater made.
 */
#ifndef FLOWLENS_H2_H
#define FLOWLENS_H2_H

#include <stdint.h>
#include "flow.h"

/* Why a direction's blocks could not be decoded with its dynamic table. */
#define H2_UNDECODABLE(X)                                                                 \
	X(H2_NO_PREFACE, "no_preface") /* the connection began before the agent saw it */ \
	X(H2_RECORD_GAP, "record_gap") /* a record was lost (the ring buffer was full) */ \
	X(H2_DESYNC, "desync") /* the datapath lost the frame boundaries */               \
	X(H2_DECODE_ERROR, "decode_error") /* the inflater refused a block */

#define H2_ENUM(e, name) e,
enum h2_reason { H2_OK = 0, H2_UNDECODABLE(H2_ENUM) H2_REASONS };
#undef H2_ENUM
extern const char *const h2_reason_name[H2_REASONS];

struct h2_stats {
	uint64_t records; /* received */
	uint64_t connections; /* followed now */
	uint64_t connections_refused; /* not followed: too many */
	uint64_t requests; /* finished */
	uint64_t undecodable[H2_REASONS]; /* finished requests read without the dynamic table */
	uint64_t unmatched; /* server HEADERS for a stream whose request was not seen */
	uint64_t streams_refused; /* not followed: too many open (a connection's, or all) */
	uint64_t buffers_refused; /* header blocks not decoded: over the buffer budget */
};

typedef void (*h2_emit_fn)(void *ctx, const struct fl_sample *s);

struct h2;

/* idle_ns: a connection without records for this long is forgotten. */
int h2_new(struct h2 **out, uint64_t idle_ns, h2_emit_fn emit, void *ctx);
void h2_free(struct h2 *h);
/* One record of the samples ring buffer (size-checked by the caller). */
void h2_record(struct h2 *h, const struct fl_h2_rec *r);
/* Forgets connections idle since before now_ns - idle_ns (CLOCK_MONOTONIC). */
void h2_sweep(struct h2 *h, uint64_t now_ns);
const struct h2_stats *h2_stats(const struct h2 *h);

#endif
