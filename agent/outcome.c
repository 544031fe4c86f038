// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Attribution, part two: what happened on connections, beyond bytes and packets.
 *
 *   TCP outcomes: a SYN starts an attempt at the interface that saw it; a SYN-ACK makes it
 *     established (connect latency = SYN-ACK entry's first packet - SYN entry's); a RST from
 *     the server before that is a refusal, after it a reset; no answer within the connect
 *     timeout is a timeout. RSTs wait until every SYN-ACK of the interval is seen, because
 *     the two can be read in either order.
 *   Finished exchanges (HTTP requests, DNS queries and their timeouts): counted in the
 *     aggregate that the connection's packets went to at the interface that saw the exchange.
 *   Tracepoint counts (retransmissions, drops): to the aggregate at the pod veth of the side
 *     they belong to, when that pod is on this node.
 */
#include <stdlib.h>
#include <string.h>
#include "hashutil.h"
#include "attrib_impl.h"

static struct tcp_attempt *attempt_find(struct attrib *a, const struct conn_key *ck,
					uint32_t ifindex)
{
	struct attempt_key k;
	struct tcp_attempt *o;

	memset(&k, 0, sizeof(k));
	k.ck = *ck;
	k.ifindex = ifindex;
	HASH_FIND(hh, a->attempts, &k, sizeof(k), o);
	return o;
}

/* A SYN: a connection attempt starts being followed at this interface. */
void attempt_syn(struct attrib *a, const struct conn_key *ck, const struct delta *dl)
{
	struct tcp_attempt *o = attempt_find(a, ck, dl->key.ifindex);

	if (o) {
		/* A new attempt on a finished connection's tuple (port reuse): start over. */
		if (o->state == ATTEMPT_SYN || dl->d.first_ns <= o->syn_ns)
			return;
		memset(&o->agg, 0, sizeof(o->agg));
		o->state = ATTEMPT_SYN;
		o->syn_ns = dl->d.first_ns;
		o->last_ns = a->now_ns;
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return;
	o->key.ck = *ck;
	o->key.ifindex = dl->key.ifindex;
	o->syn_ns = dl->d.first_ns ? dl->d.first_ns : a->now_ns;
	o->last_ns = a->now_ns;
	o->state = ATTEMPT_SYN;
	HASH_ADD(hh, a->attempts, key, sizeof(o->key), o);
}

static void tcp_count(struct attrib *a, struct flow_agg *agg, enum tcp_result r)
{
	agg->tcp[r]++;
	a->st.tcp[r]++;
}

/* Pass 2, per TCP delta: SYN-ACKs settle attempts; RSTs are kept for after the pass. */
void attempt_observe(struct attrib *a, const struct conn_key *ck, const struct delta *dl,
		     struct flow_agg *agg, int sender_is_client)
{
	struct tcp_attempt *o = attempt_find(a, ck, dl->key.ifindex);

	if (!o)
		return;
	o->last_ns = a->now_ns;
	if (sender_is_client && dl->d.syn && o->state == ATTEMPT_SYN)
		o->agg = agg->key;
	if (!sender_is_client && dl->d.synack && o->state == ATTEMPT_SYN) {
		/* The SYN-ACK entry's first packet is the SYN-ACK: both times from the kernel. */
		if (dl->d.first_ns >= o->syn_ns &&
		    (agg->connect || (agg->connect = calloc(1, sizeof(*agg->connect)))))
			hist_add(agg->connect, a->sig.connect_bounds, a->sig.n_connect_bounds,
				 (double)(dl->d.first_ns - o->syn_ns) / 1e9);
		tcp_count(a, agg, TCP_ESTABLISHED);
		o->state = ATTEMPT_ESTABLISHED;
	}
	if (dl->d.rst && o->state != ATTEMPT_DONE) {
		if (a->n_rsts == a->cap_rsts) {
			size_t cap = a->cap_rsts ? 2 * a->cap_rsts : 64;
			struct rst_event *n = realloc(a->rsts, cap * sizeof(*n));

			if (!n)
				return;
			a->rsts = n;
			a->cap_rsts = cap;
		}
		a->rsts[a->n_rsts++] = (struct rst_event){ o, agg, sender_is_client };
	}
}

/* After pass 2: resets and refusals, then attempts that waited too long. */
void attempts_settle(struct attrib *a)
{
	struct tcp_attempt *o, *tmp;

	for (size_t i = 0; i < a->n_rsts; i++) {
		struct rst_event *r = &a->rsts[i];

		if (r->o->state == ATTEMPT_ESTABLISHED) {
			tcp_count(a, r->agg, TCP_RESET);
			r->o->state = ATTEMPT_DONE;
		} else if (r->o->state == ATTEMPT_SYN && !r->from_client) {
			tcp_count(a, r->agg, TCP_REFUSED);
			r->o->state = ATTEMPT_DONE;
		}
	}
	a->n_rsts = 0;
	a->st.tcp_open = 0;
	HASH_ITER (hh, a->attempts, o, tmp) {
		struct flow_agg *agg;

		if (o->state == ATTEMPT_SYN && o->syn_ns + a->sig.connect_timeout_ns <= a->now_ns) {
			/* (no aggregate: copies at an ENI of what a pod veth counted) */
			if (o->agg.proto && (agg = agg_get(a, &o->agg)))
				tcp_count(a, agg, TCP_TIMEOUT);
			o->state = ATTEMPT_DONE;
		}
		if (o->state == ATTEMPT_SYN)
			a->st.tcp_open++;
		if (o->last_ns + a->idle_ns <= a->now_ns && o->state != ATTEMPT_SYN) {
			HASH_DEL(a->attempts, o);
			free(o);
		}
	}
}

void attrib_sample(struct attrib *a, const struct fl_sample *sm)
{
	a->st.samples++;
	if (a->n_samples == a->cap_samples) {
		size_t cap = a->cap_samples ? 2 * a->cap_samples : 1024;
		struct fl_sample *n;

		if (cap > SAMPLES_MAX || !(n = realloc(a->samples, cap * sizeof(*n)))) {
			a->st.samples_dropped++;
			return;
		}
		a->samples = n;
		a->cap_samples = cap;
	}
	a->samples[a->n_samples++] = *sm;
}

static void dns_count(struct attrib *a, struct flow_agg *agg, const struct fl_sample *sm)
{
	int rc = sm->status == FL_DNS_TIMEOUT ? DNS_RCODE_TIMEOUT :
						vocab_dns_rcode_index(sm->status);

	if (!agg->dns && !(agg->dns = calloc(1, sizeof(*agg->dns))))
		return;
	agg->dns->requests[rc][vocab_dns_qtype_index(sm->qtype)]++;
	if (rc != DNS_RCODE_TIMEOUT)
		hist_add(&agg->dns->duration, a->sig.dns_bounds, a->sig.n_dns_bounds,
			 (double)sm->duration_ns / 1e9);
}

/* An HTTP request into *sig (the aggregate's HTTP/1 or HTTP/2 requests). */
static void http_count(struct attrib *a, struct http_sig **sig, const struct fl_sample *sm)
{
	if (!*sig && !(*sig = calloc(1, sizeof(**sig))))
		return;
	(*sig)->requests[sm->method < HTTP_METHODS ? sm->method : FL_HTTP_OTHER]
			[vocab_http_class_of(sm->status)]++;
	hist_add(&(*sig)->duration, a->sig.http_bounds, a->sig.n_http_bounds,
		 (double)sm->duration_ns / 1e9);
}

/* A gRPC request (status: its grpc-status code, GRPC_STATUS_OTHER beyond the known ones). */
static void grpc_count(struct attrib *a, struct flow_agg *agg, const struct fl_sample *sm)
{
	if (!agg->grpc && !(agg->grpc = calloc(1, sizeof(*agg->grpc))))
		return;
	agg->grpc->requests[sm->status < GRPC_STATUSES ? sm->status : GRPC_STATUS_OTHER]++;
	hist_add(&agg->grpc->duration, a->sig.http_bounds, a->sig.n_http_bounds,
		 (double)sm->duration_ns / 1e9);
}

/* Finished exchanges into their aggregates' counters and histograms. */
void samples_apply(struct attrib *a)
{
	for (size_t i = 0; i < a->n_samples; i++) {
		const struct fl_sample *sm = &a->samples[i];
		const struct agg_key *ak = NULL;
		struct flow_agg *agg = NULL;
		struct conn_key ck;
		struct conn *c;
		int unused;

		conn_key_of(&sm->key, &ck, &unused);
		c = conn_find(a, &ck);
		if (c)
			ak = conn_seen_at(c, sm->key.ifindex);
		if (!ak || !(agg = agg_get(a, ak))) {
			a->st.samples_unattributed++;
			continue;
		}
		if (sm->kind == FL_SAMPLE_DNS && a->sig.dns)
			dns_count(a, agg, sm);
		else if (sm->kind == FL_SAMPLE_HTTP && a->sig.http)
			http_count(a, &agg->http, sm);
		else if (sm->kind == FL_SAMPLE_HTTP2 && a->sig.http)
			http_count(a, &agg->http2, sm);
		else if (sm->kind == FL_SAMPLE_GRPC && a->sig.http)
			grpc_count(a, agg, sm);
	}
	a->n_samples = 0;
}

/* The aggregate at the pod veth of one endpoint of k's connection (src: k's sender). */
static struct flow_agg *pod_side_agg(struct attrib *a, const struct fl_key *k, int src)
{
	struct conn_key ck;
	struct conn *c;
	int sender_is_a, side_is_a;
	uint8_t want;

	conn_key_of(k, &ck, &sender_is_a);
	c = conn_find(a, &ck);
	if (!c)
		return NULL;
	side_is_a = src ? sender_is_a : !sender_is_a;
	want = side_is_a == c->client_is_a ? REPORTER_CLIENT : REPORTER_SERVER;
	for (int i = 0; i < CONN_SEEN; i++)
		if (c->seen[i].ifindex && c->seen[i].ak.reporter == want)
			return agg_get(a, &c->seen[i].ak);
	return NULL;
}

void attrib_retransmits(struct attrib *a, const struct fl_key *k, uint64_t n)
{
	struct flow_agg *agg;

	a->st.retransmits += n;
	/* The socket's own side: only its node's agent has that pod's veth. */
	if (!is_local(a, k->saddr) || !(agg = pod_side_agg(a, k, 1)))
		return;
	agg->retransmits += n;
	a->st.retransmits_attributed += n;
}

void attrib_drops(struct attrib *a, const struct fl_key *k, uint16_t reason, uint64_t n)
{
	struct flow_agg *agg = NULL;
	struct agg_drops *d;
	int i;

	a->st.drops[reason < DROP_REASONS_MAX ? reason : 0] += n;
	/* The receiving pod's side if it is here, else the sending pod's. */
	if (is_local(a, k->daddr))
		agg = pod_side_agg(a, k, 0);
	if (!agg && is_local(a, k->saddr))
		agg = pod_side_agg(a, k, 1);
	if (!agg || (!agg->drops && !(agg->drops = calloc(1, sizeof(*agg->drops)))))
		return;
	d = agg->drops;
	for (i = 0; i < d->n && d->d[i].reason != reason; i++)
		;
	if (i == d->n) {
		if (d->n == AGG_DROP_REASONS)
			return;
		d->d[d->n].reason = reason;
		d->d[d->n++].count = 0;
	}
	d->d[i].count += (uint32_t)n;
	a->st.drops_attributed += n;
}

void outcome_free(struct attrib *a)
{
	HASH_FREE_ALL(hh, a->attempts);
	free(a->samples);
	free(a->rsts);
}
