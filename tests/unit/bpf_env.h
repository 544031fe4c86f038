/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The fixture of test-bpf: the flow object loaded as the agent loads it, crafted frames run
 * through its programs (BPF_PROG_TEST_RUN), and its tables and counters read back.
 */
#ifndef FLOWLENS_TEST_BPF_ENV_H
#define FLOWLENS_TEST_BPF_ENV_H

#include <stdint.h>
#include "flow.h"
#include "flow.skel.h"
#include "pkt.h"
#include "probe.h"

extern int ncpus;

/*
 * Which object and tracepoint programs are loaded: every test runs for each object the agent
 * may load on this kernel (the kfunc one only where the kfuncs are usable), with the
 * tracepoint programs the agent would load with it.
 */
struct test_cfg {
	int with_ct;
	struct features feat;
};
extern struct test_cfg cfg;

struct env {
	struct flow_bpf *skel;
	int prog_in;
	int prog_eg;
	int flows4_fd;
	int flows6_fd;
	int counters_fd;
	int flush_fd; /* flowlens_cache_flush: the per-CPU slots are on in every test */
};

/* Loads the object with tables of max_entries, the per-CPU slots on. 0 or -errno. */
int env_open(struct env *e, unsigned int max_entries);
/* The same with the agent's samples wake-up threshold (samples_wakeup_bytes). */
int env_open_wakeup(struct env *e, unsigned int max_entries, __u32 wakeup_bytes);
/*
 * A DNS query from 10.8.1.2:40053 to 10.96.0.10:53 (id 0x1234, www.ex.com AAAA) and its
 * answer (NXDOMAIN): run at ingress then egress, one sample.
 */
extern const struct pkt_spec dns_query, dns_answer;
/* What the agent does before every drain: the slots' packets into the tables. */
void flush(struct env *e);
/* Runs one frame through prog; returns the program's return value. */
int run(int prog, const struct pkt_spec *s, int *len_out);
#define RUN_REFUSED (-1000)
/* Like run() for raw bytes; RUN_REFUSED when the kernel refuses a frame this short. */
int run_raw(int prog, const uint8_t *buf, int len);
void addr_key(__u32 out[4], int family, const char *s);
/* The flow key a frame built from s has at a hook (dir) of the loopback device. */
struct fl_key make_key(const struct pkt_spec *s, __u8 dir);
/* Flushes the slots, then reads a flow from its family's table; 0 when found. */
int read_flow(struct env *e, const struct fl_key *k, struct fl_stats *out);
/* Reads a flow from its family's table as it is (no flush); 0 when found. */
int read_flow_raw(struct env *e, const struct fl_key *k, struct fl_stats *out);
/* A datapath counter summed over CPUs. */
__u64 counter(struct env *e, __u32 idx);
unsigned int map_count(int fd);
/* Entries in both tables, after a flush. */
unsigned int flow_count(struct env *e);

#endif
