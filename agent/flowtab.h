/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From kernel flow counters to per-interval flow aggregates.
 *
 * The kernel table holds cumulative per-CPU counters per (directional 5-tuple, interface,
 * hook) that are never reset in place; every drain reads them all (batch lookups), subtracts
 * what the previous drain saw, and attributes the deltas to aggregates keyed by (client IP,
 * server IP, server port, protocol, reporter). Idle entries are removed with an atomic
 * lookup-and-delete so that their last packets are still counted.
 */
#ifndef FLOWLENS_FLOWTAB_H
#define FLOWLENS_FLOWTAB_H

#include <stdint.h>
#include <uthash.h>
#include "flow.h"

enum iface_kind {
	IFACE_POD = 0, /* host side of a pod veth (eni*, veth*) */
	IFACE_NODE, /* a node interface (ENI: eth*, ens*) */
};

enum reporter {
	REPORTER_CLIENT = 0, /* seen at the initiating pod's veth */
	REPORTER_SERVER, /* seen at the responding pod's veth */
	REPORTER_NODE, /* seen only at a node interface */
};

/* How the initiator of a connection was decided (documented in docs/flows.md). */
enum initiator_by {
	INITIATOR_NONE = 0,
	INITIATOR_SYN, /* TCP SYN / SYN-ACK observed */
	INITIATOR_PORTS, /* port heuristic */
	INITIATOR_FIRST, /* sender of the first packet observed */
};

/*
 * server/server_port are the backend that answered; dialed/dialed_port what the client
 * connected to when a destination translation (kube-proxy's ClusterIP DNAT) was in between,
 * else all zero.
 */
struct agg_key {
	uint32_t client[4]; /* IPv4-mapped like fl_key */
	uint32_t server[4];
	uint32_t dialed[4];
	uint16_t server_port;
	uint16_t dialed_port;
	uint8_t proto;
	uint8_t reporter;
	uint8_t pad[2];
};

/* TCP connection attempts by how they ended (flowlens_tcp_connections_total{result}). */
enum tcp_result {
	TCP_ESTABLISHED = 0, /* SYN answered by SYN-ACK */
	TCP_REFUSED, /* SYN answered by RST */
	TCP_TIMEOUT, /* SYN without an answer within the connect timeout */
	TCP_RESET, /* established, then reset */
	TCP_RESULT_MAX,
};

#define HIST_BOUNDS_MAX 32

/* Histogram of one interval: counts[i] in (bounds[i-1], bounds[i]], counts[n] above. */
struct hist {
	uint64_t counts[HIST_BOUNDS_MAX + 1];
	uint64_t n;
	double sum;
};

/* HTTP status classes: 1xx to 5xx, and 0 for anything else. */
#define HTTP_CLASSES 6

/* HTTP requests of one aggregate in one interval. */
struct http_sig {
	uint32_t requests[FL_HTTP_METHODS][HTTP_CLASSES];
	struct hist duration;
};

/* DNS rcodes (NOERROR .. REFUSED, other, timeout) and question types the agent tells apart. */
#define DNS_RCODES 8
#define DNS_RCODE_OTHER 6
#define DNS_RCODE_TIMEOUT 7
#define DNS_QTYPES 11 /* A NS CNAME SOA PTR MX TXT AAAA SRV HTTPS other */

struct dns_sig {
	uint32_t requests[DNS_RCODES][DNS_QTYPES];
	struct hist duration; /* answered queries */
};

int flowtab_dns_qtype_index(uint16_t qtype);

/* Packets of an aggregate the kernel dropped, by reason (up to 8 reasons an interval). */
struct agg_drops {
	uint8_t n;
	struct {
		uint16_t reason; /* enum skb_drop_reason */
		uint32_t count;
	} d[8];
};

/* What the signals are and how they are measured. */
struct flowtab_signals {
	int http; /* HTTP/1.x requests: method, status class, duration */
	double http_bounds[HIST_BOUNDS_MAX];
	unsigned int n_http_bounds;
	int dns; /* DNS over UDP: rcode, question type, duration, timeouts */
	uint64_t dns_timeout_ns;
	double dns_bounds[HIST_BOUNDS_MAX];
	unsigned int n_dns_bounds;
	int drops; /* packets the kernel dropped, by reason */
	int tcp; /* connection outcomes, connect latency, retransmissions */
	uint64_t connect_timeout_ns;
	double connect_bounds[HIST_BOUNDS_MAX]; /* seconds, increasing */
	unsigned int n_connect_bounds;
};

struct agg_dir {
	uint64_t packets;
	uint64_t bytes;
};

struct flow_agg {
	struct agg_key key;
	struct agg_dir fwd; /* client to server */
	struct agg_dir rev; /* server to client */
	uint32_t syn, synack, fin, rst;
	uint8_t flags_fwd, flags_rev;
	uint8_t by_heuristic; /* some connection's initiator was not seen by SYN */
	uint64_t first_ns, last_ns; /* CLOCK_MONOTONIC */
	uint32_t tcp[TCP_RESULT_MAX];
	struct hist *connect; /* connect latency (seconds), when observed this interval */
	struct http_sig *http; /* when requests finished this interval */
	struct dns_sig *dns; /* when queries were answered or timed out this interval */
	uint64_t retransmits; /* by the sending pod's socket */
	struct agg_drops *drops; /* when the kernel dropped some of its packets this interval */
	UT_hash_handle hh;
};

#define FLOWTAB_DROP_REASONS 256

struct flowtab_stats {
	uint64_t drains;
	uint64_t kernel_entries;
	uint64_t kernel_entries4;
	uint64_t kernel_entries6;
	uint64_t evicted;
	uint64_t overflow_records; /* ring buffer records received */
	uint64_t overflow_dropped_packets; /* pending overflow table full */
	uint64_t eni_duplicate_packets; /* ENI copies of packets seen at a pod veth */
	uint64_t read_errors;
	uint64_t connections;
	uint64_t local_ips;
	uint64_t aggregates;
	uint64_t datapath[FL_CNT_MAX];
	/* Connections by what conntrack said about a destination translation. */
	uint64_t xl_nat; /* translated (ClusterIP and the like) */
	uint64_t xl_direct; /* conntrack entry without a destination translation */
	uint64_t xl_queries; /* user-space conntrack queries (netlink mode) */
	uint64_t xl_query_errors;
	uint64_t tcp[TCP_RESULT_MAX]; /* connection outcomes observed, all interfaces */
	uint64_t tcp_open; /* connection attempts being followed */
	uint64_t samples; /* finished exchanges received from the datapath */
	uint64_t samples_unattributed; /* ...of no aggregate (ENI copies of pod traffic) */
	uint64_t samples_dropped; /* ...lost: too many waiting for the next drain */
	uint64_t retransmits; /* seen by the tracepoint */
	uint64_t retransmits_attributed;
	uint64_t drops[FLOWTAB_DROP_REASONS]; /* seen by the tracepoint, by reason */
	uint64_t drops_attributed;
};

/*
 * Asks conntrack (user space, netlink) about the connection of a flow key, in either
 * direction. Returns 1 and fills *n when there is a destination translation, 0 when conntrack
 * knows the connection without one, -ENOENT when it does not know it, or another -errno.
 */
typedef int (*flowtab_ct_fn)(void *ctx, const struct fl_key *k, struct fl_nat *n);

/* Kind of an interface by ifindex, or -1 when it is not (or no longer) known. */
typedef int (*flowtab_kind_fn)(void *ctx, int ifindex);

struct flowtab;

/* Kernel jiffies and CLOCK_MONOTONIC read at one instant, and the kernel's HZ. */
struct flowtab_clock {
	uint64_t jiffies;
	uint64_t ktime_ns;
	uint32_t hz;
};

int flowtab_new(struct flowtab **out, int flows4_fd, int flows6_fd, int counters_fd,
		uint32_t capacity, uint32_t overflow_max, uint64_t idle_timeout_ns,
		flowtab_kind_fn kind, void *ctx);
void flowtab_free(struct flowtab *t);

/* A finished exchange from the datapath (ring buffer "samples"), applied at the next drain. */
void flowtab_sample(struct flowtab *t, const struct fl_sample *s);

/* A packet the kernel could not put in its table (ring buffer record). */
void flowtab_overflow(struct flowtab *t, const struct fl_overflow_event *ev);
/* A host route through a pod interface names a local pod IP (add = 0 removes it). */
void flowtab_route(struct flowtab *t, int add, int family, const void *addr, int is_pod);
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

/* Turns the signals on (they are off until set). */
void flowtab_set_signals(struct flowtab *t, const struct flowtab_signals *sig);
const struct flowtab_signals *flowtab_signals(const struct flowtab *t);

/* Sets the clock reading used to turn last_jiffies into time for the next drain. */
void flowtab_set_clock(struct flowtab *t, const struct flowtab_clock *c);

/*
 * Reads the kernel tables and replaces the interval's aggregates. now_ns is CLOCK_MONOTONIC.
 * Returns 0 or a negative errno (the aggregates are then those that could be read).
 */
int flowtab_drain(struct flowtab *t, uint64_t now_ns);

/* The last interval's aggregates (a uthash list; iterate with hh.next). */
struct flow_agg *flowtab_aggregates(const struct flowtab *t);
const struct flowtab_stats *flowtab_stats(const struct flowtab *t);

/* Address helpers shared with the JSON writer: family of an IPv4-mapped/IPv6 address. */
int flowtab_addr_str(const uint32_t addr[4], char *buf, size_t size);
const char *flowtab_reporter_name(uint8_t reporter);

#endif
