/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small HTTP server on libmicrohttpd: GET endpoints (/metrics, health, JSON) and bounded
 * POST bodies. Optional TLS (libmicrohttpd's GnuTLS support).
 */
#ifndef FLOWLENS_HTTPD_H
#define FLOWLENS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct httpd_request {
	const char *method;
	const char *path;
	const uint8_t *body;
	size_t body_len;
	int body_too_large; /* the body exceeded max_body; body holds nothing */
	void *conn; /* for httpd_header() */
};

struct httpd_response {
	int status;
	const char *content_type;
	char *body; /* malloc'd; freed by the server */
	size_t len;
};

/* Fills resp for req; called from the server's thread. */
typedef void (*httpd_handler_fn)(void *ctx, const struct httpd_request *req,
				 struct httpd_response *resp);

struct httpd_options {
	const char *host; /* IPv4 or IPv6 literal */
	int port;
	size_t max_body; /* POST bodies above this are answered by the handler as too large */
	const char *tls_cert_pem; /* both set: serve HTTPS */
	const char *tls_key_pem;
};

struct httpd;

/* Returns 0 or a negative errno. */
int httpd_start(struct httpd **out, const struct httpd_options *o, httpd_handler_fn fn, void *ctx);
void httpd_stop(struct httpd *h);

/* A request header, or NULL. */
const char *httpd_header(const struct httpd_request *req, const char *name);
/* Helper for handlers: a copy of a constant text. */
void httpd_text(struct httpd_response *resp, int status, const char *text);

#endif
