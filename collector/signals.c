// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An aggregate's signals: decoded from the wire (keys in lib/vocab.h), merged while a report
 * waits for its join, and added to their series once named. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "clock.h"
#include "store_impl.h"

const struct hist_series hist_series[HIST_KINDS] = {
	[HIST_CONNECT] = { "tcp_connect_duration_seconds", NULL, NULL },
	[HIST_HTTP] = { "http_request_duration_seconds", "http_version", "1.1" },
	[HIST_DNS] = { "dns_request_duration_seconds", NULL, NULL },
	[HIST_HTTP2] = { "http_request_duration_seconds", "http_version", "2" },
	[HIST_GRPC] = { "grpc_request_duration_seconds", NULL, NULL },
};

/*
 * Adds count packets dropped for reason (a kernel drop reason name: lower case, digits, '_').
 * Returns -1, adding nothing, for a malformed reason or a ninth one.
 */
static int drop_add(struct sigs *g, const char *reason, uint64_t count)
{
	size_t rl = strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789_");
	unsigned int d;

	if (!rl || reason[rl] || rl >= sizeof(g->drops[0].reason))
		return -1;
	for (d = 0; d < g->n_drops && strcmp(g->drops[d].reason, reason); d++)
		;
	if (d == g->n_drops) {
		if (d == sizeof(g->drops) / sizeof(g->drops[0]))
			return -1;
		memcpy(g->drops[d].reason, reason, rl + 1);
		g->drops[d].count = 0;
		g->n_drops++;
	}
	g->drops[d].count += count;
	return 0;
}

/*
 * The signals of one reported aggregate, from its error_counts (keys in lib/vocab.h) and
 * histograms. Keys and histograms this version does not know are counted and ignored.
 */
void sigs_from(struct store *s, const Flowlens__V1__FlowAggregate *f, struct sigs *g)
{
	memset(g, 0, sizeof(*g));
	for (size_t e = 0; e < f->n_error_counts; e++) {
		const Flowlens__V1__FlowAggregate__ErrorCountsEntry *ec = f->error_counts[e];
		struct vocab_count vc;

		switch (vocab_parse_count(ec->key, &vc)) {
		case COUNT_TCP:
			g->tcp[vc.i] += ec->value;
			break;
		case COUNT_RETRANSMITS:
			g->retransmits += ec->value;
			break;
		case COUNT_HTTP:
			g->http[HTTP_VERSION_1][vc.i][vc.j] += ec->value;
			break;
		case COUNT_HTTP2:
			g->http[HTTP_VERSION_2][vc.i][vc.j] += ec->value;
			break;
		case COUNT_GRPC:
			g->grpc[vc.i] += ec->value;
			break;
		case COUNT_DNS:
			g->dns[vc.i][vc.j] += ec->value;
			break;
		case COUNT_DROP:
			if (drop_add(g, vc.reason, ec->value)) {
				s->st.signals_ignored_total++;
				continue;
			}
			break;
		default:
			s->st.signals_ignored_total++;
			continue;
		}
		g->has |= ec->value != 0;
	}
	for (size_t i = 0; i < f->n_histograms; i++) {
		const Flowlens__V1__Histogram *h = f->histograms[i];
		int n = vocab_find(vocab_hist, HIST_KINDS, h->name, strlen(h->name));

		if (n < 0 || g->h[n].on) {
			s->st.signals_ignored_total++;
			continue;
		}
		g->h[n].on = 1;
		g->h[n].nb = (uint32_t)h->n_bounds;
		memcpy(g->h[n].bounds, h->bounds, h->n_bounds * sizeof(double));
		memcpy(g->h[n].counts, h->counts, h->n_counts * sizeof(uint64_t));
		g->h[n].sum = h->sum;
		g->has = 1;
	}
}

/* Adds b's signals to a's (a waiting aggregate); histograms with other bounds are dropped. */
void sigs_add(struct store *s, struct sigs *a, const struct sigs *b)
{
	for (int r = 0; r < TCP_RESULT_MAX; r++)
		a->tcp[r] += b->tcp[r];
	for (int hv = 0; hv < HTTP_VERSIONS; hv++)
		for (int m = 0; m < HTTP_METHODS; m++)
			for (int c = 0; c < HTTP_CLASSES; c++)
				a->http[hv][m][c] += b->http[hv][m][c];
	for (int st = 0; st < GRPC_STATUSES; st++)
		a->grpc[st] += b->grpc[st];
	for (int r = 0; r < DNS_RCODES; r++)
		for (int q = 0; q < DNS_QTYPES; q++)
			a->dns[r][q] += b->dns[r][q];
	a->retransmits += b->retransmits;
	for (unsigned int i = 0; i < b->n_drops; i++)
		if (drop_add(a, b->drops[i].reason, b->drops[i].count))
			s->st.signals_ignored_total++;
	for (size_t n = 0; n < HIST_KINDS; n++) {
		if (!b->h[n].on)
			continue;
		if (!a->h[n].on) {
			a->h[n] = b->h[n];
			continue;
		}
		if (a->h[n].nb != b->h[n].nb ||
		    memcmp(a->h[n].bounds, b->h[n].bounds, b->h[n].nb * sizeof(double))) {
			s->st.histogram_mismatch_total++;
			continue;
		}
		for (uint32_t i = 0; i <= b->h[n].nb; i++)
			a->h[n].counts[i] += b->h[n].counts[i];
		a->h[n].sum += b->h[n].sum;
	}
	a->has |= b->has;
}

struct hdata *hdata_new(uint32_t nb, const double *bounds, uint16_t name_len)
{
	struct hdata *h = calloc(1, sizeof(*h) + nb * sizeof(double) + (nb + 1) * sizeof(uint64_t));

	if (!h)
		return NULL;
	h->nb = nb;
	h->name_len = name_len;
	h->bounds = (double *)(h + 1);
	h->counts = (uint64_t *)(h->bounds + nb);
	memcpy(h->bounds, bounds, nb * sizeof(double));
	return h;
}

/* Connection outcomes and histograms of a named aggregate. Called with the metadata lock. */
void emit_signals(struct store *s, const struct flow_view *v, const struct sigs *g, uint64_t now_ms)
{
	char key[LABELS_TEXT_MAX + 80];
	struct series *x;
	int n;

	for (int r = 0; r < TCP_RESULT_MAX; r++) {
		if (!g->tcp[r])
			continue;
		n = labels_signal(&s->cfg.labels, v, "result", vocab_tcp_result[r], NULL, NULL,
				  key + 1, LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_TCP, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		x->packets += g->tcp[r];
		x->updated_ms = now_ms;
	}
	for (int hv = 0; hv < HTTP_VERSIONS; hv++) {
		for (int m = 0; m < HTTP_METHODS; m++) {
			for (int c = 0; c < HTTP_CLASSES; c++) {
				if (!g->http[hv][m][c])
					continue;
				n = labels_signal3(
					&s->cfg.labels, v, "method", vocab_http_method[m],
					"status_class", vocab_http_class[c], "http_version",
					vocab_http_version[hv], key + 1, LABELS_TEXT_MAX);
				x = n < 0 ? NULL :
					    series_get(s, FAM_HTTP, DIR_FORWARD, key, n, 1, now_ms);
				if (!x || x->overflow) {
					s->st.signals_dropped_total++;
					continue;
				}
				x->packets += g->http[hv][m][c];
				x->updated_ms = now_ms;
			}
		}
	}
	for (int st = 0; st < GRPC_STATUSES; st++) {
		if (!g->grpc[st])
			continue;
		n = labels_signal(&s->cfg.labels, v, "grpc_status", vocab_grpc_status[st], NULL,
				  NULL, key + 1, LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_GRPC, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		x->packets += g->grpc[st];
		x->updated_ms = now_ms;
	}
	if (g->retransmits) {
		n = labels_signal(&s->cfg.labels, v, NULL, NULL, NULL, NULL, key + 1,
				  LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_RETRANS, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
		} else {
			x->packets += g->retransmits;
			x->updated_ms = now_ms;
		}
	}
	for (unsigned int d = 0; d < g->n_drops; d++) {
		n = labels_signal(&s->cfg.labels, v, "reason", g->drops[d].reason, NULL, NULL,
				  key + 1, LABELS_TEXT_MAX);
		x = n < 0 ? NULL : series_get(s, FAM_DROP, DIR_FORWARD, key, n, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		x->packets += g->drops[d].count;
		x->updated_ms = now_ms;
	}
	for (int r = 0; r < DNS_RCODES; r++) {
		for (int q = 0; q < DNS_QTYPES; q++) {
			if (!g->dns[r][q])
				continue;
			n = labels_signal(&s->cfg.labels, v, "rcode", vocab_dns_rcode[r], "qtype",
					  vocab_dns_qtype[q], key + 1, LABELS_TEXT_MAX);
			x = n < 0 ? NULL : series_get(s, FAM_DNS, DIR_FORWARD, key, n, 1, now_ms);
			if (!x || x->overflow) {
				s->st.signals_dropped_total++;
				continue;
			}
			x->packets += g->dns[r][q];
			x->updated_ms = now_ms;
		}
	}
	for (size_t h = 0; h < HIST_KINDS; h++) {
		const struct hist_series *hs = &hist_series[h];
		size_t nl = strlen(hs->metric);

		if (!g->h[h].on)
			continue;
		memcpy(key + 1, hs->metric, nl);
		n = labels_signal(&s->cfg.labels, v, hs->k, hs->v, NULL, NULL, key + 1 + nl,
				  LABELS_TEXT_MAX);
		x = n < 0 ? NULL :
			    series_get(s, FAM_HIST, DIR_FORWARD, key, n + (int)nl, 1, now_ms);
		if (!x || x->overflow) {
			s->st.signals_dropped_total++;
			continue;
		}
		if (!x->h)
			x->h = hdata_new(g->h[h].nb, g->h[h].bounds, (uint16_t)nl);
		if (!x->h || x->h->nb != g->h[h].nb ||
		    memcmp(x->h->bounds, g->h[h].bounds, g->h[h].nb * sizeof(double))) {
			s->st.histogram_mismatch_total++;
			continue;
		}
		for (uint32_t i = 0; i <= g->h[h].nb; i++)
			x->h->counts[i] += g->h[h].counts[i];
		x->h->sum += g->h[h].sum;
		x->updated_ms = now_ms;
	}
}
