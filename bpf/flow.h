/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layout shared by bpf/flow.bpf.c and user space. Fixed-width fields only, explicit
 * padding, sizes asserted on both sides.
 */
#ifndef FLOWLENS_FLOW_H
#define FLOWLENS_FLOW_H

#ifndef __bpf__
#include <linux/types.h> /* BPF code gets these from vmlinux.h */
#endif

/* Which TC hook saw the packet. */
enum fl_dir {
	FL_DIR_INGRESS = 0,
	FL_DIR_EGRESS = 1,
};

/*
 * Key of the IPv4 table: one direction of one connection at one hook of one interface.
 * Addresses in network byte order, ports in host byte order. IPv4 has a table of its own
 * because a 20-byte key hashes and compares in about 10% less time than the 44-byte one.
 */
struct fl_key4 {
	__u32 saddr;
	__u32 daddr;
	__u32 ifindex;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};
_Static_assert(sizeof(struct fl_key4) == 20, "fl_key4 layout");

/*
 * Key of the IPv6 table, and the common form user space and the overflow ring buffer use:
 * one direction of one connection as seen at one hook of one interface.
 * Addresses are in network byte order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so one
 * key type serves both families. Ports are in host byte order. For ICMP echo the identifier
 * stands in for a port (request: sport = id, reply: dport = id) so that both directions
 * pair up; for other ICMP messages sport holds type << 8 | code. Either way the endpoint
 * with the non-zero "port" is the one that started the exchange.
 */
struct fl_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 ifindex;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};
_Static_assert(sizeof(struct fl_key) == 44, "fl_key layout");

/*
 * Per-CPU counters of one flow_key. Never reset by the kernel: user space computes deltas
 * between drains. first_ns/last_ns are bpf_ktime_get_ns() (CLOCK_MONOTONIC); a CPU that never
 * saw the flow leaves them zero.
 */
struct fl_stats {
	__u64 packets;
	__u64 bytes; /* L3 bytes: skb->len minus the L2 header, as netfilter counts */
	__u64 first_ns;
	__u64 last_jiffies;
	__u32 syn; /* SYN without ACK: the sender initiated */
	__u32 synack;
	__u32 fin;
	__u32 rst;
	__u8 flags_or; /* OR of every TCP flag byte seen */
	__u8 ct; /* conntrack lookups: FL_CT_* (written by the datapath, read by user space) */
	__u8 l7; /* payload segments looked at without an HTTP head, or FL_L7_HTTP */
	__u8 pad[5];
};
_Static_assert(sizeof(struct fl_stats) == 56, "fl_stats layout");

/*
 * fl_stats.ct: values below FL_CT_TRIES count failed conntrack lookups (the connection's
 * first packet passes the hook before netfilter has created the entry); FL_CT_TRIES means the
 * datapath gave up; FL_CT_FOUND is set once an entry was found, with FL_CT_NAT when its
 * tuples show a destination translation (then the "nat" map holds both sides).
 */
enum {
	FL_CT_TRIES = 4,
	FL_CT_SKIP = 0x20, /* not looked up: protocol conntrack lookups do not cover, or off */
	FL_CT_FOUND = 0x40,
	FL_CT_NAT = 0x80,
};

/*
 * Key of the tracepoints' maps (retrans, drops): the tuple as the socket or the dropped packet
 * has it (saddr = the sender), the generation the count belongs to (see event_gen) and, for
 * drops, the kernel's enum skb_drop_reason. Laid out like fl_key, which it converts to.
 */
struct fl_event_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 reason; /* drops: enum skb_drop_reason; retransmissions: 0 */
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 gen; /* event_gen when counted */
	__u16 pad;
};
_Static_assert(sizeof(struct fl_event_key) == 44, "fl_event_key layout");

/*
 * The drops map's reason for kernels whose kfree_skb tracepoint has none
 * (before 5.17): 0, which is SKB_DROP_REASON_NOT_SPECIFIED where reasons exist and which the
 * reason-aware program never counts.
 */
#define FL_DROP_UNKNOWN 0

/*
 * Value of the "nat" map, keyed by the fl_key (common form, pad 0) of the flow entry whose
 * lookup found it: the address and port the client dialed (the conntrack entry's original
 * destination, e.g. a ClusterIP) and the backend that answered (its reply source).
 * Addresses in network byte order, IPv4-mapped; ports in host byte order.
 */
struct fl_nat {
	__u32 dialed[4];
	__u32 backend[4];
	__u16 dialed_port;
	__u16 backend_port;
	__u32 pad;
};
_Static_assert(sizeof(struct fl_nat) == 40, "fl_nat layout");

/*
 * fl_stats.l7: how many payload segments of a direction are looked at for HTTP heads, or
 * what the direction was found to carry (every later segment is looked at).
 */
enum {
	FL_L7_TRIES = 8,
	FL_L7_HTTP = 0x80, /* an HTTP/1.x head was seen */
	FL_L7_H2_CLIENT = 0x81, /* the client side of an HTTP/2 (h2c) connection */
	FL_L7_H2_SERVER = 0x82, /* ...its server side */
};

/* TCP flag bits as in the header's 13th byte. */
enum {
	TCPF_FIN_BIT = 0x01,
	TCPF_SYN_BIT = 0x02,
	TCPF_RST_BIT = 0x04,
	TCPF_PSH_BIT = 0x08,
	TCPF_ACK_BIT = 0x10,
	TCPF_URG_BIT = 0x20,
	TCPF_ECE_BIT = 0x40,
	TCPF_CWR_BIT = 0x80,
};

/*
 * Per-CPU datapath counters, indexed by this enum (array map "counters"). Everything the
 * datapath does not put into the flow table is counted here; exported by the agent as
 * flowlens_agent_datapath_events_total{reason}.
 */
#define FL_COUNTERS(X)                                                                             \
	X(FL_CNT_TABLE_FULL, "table_full") /* flow table full: packet sent via the ring buffer */  \
	X(FL_CNT_RINGBUF_FULL, "ringbuf_full") /* ...and the ring buffer was full: lost */         \
	X(FL_CNT_TRUNCATED, "truncated") /* L2/L3/L4 header shorter than its protocol needs */     \
	X(FL_CNT_NON_IP, "non_ip") /* ARP and other non-IP frames (not flows) */                   \
	X(FL_CNT_FRAGMENT, "fragment") /* non-first IP fragments, counted with ports 0 */          \
	X(FL_CNT_IPV6_EXT_LIMIT, "ipv6_ext_limit") /* more IPv6 extension headers than walked */   \
	X(FL_CNT_PULLED, "headers_pulled") /* headers outside the linear area: pulled */           \
	X(FL_CNT_CT_LOOKUP, "ct_lookup") /* conntrack lookups made (bpf_skb_ct_lookup calls) */    \
	X(FL_CNT_CT_NAT, "ct_nat") /* ...that found a destination translation */                   \
	X(FL_CNT_NAT_FULL, "nat_full") /* a translation could not be stored (nat map) */           \
	X(FL_CNT_HTTP_QUEUE_FULL, "http_queue_full") /* more pipelined requests than queued */     \
	X(FL_CNT_SAMPLES_FULL, "samples_full") /* a finished request not handed over: ring full */ \
	X(FL_CNT_H2_DESYNC, "h2_desync") /* an HTTP/2 direction lost its frame boundaries */       \
	X(FL_CNT_H2_FULL, "h2_full") /* HTTP/2 state not stored (h2 map) */                        \
	X(FL_CNT_EVENT_LOST, "event_lost") /* a retransmit or drop not counted (no entry) */

#define FL_COUNTER_ENUM(e, name) e,
enum fl_counter { FL_COUNTERS(FL_COUNTER_ENUM) FL_CNT_MAX };
#undef FL_COUNTER_ENUM

/* Ring buffer record for a packet that did not fit the flow table. */
struct fl_overflow_event {
	struct fl_key key;
	__u32 packets; /* 1, or the packets a per-CPU slot held (cache.bpf.h) */
	__u64 bytes;
	__u64 ts_ns;
	__u64 jiffies;
	__u8 tcp_flags; /* of the packet, or the OR of the slot's packets' flags */
	__u8 pad[7];
};
_Static_assert(sizeof(struct fl_overflow_event) == 80, "fl_overflow_event layout");

/*
 * Value of the per-CPU map "slots" (bpf/cache.bpf.h): packets of the flow this CPU counted
 * last that its table entry has not seen yet. busy is set while a program on this CPU
 * changes the slot; user space reads it only in tests.
 */
struct fl_slot {
	struct fl_key key;
	__u8 valid;
	__u8 busy;
	__u8 ipv4;
	__u8 l7_done; /* HTTP has nothing more to look at in this flow's payloads */
	__u64 packets;
	__u64 bytes;
	__u64 last_jiffies;
	__u8 flags_or;
	__u8 misses; /* settled packets of other flows since this flow's last hit */
	__u8 l7_any; /* HTTP/2: every payload is looked at, not only those of 12 bytes or more */
	__u8 pad[5];
};
_Static_assert(sizeof(struct fl_slot) == 80, "fl_slot layout");

/* Finished exchanges the datapath hands to user space (ring buffer "samples"). */
enum fl_sample_kind {
	FL_SAMPLE_HTTP = 1,
	FL_SAMPLE_DNS,
	/* made by the agent from HTTP/2 header blocks (agent/h2.c), never by the datapath */
	FL_SAMPLE_HTTP2, /* request start to response HEADERS; status: :status, 0 reset */
	FL_SAMPLE_GRPC, /* request start to end of stream; status: grpc-status (0..16) */
};

#define FL_DNS_TIMEOUT 0xffff /* fl_sample.status of a query nobody answered */

/* A DNS query waiting for its answer (map "dns"): the client's tuple and the query id. */
struct fl_dns_key {
	struct fl_key key; /* as the client sends, dir 0 */
	__u16 id;
	__u16 pad;
};
_Static_assert(sizeof(struct fl_dns_key) == 48, "fl_dns_key layout");

struct fl_dns_query {
	__u64 start_ns;
	__u16 qtype;
	__u8 pad[6];
};

/* HTTP methods as the datapath recognizes them at the start of a request. */
enum fl_http_method {
	FL_HTTP_OTHER = 0,
	FL_HTTP_GET,
	FL_HTTP_POST,
	FL_HTTP_PUT,
	FL_HTTP_DELETE,
	FL_HTTP_HEAD,
	FL_HTTP_PATCH,
	FL_HTTP_OPTIONS,
	FL_HTTP_METHODS,
};

/*
 * One finished exchange. key is the connection as the client sends (saddr = client), at the
 * interface that saw it, dir 0. For HTTP: request start (first byte of the request line seen)
 * to response start (first byte of the status line seen), and the status code.
 */
struct fl_sample {
	struct fl_key key;
	__u64 duration_ns;
	__u16 status; /* HTTP status; DNS rcode or FL_DNS_TIMEOUT */
	__u8 kind;
	__u8 method;
	__u16 qtype; /* DNS */
	__u16 pad;
};
_Static_assert(sizeof(struct fl_sample) == 64, "fl_sample layout");

/*
 * Requests of one HTTP/1.x connection waiting for their responses, oldest first (pipelined
 * requests are answered in order). Map "http", keyed like fl_sample.key.
 */
#define FL_HTTP_QUEUE 4
struct fl_http {
	__u64 start_ns[FL_HTTP_QUEUE];
	__u8 method[FL_HTTP_QUEUE];
	__u8 head;
	__u8 count;
	__u8 pad[2];
};
_Static_assert(sizeof(struct fl_http) == 40, "fl_http layout");

/* One reading of both kernel clocks, taken by the flowlens_clock program. */
struct fl_clock {
	__u64 jiffies;
	__u64 ktime_ns;
};

/*
 * HTTP/2 without TLS (h2c, as gRPC runs inside clusters): the datapath finds the frames of a
 * connection whose client sent the preface and hands up the header blocks (HEADERS and
 * CONTINUATION payloads), END_STREAM of DATA frames and RST_STREAM, in order per direction,
 * never DATA. The agent decodes the blocks (HPACK, agent/h2.c). Map "h2" keyed like "http"
 * (the client's tuple, dir 0, the interface that saw it): one walker per direction.
 */
struct fl_h2_dir {
	__u32 next_seq; /* TCP sequence number of the first byte not yet walked */
	__u32 remain; /* payload bytes of the current frame still to come; 0: a frame header */
	__u32 stream;
	__u32 rec_seq; /* records handed up for this direction */
	__u8 type; /* of the current frame */
	__u8 flags;
	__u8 sync; /* 1: next_seq is a known position in the frame sequence */
	__u8 first; /* the current frame's payload has not been handed up yet */
};
_Static_assert(sizeof(struct fl_h2_dir) == 20, "fl_h2_dir layout");

struct fl_h2 {
	struct fl_h2_dir d[2]; /* [0] client to server, [1] server to client */
	__u8 midstream; /* found without the preface: the agent started after the connection */
	__u8 pad[3];
};
_Static_assert(sizeof(struct fl_h2) == 44, "fl_h2 layout");

enum fl_h2_rec_type {
	FL_H2_REC_PREFACE = 1, /* the client's preface: a new connection */
	FL_H2_REC_FRAME, /* payload bytes of a HEADERS, CONTINUATION or RST_STREAM frame */
	FL_H2_REC_DATA_END, /* a DATA frame with END_STREAM (no payload) */
	FL_H2_REC_DESYNC, /* the direction lost its frame boundaries (bytes not seen, or too
			     many frames in one packet); later records follow a resync */
};

enum {
	FL_H2_FIRST = 1, /* fl_h2_rec.chunk: the frame payload's first bytes */
	FL_H2_LAST = 2, /* ...its last bytes */
	FL_H2_MIDSTREAM = 4, /* the connection was found without its preface */
};

#define FL_H2_CHUNK 256 /* payload bytes per record; a larger frame spans records */

/* Frame types and flags of RFC 9113 the datapath and the agent look at. */
enum {
	FL_H2_DATA = 0,
	FL_H2_HEADERS = 1,
	FL_H2_RST_STREAM = 3,
	FL_H2_SETTINGS = 4,
	FL_H2_CONTINUATION = 9,
	FL_H2_END_STREAM = 0x1,
	FL_H2_END_HEADERS = 0x4,
	FL_H2_PADDED = 0x8,
	FL_H2_PRIORITY_FLAG = 0x20,
};

/* One record of the "samples" ring buffer told apart from fl_sample by its size. */
struct fl_h2_rec {
	struct fl_key key; /* the client's tuple, dir 0, as fl_sample.key */
	__u8 side; /* 0: sent by the client, 1: by the server */
	__u8 type; /* enum fl_h2_rec_type */
	__u8 flags; /* the frame's flags */
	__u8 chunk; /* FL_H2_FIRST | FL_H2_LAST | FL_H2_MIDSTREAM */
	__u64 ts_ns;
	__u32 stream;
	__u32 seq; /* per direction: 1, 2, 3...; a gap is a record lost (ring full) */
	__u8 frame; /* the frame's type */
	__u8 pad;
	__u16 len; /* bytes of data */
	__u32 pad2;
	__u8 data[FL_H2_CHUNK];
};
_Static_assert(sizeof(struct fl_h2_rec) == 328, "fl_h2_rec layout");

#endif
