// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the agent's HTTP/2 decoder (agent/h2.c): what a pod sends on an h2c
 * connection reaches it as records the datapath cut from its frames, so every field of a
 * record is the peer's to choose. One input is a run of records on a few connections:
 *   byte 0: connection (low 2 bits), side (bit 2), record type (bits 3-4), chunk bits (5-7)
 *   byte 1: frame type, byte 2: frame flags, byte 3: stream id, byte 4: sequence skip,
 *   byte 5: data length, then that many data bytes.
 *   make build/fuzz-h2 && build/fuzz-h2 -max_total_time=600
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "h2.h"

static void sink(void *ctx, const struct fl_sample *s)
{
	(void)ctx;
	if (s->kind != FL_SAMPLE_HTTP2 && s->kind != FL_SAMPLE_GRPC)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seq[4][2] = { { 0 } };
	struct h2 *h;
	size_t i = 0;

	if (h2_new(&h, 1000000000ULL, sink, NULL))
		abort();
	while (i + 6 <= size) {
		struct fl_h2_rec r;
		int conn = data[i] & 3, side = (data[i] >> 2) & 1;
		size_t n = data[i + 5];

		memset(&r, 0, sizeof(r));
		r.key.saddr[3] = 0x0100000a;
		r.key.sport = (uint16_t)(40000 + conn);
		r.key.dport = 8080;
		r.key.proto = 6;
		r.side = (uint8_t)side;
		r.type = (uint8_t)(((data[i] >> 3) & 3) + 1);
		r.chunk = data[i] >> 5;
		r.frame = data[i + 1];
		r.flags = data[i + 2];
		r.stream = data[i + 3];
		seq[conn][side] += 1 + (data[i + 4] == 0xff);
		r.seq = r.type == FL_H2_REC_PREFACE ? (seq[conn][0] = 1) : seq[conn][side];
		r.ts_ns = i;
		i += 6;
		if (n > size - i)
			n = size - i;
		r.len = (uint16_t)n;
		memcpy(r.data, data + i, n);
		i += n;
		h2_record(h, &r);
	}
	h2_sweep(h, UINT64_MAX);
	if (h2_stats(h)->connections != 0)
		abort();
	h2_free(h);
	return 0;
}
