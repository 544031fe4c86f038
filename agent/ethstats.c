// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "ethstats.h"

static int ethtool_ioctl(int sock, const char *ifname, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = cmd;
	return ioctl(sock, SIOCETHTOOL, &ifr) == -1 ? -errno : 0;
}

/* How many statistics the driver has; 0 when it has none. */
static int stats_count(int sock, const char *ifname, uint32_t *count)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t data[1];
	} ss;
	struct ethtool_drvinfo di;
	int err;

	memset(&ss, 0, sizeof(ss));
	ss.hdr.cmd = ETHTOOL_GSSET_INFO;
	ss.hdr.sset_mask = 1ULL << ETH_SS_STATS;
	err = ethtool_ioctl(sock, ifname, &ss);
	if (err == 0) {
		*count = (ss.hdr.sset_mask & (1ULL << ETH_SS_STATS)) ? ss.data[0] : 0;
		return 0;
	}
	if (err != -EOPNOTSUPP)
		return err;
	/* Older drivers: the count is in the driver information. */
	memset(&di, 0, sizeof(di));
	di.cmd = ETHTOOL_GDRVINFO;
	err = ethtool_ioctl(sock, ifname, &di);
	if (err == -EOPNOTSUPP) {
		*count = 0;
		return 0;
	}
	*count = err ? 0 : di.n_stats;
	return err;
}

int ethstats_read(int sock, const char *ifname, char *const *names, int n, struct ethstats *out)
{
	struct ethtool_gstrings *strs = NULL;
	struct ethtool_stats *vals = NULL;
	int idx[ETHSTATS_MAX];
	uint32_t count, room, i;
	int err, k, want = 0;

	memset(out, 0, sizeof(*out));
	if (n > ETHSTATS_MAX)
		n = ETHSTATS_MAX;
	err = stats_count(sock, ifname, &count);
	if (err || count == 0 || n <= 0)
		return err;
	/* A driver reporting absurd counts is not trusted with our memory. */
	if (count > 65536)
		return -E2BIG;
	/*
	 * We ask for exactly the count the driver gave; recent kernels answer nothing (len 0)
	 * when it changed since, older ones write as many entries as the driver has then: room
	 * for a driver that grew in between, and the answer checked against it.
	 */
	room = count * 2 + 16;
	strs = calloc(1, sizeof(*strs) + (size_t)room * ETH_GSTRING_LEN);
	vals = calloc(1, sizeof(*vals) + (size_t)room * sizeof(uint64_t));
	if (!strs || !vals) {
		err = -ENOMEM;
		goto out;
	}
	strs->cmd = ETHTOOL_GSTRINGS;
	strs->string_set = ETH_SS_STATS;
	strs->len = count;
	err = ethtool_ioctl(sock, ifname, strs);
	if (!err && strs->len > room)
		err = -EOVERFLOW;
	if (err)
		goto out;
	for (k = 0; k < n; k++) {
		idx[k] = -1;
		for (i = 0; i < strs->len; i++) {
			const char *s = (const char *)strs->data + (size_t)i * ETH_GSTRING_LEN;

			if (strncmp(s, names[k], ETH_GSTRING_LEN) == 0) {
				idx[k] = (int)i;
				want++;
				break;
			}
		}
	}
	if (!want)
		goto out;
	vals->cmd = ETHTOOL_GSTATS;
	vals->n_stats = count;
	err = ethtool_ioctl(sock, ifname, vals);
	if (!err && vals->n_stats > room)
		err = -EOVERFLOW;
	if (err)
		goto out;
	for (k = 0; k < n; k++) {
		if (idx[k] < 0 || (uint32_t)idx[k] >= vals->n_stats)
			continue;
		out->value[k] = vals->data[idx[k]];
		out->present |= 1U << k;
	}
out:
	free(strs);
	free(vals);
	return err;
}
