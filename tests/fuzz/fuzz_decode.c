// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the collector's input path: bytes from the network are inflated,
 * unpacked, validated and, when accepted, applied to a store that is then rendered.
 *   make build/fuzz-decode && build/fuzz-decode -max_total_time=600 CORPUS_DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "expo.h"
#include "store.h"
#include "wire.h"

static struct store *store;
static uint64_t now;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_batch wb;
	const char *why;

	if (!store) {
		struct store_config cfg = {
			.max_series = 512, .ttl_ms = 50, .max_agents = 64, .zero_hold_ms = 5
		};

		if (store_new(&store, &cfg))
			abort();
	}
	now += 7;
	if (wire_decode(data, size, 1 << 20, &wb, &why) == WIRE_OK) {
		struct expo e;
		char *out;
		size_t len;

		store_apply(store, wb.b, now);
		wire_free(&wb);
		if (expo_open(&e) == 0) {
			store_render(store, &e, now, NULL, NULL);
			if (expo_close(&e, &out, &len) == 0)
				free(out);
		}
	}
	store_expire(store, now);
	return 0;
}
