/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the store (store.h), shared by its parts and not by other modules:
 *   store.c     batches applied once per agent sequence, the cross-node join, series
 *   signals.c   an aggregate's signals (outcomes, requests, drops, histograms) into series
 *   render.c    /metrics: every family from the series, yielding the lock while it writes
 *   snapshot.c  the whole store saved and restored (--state-dir)
 */
#ifndef FLOWLENS_STORE_IMPL_H
#define FLOWLENS_STORE_IMPL_H

#include <stdint.h>
#include <uthash.h>
#include "labels.h"
#include "store.h"
#include "vocab.h"
#include "wire.h"

/* Metric families a series belongs to. */
enum family {
	FAM_FLOW = 0, /* flowlens_flow_bytes_total + flowlens_flow_packets_total */
	FAM_ZONE, /* flowlens_zone_bytes_total */
	FAM_TCP, /* flowlens_tcp_connections_total{result} (the count is in packets) */
	FAM_HIST, /* histograms: key = family, histogram name, labels */
	FAM_HTTP, /* flowlens_http_requests_total{method,status_class} (the count in packets) */
	FAM_DNS, /* flowlens_dns_requests_total{rcode,qtype} (the count in packets) */
	FAM_RETRANS, /* flowlens_tcp_retransmits_total (the count in packets) */
	FAM_DROP, /* flowlens_drops_total{reason} (the count in packets) */
	FAM_GRPC, /* flowlens_grpc_requests_total{grpc_status} (the count in packets) */
	FAM_MAX,
};

/* Histogram state of a FAM_HIST series. */
struct hdata {
	uint32_t nb;
	uint16_t name_len;
	double sum;
	double *bounds; /* nb */
	uint64_t *counts; /* nb + 1 */
};

/* The signals of one aggregate, as the collector knows them (vocabulary: lib/vocab.h). */
struct sigs {
	int has;
	uint64_t tcp[TCP_RESULT_MAX];
	uint64_t http[HTTP_VERSIONS][HTTP_METHODS][HTTP_CLASSES];
	uint64_t grpc[GRPC_STATUSES];
	uint64_t dns[DNS_RCODES][DNS_QTYPES];
	uint64_t retransmits;
	unsigned int n_drops;
	struct {
		char reason[48];
		uint64_t count;
	} drops[8];
	struct {
		int on;
		uint32_t nb;
		double bounds[WIRE_HIST_BOUNDS_MAX];
		uint64_t counts[WIRE_HIST_BOUNDS_MAX + 1];
		double sum;
	} h[HIST_KINDS];
};

/* A series is keyed by its family byte followed by its escaped label text. */
struct series {
	uint64_t bytes;
	uint64_t packets;
	uint64_t updated_ms;
	uint64_t created_ms;
	uint16_t key_len; /* 1 + label text length */
	uint8_t overflow;
	uint8_t zero_shown; /* rendered as 0 during its hold at least once */
	uint8_t value_shown; /* rendered at its value by this process: never held again */
	struct hdata *h; /* FAM_HIST */
	UT_hash_handle hh;
	char key[]; /* family byte, then the labels (NUL-terminated) */
};

/* Dedup state of one agent process: (node, boot id) -> last applied seq. */
struct agent_key {
	char node[254];
	uint8_t boot_id[16];
};

struct agent_seq {
	struct agent_key key;
	uint64_t last_seq;
	uint64_t last_seen_ms;
	uint64_t dropped_batches;
	/* The latest interval end of a batch this process received itself (0 after a restore). */
	uint64_t recv_end_unix_ms;
	/*
	 * The latest interval end of a batch of this agent applied to this store (live, from the
	 * log, a snapshot or a peer's copy): the clock the cross-node join runs on (join_clock).
	 */
	uint64_t applied_end_unix_ms;
	UT_hash_handle hh;
};

/* (client, backend, backend port, protocol): which connection a join is about. */
struct join_key {
	uint8_t client[16];
	uint8_t server[16];
	uint16_t server_port;
	uint8_t protocol;
	uint8_t pad;
};

/* What a client dialed to reach a backend, learnt from its side's report; or that it did not. */
struct join {
	struct join_key key;
	uint8_t dialed[16];
	uint16_t dialed_port;
	uint8_t direct; /* waited in vain: a direct connection, do not wait again for a while */
	uint64_t updated_ms;
	/*
	 * The interval end of the earliest client-side report that named what was dialed (0:
	 * not known, from an older snapshot): a server-side report whose interval ended a join
	 * wait or more before it had stopped waiting, and is named direct on every replica.
	 */
	uint64_t since_unix_ms;
	UT_hash_handle hh;
};

/* A server-side aggregate waiting for its client side (summed per node). */
struct pending_key {
	struct join_key j;
	char node[254];
	uint8_t pad[2];
};

struct pending {
	struct pending_key key;
	uint64_t fwd_packets, fwd_bytes, rev_packets, rev_bytes;
	uint64_t start_unix_ms, when_unix_ms; /* the report's interval */
	/*
	 * Batch time: the first report's interval end + the join wait. Released when every
	 * agent's applied batches passed it (join_clock), so that every replica decides the
	 * same at the same point of the stream, whenever it received the batches.
	 */
	uint64_t due_unix_ms;
	/* The client's node, whose batches name what it dialed (NULL: not a known pod). */
	struct node_name *cnode;
	/* This process's clock: the release when the batches stop coming (a fallback). */
	uint64_t deadline_ms;
	struct sigs g;
	struct pending_group *group; /* every pending of the same connection, any node */
	struct pending *gprev, *gnext;
	UT_hash_handle hh;
};

/*
 * The pendings of one connection (join key), whatever node reported them: what a client
 * side's report releases, found in one lookup instead of a walk over every pending.
 */
struct pending_group {
	struct join_key j;
	struct pending *first;
	UT_hash_handle hh;
};

/* Adds p (already in s->pending) to its connection's group; -ENOMEM leaves it out of both. */
int pending_index(struct store *s, struct pending *p);

#define JOIN_TTL_MS (10ULL * 60 * 1000)

/* Naming cache: an aggregate key (as reported by one node) -> the series it lands in. */
struct name_key {
	struct join_key j;
	uint8_t dialed[16];
	uint16_t dialed_port;
	uint8_t has_dialed;
	uint8_t reporter;
	uint32_t node;
};

struct name_entry {
	struct name_key key;
	struct series *x[4]; /* flow forward, flow reply, zone forward, zone reply */
	uint64_t meta_gen;
	uint64_t series_gen;
	uint64_t used_ms;
	UT_hash_handle hh;
};

struct node_name {
	char *name;
	uint32_t id;
	/*
	 * The latest interval end of a batch of this node's agents (any boot) applied here: the
	 * clock a server-side report waits on for its client's node (issue 35).
	 */
	uint64_t applied_end_unix_ms;
	UT_hash_handle hh;
};

struct store {
	struct store_config cfg;
	char *const_labels; /* "{cluster=\"..\",shard=\"..\"," or NULL */
	uint64_t batch_mono_ms; /* while a batch is applied (hold_from_batch): its end, as now_ms */
	uint64_t hold_horizon_ms; /* holds end no later than this (store_set_hold_horizon) */
	struct meta *own_meta;
	struct series *series;
	size_t n_series; /* excluding the overflow series */
	struct agent_seq *agents;
	size_t n_agents;
	struct join *joins;
	size_t n_joins;
	struct pending *pending;
	size_t n_pending;
	struct pending_group *pending_groups;
	struct name_entry *names;
	size_t n_names;
	struct node_name *node_names;
	uint32_t n_node_names;
	uint64_t series_gen; /* changes whenever a series is freed: cached pointers go stale */
	int rendering; /* renders in progress (they yield the caller's lock): nothing is freed */
	int draining;
	struct store_stats st;
};

/* store.c */
struct series *series_new(const char *key, size_t key_len);
/*
 * The series of (family, labels), created when missing when create is set; key is the
 * family byte (written here) followed by the labels' text (len bytes).
 */
struct series *series_get(struct store *s, enum family fam, enum flow_direction dir, char *key,
			  int len, int create, uint64_t now_ms);
uint32_t node_id(struct store *s, const char *node);
/* The interned entry of a node's name, made when missing (NULL: out of memory). */
struct node_name *node_entry(struct store *s, const char *node);
/* A node's batch-time clock moved to end (a batch of its agent applied). */
void node_clock_advance(struct store *s, const char *node, uint64_t end_unix_ms);
/* A join entry for k, making room (the oldest goes) when the table is full. */
struct join *join_add(struct store *s, const struct join_key *k);

/* signals.c */
/*
 * The metric each wire histogram is rendered as (flowlens_<metric>), with an extra label pair
 * where two wire histograms share one metric (HTTP/1.x and HTTP/2 durations).
 */
struct hist_series {
	const char *metric;
	const char *k, *v;
};
extern const struct hist_series hist_series[HIST_KINDS];

void sigs_from(struct store *s, const Flowlens__V1__FlowAggregate *f, struct sigs *g);
void sigs_add(struct store *s, struct sigs *a, const struct sigs *b);
struct hdata *hdata_new(uint32_t nb, const double *bounds, uint16_t name_len);
void emit_signals(struct store *s, const struct flow_view *v, const struct sigs *g,
		  uint64_t now_ms);

#endif
