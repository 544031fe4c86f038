/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside attribution: shared by attrib.c (connections, initiators, translations, aggregates)
 * and outcome.c (TCP outcomes, finished exchanges, tracepoint counts). Not for other modules.
 */
#ifndef FLOWLENS_ATTRIB_IMPL_H
#define FLOWLENS_ATTRIB_IMPL_H

#include "attrib.h"

/* A connection: both directions of one 5-tuple, sides in canonical order (a < b). */
struct conn_key {
	uint32_t a[4];
	uint32_t b[4];
	uint16_t aport;
	uint16_t bport;
	uint8_t proto;
	uint8_t pad[3];
};

#define CONN_SEEN 2 /* a pod veth on each side; or an ENI (ENI copies of pods' are skipped) */

enum xlate_state {
	XLATE_UNKNOWN = 0,
	XLATE_DIRECT, /* conntrack here knows it, without a destination translation */
	XLATE_NAT,
};

struct conn {
	struct conn_key key;
	int client_is_a;
	enum initiator_by by;
	uint8_t xlate; /* enum xlate_state */
	uint8_t xlate_queries;
	struct fl_nat nat; /* when xlate == XLATE_NAT */
	/*
	 * The aggregates this connection's packets went to, per interface that saw them (a pod
	 * veth on each side, an ENI): samples and tracepoint counts are attributed through them.
	 */
	struct {
		uint32_t ifindex; /* 0: free */
		struct agg_key ak;
	} seen[CONN_SEEN];
	uint64_t first_a_ns; /* first packet sent by a / by b */
	uint64_t first_b_ns;
	uint64_t last_ns;
	UT_hash_handle hh;
};

/* An address of a pod on this node: named by a host route, or seen at a pod veth. */
struct local_ip {
	uint32_t addr[4];
	int routes; /* host routes through a pod interface */
	uint64_t grace_gen; /* still local through this interval: its route just went away */
	uint64_t learned_ns; /* last seen as a pod's own address at a pod veth */
	UT_hash_handle hh;
};

/* One counter delta of one interval. */
struct delta {
	struct fl_key key;
	struct fl_stats d;
	int kind;
};

/*
 * A TCP connection attempt as seen at one interface: from its SYN to how it ended. Connect
 * latency is the SYN-ACK entry's first packet time minus the SYN entry's (both taken by the
 * datapath when it inserted the entries): no per-packet work beyond what flow counting does.
 */
enum attempt_state {
	ATTEMPT_SYN = 0, /* SYN seen, no answer yet */
	ATTEMPT_ESTABLISHED,
	ATTEMPT_DONE, /* refused, timed out or reset: counted */
};

struct attempt_key {
	struct conn_key ck;
	uint32_t ifindex;
};

struct tcp_attempt {
	struct attempt_key key;
	uint64_t syn_ns;
	uint64_t last_ns;
	uint8_t state;
	struct agg_key agg; /* where an outcome without packets (a timeout) is counted */
	UT_hash_handle hh;
};

/* A RST of this interval, applied after every SYN-ACK of the interval. */
struct rst_event {
	struct tcp_attempt *o;
	struct flow_agg *agg;
	int from_client;
};

#define SAMPLES_MAX 262144 /* waiting for the next interval */

struct attrib {
	uint64_t idle_ns;
	struct attrib_ops ops;
	uint64_t gen; /* intervals begun */
	uint64_t now_ns;
	struct kernel_clock clock;
	struct sig_config sig;

	struct delta *deltas;
	size_t n_deltas, cap_deltas;
	struct conn *conns;
	struct local_ip *local;
	struct flow_agg *aggs;
	struct tcp_attempt *attempts;
	struct rst_event *rsts;
	size_t n_rsts, cap_rsts;
	struct fl_sample *samples;
	size_t n_samples, cap_samples;

	struct attrib_stats st;
};

/* attrib.c */
void conn_key_of(const struct fl_key *k, struct conn_key *ck, int *sender_is_a);
struct conn *conn_find(struct attrib *a, const struct conn_key *ck);
const struct agg_key *conn_seen_at(const struct conn *c, uint32_t ifindex);
struct flow_agg *agg_get(struct attrib *a, const struct agg_key *ak);
int is_local(struct attrib *a, const uint32_t addr[4]);

/* outcome.c */
void attempt_syn(struct attrib *a, const struct conn_key *ck, const struct delta *dl);
void attempt_observe(struct attrib *a, const struct conn_key *ck, const struct delta *dl,
		     struct flow_agg *agg, int sender_is_client);
void attempts_settle(struct attrib *a);
void samples_apply(struct attrib *a);
void outcome_free(struct attrib *a);

#endif
