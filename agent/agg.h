/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow aggregates: what one interval of kernel data becomes, and what the exposition, the
 * JSON writer and the exporter read. An aggregate is keyed by (client, server, server port,
 * protocol, reporter), plus what the client dialed when a destination translation (kube-proxy's
 * ClusterIP DNAT) was in between. Its signals (outcomes, requests, histograms) are attached
 * only when they happened in the interval.
 */
#ifndef FLOWLENS_AGG_H
#define FLOWLENS_AGG_H

#include <stdint.h>
#include <uthash.h>
#include "flow.h"
#include "vocab.h"

enum iface_kind {
	IFACE_POD = 0, /* host side of a pod veth (eni*, veth*, vlan<hex>) */
	IFACE_NODE, /* a node interface (ENI: eth*, ens*) */
};

/* How the initiator of a connection was decided (documented in docs/flows.md). */
enum initiator_by {
	INITIATOR_NONE = 0,
	INITIATOR_SYN, /* TCP SYN / SYN-ACK observed */
	INITIATOR_PORTS, /* port heuristic (or the translated side is the server) */
	INITIATOR_FIRST, /* sender of the first packet observed */
};

/*
 * server/server_port are the backend that answered; dialed/dialed_port what the client
 * connected to when a destination translation was in between, else all zero.
 */
struct agg_key {
	uint32_t client[4]; /* IPv4-mapped (lib/addr.h) */
	uint32_t server[4];
	uint32_t dialed[4];
	uint16_t server_port;
	uint16_t dialed_port;
	uint8_t proto;
	uint8_t reporter; /* enum reporter */
	uint8_t pad[2];
};

#define HIST_BOUNDS_MAX 32

/* Histogram of one interval: counts[i] in (bounds[i-1], bounds[i]], counts[n] above. */
struct hist {
	uint64_t counts[HIST_BOUNDS_MAX + 1];
	uint64_t n;
	double sum;
};

static inline void hist_add(struct hist *h, const double *bounds, unsigned int nb, double v)
{
	unsigned int i;

	for (i = 0; i < nb && v > bounds[i]; i++)
		;
	h->counts[i]++;
	h->n++;
	h->sum += v;
}

/* HTTP requests of one aggregate in one interval (HTTP/1.x, or HTTP/2). */
struct http_sig {
	uint32_t requests[HTTP_METHODS][HTTP_CLASSES];
	struct hist duration;
};

/* gRPC requests of one aggregate in one interval, by grpc-status; duration to end of stream. */
struct grpc_sig {
	uint32_t requests[GRPC_STATUSES];
	struct hist duration;
};

/* DNS queries of one aggregate in one interval, by rcode (or timeout) and question type. */
struct dns_sig {
	uint32_t requests[DNS_RCODES][DNS_QTYPES];
	struct hist duration; /* answered queries */
};

#define AGG_DROP_REASONS 8

/* Packets of an aggregate the kernel dropped, by reason (up to 8 reasons an interval). */
struct agg_drops {
	uint8_t n;
	struct {
		uint16_t reason; /* enum skb_drop_reason */
		uint32_t count;
	} d[AGG_DROP_REASONS];
};

/* Which signals are on and how they are measured (the agent's options). */
struct sig_config {
	int http; /* HTTP/1.x and HTTP/2 requests: method, status class, duration; gRPC status */
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
	struct http_sig *http; /* when HTTP/1.x requests finished this interval */
	struct http_sig *http2; /* ...HTTP/2 requests (agent/h2.c) */
	struct grpc_sig *grpc; /* ...gRPC requests (HTTP/2 with content-type application/grpc) */
	struct dns_sig *dns; /* when queries were answered or timed out this interval */
	uint64_t retransmits; /* by the sending pod's socket */
	struct agg_drops *drops; /* when the kernel dropped some of its packets this interval */
	UT_hash_handle hh;
};

#endif
