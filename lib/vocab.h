/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The signal vocabulary, written once. Each list below is an X-macro: the enum, the label
 * values of the agent's and the collector's exposition, and the keys of the wire's
 * error_counts map are all generated from it, so producer and consumer cannot drift apart.
 * Adding a value is one row here (and, where the datapath produces it, its own logic).
 *
 * Wire keys of FlowAggregate.error_counts (proto/flowlens.proto):
 *   tcp_<result>          connection outcomes          e.g. tcp_refused
 *   tcp_retransmits       retransmitted segments
 *   http:<METHOD>:<class> HTTP/1.x requests            e.g. http:GET:5xx
 *   http2:<METHOD>:<class> HTTP/2 requests             e.g. http2:POST:2xx
 *   grpc:<STATUS>         gRPC requests                e.g. grpc:UNAVAILABLE
 *   dns:<RCODE>:<qtype>   DNS queries                  e.g. dns:NXDOMAIN:AAAA
 *   drop:<reason>         packets the kernel dropped   e.g. drop:netfilter_drop
 */
#ifndef FLOWLENS_VOCAB_H
#define FLOWLENS_VOCAB_H

#include <stddef.h>
#include <stdint.h>

/* TCP connection attempts by how they ended: flowlens_tcp_connections_total{result}. */
#define VOCAB_TCP_RESULTS(X)                                                             \
	X(TCP_ESTABLISHED, "established") /* SYN answered by SYN-ACK */                  \
	X(TCP_REFUSED, "refused") /* SYN answered by RST */                              \
	X(TCP_TIMEOUT, "timeout") /* SYN without an answer within the connect timeout */ \
	X(TCP_RESET, "reset") /* established, then reset */

/* DNS response codes the agent tells apart (the first six are the rcode values 0..5). */
#define VOCAB_DNS_RCODES(X)         \
	X(DNS_NOERROR, "NOERROR")   \
	X(DNS_FORMERR, "FORMERR")   \
	X(DNS_SERVFAIL, "SERVFAIL") \
	X(DNS_NXDOMAIN, "NXDOMAIN") \
	X(DNS_NOTIMP, "NOTIMP")     \
	X(DNS_REFUSED, "REFUSED")   \
	X(DNS_RCODE_OTHER, "other") \
	X(DNS_RCODE_TIMEOUT, "timeout") /* no answer within the DNS timeout */

/* DNS question types by their wire value; anything else is "other". */
#define VOCAB_DNS_QTYPES(X)             \
	X(DNS_QTYPE_A, "A", 1)          \
	X(DNS_QTYPE_NS, "NS", 2)        \
	X(DNS_QTYPE_CNAME, "CNAME", 5)  \
	X(DNS_QTYPE_SOA, "SOA", 6)      \
	X(DNS_QTYPE_PTR, "PTR", 12)     \
	X(DNS_QTYPE_MX, "MX", 15)       \
	X(DNS_QTYPE_TXT, "TXT", 16)     \
	X(DNS_QTYPE_AAAA, "AAAA", 28)   \
	X(DNS_QTYPE_SRV, "SRV", 33)     \
	X(DNS_QTYPE_HTTPS, "HTTPS", 65) \
	X(DNS_QTYPE_OTHER, "other", 0)

/* HTTP methods, in the order of the datapath's enum fl_http_method (bpf/flow.h). */
#define VOCAB_HTTP_METHODS(X)       \
	X(FL_HTTP_OTHER, "OTHER")   \
	X(FL_HTTP_GET, "GET")       \
	X(FL_HTTP_POST, "POST")     \
	X(FL_HTTP_PUT, "PUT")       \
	X(FL_HTTP_DELETE, "DELETE") \
	X(FL_HTTP_HEAD, "HEAD")     \
	X(FL_HTTP_PATCH, "PATCH")   \
	X(FL_HTTP_OPTIONS, "OPTIONS")

/* HTTP status classes: index = status / 100 for 100..599, 0 for anything else. */
#define VOCAB_HTTP_CLASSES(X)        \
	X(HTTP_CLASS_OTHER, "other") \
	X(HTTP_CLASS_1XX, "1xx")     \
	X(HTTP_CLASS_2XX, "2xx")     \
	X(HTTP_CLASS_3XX, "3xx")     \
	X(HTTP_CLASS_4XX, "4xx")     \
	X(HTTP_CLASS_5XX, "5xx")

/* gRPC status codes by their value (0..16); anything else is "other". */
#define VOCAB_GRPC_STATUSES(X)                             \
	X(GRPC_OK, "OK")                                   \
	X(GRPC_CANCELLED, "CANCELLED")                     \
	X(GRPC_UNKNOWN, "UNKNOWN")                         \
	X(GRPC_INVALID_ARGUMENT, "INVALID_ARGUMENT")       \
	X(GRPC_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")     \
	X(GRPC_NOT_FOUND, "NOT_FOUND")                     \
	X(GRPC_ALREADY_EXISTS, "ALREADY_EXISTS")           \
	X(GRPC_PERMISSION_DENIED, "PERMISSION_DENIED")     \
	X(GRPC_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED")   \
	X(GRPC_FAILED_PRECONDITION, "FAILED_PRECONDITION") \
	X(GRPC_ABORTED, "ABORTED")                         \
	X(GRPC_OUT_OF_RANGE, "OUT_OF_RANGE")               \
	X(GRPC_UNIMPLEMENTED, "UNIMPLEMENTED")             \
	X(GRPC_INTERNAL, "INTERNAL")                       \
	X(GRPC_UNAVAILABLE, "UNAVAILABLE")                 \
	X(GRPC_DATA_LOSS, "DATA_LOSS")                     \
	X(GRPC_UNAUTHENTICATED, "UNAUTHENTICATED")         \
	X(GRPC_STATUS_OTHER, "other")

/* HTTP versions of flowlens_http_requests_total{http_version}. */
#define VOCAB_HTTP_VERSIONS(X)   \
	X(HTTP_VERSION_1, "1.1") \
	X(HTTP_VERSION_2, "2")

/* Which interface counted an aggregate: flowlens_*{reporter}. */
#define VOCAB_REPORTERS(X)                                           \
	X(REPORTER_CLIENT, "client") /* the initiating pod's veth */ \
	X(REPORTER_SERVER, "server") /* the responding pod's veth */ \
	X(REPORTER_NODE, "node") /* only a node interface (ENI) */

/* Histograms on the wire (Histogram.name) and in the collector (flowlens_<name>). */
#define VOCAB_HISTS(X)                                  \
	X(HIST_CONNECT, "tcp_connect_duration_seconds") \
	X(HIST_HTTP, "http_request_duration_seconds")   \
	X(HIST_DNS, "dns_request_duration_seconds")     \
	X(HIST_HTTP2, "http2_request_duration_seconds") \
	X(HIST_GRPC, "grpc_request_duration_seconds")

#define VOCAB_ENUM2(e, name) e,
#define VOCAB_ENUM3(e, name, value) e,
enum tcp_result { VOCAB_TCP_RESULTS(VOCAB_ENUM2) TCP_RESULT_MAX };
enum dns_rcode_index { VOCAB_DNS_RCODES(VOCAB_ENUM2) DNS_RCODES };
enum dns_qtype_index { VOCAB_DNS_QTYPES(VOCAB_ENUM3) DNS_QTYPES };
enum http_class { VOCAB_HTTP_CLASSES(VOCAB_ENUM2) HTTP_CLASSES };
enum reporter { VOCAB_REPORTERS(VOCAB_ENUM2) REPORTERS };
enum grpc_status { VOCAB_GRPC_STATUSES(VOCAB_ENUM2) GRPC_STATUSES };
enum http_version { VOCAB_HTTP_VERSIONS(VOCAB_ENUM2) HTTP_VERSIONS };
enum hist_kind { VOCAB_HISTS(VOCAB_ENUM2) HIST_KINDS };
#define HTTP_METHODS 8 /* checked against FL_HTTP_METHODS in vocab.c */

extern const char *const vocab_tcp_result[TCP_RESULT_MAX];
extern const char *const vocab_dns_rcode[DNS_RCODES];
extern const char *const vocab_dns_qtype[DNS_QTYPES];
extern const char *const vocab_http_method[HTTP_METHODS];
extern const char *const vocab_http_class[HTTP_CLASSES];
extern const char *const vocab_reporter[REPORTERS];
extern const char *const vocab_grpc_status[GRPC_STATUSES];
extern const char *const vocab_http_version[HTTP_VERSIONS];
extern const char *const vocab_hist[HIST_KINDS];

/* Index of a DNS question type (DNS_QTYPE_OTHER when not one of the list). */
int vocab_dns_qtype_index(uint16_t qtype);
/* Index of a DNS rcode (DNS_RCODE_OTHER beyond the known ones). */
int vocab_dns_rcode_index(unsigned int rcode);
/* Class of an HTTP status code. */
int vocab_http_class_of(unsigned int status);
/* Name of a reporter; "node" for anything unknown. */
const char *vocab_reporter_name(unsigned int reporter);
/* Index of name in a list of n, or -1. */
int vocab_find(const char *const *list, int n, const char *name, size_t len);

/* What one error_counts key says. */
enum vocab_count_kind {
	COUNT_UNKNOWN = 0,
	COUNT_TCP, /* i: enum tcp_result */
	COUNT_RETRANSMITS,
	COUNT_HTTP, /* i: method, j: enum http_class */
	COUNT_DNS, /* i: enum dns_rcode_index, j: enum dns_qtype_index */
	COUNT_DROP, /* reason: the text after "drop:" (not NUL-terminated copy; ends the key) */
	COUNT_HTTP2, /* i: method, j: enum http_class */
	COUNT_GRPC, /* i: enum grpc_status */
};

struct vocab_count {
	enum vocab_count_kind kind;
	int i, j;
	const char *reason;
};

/* Parses an error_counts key; COUNT_UNKNOWN for anything this version does not know. */
enum vocab_count_kind vocab_parse_count(const char *key, struct vocab_count *out);

/* Writes the error_counts key of c into buf; returns its length or -ENOSPC. */
int vocab_count_key(const struct vocab_count *c, char *buf, size_t size);
#define VOCAB_KEY_MAX 80

#endif
