/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict parsers for command-line and environment values, shared by agent and collector. */
#ifndef FLOWLENS_OPTPARSE_H
#define FLOWLENS_OPTPARSE_H

#include <stddef.h>
#include <stdint.h>

/* "250ms", "10s", "2m", "1h" or a bare number of seconds, > 0. Returns 0 or -EINVAL. */
int opt_parse_duration(const char *s, uint64_t *ms);
/* A decimal integer in [min, max], nothing else. Returns 0 or -EINVAL. */
int opt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "HOST:PORT" (":PORT" means 0.0.0.0; IPv6 as "[::1]:PORT"). Returns 0 or -EINVAL. */
int opt_parse_listen(const char *s, char *host, size_t host_size, int *port);

/* Default histogram bounds (seconds): 100 us to 30 s. The SLO generator checks latency
 * thresholds against them, so they are shared. */
#define OPT_DEFAULT_BUCKETS \
	"0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30"
/* Increasing positive bucket bounds "0.1,0.25,1"; returns the count or -EINVAL/-ENOMEM. */
int opt_parse_buckets(const char *s, double *out, unsigned int max);

#endif
