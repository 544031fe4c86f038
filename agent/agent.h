/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent process's state, shared by its parts (not a library interface):
 *   main.c    startup, the interval loop, the drain and what it feeds (JSON, exporter)
 *   ifaces.c  interfaces as they come and go: attach, detach, pod routes, reconcile
 *   load.c    probing the kernel, loading the programs with fallbacks, tracepoints, clocks
 *   serve.c   /metrics, /healthz and /v1/flows
 */
#ifndef FLOWLENS_AGENT_H
#define FLOWLENS_AGENT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <net/if.h>
#include <uthash.h>
#include "attach.h"
#include "ctquery.h"
#include "ethstats.h"
#include "export.h"
#include "flowtab.h"
#include "h2.h"
#include "httpd.h"
#include "ifwatch.h"
#include "options.h"
#include "probe.h"

struct iface {
	int ifindex;
	char name[IF_NAMESIZE];
	enum iface_kind kind;
	struct attachment att;
	struct ethstats eth; /* node interfaces: --ethtool-stats, read at every drain */
	time_t reorder_window; /* legacy TC: start of the minute reorders are counted in */
	unsigned int reorders; /* ...and how many happened in it */
	UT_hash_handle hh;
};

/* An interface that matched but could not be attached: retried at each reconcile, logged once. */
struct failed_iface {
	int ifindex;
	char name[IF_NAMESIZE];
	UT_hash_handle hh;
};

struct route_ent {
	struct {
		int family;
		unsigned char addr[16];
		int ifindex;
	} key;
	UT_hash_handle hh;
};

/* Bounds of flowlens_agent_drain_duration_seconds (serve.c). */
#define N_DRAIN_BOUNDS 12
extern const double drain_bounds[N_DRAIN_BOUNDS];

struct agent {
	struct agent_options opts;
	struct flow_bpf *skel;
	struct attach_ctx actx;
	struct ifwatch *watch;
	struct flowtab *tab;
	struct h2 *h2; /* HTTP/2 header blocks to requests (with the HTTP signal) */
	struct httpd *http;
	struct ring_buffer *rb;
	struct exporter *exp;
	struct ctquery *ctq;
	struct bpf_link *tp_links[2]; /* retransmit and kfree_skb tracepoints */
	char *drop_names[DROP_REASONS_MAX]; /* enum skb_drop_reason, from kernel BTF */
	enum xlate_mode xlate; /* what runs: XLATE_KFUNC, XLATE_NETLINK or XLATE_OFF */
	struct features feat; /* what the kernel offers, and what runs */
	int drop_unknown; /* drops counted without reasons (kernels before 5.17) */
	char node[256];

	/* Shared with the HTTP thread. */
	pthread_mutex_t lock;
	struct iface *ifaces;
	struct failed_iface *failed;
	struct route_ent *routes;
	int reconciling; /* a periodic resync runs: what it changes was missed before */
	uint64_t reconciles;
	uint64_t reconcile_errors;
	uint64_t reconcile_repairs;
	uint64_t last_reconcile_ms;
	char *flows_json;
	uint64_t attach_failures;
	uint64_t tc_reorders;
	uint64_t ifaces_added;
	uint64_t ifaces_removed;
	uint64_t drain_errors;
	uint64_t output_errors;
	uint64_t export_errors;
	int ethtool_sock; /* for SIOCETHTOOL; -1 if none */
	uint64_t ethtool_errors;
	uint64_t flows_refused[2]; /* /v1/flows: [0] no or wrong bearer token, [1] not loopback */
	uint64_t drain_hist[N_DRAIN_BOUNDS + 1];
	double drain_sum;
	double last_drain_seconds;
	int ready;
	uint32_t hz;
	uint64_t interval_start_ms;
};

struct bpf_program;

/* ifaces.c */
extern const struct ifwatch_ops ifaces_watch_ops;
/* Kind of a watched interface (enum iface_kind), or -1 (flowtab_kind_fn). */
int ifaces_kind_of(void *ctx, int ifindex);
/* Compares attachments with a full dump when --reconcile-interval has passed. */
void ifaces_reconcile(struct agent *a);

/* load.c */
/* Opens and loads the programs the kernel and the options allow, narrowing on refusal. */
int load_programs(struct agent *a);
void load_drop_names(struct agent *a);
const char *load_drop_name(void *ctx, unsigned int reason);
/* Attaches the tracepoints of the signals that are on; a failing one turns its signal off. */
void load_tracepoints(struct agent *a);
/* Turns the per-CPU last-flow slots on where the kernel can flush them on each CPU. */
void load_slots(struct agent *a);
int load_sample_clock(struct agent *a, struct kernel_clock *c);
int load_calibrate_hz(struct agent *a);
unsigned int load_prog_id(const struct bpf_program *p);

/* serve.c */
void serve_http(void *ctx, const struct httpd_request *req, struct httpd_response *resp);

#endif
