// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF_PROG_TEST_RUN tests of bpf/flow.bpf.c: crafted frames go through the real programs in
 * the kernel and the flow table and counters are read back. The expected numbers come from
 * the frames the test built (their length, tuple and flags), not from the code under test.
 *
 * (Longer than ~600 lines on purpose: one fixture, the objects the agent may load on this
 * kernel each opened and loaded once, runs every check against each object; the parsers'
 * cases are short and read best next to each other.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "flow.h"
#include "flow.skel.h"
#include "flow_noct.skel.h"
#include "pkt.h"
#include "probe.h"

#define CHECK_MAIN
#include "check.h"
#include "addr.h"
#include "flowtab.h"
#include "bpf_env.h"

void test_slots(void); /* test_slots.c */
void test_wakeup(void); /* test_wakeup.c */
void test_h2bpf(void); /* test_h2bpf.c */

static void test_ipv4_tcp_both_directions(struct env *e)
{
	struct pkt_spec syn = { .family = AF_INET,
				.proto = 6,
				.src = "10.1.1.2",
				.dst = "10.1.2.3",
				.sport = 40000,
				.dport = 80,
				.tcp_flags = TCPF_SYN_BIT };
	struct pkt_spec data = syn;
	struct pkt_spec synack = { .family = AF_INET,
				   .proto = 6,
				   .src = "10.1.2.3",
				   .dst = "10.1.1.2",
				   .sport = 80,
				   .dport = 40000,
				   .tcp_flags = TCPF_SYN_BIT | TCPF_ACK_BIT };
	struct fl_stats st;
	struct fl_key k;
	int len, total = 0;

	CHECK(run(e->prog_in, &syn, &len) == -1, "must return TC_ACT_UNSPEC/TCX_NEXT");
	total += len - 14;
	data.tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT;
	data.payload = 1000;
	for (int i = 0; i < 3; i++) {
		CHECK(run(e->prog_in, &data, &len) == -1, "retval");
		total += len - 14;
	}
	data.tcp_flags = TCPF_FIN_BIT | TCPF_ACK_BIT;
	data.payload = 0;
	run(e->prog_in, &data, &len);
	total += len - 14;

	k = make_key(&syn, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0, "forward flow missing");
	CHECK(st.packets == 5, "packets %llu", st.packets);
	CHECK(st.bytes == (__u64)total, "bytes %llu want %d", st.bytes, total);
	CHECK(st.syn == 1 && st.synack == 0 && st.fin == 1 && st.rst == 0,
	      "flags syn %u synack %u fin %u rst %u", st.syn, st.synack, st.fin, st.rst);
	CHECK(st.flags_or == (TCPF_SYN_BIT | TCPF_ACK_BIT | TCPF_PSH_BIT | TCPF_FIN_BIT),
	      "flags_or %#x", st.flags_or);
	CHECK(st.first_ns && st.last_jiffies, "timestamps %llu %llu", st.first_ns, st.last_jiffies);

	CHECK(run(e->prog_eg, &synack, &len) == -1, "retval egress");
	k = make_key(&synack, FL_DIR_EGRESS);
	CHECK(read_flow(e, &k, &st) == 0, "reply flow missing");
	CHECK(st.packets == 1 && st.bytes == (__u64)(len - 14), "reply %llu/%llu", st.packets,
	      st.bytes);
	CHECK(st.synack == 1 && st.syn == 0, "synack %u syn %u", st.synack, st.syn);
	k.dir = FL_DIR_INGRESS;
	CHECK(read_flow(e, &k, &st) != 0, "reply seen on egress must not be keyed as ingress");
}

/*
 * Conntrack lookups happen for a flow's first packets only: a crafted packet has no conntrack
 * entry, so each of the first FL_CT_TRIES packets looks both directions up, then never again.
 */
static void test_conntrack_budget(struct env *e)
{
	struct pkt_spec p = { .family = AF_INET,
			      .proto = 6,
			      .src = "10.7.1.2",
			      .dst = "10.7.2.3",
			      .sport = 41000,
			      .dport = 443,
			      .tcp_flags = TCPF_ACK_BIT };
	struct pkt_spec icmp = {
		.family = AF_INET, .proto = 1, .src = "10.7.1.2", .dst = "10.7.2.3"
	};
	__u64 before = counter(e, FL_CNT_CT_LOOKUP);
	struct fl_stats st;
	struct fl_key k;
	int len;

	for (int i = 0; i < 10; i++)
		run(e->prog_in, &p, &len);
	k = make_key(&p, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0 && st.packets == 10, "flow counted");
	if (!cfg.with_ct) {
		CHECK(st.ct == FL_CT_SKIP, "no conntrack object: not looked up (%#x)", st.ct);
		CHECK(counter(e, FL_CNT_CT_LOOKUP) == before, "no conntrack object: no lookups");
		return;
	}
	CHECK(st.ct == FL_CT_TRIES, "ct state %#x, want %d misses then give up", st.ct,
	      FL_CT_TRIES);
	/* One lookup per try: the one tuple that can match at the hook (ct_probe). */
	CHECK(counter(e, FL_CNT_CT_LOOKUP) - before == FL_CT_TRIES, "lookups %llu, want %d",
	      counter(e, FL_CNT_CT_LOOKUP) - before, FL_CT_TRIES);
	before = counter(e, FL_CNT_CT_LOOKUP);
	for (int i = 0; i < 3; i++)
		run(e->prog_in, &icmp, &len);
	k = make_key(&icmp, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0 && st.ct == FL_CT_SKIP, "ICMP not looked up (%#x)", st.ct);
	CHECK(counter(e, FL_CNT_CT_LOOKUP) == before, "no lookups for ICMP");

	/*
	 * A SYN opening a flow at ingress precedes netfilter: not looked up, no try used; the
	 * next packet of the flow is. The same SYN at egress (after netfilter) is looked up.
	 */
	p.sport = 41001;
	p.tcp_flags = TCPF_SYN_BIT;
	before = counter(e, FL_CNT_CT_LOOKUP);
	run(e->prog_in, &p, &len);
	k = make_key(&p, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0 && st.ct == 0, "ingress SYN: ct state %#x, want 0", st.ct);
	CHECK(counter(e, FL_CNT_CT_LOOKUP) == before, "ingress SYN: no lookup");
	p.tcp_flags = TCPF_ACK_BIT;
	run(e->prog_in, &p, &len);
	CHECK(read_flow(e, &k, &st) == 0 && st.ct == 1, "its next packet: one miss (%#x)", st.ct);
	CHECK(counter(e, FL_CNT_CT_LOOKUP) - before == 1, "its next packet: one lookup");
	p.sport = 41002;
	p.tcp_flags = TCPF_SYN_BIT;
	before = counter(e, FL_CNT_CT_LOOKUP);
	run(e->prog_eg, &p, &len);
	CHECK(counter(e, FL_CNT_CT_LOOKUP) - before == 1, "egress SYN: looked up, once");
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct fl_sample *out = ctx;

	if (len == sizeof(*out) && out[0].kind == 0)
		memcpy(&out[0], data, sizeof(*out));
	else if (len == sizeof(*out))
		memcpy(&out[1], data, sizeof(*out));
	return 0;
}

/*
 * HTTP/1.x: a request line queues its start, a status line answers it with one sample (method,
 * status, duration); body segments, other protocols and unanswered responses make none.
 */
static void test_http(struct env *e)
{
	struct pkt_spec req = { .family = AF_INET,
				.proto = 6,
				.src = "10.8.1.2",
				.dst = "10.8.2.3",
				.sport = 42000,
				.dport = 80,
				.tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				.data = "POST /api HTTP/1.1\r\nHost: x\r\n\r\n",
				.payload = 34 };
	struct pkt_spec resp = { .family = AF_INET,
				 .proto = 6,
				 .src = "10.8.2.3",
				 .dst = "10.8.1.2",
				 .sport = 80,
				 .dport = 42000,
				 .tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				 .data = "HTTP/1.1 503 Service Unavailable\r\n",
				 .payload = 40 };
	struct pkt_spec body = resp, junk = req;
	struct fl_sample got[2];
	struct ring_buffer *rb;
	int len, n;

	memset(got, 0, sizeof(got));
	rb = ring_buffer__new(bpf_map__fd(e->skel->maps.samples), on_sample, got, NULL);
	CHECK(rb != NULL, "samples ring buffer");
	if (!rb)
		return;
	body.data = "<html>HTTP/1.1 200 in a body";
	junk.data = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03GET "; /* TLS hello */
	run(e->prog_eg, &resp, &len); /* a response nobody asked for: nothing */
	run(e->prog_in, &junk, &len);
	run(e->prog_in, &req, &len);
	usleep(2000);
	run(e->prog_eg, &body, &len); /* body segment: not a status line */
	run(e->prog_eg, &resp, &len);
	run(e->prog_eg, &resp, &len); /* a second status line with nothing queued: nothing */
	n = ring_buffer__consume(rb);
	CHECK(n == 1, "one sample for one request/response: %d", n);
	CHECK(got[0].kind == FL_SAMPLE_HTTP && got[0].status == 503 &&
		      got[0].method == FL_HTTP_POST,
	      "kind %u status %u method %u", got[0].kind, got[0].status, got[0].method);
	CHECK(got[0].duration_ns >= 2000000 && got[0].duration_ns < 1000000000ULL,
	      "duration %llu ns (slept 2 ms between request and response)",
	      (unsigned long long)got[0].duration_ns);
	CHECK(got[0].key.sport == 42000 && got[0].key.dport == 80 &&
		      got[0].key.saddr[3] == inet_addr("10.8.1.2"),
	      "sample keyed as the client sends");
	ring_buffer__free(rb);
}

/* DNS: a query and its answer make one sample with the rcode and the question's type. */
static void test_dns(struct env *e)
{
	struct pkt_spec query = dns_query, answer = dns_answer;
	struct pkt_spec other = answer;
	struct fl_sample got[2];
	struct ring_buffer *rb;
	char a2[64];
	int len, n;

	memset(got, 0, sizeof(got));
	rb = ring_buffer__new(bpf_map__fd(e->skel->maps.samples), on_sample, got, NULL);
	if (!rb)
		return;
	memcpy(a2, dns_answer.data, (size_t)dns_answer.data_len);
	a2[1] = 0x35; /* another id: not an answer to the query */
	other.data = a2;
	run(e->prog_in, &query, &len);
	run(e->prog_eg, &other, &len);
	run(e->prog_eg, &answer, &len);
	run(e->prog_eg, &answer, &len); /* a duplicate answer: the query is gone */
	n = ring_buffer__consume(rb);
	CHECK(n == 1, "one sample for one query/answer: %d", n);
	CHECK(got[0].kind == FL_SAMPLE_DNS && got[0].status == 3 && got[0].qtype == 28,
	      "kind %u rcode %u qtype %u", got[0].kind, got[0].status, got[0].qtype);
	CHECK(got[0].key.sport == 40053 && got[0].key.dport == 53, "keyed as the client sends");
	ring_buffer__free(rb);
}

/* The clock program reads jiffies and CLOCK_MONOTONIC together. */
static void test_clock(struct env *e)
{
	uint8_t buf[64] = { 0 };
	struct timespec ts;
	uint64_t mono;

	run_raw(bpf_program__fd(e->skel->progs.flowlens_clock), buf, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mono = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	CHECK(e->skel->bss->clock_sample.jiffies > 0, "jiffies");
	CHECK(e->skel->bss->clock_sample.ktime_ns <= mono &&
		      mono - e->skel->bss->clock_sample.ktime_ns < 1000000000ULL,
	      "ktime %llu vs CLOCK_MONOTONIC %llu", e->skel->bss->clock_sample.ktime_ns,
	      (unsigned long long)mono);
}

static void test_ipv4_options_and_rst(struct env *e)
{
	struct pkt_spec s = { .family = AF_INET,
			      .proto = 6,
			      .src = "10.9.0.1",
			      .dst = "10.9.0.2",
			      .sport = 5555,
			      .dport = 6666,
			      .tcp_flags = TCPF_RST_BIT | TCPF_ACK_BIT,
			      .ip_opt_words = 3 };
	struct fl_stats st;
	struct fl_key k = make_key(&s, FL_DIR_INGRESS);
	int len;

	run(e->prog_in, &s, &len);
	CHECK(read_flow(e, &k, &st) == 0, "flow with IP options missing (ports parsed wrong?)");
	CHECK(st.rst == 1 && st.bytes == (__u64)(len - 14), "rst %u bytes %llu", st.rst, st.bytes);
}

static void test_ipv6_udp_and_ext(struct env *e)
{
	struct pkt_spec u = { .family = AF_INET6,
			      .proto = 17,
			      .src = "fd00:1:1::2",
			      .dst = "fd00:1:2::3",
			      .sport = 5353,
			      .dport = 53,
			      .payload = 33 };
	struct pkt_spec t = { .family = AF_INET6,
			      .proto = 6,
			      .src = "fd00:1:1::2",
			      .dst = "fd00:1:2::3",
			      .sport = 41000,
			      .dport = 443,
			      .tcp_flags = TCPF_SYN_BIT,
			      .v6_hbh = 1 };
	struct fl_stats st;
	struct fl_key k;
	int len;

	run(e->prog_in, &u, &len);
	k = make_key(&u, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0, "ipv6 udp missing");
	CHECK(st.packets == 1 && st.bytes == (__u64)(len - 14), "ipv6 udp %llu/%llu", st.packets,
	      st.bytes);

	run(e->prog_in, &t, &len);
	k = make_key(&t, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0, "ipv6 tcp behind hop-by-hop header missing");
	CHECK(st.syn == 1 && st.bytes == (__u64)(len - 14), "ipv6 hbh syn %u bytes %llu", st.syn,
	      st.bytes);
}

static void test_icmp_echo_pairs(struct env *e)
{
	struct pkt_spec req = { .family = AF_INET,
				.proto = 1,
				.src = "10.1.1.2",
				.dst = "10.1.1.3",
				.icmp_type = 8,
				.sport = 0x1234,
				.payload = 56 };
	struct pkt_spec rep = { .family = AF_INET,
				.proto = 1,
				.src = "10.1.1.3",
				.dst = "10.1.1.2",
				.icmp_type = 0,
				.sport = 0x1234,
				.payload = 56 };
	struct pkt_spec req6 = { .family = AF_INET6,
				 .proto = 58,
				 .src = "fd00::2",
				 .dst = "fd00::3",
				 .icmp_type = 128,
				 .sport = 7,
				 .payload = 56 };
	struct fl_stats st;
	struct fl_key k;

	run(e->prog_in, &req, NULL);
	run(e->prog_in, &rep, NULL);
	run(e->prog_in, &req6, NULL);
	k = make_key(&req, FL_DIR_INGRESS);
	k.dport = 0;
	CHECK(read_flow(e, &k, &st) == 0 && st.packets == 1, "echo request keyed by id as sport");
	k = make_key(&rep, FL_DIR_INGRESS);
	k.sport = 0;
	k.dport = 0x1234;
	CHECK(read_flow(e, &k, &st) == 0 && st.packets == 1, "echo reply keyed by id as dport");
	k = make_key(&req6, FL_DIR_INGRESS);
	k.dport = 0;
	CHECK(read_flow(e, &k, &st) == 0 && st.packets == 1, "icmpv6 echo request");
}

static void test_vlan(struct env *e)
{
	struct pkt_spec s = { .family = AF_INET,
			      .proto = 17,
			      .src = "10.7.0.1",
			      .dst = "10.7.0.2",
			      .sport = 1000,
			      .dport = 2000,
			      .payload = 100,
			      .vlan_tags = 1 };
	struct fl_stats st;
	struct fl_key k = make_key(&s, FL_DIR_INGRESS);
	int len;

	run(e->prog_in, &s, &len);
	CHECK(read_flow(e, &k, &st) == 0, "vlan flow missing");
	CHECK(st.bytes == (__u64)(len - 18), "vlan bytes %llu want %d", st.bytes, len - 18);

	s.vlan_tags = 2;
	s.sport = 1001;
	k = make_key(&s, FL_DIR_INGRESS);
	run(e->prog_in, &s, &len);
	CHECK(read_flow(e, &k, &st) == 0, "QinQ flow missing");
	CHECK(st.bytes == (__u64)(len - 22), "QinQ bytes %llu want %d", st.bytes, len - 22);
}

static void test_other_protocols(struct env *e)
{
	struct pkt_spec gre = {
		.family = AF_INET, .proto = 47, .src = "10.5.0.1", .dst = "10.5.0.2", .payload = 40
	};
	struct pkt_spec frag = { .family = AF_INET,
				 .proto = 17,
				 .src = "10.5.0.1",
				 .dst = "10.5.0.2",
				 .sport = 9,
				 .dport = 9,
				 .payload = 200,
				 .frag_off = 185 };
	struct pkt_spec arp = { .family = 0 };
	__u64 frag_before = counter(e, FL_CNT_FRAGMENT);
	__u64 nonip_before = counter(e, FL_CNT_NON_IP);
	unsigned int before;
	struct fl_stats st;
	struct fl_key k;
	int len;

	run(e->prog_in, &gre, &len);
	k = make_key(&gre, FL_DIR_INGRESS);
	CHECK(read_flow(e, &k, &st) == 0 && st.bytes == (__u64)(len - 14),
	      "GRE counted by protocol number");

	run(e->prog_in, &frag, &len);
	k = make_key(&frag, FL_DIR_INGRESS);
	k.sport = k.dport = 0;
	CHECK(read_flow(e, &k, &st) == 0 && st.bytes == (__u64)(len - 14),
	      "non-first fragment counted without ports");
	CHECK(counter(e, FL_CNT_FRAGMENT) == frag_before + 1, "fragment counter");

	before = flow_count(e);
	CHECK(run(e->prog_in, &arp, NULL) == -1, "retval arp");
	CHECK(counter(e, FL_CNT_NON_IP) == nonip_before + 1, "non-IP counter");
	CHECK(flow_count(e) == before, "ARP must not create a flow");
}

/* Frames cut short at every interesting place: counted as truncated, never as flows. */
static void test_truncated_and_malformed(struct env *e)
{
	struct pkt_spec specs[] = {
		{ .family = AF_INET,
		  .proto = 6,
		  .src = "10.6.0.1",
		  .dst = "10.6.0.2",
		  .sport = 1,
		  .dport = 2 },
		{ .family = AF_INET6,
		  .proto = 17,
		  .src = "fd00::1",
		  .dst = "fd00::2",
		  .sport = 1,
		  .dport = 2 },
		{ .family = AF_INET6,
		  .proto = 6,
		  .src = "fd00::1",
		  .dst = "fd00::2",
		  .sport = 1,
		  .dport = 2,
		  .v6_hbh = 1 },
		{ .family = AF_INET,
		  .proto = 6,
		  .src = "10.6.0.1",
		  .dst = "10.6.0.2",
		  .sport = 1,
		  .dport = 2,
		  .vlan_tags = 1 },
	};
	/* Lengths to cut at: inside L2/VLAN, inside L3, inside extension header, inside L4. */
	int cuts[] = { 15, 16, 20, 33, 40, 53, 57, 60, 61, 70 };
	uint8_t buf[1600];
	unsigned int before = flow_count(e);
	__u64 trunc_before = counter(e, FL_CNT_TRUNCATED);
	__u64 expected = 0;

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		int full = pkt_build(buf, &specs[i]);

		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			if (cuts[c] >= full)
				continue;
			int ret = run_raw(e->prog_in, buf, cuts[c]);

			if (ret == RUN_REFUSED)
				continue;
			CHECK(ret == -1, "retval truncated");
			expected++;
		}
	}
	CHECK(expected >= 8, "only %llu truncated frames reached the program", expected);
	CHECK(flow_count(e) == before, "truncated frames created %u flows", flow_count(e) - before);
	CHECK(counter(e, FL_CNT_TRUNCATED) == trunc_before + expected,
	      "truncated counter %llu want %llu", counter(e, FL_CNT_TRUNCATED) - trunc_before,
	      expected);

	/* IPv4 header length below 5 words and a wrong version nibble. */
	pkt_build(buf, &specs[0]);
	buf[14] = 0x43;
	run_raw(e->prog_in, buf, 60);
	buf[14] = 0x65;
	run_raw(e->prog_in, buf, 60);
	CHECK(counter(e, FL_CNT_TRUNCATED) == trunc_before + expected + 2, "malformed IPv4");
	CHECK(flow_count(e) == before, "malformed IPv4 must not create flows");
}

static int ringbuf_events;
static __u64 ringbuf_bytes;

static int on_overflow(void *ctx, void *data, size_t size)
{
	const struct fl_overflow_event *ev = data;

	(void)ctx;
	if (size < sizeof(*ev))
		return 0;
	ringbuf_events++;
	ringbuf_bytes += ev->bytes;
	return 0;
}

/* A table of 4 entries and 6 flows: 2 packets overflow, are counted and handed over. */
static void test_table_full(void)
{
	struct env e;
	struct ring_buffer *rb;
	__u64 want_bytes = 0;
	int len;

	ringbuf_events = 0;
	ringbuf_bytes = 0;
	CHECK(env_open(&e, 4) == 0, "load small table");
	rb = ring_buffer__new(bpf_map__fd(e.skel->maps.overflow), on_overflow, NULL, NULL);
	CHECK(rb != NULL, "ring buffer");
	for (int i = 0; i < 6; i++) {
		struct pkt_spec s = { .family = AF_INET,
				      .proto = 17,
				      .src = "10.8.0.1",
				      .dst = "10.8.0.2",
				      .sport = (uint16_t)(100 + i),
				      .dport = 53,
				      .payload = 10 * i };

		run(e.prog_in, &s, &len);
		if (i >= 4)
			want_bytes += (__u64)(len - 14);
	}
	CHECK(flow_count(&e) == 4, "table holds %u", flow_count(&e));
	CHECK(counter(&e, FL_CNT_TABLE_FULL) == 2, "table_full %llu",
	      counter(&e, FL_CNT_TABLE_FULL));
	ring_buffer__poll(rb, 100);
	CHECK(ringbuf_events == 2 && ringbuf_bytes == want_bytes,
	      "overflow events %d bytes %llu want 2/%llu", ringbuf_events, ringbuf_bytes,
	      want_bytes);
	ring_buffer__free(rb);
	flow_bpf__destroy(e.skel);
}

static int kind_pod(void *ctx, int ifindex)
{
	(void)ctx;
	(void)ifindex;
	return IFACE_POD;
}

static const struct flow_agg *find_agg(struct flowtab *t, const char *client, uint16_t port,
				       uint8_t proto)
{
	char buf[64];

	for (const struct flow_agg *a = attrib_aggregates(flowtab_attrib(t)); a; a = a->hh.next) {
		addr_str(a->key.client, buf, sizeof(buf));
		if (strcmp(buf, client) == 0 && a->key.server_port == port && a->key.proto == proto)
			return a;
	}
	return NULL;
}

/*
 * The agent's side: kernel counters drained into aggregates, with the initiator decided by
 * SYN where there is one and by the documented heuristic where there is not (connections the
 * agent joins mid-way, UDP, ICMP), whichever direction it happens to see first.
 */
static void test_flowtab_initiator(void)
{
	struct env e;
	struct flowtab *t;
	const struct flow_agg *a;
	/* Mid-stream TCP, the server's ACK first: 10.3.0.2:45000 -> 10.3.0.9:5432. */
	struct pkt_spec tcp_rep = { .family = AF_INET,
				    .proto = 6,
				    .src = "10.3.0.9",
				    .dst = "10.3.0.2",
				    .sport = 5432,
				    .dport = 45000,
				    .tcp_flags = TCPF_ACK_BIT,
				    .payload = 300 };
	struct pkt_spec tcp_req = { .family = AF_INET,
				    .proto = 6,
				    .src = "10.3.0.2",
				    .dst = "10.3.0.9",
				    .sport = 45000,
				    .dport = 5432,
				    .tcp_flags = TCPF_ACK_BIT,
				    .payload = 100 };
	/* DNS answer seen before the query. */
	struct pkt_spec dns_ans = { .family = AF_INET,
				    .proto = 17,
				    .src = "10.3.0.53",
				    .dst = "10.3.0.2",
				    .sport = 53,
				    .dport = 40001,
				    .payload = 80 };
	struct pkt_spec dns_q = { .family = AF_INET,
				  .proto = 17,
				  .src = "10.3.0.2",
				  .dst = "10.3.0.53",
				  .sport = 40001,
				  .dport = 53,
				  .payload = 30 };
	/* Echo reply before the request. */
	struct pkt_spec echo_rep = { .family = AF_INET,
				     .proto = 1,
				     .src = "10.3.0.7",
				     .dst = "10.3.0.2",
				     .icmp_type = 0,
				     .sport = 77,
				     .payload = 8 };
	struct pkt_spec echo_req = { .family = AF_INET,
				     .proto = 1,
				     .src = "10.3.0.2",
				     .dst = "10.3.0.7",
				     .icmp_type = 8,
				     .sport = 77,
				     .payload = 8 };
	/* A SYN from the high port to the low one still makes the SYN's sender the client. */
	struct pkt_spec syn = { .family = AF_INET,
				.proto = 6,
				.src = "10.3.0.9",
				.dst = "10.3.0.2",
				.sport = 443,
				.dport = 50000,
				.tcp_flags = TCPF_SYN_BIT };
	int len_rep, len_req;

	CHECK(env_open(&e, 1024) == 0, "load");
	CHECK(flowtab_new(&t, e.flows4_fd, e.flows6_fd, e.counters_fd, 1024, 60ULL * 1000000000ULL,
			  kind_pod, NULL) == 0,
	      "flowtab");
	flowtab_set_slots(t, e.flush_fd);
	run(e.prog_eg, &tcp_rep, &len_rep);
	run(e.prog_in, &tcp_req, &len_req);
	run(e.prog_eg, &dns_ans, NULL);
	run(e.prog_in, &dns_q, NULL);
	run(e.prog_eg, &echo_rep, NULL);
	run(e.prog_in, &echo_req, NULL);
	run(e.prog_in, &syn, NULL);
	CHECK(flowtab_drain(t, 1000000000ULL) == 0, "drain");

	a = find_agg(t, "10.3.0.2", 5432, 6);
	CHECK(a && a->by_heuristic, "mid-stream TCP: ephemeral port is the client");
	if (a)
		CHECK(a->fwd.bytes == (uint64_t)(len_req - 14) &&
			      a->rev.bytes == (uint64_t)(len_rep - 14),
		      "directions: forward %llu reply %llu", (unsigned long long)a->fwd.bytes,
		      (unsigned long long)a->rev.bytes);
	CHECK(find_agg(t, "10.3.0.9", 45000, 6) == NULL, "no reversed TCP aggregate");
	CHECK(find_agg(t, "10.3.0.2", 53, 17) != NULL, "DNS: the querier is the client");
	CHECK(find_agg(t, "10.3.0.2", 0, 1) != NULL, "ICMP echo: the requester is the client");
	a = find_agg(t, "10.3.0.9", 50000, 6);
	CHECK(a && !a->by_heuristic && a->syn == 1, "SYN decides against the port heuristic");

	/* A second drain with nothing new reports nothing: counters are deltas. */
	CHECK(flowtab_drain(t, 2000000000ULL) == 0 && attrib_aggregates(flowtab_attrib(t)) == NULL,
	      "no change, no aggregates");
	flowtab_free(t);
	flow_bpf__destroy(e.skel);
}

/* Bytes of every aggregate of the last drain, both directions. */
static uint64_t drained_bytes(struct flowtab *t)
{
	uint64_t b = 0;

	for (const struct flow_agg *a = attrib_aggregates(flowtab_attrib(t)); a; a = a->hh.next)
		b += a->fwd.bytes + a->rev.bytes;
	return b;
}

/*
 * Entries leave the kernel table when they are done, not only after --idle-timeout: a
 * finished TCP connection (FIN or RST seen) after a quiet interval, and while the table is at
 * least half full any entry quiet for an interval. Nothing is lost: the bytes drained over
 * all drains equal the bytes of the frames sent, a late packet re-creates its entry.
 */
static void test_flowtab_eviction(void)
{
	const uint64_t s = 1000000000ULL;
	struct pkt_spec fin = { .family = AF_INET,
				.proto = 6,
				.src = "10.4.0.2",
				.dst = "10.4.0.9",
				.sport = 41000,
				.dport = 80,
				.tcp_flags = TCPF_ACK_BIT | TCPF_FIN_BIT,
				.payload = 20 };
	struct pkt_spec open = fin;
	struct pkt_spec udp = { .family = AF_INET,
				.proto = 17,
				.src = "10.4.0.2",
				.dst = "10.4.0.53",
				.dport = 53,
				.payload = 30 };
	const struct flowtab_stats *st;
	struct flowtab *t;
	struct env e;
	uint64_t sent = 0, drained = 0;
	int len;

	open.sport = 41001;
	open.tcp_flags = TCPF_ACK_BIT;
	CHECK(env_open(&e, 16) == 0, "load a table of 16");
	CHECK(flowtab_new(&t, e.flows4_fd, e.flows6_fd, e.counters_fd, 1024, 60 * s, kind_pod,
			  NULL) == 0,
	      "flowtab");
	flowtab_set_slots(t, e.flush_fd);
	st = flowtab_stats(t);

	/* Drain 1: a finished connection, an open one, 3 UDP flows: 5 of 16, all changed. */
	run(e.prog_in, &fin, &len), sent += (uint64_t)(len - 14);
	run(e.prog_in, &open, &len), sent += (uint64_t)(len - 14);
	for (int i = 0; i < 3; i++) {
		udp.sport = (uint16_t)(42000 + i);
		run(e.prog_in, &udp, &len), sent += (uint64_t)(len - 14);
	}
	CHECK(flowtab_drain(t, 1 * s) == 0, "drain 1");
	drained += drained_bytes(t);
	CHECK(flow_count(&e) == 5 && st->evicted == 0, "drain 1 keeps what changed: %u entries",
	      flow_count(&e));

	/* Drain 2: only the open connection moved; the finished one goes, the UDP flows stay. */
	run(e.prog_in, &open, &len), sent += (uint64_t)(len - 14);
	CHECK(flowtab_drain(t, 2 * s) == 0, "drain 2");
	drained += drained_bytes(t);
	CHECK(flow_count(&e) == 4 && st->evicted_by[FLOWTAB_EVICT_FINISHED] == 1 &&
		      st->evicted == 1,
	      "finished TCP evicted after a quiet interval: %u entries, %llu finished",
	      flow_count(&e), (unsigned long long)st->evicted_by[FLOWTAB_EVICT_FINISHED]);

	/* Its late packet (the last ACK) re-creates the entry and is counted. */
	fin.tcp_flags = TCPF_ACK_BIT;
	fin.payload = 0;
	run(e.prog_in, &fin, &len), sent += (uint64_t)(len - 14);

	/* Drain 3: 5 more UDP flows make 10 of 16 (at least half): the quiet ones go. */
	for (int i = 3; i < 8; i++) {
		udp.sport = (uint16_t)(42000 + i);
		run(e.prog_in, &udp, &len), sent += (uint64_t)(len - 14);
	}
	CHECK(flowtab_drain(t, 3 * s) == 0, "drain 3");
	drained += drained_bytes(t);
	CHECK(flow_count(&e) == 6 && st->evicted_by[FLOWTAB_EVICT_PRESSURE] == 4,
	      "pressure: the 3 quiet UDP flows and the quiet open connection go, %u entries left, "
	      "%llu for pressure",
	      flow_count(&e), (unsigned long long)st->evicted_by[FLOWTAB_EVICT_PRESSURE]);
	CHECK(drained == sent, "nothing lost: drained %llu bytes, sent %llu",
	      (unsigned long long)drained, (unsigned long long)sent);

	/* Drain 4: 6 of 16, no pressure, nothing finished: everything stays until idle. */
	CHECK(flowtab_drain(t, 4 * s) == 0, "drain 4");
	CHECK(flow_count(&e) == 6 && st->evicted == 5, "below half: quiet entries stay (%u)",
	      flow_count(&e));
	CHECK(flowtab_drain(t, 64 * s) == 0 && flow_count(&e) == 0 &&
		      st->evicted_by[FLOWTAB_EVICT_IDLE] == 6,
	      "idle timeout: the rest go (%u left)", flow_count(&e));
	flowtab_free(t);
	flow_bpf__destroy(e.skel);
}

static void run_all(void)
{
	struct env e;

	if (env_open(&e, 1024)) {
		CHECK(0, "load %s", cfg.with_ct ? "flow.bpf.o" : "flow_noct.bpf.o");
		return;
	}
	CHECK(!cfg.feat.tp_retransmit ||
		      bpf_program__fd(cfg.feat.tp_retransmit_err ?
					      e.skel->progs.flowlens_retransmit_err :
					      e.skel->progs.flowlens_retransmit) >= 0,
	      "tcp_retransmit_skb program (%s) loaded",
	      cfg.feat.tp_retransmit_err ? "sent tries only" : "every try: no result argument");
	CHECK(!cfg.feat.tp_kfree_skb ||
		      bpf_program__fd(cfg.feat.kfree_skb_reason ?
					      e.skel->progs.flowlens_drop :
					      e.skel->progs.flowlens_drop_noreason) >= 0,
	      "kfree_skb program (%s) loaded",
	      cfg.feat.kfree_skb_reason ? "with reasons" : "without reasons");
	test_ipv4_tcp_both_directions(&e);
	test_ipv4_options_and_rst(&e);
	test_clock(&e);
	test_ipv6_udp_and_ext(&e);
	test_icmp_echo_pairs(&e);
	test_vlan(&e);
	test_other_protocols(&e);
	test_truncated_and_malformed(&e);
	test_conntrack_budget(&e);
	test_http(&e);
	test_dns(&e);
	flow_bpf__destroy(e.skel);
	test_table_full();
	test_flowtab_initiator();
	test_flowtab_eviction();
	test_slots();
	test_wakeup();
	test_h2bpf();
}

int main(void)
{
	ncpus = libbpf_num_possible_cpus();
	if (geteuid() != 0) {
		printf("SKIP test-bpf: needs root (CAP_BPF) to load programs\n");
		return 77;
	}
	features_probe(&cfg.feat);
	printf("test-bpf: kernel BTF %d, conntrack kfuncs %s, kfree_skb reasons %d, "
	       "tcp_retransmit_skb %d\n",
	       cfg.feat.vmlinux_btf,
	       cfg.feat.ct_kfuncs == KFUNC_VMLINUX ? "built in" :
	       cfg.feat.ct_kfuncs == KFUNC_MODULE  ? "in module nf_conntrack" :
						     "none",
	       cfg.feat.kfree_skb_reason, cfg.feat.tp_retransmit);
	/* Every object the agent may load here: the kfunc one where usable, always the other. */
	for (cfg.with_ct = 1; cfg.with_ct >= 0; cfg.with_ct--) {
		int before = failures;

		if (cfg.with_ct && cfg.feat.ct_kfuncs == KFUNC_NONE)
			continue;
		run_all();
		printf("test-bpf: %s: %s\n", cfg.with_ct ? "flow.bpf.o" : "flow_noct.bpf.o",
		       failures == before ? "pass" : "FAIL");
	}
	printf("test-bpf: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
