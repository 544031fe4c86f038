/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* JSON form of flow aggregates: /v1/flows and the --output json flow log. */
#ifndef FLOWLENS_FLOWJSON_H
#define FLOWLENS_FLOWJSON_H

#include <stdint.h>
#include <stdio.h>
#include "agg.h"

struct flowjson_interval {
	const char *node;
	uint64_t start_unix_ms;
	uint64_t end_unix_ms;
	int64_t mono_to_unix_ns; /* add to a CLOCK_MONOTONIC time to get Unix time */
};

/* {"node":...,"interval_start":...,"flows":[...]}; malloc'd string or NULL. */
/* The document of /v1/flows: the max aggregates with the most bytes, and how many there were. */
char *flowjson_document(const struct flow_agg *aggs, const struct flowjson_interval *iv,
			size_t max);
/* One line per aggregate. Returns 0 or -EIO. */
int flowjson_write_lines(FILE *f, const struct flow_agg *aggs, const struct flowjson_interval *iv);

#endif
