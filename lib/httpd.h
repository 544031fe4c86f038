/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A small GET-only HTTP server on libmicrohttpd for /metrics, health and JSON endpoints. */
#ifndef FLOWLENS_HTTPD_H
#define FLOWLENS_HTTPD_H

#include <stddef.h>

struct httpd_response {
	int status;
	const char *content_type;
	char *body; /* malloc'd; freed by the server */
	size_t len;
};

/* Fills resp for a GET of path; called from the server's thread. */
typedef void (*httpd_handler_fn)(void *ctx, const char *path, struct httpd_response *resp);

struct httpd;

/* host is an IPv4 or IPv6 literal. Returns 0 or a negative errno. */
int httpd_start(struct httpd **out, const char *host, int port, httpd_handler_fn fn, void *ctx);
void httpd_stop(struct httpd *h);

/* Helper for handlers: a copy of a constant text. */
void httpd_text(struct httpd_response *resp, int status, const char *text);

#endif
