/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel side of an interval: reads the datapath's maps and hands plain deltas, samples
 * and tracepoint counts to attribution (attrib.h), which decides what they mean.
 *
 * The flow tables (shared hash maps) hold cumulative counters per (directional 5-tuple,
 * interface, hook) that are never reset in place; every drain reads them all (batch lookups)
 * and subtracts what the previous drain saw. Entries are removed with an atomic
 * lookup-and-delete, so that their last packets are still counted, when they are idle, when
 * their interface vanished, when their TCP connection finished (FIN or RST seen, then a quiet
 * interval), and, while a table is at least half full, when they were quiet for an interval.
 * Packets that did not fit the table arrive through a ring buffer and are merged here.
 */
#ifndef FLOWLENS_FLOWTAB_H
#define FLOWLENS_FLOWTAB_H

#include <stdint.h>
#include "attrib.h"

/* Why a kernel entry was removed (the label of flowlens_agent_flows_evicted_total). */
#define FLOWTAB_EVICT_REASONS(X)                                                           \
	X(FLOWTAB_EVICT_IDLE, "idle") /* no packet for --idle-timeout */                   \
	X(FLOWTAB_EVICT_FINISHED, "finished") /* TCP FIN or RST, then a quiet interval */  \
	X(FLOWTAB_EVICT_PRESSURE, "pressure") /* table half full: quiet for an interval */ \
	X(FLOWTAB_EVICT_GONE, "interface_gone")

enum flowtab_evict_reason {
#define FLOWTAB_EVICT_ENUM(id, name) id,
	FLOWTAB_EVICT_REASONS(FLOWTAB_EVICT_ENUM)
#undef FLOWTAB_EVICT_ENUM
		FLOWTAB_EVICT_N
};

extern const char *const flowtab_evict_names[FLOWTAB_EVICT_N];

struct flowtab_stats {
	uint64_t drains;
	uint64_t kernel_entries;
	uint64_t kernel_entries4;
	uint64_t kernel_entries6;
	uint64_t evicted; /* all reasons */
	uint64_t evicted_by[FLOWTAB_EVICT_N];
	uint64_t overflow_records; /* ring buffer records received */
	uint64_t overflow_dropped_packets; /* pending overflow table full */
	uint64_t read_errors;
	uint64_t slot_flush_retries; /* a CPU's slot was being changed: flushed again */
	uint64_t slot_flush_errors; /* a CPU's slot could not be flushed this drain */
	uint64_t datapath[FL_CNT_MAX]; /* the datapath's per-CPU counters, summed */
};

/*
 * Asks conntrack (user space, netlink) about the connection of a flow key, in either
 * direction: as attrib_nat_fn.
 */
typedef attrib_nat_fn flowtab_ct_fn;

/* Kind of an interface by ifindex, or -1 when it is not (or no longer) known. */
typedef int (*flowtab_kind_fn)(void *ctx, int ifindex);

struct flowtab;

int flowtab_new(struct flowtab **out, int flows4_fd, int flows6_fd, int counters_fd,
		uint32_t overflow_max, uint64_t idle_timeout_ns, flowtab_kind_fn kind, void *ctx);
void flowtab_free(struct flowtab *t);

/* A packet the kernel could not put in its table (ring buffer record). */
void flowtab_overflow(struct flowtab *t, const struct fl_overflow_event *ev);
/* The interface is gone: its flows are read one last time and removed at the next drain. */
void flowtab_iface_gone(struct flowtab *t, int ifindex, int kind);

/*
 * Where translations come from: nat_fd is the datapath's nat map (kfunc mode, else -1);
 * query, when set, asks conntrack from user space for connections the datapath did not
 * resolve (netlink mode).
 */
void flowtab_set_translation(struct flowtab *t, int nat_fd, flowtab_ct_fn query, void *ctx);
/* The tracepoints' maps of retransmissions and drops (-1: off), taken at every drain. */
void flowtab_set_event_maps(struct flowtab *t, int retrans_fd, int drops_fd,
			    volatile uint8_t *event_gen);
/* The datapath's map of unanswered DNS queries, swept for timeouts at every drain. */
void flowtab_set_dns_map(struct flowtab *t, int dns_fd);

/*
 * The datapath's per-CPU last-flow slots (bpf/cache.bpf.h): prog_fd is flowlens_cache_flush,
 * run on every CPU before each drain so that the tables hold every packet counted so far.
 */
void flowtab_set_slots(struct flowtab *t, int prog_fd);

/*
 * Empties every CPU's slot into the tables (offline CPUs have no slot to empty). Returns 0, or
 * a negative errno when this kernel cannot run the flush on a chosen CPU (before 5.10) or a
 * slot stayed busy; retries counts the flushes run again because a slot was being changed.
 */
int flowtab_flush_slots(int prog_fd, int ncpus, uint64_t *retries);

/*
 * Reads the kernel tables and replaces the interval's aggregates. now_ns is CLOCK_MONOTONIC.
 * Returns 0 or a negative errno (the aggregates are then those that could be read).
 */
int flowtab_drain(struct flowtab *t, uint64_t now_ns);

/* Attribution, fed by this table: signals, clock, samples, routes and the aggregates. */
struct attrib *flowtab_attrib(const struct flowtab *t);
const struct flowtab_stats *flowtab_stats(const struct flowtab *t);

#endif
