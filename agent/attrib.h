/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Attribution: the agent's decisions about kernel data, in plain C over plain inputs (no BPF,
 * no syscalls), so unit tests drive it with crafted deltas and a fake clock.
 *
 * One interval goes:
 *   attrib_begin(now)                        the previous interval's aggregates are dropped
 *   attrib_delta(key, delta, kind) ...       every counter delta the kernel tables gave
 *   attrib_flows()                           pass 1: who initiated each connection, which
 *                                            addresses are this node's pods, translations;
 *                                            pass 2: each delta into its aggregate; TCP
 *                                            outcomes settled
 *   attrib_retransmits / attrib_drops ...    tracepoint counts, to the pod side's aggregate
 *   attrib_end()                             finished exchanges (HTTP, DNS) queued by
 *                                            attrib_sample() since the last interval go to
 *                                            the aggregate of the interface that saw them;
 *                                            idle connections are forgotten
 * and attrib_aggregates() is the interval's result.
 *
 * Between intervals: attrib_sample() (ring buffer samples, DNS timeouts) and attrib_route()
 * (host routes naming local pod IPs).
 */
#ifndef FLOWLENS_ATTRIB_H
#define FLOWLENS_ATTRIB_H

#include <stdint.h>
#include "agg.h"

/* Kernel jiffies and CLOCK_MONOTONIC read at one instant, and the kernel's HZ. */
struct kernel_clock {
	uint64_t jiffies;
	uint64_t ktime_ns;
	uint32_t hz;
};

/*
 * Where destination translations come from. Both return 1 and fill *n when the connection of
 * k (in either direction) has a destination translation, 0 when conntrack knows it without
 * one, -ENOENT when not known, or another -errno.
 *   datapath: the record the datapath left for a key it flagged FL_CT_NAT (kfunc mode)
 *   query:    conntrack asked from user space (netlink mode), for keys the datapath did
 *             not resolve; at most a few times per connection
 */
typedef int (*attrib_nat_fn)(void *ctx, const struct fl_key *k, struct fl_nat *n);

struct attrib_ops {
	attrib_nat_fn datapath;
	attrib_nat_fn query;
	void *ctx;
};

#define DROP_REASONS_MAX 256 /* by enum skb_drop_reason; larger ones count as 0 */

struct attrib_stats {
	uint64_t connections; /* followed for initiator detection */
	uint64_t local_ips;
	uint64_t aggregates;
	uint64_t eni_duplicate_packets; /* ENI copies of packets seen at a pod veth */
	/* Connections by what conntrack said about a destination translation. */
	uint64_t xlate_nat; /* translated (ClusterIP and the like) */
	uint64_t xlate_direct; /* conntrack entry without a destination translation */
	uint64_t xlate_queries; /* user-space conntrack queries (netlink mode) */
	uint64_t xlate_query_errors;
	uint64_t tcp[TCP_RESULT_MAX]; /* connection outcomes observed, all interfaces */
	uint64_t tcp_open; /* connection attempts being followed */
	uint64_t samples; /* finished exchanges received */
	uint64_t samples_unattributed; /* ...of no aggregate (ENI copies of pod traffic) */
	uint64_t samples_dropped; /* ...lost: too many waiting for the next interval */
	uint64_t retransmits; /* seen by the tracepoint */
	uint64_t retransmits_attributed;
	uint64_t drops[DROP_REASONS_MAX]; /* seen by the tracepoint, by reason */
	uint64_t drops_attributed;
};

struct attrib;

/* idle_ns: connections and TCP attempts without packets for this long are forgotten. */
int attrib_new(struct attrib **out, uint64_t idle_ns, const struct attrib_ops *ops);
void attrib_free(struct attrib *a);

/* Turns the signals on (they are off until set). */
void attrib_set_signals(struct attrib *a, const struct sig_config *sig);
const struct sig_config *attrib_signals(const struct attrib *a);
/* The clock reading that turns last_jiffies into CLOCK_MONOTONIC for the next interval. */
void attrib_set_clock(struct attrib *a, const struct kernel_clock *c);

void attrib_begin(struct attrib *a, uint64_t now_ns);
/* A counter delta of one kernel entry (kind: enum iface_kind of its interface). */
int attrib_delta(struct attrib *a, const struct fl_key *k, const struct fl_stats *d, int kind);
void attrib_flows(struct attrib *a);
/* n retransmissions by the socket sending k (as the tracepoint keyed them). */
void attrib_retransmits(struct attrib *a, const struct fl_key *k, uint64_t n);
/* n packets of k dropped by the kernel for reason. */
void attrib_drops(struct attrib *a, const struct fl_key *k, uint16_t reason, uint64_t n);
void attrib_end(struct attrib *a);

/* A finished exchange, applied at the next attrib_end(). */
void attrib_sample(struct attrib *a, const struct fl_sample *s);
/* A host route through a pod interface names a local pod IP (add = 0 removes it). */
void attrib_route(struct attrib *a, int add, int family, const void *addr);

/* The last interval's aggregates (a uthash list; iterate with hh.next). */
struct flow_agg *attrib_aggregates(const struct attrib *a);
const struct attrib_stats *attrib_stats(const struct attrib *a);

#endif
