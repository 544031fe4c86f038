// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-bench: ns per run of the flow program against a no-op TC program, both through
 * BPF_PROG_TEST_RUN with the same frames in the same run. Only the ratios are meant to be
 * compared across machines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>
#include <poll.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "attach.h"
#include "flowtab.h"
#include "flow.h"
#include "flow.skel.h"
#include "noop.skel.h"
#include "../tests/unit/pkt.h"

#define ROUNDS 7

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median over ROUNDS of the kernel's average ns per run. */
static double mono_s(void);

static double time_prog(int prog, const uint8_t *buf, int len, int repeat)
{
	double r[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
			    .repeat = repeat);

		double t0 = mono_s();

		if (bpf_prog_test_run_opts(prog, &opts)) {
			fprintf(stderr, "test_run: %s\n", strerror(errno));
			exit(1);
		}
		/*
		 * The kernel reports whole ns per run (1 ns is 7% of a no-op); the wall clock
		 * over the call has fractions, and one syscall is nothing over 10^6 runs.
		 */
		r[i] = repeat >= 100000 ? (mono_s() - t0) * 1e9 / repeat : opts.duration;
	}
	qsort(r, ROUNDS, sizeof(r[0]), cmp_double);
	return r[ROUNDS / 2];
}

/*
 * A flow's first packet: n flows of proto (6: a SYN to port 80, 17: a DNS query), each new,
 * one run each: the insert path. The tables have the agent's default size (65,536 entries);
 * the rounds of both protocols fill them to 2 x 7 x 3,000 = 42,000 (64%), a busy node's table.
 */
static double time_new_flows(int prog, int n, uint8_t proto)
{
	double r[ROUNDS];
	uint8_t buf[1600];
	static uint32_t next = 1;

	for (int i = 0; i < ROUNDS; i++) {
		uint64_t sum = 0;

		for (int f = 0; f < n; f++) {
			char src[32];
			uint32_t id = next++;
			struct pkt_spec s = { .family = AF_INET,
					      .proto = proto,
					      .dst = "10.1.2.3",
					      .sport = (uint16_t)(1024 + id % 60000),
					      .dport = proto == 6 ? 80 : 53,
					      .tcp_flags = proto == 6 ? TCPF_SYN_BIT : 0,
					      .payload = proto == 6 ? 0 : 40 };
			int len;

			snprintf(src, sizeof(src), "10.%u.%u.%u", 100 + (id >> 16) % 100,
				 (id >> 8) & 0xff, id & 0xff);
			s.src = src;
			len = pkt_build(buf, &s);
			LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf,
				    .data_size_in = (__u32)len, .repeat = 1);
			if (bpf_prog_test_run_opts(prog, &opts)) {
				fprintf(stderr, "test_run: %s\n", strerror(errno));
				exit(1);
			}
			sum += opts.duration;
		}
		r[i] = (double)sum / n;
	}
	qsort(r, ROUNDS, sizeof(r[0]), cmp_double);
	return r[ROUNDS / 2];
}

/* The per-CPU last-flow slots, on as the agent turns them on unless FLOWLENS_FLOW_SLOTS=off. */
static int slots_on(void)
{
	const char *v = getenv("FLOWLENS_FLOW_SLOTS");

	return !v || strcmp(v, "off") != 0;
}

/*
 * The flow object for BPF_PROG_TEST_RUN, tables at the agent's default size (their bucket
 * array and elements decide the cache misses): with every signal and the conntrack kfuncs as
 * the agent runs it by default, or bare (--signals none --translation off).
 */
static struct flow_bpf *open_flow(int signals)
{
	struct flow_bpf *f = flow_bpf__open();

	if (!f)
		return NULL;
	bpf_map__set_max_entries(f->maps.flows4, 65536);
	bpf_map__set_max_entries(f->maps.flows6, 65536);
	f->rodata->ct_enabled = (__u8)signals;
	f->rodata->http_enabled = (__u8)signals;
	f->rodata->dns_enabled = (__u8)signals;
	if (flow_bpf__load(f)) {
		flow_bpf__destroy(f);
		return NULL;
	}
	f->bss->cache_on = (__u8)slots_on();
	return f;
}

static unsigned int prog_id(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int kind_pod(void *ctx, int ifindex)
{
	(void)ctx;
	(void)ifindex;
	return IFACE_POD;
}

/* The agent's overflow path: packets the full table handed over, merged at the drain. */
static int hold_overflow(void *ctx, void *data, size_t len)
{
	if (len >= sizeof(struct fl_overflow_event))
		flowtab_overflow(ctx, data);
	return 0;
}

/*
 * Whether FLOWLENS_BENCH_SIGNALS (a comma list of ct, http, dns, or "none"; unset: all) turns
 * NAME on. -1 when the list names something else (a typo must not run a silently bare holder).
 */
static int bench_signal(const char *list, const char *name)
{
	char buf[64], *tok, *save = NULL;
	int on = 0;

	if (!list)
		return 1;
	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "ct") && strcmp(tok, "http") && strcmp(tok, "dns") &&
		    strcmp(tok, "none"))
			return -1;
		if (strcmp(tok, name) == 0)
			on = 1;
	}
	return on;
}

/* HTTP and DNS samples: taken off the ring as the agent takes them; not aggregated here. */
static int hold_sample(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/*
 * `flowlens-bench attach IFNAME noop|floor|flowlens [tcx|tc]`: attaches one program pair the
 * way the agent does and holds it until SIGINT/SIGTERM, printing the program ids, so that a
 * live benchmark can compare both under bpf_stats on the same interface. flowlens runs with
 * every signal on (or those FLOWLENS_BENCH_SIGNALS lists) and its tables drained as the
 * agent drains them (the agent's drain code, table size 65,536 or FLOWLENS_BENCH_TABLE),
 * every FLOWLENS_BENCH_DRAIN_MS (default 1000),
 * and the overflow ring buffer taken as it fills, as the agent does (per-CPU last-flow slots
 * on, flushed before each drain, unless FLOWLENS_FLOW_SLOTS=off); at exit it prints to
 * stderr what the drains saw: entries evicted by reason and packets that overflowed.
 */
static int attach_and_hold(const char *ifname, const char *which, const char *mode)
{
	struct attach_ctx ctx = { .mode = ATTACH_TCX, .tc_priority = 1 };
	const char *drain_env = getenv("FLOWLENS_BENCH_DRAIN_MS");
	long drain_ms = drain_env ? atol(drain_env) : 1000;
	const char *table_env = getenv("FLOWLENS_BENCH_TABLE");
	const char *signals = getenv("FLOWLENS_BENCH_SIGNALS");
	struct flow_bpf *flow = NULL;
	struct noop_bpf *noop = NULL;
	struct flowtab *tab = NULL;
	struct ring_buffer *rb = NULL;
	struct attachment att;
	int ifindex = (int)if_nametoindex(ifname), err, sig;
	double next_drain;
	sigset_t mask;

	if (!ifindex) {
		fprintf(stderr, "no interface %s\n", ifname);
		return 1;
	}
	if (mode && strcmp(mode, "tc") == 0)
		ctx.mode = ATTACH_TC;
	if (strcmp(which, "noop") == 0 || strcmp(which, "floor") == 0) {
		noop = noop_bpf__open_and_load();
		if (!noop)
			return 1;
		ctx.prog_ingress = ctx.prog_egress = bpf_program__fd(
			which[0] == 'n' ? noop->progs.noop_tc : noop->progs.floor_tc);
	} else {
		flow = flow_bpf__open();
		if (!flow)
			return 1;
		if (table_env && atol(table_env) > 0) {
			bpf_map__set_max_entries(flow->maps.flows4, (__u32)atol(table_env));
			bpf_map__set_max_entries(flow->maps.flows6, (__u32)atol(table_env));
		}
		/* As the agent runs it by default, or only the datapath features that
		 * FLOWLENS_BENCH_SIGNALS lists (ct, http, dns; "none": flow counts only, the
		 * features a default NetObserv agent has). */
		if (bench_signal(signals, "ct") < 0) {
			fprintf(stderr,
				"FLOWLENS_BENCH_SIGNALS: a comma list of ct, http, dns, or none\n");
			return 1;
		}
		flow->rodata->ct_enabled = (__u8)bench_signal(signals, "ct");
		flow->rodata->http_enabled = (__u8)bench_signal(signals, "http");
		flow->rodata->dns_enabled = (__u8)bench_signal(signals, "dns");
		/* The agent's wake-up threshold; the samples are taken (and dropped) as it takes them. */
		flow->rodata->samples_wakeup_bytes = bpf_map__max_entries(flow->maps.samples) / 2;
		if (flow_bpf__load(flow))
			return 1;
		ctx.prog_ingress = bpf_program__fd(flow->progs.flowlens_ingress);
		ctx.prog_egress = bpf_program__fd(flow->progs.flowlens_egress);
		if (flowtab_new(&tab, bpf_map__fd(flow->maps.flows4),
				bpf_map__fd(flow->maps.flows6), bpf_map__fd(flow->maps.counters),
				65536, 60ULL * 1000000000ULL, kind_pod, NULL))
			return 1;
		flowtab_set_translation(tab, bpf_map__fd(flow->maps.nat), NULL, NULL);
		if (slots_on()) {
			flow->bss->cache_on = 1;
			flowtab_set_slots(tab, bpf_program__fd(flow->progs.flowlens_cache_flush));
		}
		rb = ring_buffer__new(bpf_map__fd(flow->maps.overflow), hold_overflow, tab, NULL);
		if (!rb || ring_buffer__add(rb, bpf_map__fd(flow->maps.samples), hold_sample, NULL))
			return 1;
		flowtab_set_dns_map(tab, bpf_map__fd(flow->maps.dns));
	}
	err = attach_iface(&ctx, ifindex, &att);
	if (err) {
		fprintf(stderr, "attach %s: %s\n", ifname, strerror(-err));
		return 1;
	}
	printf("%u %u\n", prog_id(ctx.prog_ingress), prog_id(ctx.prog_egress));
	fflush(stdout);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	next_drain = mono_s() + (double)drain_ms / 1000;
	for (;;) {
		struct timespec tick = { .tv_nsec = 50 * 1000000 };

		sig = sigtimedwait(&mask, NULL, &tick);
		if (sig >= 0)
			break;
		if (rb)
			ring_buffer__consume(rb);
		if (tab && mono_s() >= next_drain) {
			flowtab_drain(tab, (uint64_t)(mono_s() * 1e9));
			next_drain += (double)drain_ms / 1000;
		}
	}
	attach_detach(&ctx, ifindex, &att, 0);
	if (tab) {
		const struct flowtab_stats *st = flowtab_stats(tab);

		flowtab_drain(tab, (uint64_t)(mono_s() * 1e9));
		fprintf(stderr,
			"  flowlens tables: %llu drains, evicted %llu finished / %llu pressure / "
			"%llu idle, %llu packets overflowed (table full)\n",
			(unsigned long long)st->drains,
			(unsigned long long)st->evicted_by[FLOWTAB_EVICT_FINISHED],
			(unsigned long long)st->evicted_by[FLOWTAB_EVICT_PRESSURE],
			(unsigned long long)st->evicted_by[FLOWTAB_EVICT_IDLE],
			(unsigned long long)st->datapath[FL_CNT_TABLE_FULL]);
		flowtab_free(tab);
	}
	ring_buffer__free(rb);
	flow_bpf__destroy(flow);
	noop_bpf__destroy(noop);
	return 0;
}

/* Sends one UDP packet of flow i through prog (distinct source address per flow). */
static void send_flow(int prog, uint32_t i, uint8_t *buf)
{
	char src[32];
	struct pkt_spec s = { .family = AF_INET,
			      .proto = 17,
			      .dst = "10.1.2.3",
			      .sport = (uint16_t)(1024 + i % 50000),
			      .dport = 53,
			      .payload = 40 };
	int len;

	snprintf(src, sizeof(src), "10.%u.%u.%u", 100 + (i >> 16) % 100, (i >> 8) & 0xff, i & 0xff);
	s.src = src;
	len = pkt_build(buf, &s);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
		    .repeat = 1);
	bpf_prog_test_run_opts(prog, &opts);
}

/*
 * `flowlens-bench dns-storm SERVER SECONDS [PARALLEL]`: a DNS query storm as short-lived
 * clients make it: every query from a new socket (a new source port, so a new flow in both
 * directions), PARALLEL queries in flight, each waited for up to 1 s. Prints "sent answered".
 */
static int dns_storm(const char *server, double seconds, int parallel)
{
	static const uint8_t query[] = { 0x12, 0x34, 0x01, 0x00, 0,   1,   0,	0,   0, 0,
					 0,    0,    5,	   'b',	 'e', 'n', 'c', 'h', 5, 'l',
					 'o',  'c',  'a',  'l',	 0,   0,   1,	0,   1 };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct pollfd pfd[64];
	double end = mono_s() + seconds;
	unsigned long sent = 0, answered = 0;
	uint8_t buf[512];

	if (parallel < 1 || parallel > 64 || inet_pton(AF_INET, server, &to.sin_addr) != 1) {
		fprintf(stderr, "usage: flowlens-bench dns-storm IPV4 SECONDS [1-64]\n");
		return 2;
	}
	for (int i = 0; i < parallel; i++)
		pfd[i].fd = -1;
	while (mono_s() < end) {
		for (int i = 0; i < parallel; i++) {
			if (pfd[i].fd >= 0)
				continue;
			pfd[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
			pfd[i].events = POLLIN;
			if (pfd[i].fd < 0 || sendto(pfd[i].fd, query, sizeof(query), 0,
						    (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (pfd[i].fd >= 0)
					close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			sent++;
		}
		if (poll(pfd, (nfds_t)parallel, 1000) <= 0) {
			/* Nothing answered within 1 s: give those queries up. */
			for (int i = 0; i < parallel; i++) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
			continue;
		}
		for (int i = 0; i < parallel; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & POLLIN))
				continue;
			if (recv(pfd[i].fd, buf, sizeof(buf), 0) > 0)
				answered++;
			close(pfd[i].fd);
			pfd[i].fd = -1;
		}
	}
	for (int i = 0; i < parallel; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	printf("%lu %lu\n", sent, answered);
	return 0;
}

/*
 * What the flush of the per-CPU slots adds to every drain: one BPF_PROG_TEST_RUN per CPU (an
 * IPI for every CPU but the agent's own), each slot holding a flow's packets.
 */
static int slot_flush_bench(void)
{
	struct flow_bpf *flow = flow_bpf__open();
	int ncpus = libbpf_num_possible_cpus(), rounds = 2000, prog, fprog;
	uint8_t buf[1600];
	double t0, t = 0;

	if (!flow || flow_bpf__load(flow))
		return 1;
	flow->bss->cache_on = 1;
	prog = bpf_program__fd(flow->progs.flowlens_ingress);
	fprog = bpf_program__fd(flow->progs.flowlens_cache_flush);
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 12; i++)
			send_flow(prog, 7, buf); /* settles, then fills this CPU's slot */
		t0 = mono_s();
		if (flowtab_flush_slots(fprog, ncpus, NULL))
			return 1;
		t += mono_s() - t0;
	}
	printf("slot flush before each drain: %.1f us (%d CPUs, one slot holding packets)\n",
	       t * 1e6 / rounds, ncpus);
	flow_bpf__destroy(flow);
	return 0;
}

/*
 * `flowlens-bench drain`: the agent's user-space cost per interval, flowtab_drain() over
 * kernel tables holding N flows, for N = 1k, 10k, 50k: a drain where every flow changed (and
 * is new to the agent), a steady one where a tenth of them did (the table under half full, so
 * nothing is evicted), and one that evicts them all (their idle timeout passed: the cost of
 * removing entries, the same per entry as for finished or pressure evictions).
 */
static int drain_bench(void)
{
	const uint32_t sizes[] = { 1000, 10000, 50000 };
	uint8_t buf[1600];

	printf("agent drain (user space, one thread): ms per drain\n");
	printf("%8s %14s %16s %14s %14s\n", "flows", "all new", "10% changed", "us per flow",
	       "evict all");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint32_t n = sizes[si];
		struct flow_bpf *flow = flow_bpf__open();
		struct flowtab *tab;
		double t0, t_new, t_steady, t_evict;
		int prog;

		bpf_map__set_max_entries(flow->maps.flows4, 2 * n + 1024);
		bpf_map__set_max_entries(flow->maps.flows6, 1024);
		if (flow_bpf__load(flow))
			return 1;
		prog = bpf_program__fd(flow->progs.flowlens_ingress);
		for (uint32_t i = 0; i < n; i++)
			send_flow(prog, i, buf);
		if (flowtab_new(&tab, bpf_map__fd(flow->maps.flows4),
				bpf_map__fd(flow->maps.flows6), bpf_map__fd(flow->maps.counters), n,
				600ULL * 1000000000ULL, kind_pod, NULL))
			return 1;
		t0 = mono_s();
		flowtab_drain(tab, 1000000000ULL);
		t_new = mono_s() - t0;
		for (uint32_t i = 0; i < n; i += 10)
			send_flow(prog, i, buf);
		t0 = mono_s();
		flowtab_drain(tab, 2000000000ULL);
		t_steady = mono_s() - t0;
		t0 = mono_s();
		flowtab_drain(tab, 700ULL * 1000000000ULL);
		t_evict = mono_s() - t0;
		printf("%8u %14.2f %16.2f %14.2f %14.2f\n", n, t_new * 1e3, t_steady * 1e3,
		       t_steady * 1e6 / n, t_evict * 1e3);
		flowtab_free(tab);
		flow_bpf__destroy(flow);
	}
	return slot_flush_bench();
}

/* `flowlens-bench tcx-query IFNAME ingress|egress`: program ids of the tcx chain, in order. */
static int tcx_query(const char *ifname, const char *dir)
{
	__u32 ids[64], cnt = 64, flags = 0;
	int ifindex = (int)if_nametoindex(ifname);

	if (!ifindex) {
		fprintf(stderr, "no interface %s\n", ifname);
		return 1;
	}
	/* target_fd and target_ifindex share a slot of the attr. */
	if (bpf_prog_query(ifindex, strcmp(dir, "egress") == 0 ? 47 : 46, 0, &flags, ids, &cnt)) {
		fprintf(stderr, "query %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	for (__u32 i = 0; i < cnt; i++)
		printf("%u%s", ids[i], i + 1 < cnt ? " " : "\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct pkt_spec tcp_data = { .family = AF_INET,
				     .proto = 6,
				     .src = "10.1.1.2",
				     .dst = "10.1.2.3",
				     .sport = 40000,
				     .dport = 80,
				     .tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				     .payload = 1400 };
	struct pkt_spec tcp_syn = { .family = AF_INET,
				    .proto = 6,
				    .src = "10.1.1.2",
				    .dst = "10.1.2.3",
				    .sport = 40001,
				    .dport = 80,
				    .tcp_flags = TCPF_SYN_BIT };
	struct pkt_spec udp = { .family = AF_INET,
				.proto = 17,
				.src = "10.1.1.2",
				.dst = "10.1.2.3",
				.sport = 40002,
				.dport = 9000,
				.payload = 40 };
	struct pkt_spec dns = udp;
	struct pkt_spec tcp6 = { .family = AF_INET6,
				 .proto = 6,
				 .src = "fd00:1:1::2",
				 .dst = "fd00:1:2::3",
				 .sport = 40003,
				 .dport = 443,
				 .tcp_flags = TCPF_ACK_BIT,
				 .payload = 1200 };
	struct {
		const char *name;
		struct pkt_spec *spec;
	} cases[] = {
		{ "tcp established data (IPv4)", &tcp_data },
		{ "tcp SYN, known flow (IPv4)", &tcp_syn },
		{ "udp (IPv4)", &udp },
		{ "udp to port 53 (DNS path)", &dns },
		{ "tcp established data (IPv6)", &tcp6 },
	};
	int repeat;
	struct flow_bpf *flow, *bare;
	struct noop_bpf *noop;
	uint8_t buf[1600];

	dns.dport = 53;
	int fprog, nprog, lprog, mprog, cprog;
	double worst = 0;

	if (argc >= 4 && strcmp(argv[1], "dns-storm") == 0)
		return dns_storm(argv[2], atof(argv[3]), argc > 4 ? atoi(argv[4]) : 16);
	if (geteuid() != 0) {
		fprintf(stderr, "flowlens-bench: needs root to load BPF programs\n");
		return 1;
	}
	if (argc >= 2 && strcmp(argv[1], "drain") == 0)
		return drain_bench();
	if (argc >= 4 && strcmp(argv[1], "tcx-query") == 0)
		return tcx_query(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "attach") == 0)
		return attach_and_hold(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
	repeat = argc > 1 ? atoi(argv[1]) : 2000000;
	if (repeat <= 0) {
		fprintf(stderr,
			"usage: flowlens-bench [REPEAT] | attach IFNAME noop|floor|flowlens [tcx|tc] | "
			"drain | dns-storm IPV4 SECONDS [PARALLEL]\n");
		return 2;
	}
	flow = open_flow(1);
	bare = open_flow(0);
	noop = noop_bpf__open();
	if (noop)
		bpf_map__set_max_entries(noop->maps.floor_flows, 65536);
	if (!flow || !bare || !noop || noop_bpf__load(noop)) {
		fprintf(stderr, "loading the BPF objects failed\n");
		return 1;
	}
	fprog = bpf_program__fd(flow->progs.flowlens_ingress);
	mprog = bpf_program__fd(bare->progs.flowlens_ingress);
	nprog = bpf_program__fd(noop->progs.noop_tc);
	lprog = bpf_program__fd(noop->progs.floor_tc);
	cprog = bpf_program__fd(noop->progs.cache_tc);

	printf("BPF_PROG_TEST_RUN, %d repeats, median of %d rounds, %d CPUs\n", repeat, ROUNDS,
	       libbpf_num_possible_cpus());
	printf("floor: the least a flow table in a shared BPF hash does; cache: the floor behind a\n"
	       "per-CPU last-flow slot (both bpf/noop.bpf.c); bare: flowlens with --signals none\n"
	       "--translation off; flowlens: every signal and the conntrack kfuncs. ns, then / no-op\n");
	printf("%-28s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n", "packet", "noop", "floor", "cache",
	       "bare", "flens", "floor", "cache", "bare", "flens");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int len = pkt_build(buf, cases[i].spec);
		double n, l, c, m, f;

		/* the flow exists from here on */
		time_prog(fprog, buf, len, 1);
		time_prog(mprog, buf, len, 1);
		time_prog(lprog, buf, len, 1);
		n = time_prog(nprog, buf, len, repeat);
		l = time_prog(lprog, buf, len, repeat);
		c = time_prog(cprog, buf, len, repeat);
		m = time_prog(mprog, buf, len, repeat);
		f = time_prog(fprog, buf, len, repeat);
		printf("%-28s %6.1f %6.1f %6.1f %6.1f %6.1f %5.2fx %5.2fx %5.2fx %5.2fx\n",
		       cases[i].name, n, l, c, m, f, l / n, c / n, m / n, f / n);
		if (f / n > worst)
			worst = f / n;
	}
	for (int p = 0; p < 2; p++) {
		uint8_t proto = p ? 17 : 6;
		double n = time_new_flows(nprog, 3000, proto);
		double l = time_new_flows(lprog, 3000, proto);
		double m = time_new_flows(mprog, 3000, proto);
		double f = time_new_flows(fprog, 3000, proto);

		printf("%-28s %6.1f %6.1f %6s %6.1f %6.1f %5.2fx %6s %5.2fx %5.2fx\n",
		       p ? "new flow UDP/53 (insert)" : "new flow SYN (insert)", n, l, "-", m, f,
		       l / n, "-", m / n, f / n);
	}
	printf("worst per-packet ratio on known flows: %.2fx\n", worst);
	flow_bpf__destroy(flow);
	flow_bpf__destroy(bare);
	noop_bpf__destroy(noop);
	return 0;
}
