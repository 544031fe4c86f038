// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Baseline for benchmarks: the cheapest TC program that can be attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int noop_tc(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC / TCX_NEXT */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
