// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include "httpd.h"

struct httpd {
	struct MHD_Daemon *d;
	httpd_handler_fn fn;
	void *ctx;
	size_t max_body;
};

/* Per-request state: the body collected so far. */
struct req_state {
	uint8_t *buf;
	size_t len;
	size_t cap;
	int too_large;
};

void httpd_text(struct httpd_response *resp, int status, const char *text)
{
	resp->status = status;
	resp->content_type = "text/plain; charset=utf-8";
	resp->body = strdup(text);
	resp->len = resp->body ? strlen(text) : 0;
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int body_append(struct httpd *h, struct req_state *st, const char *data, size_t n)
{
	if (st->too_large || st->len + n > h->max_body) {
		st->too_large = 1;
		free(st->buf);
		st->buf = NULL;
		st->len = st->cap = 0;
		return 0;
	}
	if (st->len + n > st->cap) {
		size_t cap = st->cap ? st->cap : 16384;
		uint8_t *nb;

		while (cap < st->len + n)
			cap *= 2;
		if (cap > h->max_body)
			cap = h->max_body;
		nb = realloc(st->buf, cap);
		if (!nb)
			return -ENOMEM;
		st->buf = nb;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, data, n);
	st->len += n;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct httpd *h = cls;
	struct req_state *st = *con_cls;
	struct httpd_response resp = { 0 };
	struct httpd_request req;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)version;
	if (!st) {
		/* First call for this request: headers only. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		if (cl && strtoull(cl, NULL, 10) > h->max_body)
			st->too_large = 1; /* do not buffer what we will refuse */
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_size) {
		if (body_append(h, st, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	req.method = method;
	req.path = url;
	req.body = st->buf;
	req.body_len = st->len;
	req.body_too_large = st->too_large;
	req.conn = conn;
	h->fn(h->ctx, &req, &resp);
	if (!resp.status)
		httpd_text(&resp, MHD_HTTP_NOT_FOUND, "not found\n");
	if (!resp.body && resp.len) {
		resp.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp.len = 0;
	}
	r = MHD_create_response_from_buffer(resp.len, resp.body ? resp.body : (void *)"",
					    resp.body ? MHD_RESPMEM_MUST_FREE :
							MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(resp.body);
		return MHD_NO;
	}
	if (resp.content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.content_type);
	if (resp.status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	ret = MHD_queue_response(conn, (unsigned int)resp.status, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req_state *st = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (st) {
		free(st->buf);
		free(st);
		*con_cls = NULL;
	}
}

int httpd_start(struct httpd **out, const struct httpd_options *o, httpd_handler_fn fn, void *ctx)
{
	struct sockaddr_storage ss;
	struct httpd *h;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int tls = o->tls_cert_pem && o->tls_key_pem;

	memset(&ss, 0, sizeof(ss));
	if (strchr(o->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)o->port);
		if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) != 1)
			return -EINVAL;
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)o->port);
		if (inet_pton(AF_INET, o->host, &s4->sin_addr) != 1)
			return -EINVAL;
	}
	if (tls)
		flags |= MHD_USE_TLS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fn = fn;
	h->ctx = ctx;
	h->max_body = o->max_body;
	if (tls)
		h->d = MHD_start_daemon(
			flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
			(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 256U,
			MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_NOTIFY_COMPLETED,
			on_completed, h, MHD_OPTION_HTTPS_MEM_CERT, o->tls_cert_pem,
			MHD_OPTION_HTTPS_MEM_KEY, o->tls_key_pem, MHD_OPTION_END);
	else
		h->d = MHD_start_daemon(
			flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
			(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 256U,
			MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_NOTIFY_COMPLETED,
			on_completed, h, MHD_OPTION_END);
	if (!h->d) {
		free(h);
		return -EADDRINUSE;
	}
	*out = h;
	return 0;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
