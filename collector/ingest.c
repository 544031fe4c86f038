// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Batches from agents (POST /v1/batches): the bearer token (re-read when its file changes,
 * compared in constant time), media type and size checked from the headers before any body
 * is read, one decode at a time (bounded memory), then the write-ahead log and the store;
 * each outcome is answered so that the agent knows whether to retry, and counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "clock.h"
#include "collector.h"
#include "log.h"
#include "secret.h"
#include "wire.h"

#define RESULT_NAME(e, name) [e] = name,
const char *const result_names[RES_MAX] = { BATCH_RESULTS(RESULT_NAME) };

char *ingest_read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/*
 * (Re)reads the token when the file changed. Called with c->lock held. A token the agent
 * would send differently (longer than SECRET_MAX_LEN, empty, short) is an error, never cut.
 */
int ingest_load_token(struct collector *c)
{
	struct stat st;
	char *t;
	size_t n;

	if (stat(c->o.token_file, &st) == -1)
		return -errno;
	if (st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
		return c->token ? 0 : c->token_err;
	c->token_mtime = st.st_mtim;
	t = secret_read(c->o.token_file);
	if (!t)
		return -errno;
	n = strlen(t);
	if (n < 16) {
		free(t);
		return -EINVAL;
	}
	if (c->token)
		pr_info("token file %s changed: new token in effect", c->o.token_file);
	free(c->token);
	c->token = t;
	c->token_len = n;
	return 0;
}

const char *ingest_token_error(int err)
{
	if (err == -EFBIG)
		return "longer than 4096 characters";
	if (err == -EINVAL || err == -ENODATA)
		return "shorter than 16 characters";
	return strerror(-err);
}

int collector_token_ok(struct collector *c, const char *auth)
{
	return secret_bearer_ok(auth, c->token, c->token_len);
}

/* Answers a batch and counts the result; returns 0 so handlers can end with it. */
static int reply(struct collector *c, struct httpd_response *resp, enum batch_result r, int status,
		 const char *msg)
{
	char text[256];

	pthread_mutex_lock(&c->lock);
	c->results[r]++;
	pthread_mutex_unlock(&c->lock);
	snprintf(text, sizeof(text), "%s: %s\n", result_names[r], msg);
	httpd_text(resp, status, text);
	if (status >= 400)
		pr_debug("batch refused (%d): %s", status, text);
	return 0;
}

/* A media type equal to want, ignoring case and any parameters (RFC 9110 8.3.1). */
static int media_type_is(const char *v, const char *want)
{
	size_t n = strlen(want);

	if (!v || strncasecmp(v, want, n) != 0)
		return 0;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0' || *v == ';';
}

/*
 * Everything about a batch that its headers tell: checked before the body is read (the
 * server's precheck) so that nothing unauthenticated or oversized is ever buffered.
 * Returns 1 when it answered.
 */
static int batch_precheck(struct collector *c, const struct httpd_request *req,
			  struct httpd_response *resp)
{
	const char *cenc = httpd_header(req, "Content-Encoding");
	int ok;

	pthread_mutex_lock(&c->lock);
	ok = collector_token_ok(c, httpd_header(req, "Authorization"));
	pthread_mutex_unlock(&c->lock);
	if (c->draining)
		return !reply(c, resp, RES_UNAVAILABLE, 503, "shutting down; retry");
	if (!ok)
		return !reply(c, resp, RES_UNAUTHORIZED, 401, "missing or wrong bearer token");
	if (!media_type_is(httpd_header(req, "Content-Type"), WIRE_CONTENT_TYPE) || !cenc ||
	    strcasecmp(cenc, WIRE_CONTENT_ENCODING) != 0)
		return !reply(c, resp, RES_UNSUPPORTED_MEDIA_TYPE, 415,
			      "expected Content-Type " WIRE_CONTENT_TYPE
			      " with Content-Encoding " WIRE_CONTENT_ENCODING);
	if (req->body_len > c->o.max_body)
		return !reply(c, resp, RES_TOO_LARGE, 413, "body over --max-body-bytes");
	return 0;
}

void ingest_precheck(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct collector *c = ctx;

	if (strcmp(req->path, WIRE_PATH) == 0 && strcmp(req->method, "POST") == 0)
		batch_precheck(c, req, resp);
	else if (strcmp(req->path, WIRE_PATH) == 0)
		httpd_text(resp, 405, "POST only\n");
	else
		httpd_text(resp, 405, "method not allowed\n");
}

int ingest_batch(struct collector *c, const struct httpd_request *req, struct httpd_response *resp)
{
	struct wire_batch wb;
	enum store_result sr;
	enum wire_result wr;
	const char *why;
	int err = 0;

	if (batch_precheck(c, req, resp))
		return 0;
	pthread_mutex_lock(&c->decode_lock);
	wr = wire_decode(req->body, req->body_len, c->o.max_decompressed, &wb, &why);
	pthread_mutex_unlock(&c->decode_lock);
	switch (wr) {
	case WIRE_OK:
		break;
	case WIRE_ERR_TOO_LARGE:
		return reply(c, resp, RES_DECOMPRESSED_TOO_LARGE, 413, why);
	case WIRE_ERR_VERSION:
		return reply(c, resp, RES_UNSUPPORTED_VERSION, 400, why);
	case WIRE_ERR_INVALID:
		return reply(c, resp, RES_INVALID, 400, why);
	case WIRE_ERR_AMPLIFIED:
		return reply(c, resp, RES_DECODED_TOO_LARGE, 413, why);
	case WIRE_ERR_NOMEM:
		return reply(c, resp, RES_UNAVAILABLE, 503, why);
	default:
		return reply(c, resp, RES_MALFORMED, 400, why);
	}
	pthread_mutex_lock(&c->lock);
	if (c->bootstrapping) {
		/* The store is about to be replaced by a peer's copy: nothing may go into it. */
		pthread_mutex_unlock(&c->lock);
		wire_free(&wb);
		return reply(c, resp, RES_UNAVAILABLE, 503, "copying a peer's state; retry");
	}
	/*
	 * Durable before applied, applied before acknowledged: the log holds the batch when
	 * the agent gets its 200; a batch that could not be logged is neither applied nor
	 * acknowledged, and the agent retries it.
	 */
	sr = store_check(c->store, wb.b, clock_mono_ms());
	if (sr == STORE_APPLIED && c->persist) {
		err = persist_append(c->persist, req->body, req->body_len);
		if (err)
			c->wal_errors++;
	}
	if (sr == STORE_APPLIED && !err)
		sr = store_apply(c->store, wb.b, clock_mono_ms());
	pthread_mutex_unlock(&c->lock);
	wire_free(&wb);
	if (err) {
		/* Once per distinct error run, not once per refused batch. */
		if (err != c->last_wal_err)
			pr_err("state log append failed: %s; batches are refused (agents retry "
			       "them) until the log works again",
			       strerror(-err));
		c->last_wal_err = err;
		return reply(c, resp, RES_NOT_DURABLE, 503,
			     "could not log the batch durably; retry");
	}
	c->last_wal_err = 0;
	if (sr == STORE_APPLIED)
		return reply(c, resp, RES_APPLIED, 200, "applied");
	if (sr == STORE_DUPLICATE)
		return reply(c, resp, RES_DUPLICATE, 200, "already applied");
	return reply(c, resp, RES_TOO_MANY_AGENTS, 503,
		     "--max-agents reached by agents that all sent within --agent-protect; retry");
}
