// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tests only: an XDP program that passes every frame. On a veth it makes the driver count
 * rx_queue_0_xdp_packets (ethtool -S), a driver counter that moves with the traffic, for the
 * agent's --ethtool-stats test.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
