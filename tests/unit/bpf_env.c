// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The fixture of test-bpf (bpf_env.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bpf_env.h"
#include "flow_noct.skel.h"
#include "flowtab.h"

int ncpus;
struct test_cfg cfg;

/* id 0x1234, RD; one question www.ex.com AAAA IN */
static const char dns_q[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
			    "\x03www\x02"
			    "ex\x03"
			    "com\x00\x00\x1c\x00\x01";
/* the answer: QR, RD, RA, rcode 3 (NXDOMAIN) */
static const char dns_a[] = "\x12\x34\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00"
			    "\x03www\x02"
			    "ex\x03"
			    "com\x00\x00\x1c\x00\x01";
const struct pkt_spec dns_query = { .family = AF_INET,
				    .proto = 17,
				    .src = "10.8.1.2",
				    .dst = "10.96.0.10",
				    .sport = 40053,
				    .dport = 53,
				    .data = dns_q,
				    .data_len = sizeof(dns_q) - 1,
				    .payload = sizeof(dns_q) - 1 };
const struct pkt_spec dns_answer = { .family = AF_INET,
				     .proto = 17,
				     .src = "10.96.0.10",
				     .dst = "10.8.1.2",
				     .sport = 53,
				     .dport = 40053,
				     .data = dns_a,
				     .data_len = sizeof(dns_a) - 1,
				     .payload = sizeof(dns_a) - 1 };

int env_open(struct env *e, unsigned int max_entries)
{
	return env_open_wakeup(e, max_entries, 0);
}

int env_open_wakeup(struct env *e, unsigned int max_entries, __u32 wakeup_bytes)
{
	e->skel = cfg.with_ct ? flow_bpf__open() : (struct flow_bpf *)flow_noct_bpf__open();
	if (!e->skel)
		return -errno;
	bpf_program__set_autoload(e->skel->progs.flowlens_retransmit,
				  cfg.feat.tp_retransmit && !cfg.feat.tp_retransmit_err);
	bpf_program__set_autoload(e->skel->progs.flowlens_retransmit_err,
				  cfg.feat.tp_retransmit && cfg.feat.tp_retransmit_err);
	bpf_program__set_autoload(e->skel->progs.flowlens_drop,
				  cfg.feat.tp_kfree_skb && cfg.feat.kfree_skb_reason);
	bpf_program__set_autoload(e->skel->progs.flowlens_drop_noreason,
				  cfg.feat.tp_kfree_skb && !cfg.feat.kfree_skb_reason);
	bpf_map__set_max_entries(e->skel->maps.flows4, max_entries);
	bpf_map__set_max_entries(e->skel->maps.flows6, max_entries);
	bpf_map__set_max_entries(e->skel->maps.overflow, 64 * 1024);
	e->skel->rodata->ct_enabled = (__u8)cfg.with_ct; /* the conntrack path must pass too */
	e->skel->rodata->http_enabled = 1;
	e->skel->rodata->dns_enabled = 1;
	e->skel->rodata->samples_wakeup_bytes = wakeup_bytes;
	if (flow_bpf__load(e->skel)) {
		flow_bpf__destroy(e->skel);
		return -EINVAL;
	}
	e->prog_in = bpf_program__fd(e->skel->progs.flowlens_ingress);
	e->prog_eg = bpf_program__fd(e->skel->progs.flowlens_egress);
	e->flows4_fd = bpf_map__fd(e->skel->maps.flows4);
	e->flows6_fd = bpf_map__fd(e->skel->maps.flows6);
	e->counters_fd = bpf_map__fd(e->skel->maps.counters);
	e->flush_fd = bpf_program__fd(e->skel->progs.flowlens_cache_flush);
	if (flowtab_flush_slots(e->flush_fd, ncpus, NULL)) {
		fprintf(stderr, "flushing the per-CPU slots: %s\n", strerror(errno));
		flow_bpf__destroy(e->skel);
		return -EINVAL;
	}
	e->skel->bss->cache_on = 1;
	return 0;
}

/* What the agent does before every drain: the slots' packets into the tables. */
void flush(struct env *e)
{
	if (flowtab_flush_slots(e->flush_fd, ncpus, NULL)) {
		fprintf(stderr, "flushing the per-CPU slots failed\n");
		exit(2);
	}
}

/* Runs one frame through prog; returns the program's return value. */
int run(int prog, const struct pkt_spec *s, int *len_out)
{
	uint8_t buf[1600];
	int len = pkt_build(buf, s);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
		    .repeat = 1);

	if (len_out)
		*len_out = len;
	if (bpf_prog_test_run_opts(prog, &opts)) {
		fprintf(stderr, "test_run: %s\n", strerror(errno));
		exit(2);
	}
	return (int)opts.retval;
}

/*
 * Like run() for raw bytes. Recent kernels refuse to test-run an IPv4/IPv6 frame shorter
 * than its fixed L3 header (the stack would drop it before TC anyway); that is reported as
 * RUN_REFUSED so the caller can leave such cuts out.
 */
int run_raw(int prog, const uint8_t *buf, int len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(prog, &opts)) {
		if (errno == EINVAL)
			return RUN_REFUSED;
		fprintf(stderr, "test_run: %s\n", strerror(errno));
		exit(2);
	}
	return (int)opts.retval;
}

void addr_key(__u32 out[4], int family, const char *s)
{
	memset(out, 0, 16);
	if (family == AF_INET) {
		out[2] = htonl(0xffff);
		inet_pton(AF_INET, s, &out[3]);
	} else {
		inet_pton(AF_INET6, s, out);
	}
}

struct fl_key make_key(const struct pkt_spec *s, __u8 dir)
{
	struct fl_key k;

	memset(&k, 0, sizeof(k));
	addr_key(k.saddr, s->family, s->src);
	addr_key(k.daddr, s->family, s->dst);
	k.sport = s->sport;
	k.dport = s->dport;
	k.proto = s->proto;
	k.dir = dir;
	k.ifindex = 1; /* test_run runs on the loopback device */
	return k;
}

/* Reads a flow from its family's table; returns 0 when found. */
int read_flow(struct env *e, const struct fl_key *k, struct fl_stats *out)
{
	flush(e);
	return read_flow_raw(e, k, out);
}

int read_flow_raw(struct env *e, const struct fl_key *k, struct fl_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (k->saddr[0] == 0 && k->saddr[1] == 0 && k->saddr[2] == htonl(0xffff)) {
		struct fl_key4 k4 = { .saddr = k->saddr[3],
				      .daddr = k->daddr[3],
				      .ifindex = k->ifindex,
				      .sport = k->sport,
				      .dport = k->dport,
				      .proto = k->proto,
				      .dir = k->dir };

		return bpf_map_lookup_elem(e->flows4_fd, &k4, out) ? -errno : 0;
	}
	return bpf_map_lookup_elem(e->flows6_fd, k, out) ? -errno : 0;
}

__u64 counter(struct env *e, __u32 idx)
{
	__u64 vals[ncpus];
	__u64 sum = 0;

	if (bpf_map_lookup_elem(e->counters_fd, &idx, vals))
		return ~0ULL;
	for (int i = 0; i < ncpus; i++)
		sum += vals[i];
	return sum;
}

unsigned int map_count(int fd)
{
	struct fl_key k, next;
	unsigned int n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

unsigned int flow_count(struct env *e)
{
	flush(e);
	return map_count(e->flows4_fd) + map_count(e->flows6_fd);
}
