/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Names of IP protocols as flowlens writes them in JSON and labels. */
#ifndef FLOWLENS_IPPROTO_H
#define FLOWLENS_IPPROTO_H

#include <stddef.h>
#include <stdint.h>

/* "tcp", "udp", "icmp", "icmpv6", "sctp", or the number written into buf. */
const char *ipproto_name(uint8_t proto, char *buf, size_t size);

#endif
