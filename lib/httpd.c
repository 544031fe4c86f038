// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <uthash.h>
#include "hashutil.h"
#include "clock.h"
#include "expo.h"
#include "httpd.h"
#include "log.h"

/* Open connections of one client address (IPv4 as IPv4-mapped IPv6). */
struct ip_count {
	uint8_t addr[16];
	unsigned int n;
	UT_hash_handle hh;
};

/* One open connection, kept in the server's list for the deadline sweep. */
struct conn_rec {
	struct conn_rec *prev, *next;
	uint8_t addr[16];
	int fd;
	uint64_t since_ms; /* opened, or last answered: a request must complete within timeout */
	int answering; /* a response is queued: the deadline does not apply while it is sent */
	int cut; /* shut down by the sweep */
};

struct httpd {
	struct MHD_Daemon *d;
	httpd_handler_fn fn;
	httpd_handler_fn precheck;
	void *ctx;
	size_t max_body;
	size_t max_buffered;
	unsigned int max_connections, max_per_ip, timeout_s;

	pthread_mutex_t lock; /* everything below */
	struct ip_count *ips;
	struct conn_rec *conns;
	size_t buffered; /* body bytes reserved by requests in progress */
	struct httpd_stats st;
	pthread_t sweeper;
	int stopping;
	pthread_cond_t wake;
};

/* Per-request state: the body collected so far. */
struct req_state {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t reserved; /* of h->buffered */
};

/* Reserves room for a body; 0, or -EBUSY when the server holds max_buffered already. */
static int body_reserve(struct httpd *h, struct req_state *st, size_t n)
{
	int err = 0;

	pthread_mutex_lock(&h->lock);
	if (h->buffered + n > h->max_buffered) {
		h->st.rejected[HTTPD_REJECT_BUFFER_LIMIT]++;
		err = -EBUSY;
	} else {
		h->buffered += n;
		st->reserved = n;
	}
	pthread_mutex_unlock(&h->lock);
	return err;
}

static const char *const reject_names[HTTPD_REJECT_MAX] = {
#define HTTPD_X_NAME(e, s) s,
	HTTPD_REJECT_REASONS(HTTPD_X_NAME)
#undef HTTPD_X_NAME
};

const char *httpd_reject_name(enum httpd_reject r)
{
	return r < HTTPD_REJECT_MAX ? reject_names[r] : "unknown";
}

static void addr_key(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa && sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

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

int httpd_from_loopback(const struct httpd_request *req)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	const union MHD_ConnectionInfo *ci;
	uint8_t k[16];

	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return 0;
	addr_key(ci->client_addr, k);
	if (memcmp(k, v4_mapped, sizeof(v4_mapped)) == 0)
		return k[12] == 127;
	return memcmp(k, v6_loopback, sizeof(v6_loopback)) == 0;
}

unsigned long httpd_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}

/* libmicrohttpd's messages are per connection: at info level an attacker would write our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	if (log_level < LOG_LVL_DEBUG)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	pr_debug("http: %s", msg);
}

static void count_reject(struct httpd *h, enum httpd_reject r)
{
	pthread_mutex_lock(&h->lock);
	h->st.rejected[r]++;
	pthread_mutex_unlock(&h->lock);
}

/* Accept policy: the connection limits, checked before a connection takes a slot. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct httpd *h = cls;
	struct ip_count *ic;
	uint8_t key[16];
	enum MHD_Result ok = MHD_YES;

	(void)addrlen;
	addr_key(addr, key);
	pthread_mutex_lock(&h->lock);
	HASH_FIND(hh, h->ips, key, sizeof(key), ic);
	if (h->st.connections >= h->max_connections) {
		h->st.rejected[HTTPD_REJECT_CONNECTION_LIMIT]++;
		ok = MHD_NO;
	} else if (ic && ic->n >= h->max_per_ip) {
		h->st.rejected[HTTPD_REJECT_PER_IP_LIMIT]++;
		ok = MHD_NO;
	}
	pthread_mutex_unlock(&h->lock);
	return ok;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct httpd *h = cls;
	struct conn_rec *c = *socket_context;
	struct ip_count *ic;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const union MHD_ConnectionInfo *fi =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = calloc(1, sizeof(*c));
		if (!c)
			return; /* not tracked: no deadline, not counted */
		addr_key(ci ? ci->client_addr : NULL, c->addr);
		c->fd = fi ? fi->connect_fd : -1;
		c->since_ms = clock_mono_ms();
		pthread_mutex_lock(&h->lock);
		HASH_FIND(hh, h->ips, c->addr, sizeof(c->addr), ic);
		if (!ic && (ic = calloc(1, sizeof(*ic)))) {
			memcpy(ic->addr, c->addr, sizeof(ic->addr));
			HASH_ADD(hh, h->ips, addr, sizeof(ic->addr), ic);
		}
		if (ic)
			ic->n++;
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->st.connections++;
		h->st.accepted_total++;
		pthread_mutex_unlock(&h->lock);
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&h->lock);
	HASH_FIND(hh, h->ips, c->addr, sizeof(c->addr), ic);
	if (ic && --ic->n == 0) {
		HASH_DEL(h->ips, ic);
		free(ic);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->st.connections--;
	pthread_mutex_unlock(&h->lock);
	free(c);
	*socket_context = NULL;
}

static struct conn_rec *conn_rec_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void set_answering(struct httpd *h, struct MHD_Connection *conn, int answering)
{
	struct conn_rec *c = conn_rec_of(conn);

	if (!c)
		return;
	pthread_mutex_lock(&h->lock);
	c->answering = answering;
	c->since_ms = clock_mono_ms();
	pthread_mutex_unlock(&h->lock);
}

/*
 * The deadline: libmicrohttpd's own timeout restarts with every byte received, so a client
 * sending one byte a second would hold its slot forever. Once a second, connections that
 * have not completed a request within timeout_s are shut down; libmicrohttpd then sees the
 * socket end and closes it in its own thread.
 */
static void *sweep(void *arg)
{
	struct httpd *h = arg;
	struct timespec until;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		uint64_t now = clock_mono_ms(), limit = (uint64_t)h->timeout_s * 1000;

		for (struct conn_rec *c = h->conns; c; c = c->next) {
			if (c->answering || c->cut || c->fd < 0 || now - c->since_ms <= limit)
				continue;
			c->cut = 1;
			h->st.rejected[HTTPD_REJECT_DEADLINE]++;
			shutdown(c->fd, SHUT_RDWR);
		}
		until = clock_deadline_ms(CLOCK_REALTIME, 1000);
		pthread_cond_timedwait(&h->wake, &h->lock, &until);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static enum MHD_Result queue(struct httpd *h, struct MHD_Connection *conn,
			     struct httpd_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!resp->status)
		httpd_text(resp, MHD_HTTP_NOT_FOUND, "not found\n");
	if (!resp->body && resp->len) {
		resp->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp->len = 0;
	}
	r = MHD_create_response_from_buffer(resp->len, resp->body ? resp->body : (void *)"",
					    resp->body ? MHD_RESPMEM_MUST_FREE :
							 MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(resp->body);
		return MHD_NO;
	}
	if (resp->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	if (resp->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	set_answering(h, conn, 1);
	ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

struct framing {
	const char *cl;
	int cl_conflict;
	int chunked;
};

static enum MHD_Result framing_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct framing *f = cls;

	(void)kind;
	if (!value)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (f->cl && strcmp(f->cl, value) != 0)
			f->cl_conflict = 1;
		f->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->chunked = 1;
	}
	return MHD_YES;
}

/*
 * Request smuggling shapes (RFC 9112 6.3): differing Content-Length headers, or one together
 * with Transfer-Encoding, are refused rather than guessed at. Returns the declared length.
 */
static int check_framing(struct MHD_Connection *conn, uint64_t *declared)
{
	struct framing f = { 0 };
	char *end;

	MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_cb, &f);
	*declared = 0;
	if (f.cl_conflict || (f.cl && f.chunked))
		return -EINVAL;
	if (f.cl) {
		errno = 0;
		*declared = strtoull(f.cl, &end, 10);
		if (errno || end == f.cl || *end || f.cl[0] == '-')
			return -EINVAL;
	}
	return 0;
}

static int body_append(struct httpd *h, struct req_state *st, const char *data, size_t n)
{
	if (st->len + n > h->max_body)
		return -E2BIG;
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
	struct httpd_request req = { .method = method, .path = url, .conn = conn };

	(void)version;
	if (!st) {
		/* First call for this request: headers only, nothing of the body read yet. */
		uint64_t declared;
		int has_body = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;

		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		*con_cls = st;
		if (check_framing(conn, &declared)) {
			count_reject(h, HTTPD_REJECT_BAD_FRAMING);
			httpd_text(&resp, MHD_HTTP_BAD_REQUEST,
				   "conflicting Content-Length / Transfer-Encoding\n");
			return queue(h, conn, &resp);
		}
		if (has_body && h->precheck) {
			req.body_len = (size_t)declared;
			h->precheck(h->ctx, &req, &resp);
			if (resp.status)
				return queue(h, conn, &resp);
		}
		if (declared > h->max_body) {
			count_reject(h, HTTPD_REJECT_BODY_TOO_LARGE);
			httpd_text(&resp, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
			return queue(h, conn, &resp);
		}
		if (has_body && h->max_body &&
		    body_reserve(h, st, declared ? (size_t)declared : h->max_body)) {
			httpd_text(&resp, MHD_HTTP_SERVICE_UNAVAILABLE,
				   "too many request bodies in progress; retry\n");
			return queue(h, conn, &resp);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		int err = body_append(h, st, upload, *upload_size);

		*upload_size = 0;
		if (err == -E2BIG) {
			/* Chunked past the bound: answer now; the connection closes. */
			count_reject(h, HTTPD_REJECT_BODY_TOO_LARGE);
			httpd_text(&resp, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
			return queue(h, conn, &resp);
		}
		return err ? MHD_NO : MHD_YES;
	}
	req.body = st->buf;
	req.body_len = st->len;
	h->fn(h->ctx, &req, &resp);
	return queue(h, conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd *h = cls;
	struct req_state *st = *con_cls;

	(void)toe;
	set_answering(h, conn, 0); /* the next request has timeout_s from now */
	if (st && st->reserved) {
		pthread_mutex_lock(&h->lock);
		h->buffered -= st->reserved;
		pthread_mutex_unlock(&h->lock);
	}
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
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	unsigned int threads = o->threads ? o->threads : 1;
	int tls = o->tls_cert_pem && o->tls_key_pem;
	struct MHD_OptionItem opts[16];
	int n = 0;

	memset(&ss, 0, sizeof(ss));
	if (strchr(o->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)o->port);
		if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) != 1)
			return -EINVAL;
		/* [::] is every address of both families (dual-stack and IPv6-only clusters). */
		flags |=
			IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
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
	h->precheck = o->precheck;
	h->ctx = ctx;
	h->max_body = o->max_body;
	h->max_buffered = o->max_buffered ? o->max_buffered : 16 * o->max_body;
	h->max_connections =
		o->max_connections ? o->max_connections : HTTPD_DEFAULT_MAX_CONNECTIONS;
	h->max_per_ip = o->max_per_ip ? o->max_per_ip : HTTPD_DEFAULT_MAX_PER_IP;
	h->timeout_s = o->timeout_s ? o->timeout_s : HTTPD_DEFAULT_TIMEOUT_S;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);

#define OPT(k, v, p) (opts[n++] = (struct MHD_OptionItem){ (k), (intptr_t)(v), (p) })
	OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
	OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL);
	/* Our own limit (on_accept) decides; libmicrohttpd's is only a backstop above it. */
	OPT(MHD_OPTION_CONNECTION_LIMIT, h->max_connections + 16 * threads, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s, NULL);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, h);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, h);
	if (threads > 1)
		OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
	if (tls) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	h->d = MHD_start_daemon(flags, (uint16_t)o->port, on_accept, h, on_request, h,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->d)
		goto fail;
	if (pthread_create(&h->sweeper, NULL, sweep, h)) {
		MHD_stop_daemon(h->d);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return -EADDRINUSE;
}

void httpd_stats(struct httpd *h, struct httpd_stats *out)
{
	pthread_mutex_lock(&h->lock);
	*out = h->st;
	pthread_mutex_unlock(&h->lock);
}

void httpd_render_metrics(struct httpd *h, struct expo *e, const char *prefix)
{
	char name[128], lb[EXPO_LABELS_MAX];
	struct httpd_stats hs;

	httpd_stats(h, &hs);
	snprintf(name, sizeof(name), "%s_http_connections", prefix);
	expo_family(e, name, "gauge", "Open HTTP connections.");
	expo_u64(e, name, NULL, hs.connections);
	snprintf(name, sizeof(name), "%s_http_connections_total", prefix);
	expo_family(e, name, "counter", "HTTP connections accepted.");
	expo_u64(e, name, NULL, hs.accepted_total);
	snprintf(name, sizeof(name), "%s_http_rejected_total", prefix);
	expo_family(e, name, "counter",
		    "Connections and requests the HTTP server turned away, by reason: "
		    "connection_limit and per_ip_limit (closed at accept), deadline (no whole "
		    "request within the request timeout: cut), body_too_large, bad_framing "
		    "(conflicting Content-Length / Transfer-Encoding), buffer_limit (bodies in "
		    "progress at their bound: 503, retried).");
	for (int r = 0; r < HTTPD_REJECT_MAX; r++)
		expo_u64(e, name,
			 expo_labels(lb, sizeof(lb), "reason",
				     httpd_reject_name((enum httpd_reject)r), NULL),
			 hs.rejected[r]);
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->sweeper, NULL);
	MHD_stop_daemon(h->d);
	HASH_FREE_ALL(hh, h->ips);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
