// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* IPv4-mapped 16-byte addresses: the one representation agent and collector share. */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include "addr.h"

static const unsigned char v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int addr_is_v4(const void *a)
{
	return memcmp(a, v4_prefix, sizeof(v4_prefix)) == 0;
}

void addr_map(int family, const void *src, void *out)
{
	if (family == AF_INET) {
		memcpy(out, v4_prefix, sizeof(v4_prefix));
		memcpy((char *)out + 12, src, 4);
	} else {
		memcpy(out, src, ADDR_LEN);
	}
}

int addr_str(const void *a, char *buf, size_t size)
{
	int family = addr_is_v4(a) ? AF_INET : AF_INET6;

	if (!inet_ntop(family, family == AF_INET ? addr_v4_part(a) : a, buf, (socklen_t)size))
		return -errno;
	return family;
}

int addr_parse(const char *s, void *out)
{
	unsigned char b[ADDR_LEN];

	if (inet_pton(AF_INET, s, b) == 1) {
		addr_map(AF_INET, b, out);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, s, b) == 1) {
		addr_map(AF_INET6, b, out);
		return AF_INET6;
	}
	return -EINVAL;
}
