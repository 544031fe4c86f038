/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses as every tier keeps them: 16 bytes, IPv4 in the IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d), network byte order. The datapath's keys (uint32_t[4]) and the collector's
 * byte arrays are the same 16 bytes, so these take and give plain memory.
 */
#ifndef FLOWLENS_ADDR_H
#define FLOWLENS_ADDR_H

#include <stddef.h>

#define ADDR_LEN 16
#define ADDR_STR_MAX 46 /* INET6_ADDRSTRLEN */

/* 1 when the 16 bytes at a are an IPv4-mapped address. */
int addr_is_v4(const void *a);

/* The 16-byte form of an AF_INET (4 bytes) or AF_INET6 (16 bytes) address. */
void addr_map(int family, const void *src, void *out);

/* The IPv4 part of a mapped address (its last 4 bytes). */
static inline const void *addr_v4_part(const void *a)
{
	return (const char *)a + 12;
}

/* Text form ("10.0.0.1", "fd00::1"); returns AF_INET or AF_INET6, or -errno. */
int addr_str(const void *a, char *buf, size_t size);

/* Parses text into the 16-byte form; returns AF_INET or AF_INET6, or -EINVAL. */
int addr_parse(const char *s, void *out);

#endif
