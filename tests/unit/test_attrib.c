// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Attribution (agent/attrib.c, agent/outcome.c) without a kernel: crafted counter deltas, a
 * fake clock and fake conntrack answers in, aggregates out. Each expectation is worked out
 * from the crafted input by hand (who sent the SYN, which packets, which delays), never from
 * what the code returned before.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include "addr.h"
#include "attrib.h"

#include "check.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define POD_CLIENT_IF 11 /* host side of the client pod's veth */
#define POD_SERVER_IF 12
#define ENI_IF 2

static void v4(uint32_t out[4], const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	addr_map(AF_INET, &a, out);
}

/* One direction of a connection at one interface: s:sp -> d:dp. */
static struct fl_key key(const char *s, uint16_t sp, const char *d, uint16_t dp, uint8_t proto,
			 uint32_t ifindex, uint8_t dir)
{
	struct fl_key k;

	memset(&k, 0, sizeof(k));
	v4(k.saddr, s);
	v4(k.daddr, d);
	k.sport = sp;
	k.dport = dp;
	k.proto = proto;
	k.ifindex = ifindex;
	k.dir = dir;
	return k;
}

static struct fl_stats pkts(uint64_t packets, uint64_t bytes, uint64_t first_ns)
{
	struct fl_stats d;

	memset(&d, 0, sizeof(d));
	d.packets = packets;
	d.bytes = bytes;
	d.first_ns = first_ns;
	return d;
}

static const struct sig_config sig_all = {
	.tcp = 1,
	.http = 1,
	.dns = 1,
	.drops = 1,
	.connect_timeout_ns = 3 * S,
	.dns_timeout_ns = 5 * S,
	.connect_bounds = { 0.001, 0.005, 0.025 },
	.n_connect_bounds = 3,
	.http_bounds = { 0.01, 0.1, 1 },
	.n_http_bounds = 3,
	.dns_bounds = { 0.001, 0.01 },
	.n_dns_bounds = 2,
};

static struct attrib *new_attrib(const struct attrib_ops *ops)
{
	struct attrib *a = NULL;

	CHECK(attrib_new(&a, 60 * S, ops) == 0 && a, "attrib_new");
	attrib_set_signals(a, &sig_all);
	return a;
}

static void interval(struct attrib *a)
{
	attrib_flows(a);
	attrib_end(a);
}

static int count_aggs(const struct attrib *a)
{
	int n = 0;

	for (const struct flow_agg *g = attrib_aggregates(a); g; g = g->hh.next)
		n++;
	return n;
}

static const struct flow_agg *find_agg(const struct attrib *a, const char *client,
				       const char *server, uint16_t port, uint8_t reporter)
{
	uint32_t c[4], s[4];

	v4(c, client);
	v4(s, server);
	for (const struct flow_agg *g = attrib_aggregates(a); g; g = g->hh.next)
		if (!memcmp(g->key.client, c, 16) && !memcmp(g->key.server, s, 16) &&
		    g->key.server_port == port && g->key.reporter == reporter)
			return g;
	return NULL;
}

/* The client pod's veth: requests enter the host at ingress, replies leave at egress. */
static void test_attrib_syn_and_connect_latency(void)
{
	struct attrib *a = new_attrib(NULL);
	struct fl_key req =
		key("10.0.0.1", 40000, "10.0.0.2", 80, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key rep = key("10.0.0.2", 80, "10.0.0.1", 40000, 6, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_stats syn = pkts(4, 400, 100 * MS), synack = pkts(3, 3000, 100 * MS + 2500000);
	const struct flow_agg *g;

	syn.syn = 1;
	synack.synack = 1;
	attrib_begin(a, 1 * S);
	/* The reply is read first: pass 2 still knows the SYN from pass 1. */
	attrib_delta(a, &rep, &synack, IFACE_POD);
	attrib_delta(a, &req, &syn, IFACE_POD);
	interval(a);
	CHECK(count_aggs(a) == 1, "one aggregate, got %d", count_aggs(a));
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 80, REPORTER_CLIENT);
	CHECK(g, "client 10.0.0.1 -> 10.0.0.2:80 reported by the client's veth");
	if (g) {
		CHECK(g->fwd.packets == 4 && g->fwd.bytes == 400 && g->rev.packets == 3 &&
			      g->rev.bytes == 3000,
		      "fwd %llu/%llu rev %llu/%llu", (unsigned long long)g->fwd.packets,
		      (unsigned long long)g->fwd.bytes, (unsigned long long)g->rev.packets,
		      (unsigned long long)g->rev.bytes);
		CHECK(!g->by_heuristic, "initiator by SYN");
		CHECK(g->tcp[TCP_ESTABLISHED] == 1, "established");
		/* 2.5 ms: the (1 ms, 5 ms] bucket. */
		CHECK(g->connect && g->connect->n == 1 && g->connect->counts[1] == 1 &&
			      g->connect->sum > 0.00249 && g->connect->sum < 0.00251,
		      "connect latency 2.5 ms in bucket le=0.005");
		CHECK(g->first_ns == 100 * MS, "first_ns");
	}
	CHECK(attrib_stats(a)->tcp[TCP_ESTABLISHED] == 1, "stats established");
	attrib_free(a);
}

/* Connections whose start was not seen: ephemeral port, ICMP id, first packet. */
static void test_attrib_initiator_heuristics(void)
{
	struct attrib *a = new_attrib(NULL);
	struct fl_key dns_rep =
		key("10.0.0.3", 53, "10.0.0.1", 45000, 17, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_key dns_req =
		key("10.0.0.1", 45000, "10.0.0.3", 53, 17, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key echo_rep = key("10.0.0.5", 0, "10.0.0.1", 7, 1, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_key same_a =
		key("10.0.0.9", 5000, "10.0.0.1", 5000, 17, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_key same_b =
		key("10.0.0.1", 5000, "10.0.0.9", 5000, 17, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_stats d1 = pkts(1, 100, 10 * MS), d2 = pkts(1, 60, 20 * MS);
	const struct flow_agg *g;

	attrib_begin(a, 1 * S);
	/* The answer was seen first (d1 earlier): the ephemeral port still names the client. */
	attrib_delta(a, &dns_rep, &d1, IFACE_POD);
	attrib_delta(a, &dns_req, &d2, IFACE_POD);
	/* An echo reply only: the side with the identifier (10.0.0.1, "port" 7) pinged. */
	attrib_delta(a, &echo_rep, &d1, IFACE_POD);
	/* Equal ports: the sender of the first packet (10.0.0.9 at 10 ms) is the client. */
	attrib_delta(a, &same_b, &d2, IFACE_POD);
	attrib_delta(a, &same_a, &d1, IFACE_POD);
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.3", 53, REPORTER_CLIENT);
	CHECK(g && g->fwd.bytes == 60 && g->rev.bytes == 100 && g->by_heuristic,
	      "DNS: client 10.0.0.1 by its ephemeral port");
	g = find_agg(a, "10.0.0.1", "10.0.0.5", 0, REPORTER_CLIENT);
	CHECK(g && g->rev.packets == 1 && g->fwd.packets == 0, "ICMP: 10.0.0.1 pinged 10.0.0.5");
	g = find_agg(a, "10.0.0.9", "10.0.0.1", 5000, REPORTER_SERVER);
	CHECK(g && g->fwd.bytes == 100 && g->rev.bytes == 60,
	      "equal ports: first sender 10.0.0.9 is the client; the veth is the server's");
	CHECK(count_aggs(a) == 3, "three aggregates, got %d", count_aggs(a));
	attrib_free(a);
}

/* A fake conntrack: ClusterIP 10.96.0.10:80 translated to 10.0.0.2:8080. */
struct fake_ct {
	int datapath_calls, query_calls;
	int query_result;
};

static void fill_nat(struct fl_nat *n)
{
	memset(n, 0, sizeof(*n));
	v4(n->dialed, "10.96.0.10");
	v4(n->backend, "10.0.0.2");
	n->dialed_port = 80;
	n->backend_port = 8080;
}

static int fake_datapath(void *ctx, const struct fl_key *k, struct fl_nat *n)
{
	struct fake_ct *f = ctx;

	(void)k;
	f->datapath_calls++;
	fill_nat(n);
	return 1;
}

static int fake_query(void *ctx, const struct fl_key *k, struct fl_nat *n)
{
	struct fake_ct *f = ctx;

	(void)k;
	f->query_calls++;
	if (f->query_result == 1)
		fill_nat(n);
	return f->query_result;
}

static void test_attrib_translation(void)
{
	struct fake_ct f = { 0 };
	struct attrib_ops ops = { .datapath = fake_datapath, .query = fake_query, .ctx = &f };
	struct attrib *a = new_attrib(&ops);
	/* At the client's veth the request is still addressed to the ClusterIP. */
	struct fl_key req =
		key("10.0.0.1", 40000, "10.96.0.10", 80, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key rep =
		key("10.96.0.10", 80, "10.0.0.1", 40000, 6, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_stats d = pkts(2, 200, 5 * MS), r = pkts(2, 900, 6 * MS);
	const struct flow_agg *g;

	d.ct = FL_CT_FOUND | FL_CT_NAT;
	r.ct = FL_CT_FOUND | FL_CT_NAT;
	attrib_begin(a, 1 * S);
	attrib_delta(a, &rep, &r, IFACE_POD);
	attrib_delta(a, &req, &d, IFACE_POD);
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 8080, REPORTER_CLIENT);
	CHECK(g, "named by the backend that answered");
	if (g) {
		uint32_t dialed[4];

		v4(dialed, "10.96.0.10");
		CHECK(!memcmp(g->key.dialed, dialed, 16) && g->key.dialed_port == 80,
		      "with the ClusterIP dialed");
		CHECK(g->fwd.bytes == 200 && g->rev.bytes == 900, "both directions");
	}
	CHECK(f.datapath_calls == 1 && f.query_calls == 0, "datapath record read once: %d/%d",
	      f.datapath_calls, f.query_calls);
	CHECK(attrib_stats(a)->xlate_nat == 1, "one translated connection");
	attrib_free(a);

	/* Netlink mode: the datapath did not look; a failing query is retried 3 times at most. */
	memset(&f, 0, sizeof(f));
	ops.datapath = NULL;
	f.query_result = -EIO;
	a = new_attrib(&ops);
	d.ct = r.ct = 0;
	for (int i = 1; i <= 5; i++) {
		attrib_begin(a, (uint64_t)i * S);
		attrib_delta(a, &req, &d, IFACE_POD);
		interval(a);
	}
	CHECK(f.query_calls == 3 && attrib_stats(a)->xlate_query_errors == 3,
	      "3 queries, 3 errors: %d", f.query_calls);
	CHECK(find_agg(a, "10.0.0.1", "10.96.0.10", 80, REPORTER_CLIENT),
	      "untranslated: named by what was dialed");
	attrib_free(a);

	memset(&f, 0, sizeof(f));
	f.query_result = 0;
	a = new_attrib(&ops);
	attrib_begin(a, 1 * S);
	attrib_delta(a, &req, &d, IFACE_POD);
	interval(a);
	attrib_begin(a, 2 * S);
	attrib_delta(a, &req, &d, IFACE_POD);
	interval(a);
	CHECK(f.query_calls == 1 && attrib_stats(a)->xlate_direct == 1,
	      "a direct answer is final: %d queries", f.query_calls);
	attrib_free(a);
}

/* A node interface: copies of local pods' packets are skipped, others are the node's. */
static void test_attrib_eni(void)
{
	struct attrib *a = new_attrib(NULL);
	struct in_addr pod;
	struct fl_key local = key("10.0.0.1", 40000, "10.0.1.7", 80, 6, ENI_IF, FL_DIR_EGRESS);
	struct fl_key other = key("10.0.2.4", 41000, "10.0.1.7", 80, 6, ENI_IF, FL_DIR_EGRESS);
	struct fl_stats d = pkts(5, 500, 1 * MS);

	inet_pton(AF_INET, "10.0.0.1", &pod);
	attrib_route(a, 1, AF_INET, &pod);
	attrib_begin(a, 1 * S);
	attrib_delta(a, &local, &d, IFACE_NODE);
	attrib_delta(a, &other, &d, IFACE_NODE);
	interval(a);
	CHECK(attrib_stats(a)->eni_duplicate_packets == 5, "5 packets of a local pod skipped");
	CHECK(count_aggs(a) == 1 && find_agg(a, "10.0.2.4", "10.0.1.7", 80, REPORTER_NODE),
	      "the other flow reported by the node");
	CHECK(attrib_stats(a)->local_ips == 1, "one local pod IP");
	/* The route goes: still local for the two reads that may hold its last packets. */
	attrib_route(a, 0, AF_INET, &pod);
	for (int i = 2; i <= 4; i++) {
		attrib_begin(a, (uint64_t)i * S);
		attrib_delta(a, &local, &d, IFACE_NODE);
		interval(a);
	}
	CHECK(attrib_stats(a)->eni_duplicate_packets == 15 &&
		      find_agg(a, "10.0.0.1", "10.0.1.7", 80, REPORTER_NODE),
	      "then its flows are the node's: %llu duplicates",
	      (unsigned long long)attrib_stats(a)->eni_duplicate_packets);
	attrib_free(a);
}

/* Refused, timed out, reset: each counted once, in the right aggregate. */
static void test_attrib_tcp_outcomes(void)
{
	struct attrib *a = new_attrib(NULL);
	struct fl_key r_syn =
		key("10.0.0.1", 40001, "10.0.0.2", 81, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key r_rst =
		key("10.0.0.2", 81, "10.0.0.1", 40001, 6, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_key t_syn =
		key("10.0.0.1", 40002, "10.0.0.2", 82, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key e_syn =
		key("10.0.0.1", 40003, "10.0.0.2", 83, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key e_ack =
		key("10.0.0.2", 83, "10.0.0.1", 40003, 6, POD_CLIENT_IF, FL_DIR_EGRESS);
	struct fl_stats syn = pkts(1, 60, 10 * MS), rst = pkts(1, 40, 11 * MS);
	struct fl_stats synack = pkts(1, 60, 12 * MS), data = pkts(3, 300, 20 * MS), syn_rst;
	const struct flow_agg *g;

	syn.syn = 1;
	rst.rst = 1;
	synack.synack = 1;
	attrib_begin(a, 1 * S);
	attrib_delta(a, &r_rst, &rst, IFACE_POD); /* the RST read before its SYN */
	attrib_delta(a, &r_syn, &syn, IFACE_POD);
	/* The client gives up with a RST of its own: not a refusal, it still times out. */
	syn_rst = syn;
	syn_rst.rst = 1;
	attrib_delta(a, &t_syn, &syn_rst, IFACE_POD);
	attrib_delta(a, &e_syn, &syn, IFACE_POD);
	attrib_delta(a, &e_ack, &synack, IFACE_POD);
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 81, REPORTER_CLIENT);
	CHECK(g && g->tcp[TCP_REFUSED] == 1 && g->tcp[TCP_ESTABLISHED] == 0, "refused");
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 82, REPORTER_CLIENT);
	CHECK(g && g->tcp[TCP_TIMEOUT] == 0 && g->tcp[TCP_REFUSED] == 0,
	      "not refused by its own RST, not yet timed out at 1 s");
	CHECK(attrib_stats(a)->tcp_open == 1, "one attempt pending");

	/* 4 s: past the 3 s connect timeout; the established connection is reset. */
	attrib_begin(a, 4 * S);
	rst.first_ns = 3 * S;
	data.rst = 1;
	attrib_delta(a, &e_syn, &data, IFACE_POD);
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 82, REPORTER_CLIENT);
	CHECK(g && g->tcp[TCP_TIMEOUT] == 1, "timed out, counted without packets");
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 83, REPORTER_CLIENT);
	CHECK(g && g->tcp[TCP_RESET] == 1 && g->fwd.packets == 3, "reset after establishment");
	CHECK(attrib_stats(a)->tcp[TCP_REFUSED] == 1 && attrib_stats(a)->tcp[TCP_TIMEOUT] == 1 &&
		      attrib_stats(a)->tcp[TCP_RESET] == 1 &&
		      attrib_stats(a)->tcp[TCP_ESTABLISHED] == 1 && attrib_stats(a)->tcp_open == 0,
	      "each outcome once");
	attrib_free(a);
}

/* HTTP and DNS samples go where the connection's packets went at that interface. */
static void test_attrib_samples(void)
{
	struct attrib *a = new_attrib(NULL);
	struct fl_key req =
		key("10.0.0.1", 40000, "10.0.0.2", 80, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key q = key("10.0.0.1", 45000, "10.0.0.3", 53, 17, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_stats d = pkts(1, 100, 1 * MS);
	struct fl_sample sm;
	const struct flow_agg *g;

	attrib_begin(a, 1 * S);
	attrib_delta(a, &req, &d, IFACE_POD);
	attrib_delta(a, &q, &d, IFACE_POD);
	interval(a);

	memset(&sm, 0, sizeof(sm));
	sm.key = req;
	sm.key.dir = 0;
	sm.kind = FL_SAMPLE_HTTP;
	sm.method = FL_HTTP_GET;
	sm.status = 503;
	sm.duration_ns = 50 * MS;
	attrib_sample(a, &sm);
	sm.status = 200;
	sm.duration_ns = 5 * MS;
	attrib_sample(a, &sm);
	sm.key = q;
	sm.key.dir = 0;
	sm.kind = FL_SAMPLE_DNS;
	sm.status = 3; /* NXDOMAIN */
	sm.qtype = 28; /* AAAA */
	sm.duration_ns = 2 * MS;
	attrib_sample(a, &sm);
	sm.status = FL_DNS_TIMEOUT;
	sm.qtype = 1;
	attrib_sample(a, &sm);
	sm.key.ifindex = 99; /* an interface that never saw the connection */
	attrib_sample(a, &sm);

	attrib_begin(a, 2 * S); /* no packets this interval: the samples still count */
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 80, REPORTER_CLIENT);
	CHECK(g && g->http, "HTTP requests attributed");
	if (g && g->http) {
		CHECK(g->http->requests[FL_HTTP_GET][HTTP_CLASS_5XX] == 1 &&
			      g->http->requests[FL_HTTP_GET][HTTP_CLASS_2XX] == 1,
		      "GET 5xx and 2xx");
		/* 5 ms in (0, 10 ms], 50 ms in (10 ms, 100 ms]. */
		CHECK(g->http->duration.counts[0] == 1 && g->http->duration.counts[1] == 1,
		      "durations in their buckets");
	}
	g = find_agg(a, "10.0.0.1", "10.0.0.3", 53, REPORTER_CLIENT);
	CHECK(g && g->dns && g->dns->requests[DNS_NXDOMAIN][DNS_QTYPE_AAAA] == 1 &&
		      g->dns->requests[DNS_RCODE_TIMEOUT][DNS_QTYPE_A] == 1 &&
		      g->dns->duration.n == 1,
	      "DNS NXDOMAIN/AAAA answered, timeout/A without a duration");
	CHECK(attrib_stats(a)->samples == 5 && attrib_stats(a)->samples_unattributed == 1,
	      "5 samples, 1 unattributed");
	attrib_free(a);
}

/* Tracepoint counts: to the local pod's side of the connection. */
static void test_attrib_tracepoints(void)
{
	struct attrib *a = new_attrib(NULL);
	struct fl_key req =
		key("10.0.0.1", 40000, "10.0.1.2", 80, 6, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_key rep = key("10.0.1.2", 80, "10.0.0.1", 40000, 6, 0, 0);
	struct fl_key tp = req;
	struct fl_stats syn = pkts(2, 120, 1 * MS);
	const struct flow_agg *g;

	syn.syn = 1;
	attrib_begin(a, 1 * S);
	attrib_delta(a, &req, &syn, IFACE_POD);
	attrib_flows(a);
	tp.ifindex = 0;
	attrib_retransmits(a, &tp, 3);
	/* A drop of a packet to the local pod (10.0.0.1 is local: seen at its veth). */
	attrib_drops(a, &rep, 5, 2);
	attrib_drops(a, &rep, 7, 1);
	/* The remote server's retransmissions are its node's to count. */
	attrib_retransmits(a, &rep, 4);
	attrib_end(a);
	g = find_agg(a, "10.0.0.1", "10.0.1.2", 80, REPORTER_CLIENT);
	CHECK(g && g->retransmits == 3, "3 retransmissions by the local client");
	CHECK(g && g->drops && g->drops->n == 2 && g->drops->d[0].reason == 5 &&
		      g->drops->d[0].count == 2 && g->drops->d[1].count == 1,
	      "drops by reason");
	CHECK(attrib_stats(a)->retransmits == 7 && attrib_stats(a)->retransmits_attributed == 3,
	      "7 seen, 3 attributed");
	CHECK(attrib_stats(a)->drops[5] == 2 && attrib_stats(a)->drops_attributed == 3,
	      "drops by reason in the stats");
	attrib_free(a);
}

/* last_jiffies -> CLOCK_MONOTONIC through one clock reading; idle connections expire. */
static void test_attrib_clock_and_expiry(void)
{
	struct attrib *a = new_attrib(NULL);
	struct kernel_clock clk = { .jiffies = 10000, .ktime_ns = 50 * S, .hz = 250 };
	struct fl_key req =
		key("10.0.0.1", 40000, "10.0.0.2", 80, 17, POD_CLIENT_IF, FL_DIR_INGRESS);
	struct fl_stats d = pkts(1, 100, 1 * MS);
	const struct flow_agg *g;

	d.last_jiffies = 9750; /* 250 jiffies = 1 s before the reading */
	attrib_set_clock(a, &clk);
	attrib_begin(a, 50 * S);
	attrib_delta(a, &req, &d, IFACE_POD);
	interval(a);
	g = find_agg(a, "10.0.0.1", "10.0.0.2", 80, REPORTER_CLIENT);
	CHECK(g && g->last_ns == 49 * S, "last packet at 49 s");
	CHECK(attrib_stats(a)->connections == 1, "one connection");
	attrib_begin(a, 50 * S + 60 * S); /* idle for the 60 s idle timeout */
	interval(a);
	CHECK(attrib_stats(a)->connections == 0 && attrib_stats(a)->local_ips == 0 &&
		      count_aggs(a) == 0,
	      "forgotten after the idle timeout");
	attrib_free(a);
}

void test_attrib(void)
{
	test_attrib_syn_and_connect_latency();
	test_attrib_initiator_heuristics();
	test_attrib_translation();
	test_attrib_eni();
	test_attrib_tcp_outcomes();
	test_attrib_samples();
	test_attrib_tracepoints();
	test_attrib_clock_and_expiry();
}
