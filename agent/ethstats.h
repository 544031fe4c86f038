/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef FLOWLENS_ETHSTATS_H
#define FLOWLENS_ETHSTATS_H

#include <stdint.h>
#include "optparse.h"

/*
 * Driver statistics of a node interface by name, as `ethtool -S` shows them, read through
 * the kernel's ethtool ioctl (SIOCETHTOOL: ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS,
 * ETHTOOL_GSTATS). On EKS the ENA driver's allowance counters (bw_in_allowance_exceeded,
 * pps_allowance_exceeded, linklocal_allowance_exceeded, ...): packets the instance's network
 * limits queued or dropped, which no flow shows.
 */
#define ETHSTATS_MAX OPT_GLOBS_MAX

struct ethstats {
	uint64_t value[ETHSTATS_MAX]; /* value[i]: names[i] */
	uint32_t present; /* bit i: the driver has names[i] */
};

/*
 * Reads names[0..n) of interface ifname through sock (any AF_INET datagram socket in the
 * interface's network namespace). Returns 0 (out->present may be 0: a driver without these
 * statistics, or without any), or -errno when the interface cannot be queried.
 */
int ethstats_read(int sock, const char *ifname, char *const *names, int n, struct ethstats *out);

#endif
