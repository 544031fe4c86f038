/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small HTTP server on libmicrohttpd: GET endpoints (/metrics, health, JSON) and bounded
 * POST bodies. Optional TLS (libmicrohttpd's GnuTLS support).
 *
 * Built to stay up under hostile clients: epoll (no FD_SETSIZE ceiling), a bound on open
 * connections in total and per client address, and an absolute deadline: a connection that
 * has not completed a request within timeout_s of opening (or of its previous answer) is cut,
 * however slowly it keeps sending (slowloris). A precheck sees each request's headers before
 * any body is read, so a refused request (no token, too large) is never buffered and never
 * gets "100 Continue".
 */
#ifndef FLOWLENS_HTTPD_H
#define FLOWLENS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct httpd_request {
	const char *method;
	const char *path;
	const uint8_t *body; /* NULL in the precheck */
	size_t body_len; /* in the precheck: the declared Content-Length (0 if none) */
	void *conn; /* for httpd_header() */
};

struct httpd_response {
	int status;
	const char *content_type;
	char *body; /* malloc'd; freed by the server */
	size_t len;
};

/* Fills resp for req; called from one of the server's threads. */
typedef void (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
				 struct httpd_response *resp);

struct httpd_options {
	const char *host; /* IPv4 or IPv6 literal */
	int port;
	size_t max_body; /* a larger declared or sent body is answered 413 by the server */
	const char *tls_cert_pem; /* both set: serve HTTPS */
	const char *tls_key_pem;
	/*
	 * Optional: called with the headers of every request that carries a body, before any
	 * of it is read. Setting resp->status refuses the request with that answer.
	 */
	httpd_handler_fn precheck;
	unsigned int max_connections; /* open at once; 0: HTTPD_DEFAULT_MAX_CONNECTIONS */
	unsigned int max_per_ip; /* open at once from one address; 0: HTTPD_DEFAULT_MAX_PER_IP */
	unsigned int timeout_s; /* idle and absolute request deadline; 0: HTTPD_DEFAULT_TIMEOUT_S */
	unsigned int threads; /* handler threads; 0: 1 */
	/*
	 * Request bodies held at once, all connections together (each reserves its declared
	 * length, or max_body when chunked); past it a request is answered 503 at once, before
	 * its body is read. 0: 16 x max_body.
	 */
	size_t max_buffered;
};

#define HTTPD_DEFAULT_MAX_CONNECTIONS 1024
#define HTTPD_DEFAULT_MAX_PER_IP 64
#define HTTPD_DEFAULT_TIMEOUT_S 10

/* Why a connection or request was turned away (flowlens_*_http_rejected_total{reason}). */
#define HTTPD_REJECT_REASONS(X)                 \
	X(CONNECTION_LIMIT, "connection_limit") \
	X(PER_IP_LIMIT, "per_ip_limit")         \
	X(DEADLINE, "deadline")                 \
	X(BODY_TOO_LARGE, "body_too_large")     \
	X(BAD_FRAMING, "bad_framing")           \
	X(BUFFER_LIMIT, "buffer_limit")

enum httpd_reject {
#define HTTPD_X_ENUM(e, s) HTTPD_REJECT_##e,
	HTTPD_REJECT_REASONS(HTTPD_X_ENUM)
#undef HTTPD_X_ENUM
		HTTPD_REJECT_MAX,
};

struct httpd_stats {
	uint64_t connections; /* open now */
	uint64_t accepted_total;
	uint64_t rejected[HTTPD_REJECT_MAX];
};

struct httpd;

/* Returns 0 or a negative errno. */
int httpd_start(struct httpd **out, const struct httpd_options *o, httpd_handler_fn fn, void *ctx);
void httpd_stop(struct httpd *h);
void httpd_stats(struct httpd *h, struct httpd_stats *out);
struct expo;
/*
 * Writes PREFIX_http_connections (open now), PREFIX_http_connections_total (accepted) and
 * PREFIX_http_rejected_total{reason}, e.g. with prefix "flowlens_collector".
 */
void httpd_render_metrics(struct httpd *h, struct expo *e, const char *prefix);
const char *httpd_reject_name(enum httpd_reject r);

/* A request header, or NULL. */
const char *httpd_header(const struct httpd_request *req, const char *name);

/* Whether the request came from a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
int httpd_from_loopback(const struct httpd_request *req);
/* Helper for handlers: a copy of a constant text. */
void httpd_text(struct httpd_response *resp, int status, const char *text);

/* Raises the soft open-file limit to the hard one (each watched interface and each client
 * holds descriptors). Returns the new soft limit. */
unsigned long httpd_raise_nofile(void);

#endif
