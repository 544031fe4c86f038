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

#endif
