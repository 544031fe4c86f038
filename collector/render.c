// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* /metrics from the store: every family, rendered while the caller's lock is yielded now and then. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "clock.h"
#include "store_impl.h"

/*
 * Whether a series is exported as 0 (its hold): new series start from 0 so that increase()
 * sees their first delta. While draining, a series that has been shown as 0 is shown at its
 * real value (the last scrapes must see it); one never shown keeps 0: a scraper that saw no
 * 0 first would lose its first value (with --state-dir the next process shows it).
 */
static int series_held(struct store *s, struct series *x, uint64_t now_ms)
{
	if (now_ms > s->hold_horizon_ms)
		now_ms = s->hold_horizon_ms;
	if (x->created_ms + s->cfg.zero_hold_ms <= now_ms)
		return 0;
	return !(s->draining && x->zero_shown);
}

/* Fast unsigned formatting for the render loop. */
static size_t u64_str(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

struct render_pace {
	void (*yield)(void *);
	void *arg;
	unsigned int since;
};

static void pace(struct render_pace *p)
{
	if (p->yield && ++p->since >= STORE_RENDER_CHUNK) {
		p->since = 0;
		p->yield(p->arg);
	}
}

/* The flow families in the order rendered: which series, which of their counters, name, help. */
static const struct flow_family {
	enum family fam;
	int bytes; /* the series' bytes, else its packets (signal counts are kept there) */
	struct expo_def def;
} flow_families[] = {
	{ FAM_FLOW,
	  1,
	  { "flowlens_flow_bytes_total", "counter",
	    "L3 bytes of flows from the source (the initiator) to the destination (the "
	    "backend that answered; destination_service and destination_port are what "
	    "the client dialed) or back (direction), as counted at the reporter." } },
	{ FAM_FLOW,
	  0,
	  { "flowlens_flow_packets_total", "counter",
	    "Packets of flows, labelled like flowlens_flow_bytes_total." } },
	{ FAM_ZONE,
	  1,
	  { "flowlens_zone_bytes_total", "counter",
	    "L3 bytes by the availability zone they left (source_zone) and entered "
	    "(destination_zone), per reporter; \"\" where the zone is not known. Count "
	    "one reporter (client) to see each byte once." } },
	{ FAM_TCP,
	  0,
	  { "flowlens_tcp_connections_total", "counter",
	    "TCP connection attempts by result: established (SYN answered by SYN-ACK), "
	    "refused (SYN answered by RST), timeout (no answer within the agent's "
	    "--tcp-connect-timeout), reset (established, then reset); per reporter." } },
	{ FAM_HTTP,
	  0,
	  { "flowlens_http_requests_total", "counter",
	    "HTTP requests, by method, status class (other: no valid status, or an HTTP/2 "
	    "stream reset before its response) and http_version (1.1: HTTP/1.x; 2: HTTP/2 "
	    "without TLS); per reporter." } },
	{ FAM_GRPC,
	  0,
	  { "flowlens_grpc_requests_total", "counter",
	    "gRPC requests (HTTP/2 with content-type application/grpc), by grpc-status from "
	    "the trailers (a reset stream: the status a gRPC client reports for it); per "
	    "reporter." } },
	{ FAM_DNS,
	  0,
	  { "flowlens_dns_requests_total", "counter",
	    "DNS queries over UDP, by rcode (timeout: no answer within the agent's "
	    "--dns-timeout) and question type; per reporter." } },
	{ FAM_RETRANS,
	  0,
	  { "flowlens_tcp_retransmits_total", "counter",
	    "TCP retransmissions by the sending pod's socket, counted at that pod's side "
	    "(reporter client: the client retransmitted; server: the server did)." } },
	{ FAM_DROP,
	  0,
	  { "flowlens_drops_total", "counter",
	    "Packets of the flow the kernel dropped, by the kernel's drop reason "
	    "(enum skb_drop_reason, lowercase), at the receiving pod's node when it has "
	    "an agent, else the sending pod's." } },
};

static void render_family(struct store *s, struct expo *e, const struct flow_family *ff,
			  uint64_t now_ms, struct render_pace *rp)
{
	const char *name = ff->def.name;
	size_t nlen = strlen(name);
	size_t clen = s->const_labels ? strlen(s->const_labels) : 0;
	char num[26];
	struct series *x;

	expo_begin(e, &ff->def);
	/* Only this thread writes to the stream: skip stdio's per-call locking. */
	for (x = s->series; x; x = x->hh.next) {
		uint64_t v;
		size_t n;

		pace(rp);
		if (x->key[0] != (char)ff->fam)
			continue;
		v = series_held(s, x, now_ms) ? 0 : ff->bytes ? x->bytes : x->packets;
		n = u64_str(v, num + 1);
		num[0] = ' ';
		num[n + 1] = '\n';
		fwrite_unlocked(name, 1, nlen, e->f);
		if (clen && x->key_len > 3 && x->key[1] == '{') {
			/* {cluster="..",shard="..",<the series' labels>} */
			fwrite_unlocked(s->const_labels, 1, clen, e->f);
			fwrite_unlocked(x->key + 2, 1, x->key_len - 2u, e->f);
		} else {
			fwrite_unlocked(x->key + 1, 1, x->key_len - 1u, e->f);
		}
		fwrite_unlocked(num, 1, n + 2, e->f);
	}
}

static const char *const hist_help[HIST_KINDS] = {
	"TCP connect latency: from the first SYN to the SYN-ACK, as seen at the reporter's "
	"interface (a retransmitted SYN counts from the first).",
	"HTTP request duration: from the request's first segment (HTTP/1.x request line, HTTP/2 "
	"HEADERS) to the response's (status line, HEADERS with :status), as seen at the "
	"reporter's interface; by http_version.",
	"DNS query duration: from the query to its answer (same client tuple and id), as seen "
	"at the reporter's interface; unanswered queries are not in it.",
	NULL, /* HTTP/2: in the HTTP family */
	"gRPC request duration: from the request's HEADERS to the end of the response stream "
	"(trailers), as seen at the reporter's interface.",
};

static void render_histograms(struct store *s, struct expo *e, uint64_t now_ms,
			      struct render_pace *rp)
{
	static const uint64_t zeros[WIRE_HIST_BOUNDS_MAX + 1];
	char name[128], labels[LABELS_TEXT_MAX];

	for (size_t h = 0; h < HIST_KINDS; h++) {
		const char *metric = hist_series[h].metric;
		size_t nl = strlen(metric);

		if (!hist_help[h])
			continue; /* rendered with the family it shares a metric with */
		snprintf(name, sizeof(name), "flowlens_%s", metric);
		expo_family(e, name, "histogram", hist_help[h]);
		for (struct series *x = s->series; x; x = x->hh.next) {
			size_t ll;
			int held;

			pace(rp);
			if (x->key[0] != (char)FAM_HIST || !x->h || x->h->name_len != nl ||
			    memcmp(x->key + 1, metric, nl))
				continue;
			/* "{a=\"b\",...}" -> "a=\"b\",..." */
			ll = x->key_len - 1u - nl;
			if (ll < 2 || ll - 2 >= sizeof(labels))
				continue;
			if (s->const_labels) {
				size_t cl = strlen(s->const_labels);

				/* "{" + const + labels + "}": the const part ends in a comma. */
				if (cl + ll - 2 >= sizeof(labels))
					continue;
				memcpy(labels, s->const_labels + 1, cl - 1);
				memcpy(labels + cl - 1, x->key + 1 + nl + 1, ll - 2);
				labels[cl - 1 + ll - 2] = 0;
			} else {
				memcpy(labels, x->key + 1 + nl + 1, ll - 2);
				labels[ll - 2] = 0;
			}
			held = series_held(s, x, now_ms);
			expo_histogram(e, name, labels, x->h->bounds, held ? zeros : x->h->counts,
				       x->h->nb, held ? 0 : x->h->sum);
		}
	}
}

void store_render(struct store *s, struct expo *e, uint64_t now_ms, void (*yield)(void *),
		  void *yield_arg)
{
	struct render_pace rp = { .yield = yield, .arg = yield_arg };

	s->rendering++;
	for (size_t f = 0; f < sizeof(flow_families) / sizeof(flow_families[0]); f++)
		render_family(s, e, &flow_families[f], now_ms, &rp);
	render_histograms(s, e, now_ms, &rp);
	/*
	 * Marked after every family: a series is shown as 0 in all of them in one scrape. One
	 * created during this render's yields may have missed a family: not marked.
	 */
	for (struct series *x = s->series; x; x = x->hh.next) {
		if (!series_held(s, x, now_ms))
			x->value_shown = 1;
		else if (x->created_ms <= now_ms)
			x->zero_shown = 1;
	}
	s->rendering--;
}

size_t store_rehold(struct store *s, uint64_t since_ms, uint64_t now_ms)
{
	size_t n = 0;

	for (struct series *x = s->series; x; x = x->hh.next) {
		/*
		 * Shown at its value by this process (it exported, lost its hold in an API blip,
		 * renewed): Prometheus has that value; 0 now would be a counter reset.
		 */
		if (x->value_shown)
			continue;
		if (x->created_ms + s->cfg.zero_hold_ms > since_ms) {
			/* A whole hold again, not one render: a curl of /metrics must not be
			 * the only reader that sees the 0 (the drills found it). */
			x->created_ms = now_ms;
			x->zero_shown = 0;
			n++;
		}
	}
	return n;
}

void store_set_hold_horizon(struct store *s, uint64_t ms)
{
	s->hold_horizon_ms = ms;
}

int store_rendering(struct store *s)
{
	return s->rendering > 0;
}
