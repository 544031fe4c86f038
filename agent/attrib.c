// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Attribution, part one: connections and aggregates.
 *
 * The kernel counts per directional 5-tuple and interface. An aggregate needs more than that:
 * which side is the client (the initiator), whether the interface belongs to the client's pod,
 * the server's pod or only the node, and what the client dialed when kube-proxy translated the
 * destination. Each interval runs two passes over the deltas:
 *
 *   pass 1 (note_connections): per connection (both directions of a 5-tuple), the initiator
 *     evidence (SYN, SYN-ACK, first packet times), the translation (datapath record or a
 *     conntrack query), and the pod addresses seen at pod veths;
 *   pass 2 (attribute): each delta goes to its aggregate, decided with everything pass 1 knew,
 *     so both directions of a connection agree even when the reply was read first.
 *
 * Copies at a node interface (ENI) of packets a local pod's veth already counted are skipped.
 * TCP outcomes, samples and tracepoint counts are in outcome.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "hashutil.h"
#include "addr.h"
#include "attrib_impl.h"

#define EPHEMERAL_MIN 32768 /* Linux ip_local_port_range starts here by default */
#define XLATE_QUERIES_MAX 3 /* user-space conntrack queries per connection */

static void note_connections(struct attrib *a);
static void attribute(struct attrib *a);
static void expire(struct attrib *a);
static void decide_initiator(struct conn *c);
static void resolve_translation(struct attrib *a, struct conn *c, const struct delta *dl);
static void conn_seen(struct conn *c, uint32_t ifindex, const struct agg_key *ak);
static struct local_ip *local_get(struct attrib *a, const uint32_t addr[4]);
static void free_aggs(struct attrib *a);

int attrib_new(struct attrib **out, uint64_t idle_ns, const struct attrib_ops *ops)
{
	struct attrib *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->idle_ns = idle_ns;
	if (ops)
		a->ops = *ops;
	*out = a;
	return 0;
}

void attrib_free(struct attrib *a)
{
	if (!a)
		return;
	HASH_FREE_ALL(hh, a->conns);
	HASH_FREE_ALL(hh, a->local);
	outcome_free(a);
	free_aggs(a);
	free(a->deltas);
	free(a);
}

void attrib_begin(struct attrib *a, uint64_t now_ns)
{
	a->gen++;
	a->now_ns = now_ns;
	a->n_deltas = 0;
	free_aggs(a);
}

int attrib_delta(struct attrib *a, const struct fl_key *k, const struct fl_stats *d, int kind)
{
	if (a->n_deltas == a->cap_deltas) {
		size_t cap = a->cap_deltas ? a->cap_deltas * 2 : 1024;
		struct delta *n = realloc(a->deltas, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->deltas = n;
		a->cap_deltas = cap;
	}
	a->deltas[a->n_deltas].key = *k;
	a->deltas[a->n_deltas].d = *d;
	a->deltas[a->n_deltas].kind = kind;
	a->n_deltas++;
	return 0;
}

void attrib_flows(struct attrib *a)
{
	note_connections(a);
	attribute(a);
	if (a->sig.tcp)
		attempts_settle(a);
}

void attrib_end(struct attrib *a)
{
	samples_apply(a);
	expire(a);
	a->st.connections = HASH_COUNT(a->conns);
	a->st.local_ips = HASH_COUNT(a->local);
	a->st.aggregates = HASH_COUNT(a->aggs);
}

/* Pass 1: initiator evidence and translation per connection, pod addresses at pod veths. */
static void note_connections(struct attrib *a)
{
	for (size_t i = 0; i < a->n_deltas; i++) {
		const struct delta *dl = &a->deltas[i];
		struct conn_key ck;
		struct conn *c;
		int sender_is_a;

		if (dl->kind == IFACE_POD) {
			const uint32_t *pod =
				dl->key.dir == FL_DIR_INGRESS ? dl->key.saddr : dl->key.daddr;
			struct local_ip *l = local_get(a, pod);

			if (l)
				l->learned_ns = a->now_ns;
		}
		conn_key_of(&dl->key, &ck, &sender_is_a);
		c = conn_find(a, &ck);
		if (!c) {
			c = calloc(1, sizeof(*c));
			if (!c)
				continue;
			c->key = ck;
			HASH_ADD(hh, a->conns, key, sizeof(c->key), c);
		}
		c->last_ns = a->now_ns;
		resolve_translation(a, c, dl);
		if (sender_is_a) {
			if (!c->first_a_ns || dl->d.first_ns < c->first_a_ns)
				c->first_a_ns = dl->d.first_ns;
		} else if (!c->first_b_ns || dl->d.first_ns < c->first_b_ns) {
			c->first_b_ns = dl->d.first_ns;
		}
		if (dl->key.proto != 6)
			continue;
		if (dl->d.syn && a->sig.tcp)
			attempt_syn(a, &ck, dl);
		/* A SYN names its sender the client; a SYN-ACK names its receiver. */
		if (dl->d.syn) {
			c->client_is_a = sender_is_a;
			c->by = INITIATOR_SYN;
		} else if (dl->d.synack && c->by != INITIATOR_SYN) {
			c->client_is_a = !sender_is_a;
			c->by = INITIATOR_SYN;
		}
	}
}

static uint64_t jiffies_to_ns(const struct attrib *a, uint64_t j)
{
	const struct kernel_clock *c = &a->clock;
	uint64_t back;

	if (!c->hz || !j)
		return a->now_ns;
	if (j >= c->jiffies)
		return c->ktime_ns;
	back = (c->jiffies - j) * (1000000000ULL / c->hz);
	return back < c->ktime_ns ? c->ktime_ns - back : 0;
}

/* The aggregate key of a delta: client and server by the connection's initiator. */
static int agg_key_of(struct attrib *a, const struct delta *dl, const struct conn *c,
		      int sender_is_client, struct agg_key *ak)
{
	const struct fl_key *k = &dl->key;

	memset(ak, 0, sizeof(*ak));
	memcpy(ak->client, sender_is_client ? k->saddr : k->daddr, 16);
	memcpy(ak->server, sender_is_client ? k->daddr : k->saddr, 16);
	ak->server_port = sender_is_client ? k->dport : k->sport;
	ak->proto = k->proto;
	if (c->xlate == XLATE_NAT) {
		/* Named by the backend that answered, with what the client dialed. */
		memcpy(ak->server, c->nat.backend, 16);
		ak->server_port = c->nat.backend_port;
		memcpy(ak->dialed, c->nat.dialed, 16);
		ak->dialed_port = c->nat.dialed_port;
	}
	if (dl->kind == IFACE_POD) {
		const uint32_t *pod = k->dir == FL_DIR_INGRESS ? k->saddr : k->daddr;

		ak->reporter = memcmp(pod, ak->client, 16) == 0 ? REPORTER_CLIENT : REPORTER_SERVER;
		return 0;
	}
	/* The pod veth of a local pod already counted this packet. */
	if (is_local(a, k->saddr) || is_local(a, k->daddr))
		return -EEXIST;
	ak->reporter = REPORTER_NODE;
	return 0;
}

/* Pass 2: every delta into its aggregate. */
static void attribute(struct attrib *a)
{
	for (size_t i = 0; i < a->n_deltas; i++) {
		const struct delta *dl = &a->deltas[i];
		int sender_is_a, sender_is_client;
		struct agg_key ak;
		struct flow_agg *agg;
		struct conn_key ck;
		struct conn *c;
		struct agg_dir *dir;
		uint64_t last;

		conn_key_of(&dl->key, &ck, &sender_is_a);
		c = conn_find(a, &ck);
		if (!c)
			continue;
		decide_initiator(c);
		sender_is_client = sender_is_a == c->client_is_a;
		if (agg_key_of(a, dl, c, sender_is_client, &ak)) {
			a->st.eni_duplicate_packets += dl->d.packets;
			continue;
		}
		agg = agg_get(a, &ak);
		if (!agg)
			continue;
		conn_seen(c, dl->key.ifindex, &ak);
		if (dl->key.proto == 6 && a->sig.tcp)
			attempt_observe(a, &ck, dl, agg, sender_is_client);
		dir = sender_is_client ? &agg->fwd : &agg->rev;
		dir->packets += dl->d.packets;
		dir->bytes += dl->d.bytes;
		if (sender_is_client)
			agg->flags_fwd |= dl->d.flags_or;
		else
			agg->flags_rev |= dl->d.flags_or;
		agg->syn += dl->d.syn;
		agg->synack += dl->d.synack;
		agg->fin += dl->d.fin;
		agg->rst += dl->d.rst;
		if (c->by != INITIATOR_SYN)
			agg->by_heuristic = 1;
		if (dl->d.first_ns && (!agg->first_ns || dl->d.first_ns < agg->first_ns))
			agg->first_ns = dl->d.first_ns;
		last = jiffies_to_ns(a, dl->d.last_jiffies);
		if (last > agg->last_ns)
			agg->last_ns = last;
	}
}

/*
 * Connections whose start was not seen (open before the agent started, or not TCP): a
 * translated connection's translated side (what was dialed, or the backend) is the server.
 * TCP/UDP/SCTP: if exactly one port is ephemeral (>= 32768) that side is the client, else the
 * higher port is; equal ports: the sender of the first packet seen. ICMP: the side with the
 * non-zero "port" (echo id, or type/code of an error) started the exchange. Anything else:
 * the sender of the first packet seen. Decided once, so it stays stable.
 */
static void decide_initiator(struct conn *c)
{
	const struct conn_key *k = &c->key;
	int ea = k->aport >= EPHEMERAL_MIN, eb = k->bport >= EPHEMERAL_MIN;

	if (c->by != INITIATOR_NONE)
		return;
	if (c->xlate == XLATE_NAT) {
		int a_is_server =
			(!memcmp(k->a, c->nat.dialed, 16) && k->aport == c->nat.dialed_port) ||
			(!memcmp(k->a, c->nat.backend, 16) && k->aport == c->nat.backend_port);

		c->client_is_a = !a_is_server;
		c->by = INITIATOR_PORTS;
		return;
	}
	if ((k->proto == 1 || k->proto == 58) && (k->aport == 0) != (k->bport == 0)) {
		c->client_is_a = k->aport != 0;
		c->by = INITIATOR_PORTS;
		return;
	}
	if ((k->proto == 6 || k->proto == 17 || k->proto == 132) && k->aport != k->bport) {
		c->client_is_a = ea != eb ? ea : k->aport > k->bport;
		c->by = INITIATOR_PORTS;
		return;
	}
	if (!c->first_b_ns)
		c->client_is_a = 1;
	else if (!c->first_a_ns)
		c->client_is_a = 0;
	else
		c->client_is_a = c->first_a_ns <= c->first_b_ns;
	c->by = INITIATOR_FIRST;
}

/* What conntrack says about the connection's destination: the datapath's record, or a query. */
static void resolve_translation(struct attrib *a, struct conn *c, const struct delta *dl)
{
	struct fl_nat n;
	int r = -ENOENT;

	if (c->xlate != XLATE_UNKNOWN)
		return;
	if ((dl->d.ct & FL_CT_NAT) && a->ops.datapath)
		r = a->ops.datapath(a->ops.ctx, &dl->key, &n);
	if (r != 1)
		r = (dl->d.ct & FL_CT_FOUND) ? 0 : -ENOENT;
	if (r == -ENOENT && a->ops.query && c->xlate_queries < XLATE_QUERIES_MAX &&
	    (dl->key.proto == 6 || dl->key.proto == 17)) {
		c->xlate_queries++;
		a->st.xlate_queries++;
		r = a->ops.query(a->ops.ctx, &dl->key, &n);
		if (r < 0 && r != -ENOENT)
			a->st.xlate_query_errors++;
	}
	if (r == 1) {
		c->nat = n;
		c->xlate = XLATE_NAT;
		a->st.xlate_nat++;
	} else if (r == 0) {
		c->xlate = XLATE_DIRECT;
		a->st.xlate_direct++;
	}
}

/* Forgets idle connections and addresses no longer known to be local. */
static void expire(struct attrib *a)
{
	struct conn *c, *ctmp;
	struct local_ip *l, *ltmp;

	HASH_ITER (hh, a->conns, c, ctmp) {
		if (c->last_ns + a->idle_ns <= a->now_ns) {
			HASH_DEL(a->conns, c);
			free(c);
		}
	}
	HASH_ITER (hh, a->local, l, ltmp) {
		if (l->learned_ns && l->learned_ns + a->idle_ns <= a->now_ns)
			l->learned_ns = 0;
		if (!l->routes && !l->learned_ns && l->grace_gen < a->gen) {
			HASH_DEL(a->local, l);
			free(l);
		}
	}
}

/* Local pod addresses. */

static struct local_ip *local_find(struct attrib *a, const uint32_t addr[4])
{
	struct local_ip *l;

	HASH_FIND(hh, a->local, addr, 16, l);
	return l;
}

static struct local_ip *local_get(struct attrib *a, const uint32_t addr[4])
{
	struct local_ip *l;

	HASH_FIND_OR_ADD(hh, a->local, addr, addr, l);
	return l;
}

int is_local(struct attrib *a, const uint32_t addr[4])
{
	struct local_ip *l = local_find(a, addr);

	return l && (l->routes > 0 || l->learned_ns || l->grace_gen >= a->gen);
}

void attrib_route(struct attrib *a, int add, int family, const void *addr)
{
	uint32_t m[4];
	struct local_ip *l;

	addr_map(family, addr, m);
	if (add) {
		l = local_get(a, m);
		if (l)
			l->routes++;
		return;
	}
	l = local_find(a, m);
	if (l && l->routes > 0) {
		l->routes--;
		/* Packets counted before the route vanished are read at the next interval. */
		l->grace_gen = a->gen + 2;
	}
}

/* Connections. */

static int tuple_cmp(const uint32_t *x, uint16_t xp, const uint32_t *y, uint16_t yp)
{
	int c = memcmp(x, y, 16);

	return c ? c : (int)xp - (int)yp;
}

/* Canonical connection key; *sender_is_a tells which side sent the key's packets. */
void conn_key_of(const struct fl_key *k, struct conn_key *ck, int *sender_is_a)
{
	memset(ck, 0, sizeof(*ck));
	ck->proto = k->proto;
	*sender_is_a = tuple_cmp(k->saddr, k->sport, k->daddr, k->dport) <= 0;
	memcpy(ck->a, *sender_is_a ? k->saddr : k->daddr, 16);
	memcpy(ck->b, *sender_is_a ? k->daddr : k->saddr, 16);
	ck->aport = *sender_is_a ? k->sport : k->dport;
	ck->bport = *sender_is_a ? k->dport : k->sport;
}

struct conn *conn_find(struct attrib *a, const struct conn_key *ck)
{
	struct conn *c;

	HASH_FIND(hh, a->conns, ck, sizeof(*ck), c);
	return c;
}

/* Remembers which aggregate the connection's packets at this interface went to. */
static void conn_seen(struct conn *c, uint32_t ifindex, const struct agg_key *ak)
{
	int i, free_slot = -1;

	for (i = 0; i < CONN_SEEN; i++) {
		if (c->seen[i].ifindex == ifindex) {
			c->seen[i].ak = *ak;
			return;
		}
		if (!c->seen[i].ifindex && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		free_slot = CONN_SEEN - 1; /* more interfaces than slots: the latest wins */
	c->seen[free_slot].ifindex = ifindex;
	c->seen[free_slot].ak = *ak;
}

const struct agg_key *conn_seen_at(const struct conn *c, uint32_t ifindex)
{
	for (int i = 0; i < CONN_SEEN; i++)
		if (c->seen[i].ifindex == ifindex)
			return &c->seen[i].ak;
	return NULL;
}

/* Aggregates. */

struct flow_agg *agg_get(struct attrib *a, const struct agg_key *ak)
{
	struct flow_agg *agg;

	HASH_FIND_OR_ADD(hh, a->aggs, key, ak, agg);
	return agg;
}

static void free_aggs(struct attrib *a)
{
	struct flow_agg *agg, *tmp;

	HASH_ITER (hh, a->aggs, agg, tmp) {
		HASH_DEL(a->aggs, agg);
		free(agg->connect);
		free(agg->http);
		free(agg->http2);
		free(agg->grpc);
		free(agg->dns);
		free(agg->drops);
		free(agg);
	}
}

void attrib_set_signals(struct attrib *a, const struct sig_config *sig)
{
	a->sig = *sig;
	if (a->sig.n_connect_bounds > HIST_BOUNDS_MAX)
		a->sig.n_connect_bounds = HIST_BOUNDS_MAX;
}

const struct sig_config *attrib_signals(const struct attrib *a)
{
	return &a->sig;
}

void attrib_set_clock(struct attrib *a, const struct kernel_clock *c)
{
	a->clock = *c;
}

struct flow_agg *attrib_aggregates(const struct attrib *a)
{
	return a->aggs;
}

const struct attrib_stats *attrib_stats(const struct attrib *a)
{
	return &a->st;
}
