// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-agent: loads the flow programs, attaches them to matching interfaces as they come
 * and go, drains the flow table every interval into flow aggregates, and serves /metrics,
 * /healthz and /v1/flows.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/capability.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <uthash.h>
#include "clock.h"
#include "attach.h"
#include "export.h"
#include "expo.h"
#include "flow.h"
#include "flow.skel.h"
#include "flow_noct.skel.h"
#include "ctquery.h"
#include "flowjson.h"
#include "probe.h"
#include "flowtab.h"
#include "httpd.h"
#include "ifwatch.h"
#include "log.h"
#include "options.h"

struct iface {
	int ifindex;
	char name[IF_NAMESIZE];
	enum iface_kind kind;
	struct attachment att;
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

static const double drain_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				       0.01,   0.025,	0.05,	0.1,   0.25,   1 };
#define N_DRAIN_BOUNDS (sizeof(drain_bounds) / sizeof(drain_bounds[0]))

struct agent {
	struct agent_options opts;
	struct flow_bpf *skel;
	struct attach_ctx actx;
	struct ifwatch *watch;
	struct flowtab *tab;
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
	uint64_t drain_hist[N_DRAIN_BOUNDS + 1];
	double drain_sum;
	double last_drain_seconds;
	int ready;
	uint32_t hz;
	uint64_t interval_start_ms;
};

static int glob_match(char *const *globs, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return 1;
	return 0;
}

static int kind_cb(void *ctx, int ifindex)
{
	struct agent *a = ctx;
	struct iface *i;

	HASH_FIND_INT(a->ifaces, &ifindex, i);
	return i ? (int)i->kind : -1;
}

static void iface_forget(struct agent *a, struct iface *i, int gone)
{
	struct route_ent *r, *tmp;

	attach_detach(&a->actx, i->ifindex, &i->att, gone);
	if (gone) {
		flowtab_iface_gone(a->tab, i->ifindex, (int)i->kind);
		/* The kernel drops a vanished device's routes without telling us. */
		HASH_ITER (hh, a->routes, r, tmp) {
			if (r->key.ifindex != i->ifindex)
				continue;
			attrib_route(flowtab_attrib(a->tab), 0, r->key.family, r->key.addr);
			HASH_DEL(a->routes, r);
			free(r);
		}
	}
	pr_info("%s (ifindex %d): %s", i->name, i->ifindex, gone ? "gone, forgotten" : "detached");
	if (gone && a->reconciling)
		a->reconcile_repairs++;
	HASH_DEL(a->ifaces, i);
	free(i);
	a->ifaces_removed++;
}

static void keep_first(struct agent *a, struct iface *i);

static void failed_forget(struct agent *a, int ifindex)
{
	struct failed_iface *f;

	HASH_FIND_INT(a->failed, &ifindex, f);
	if (f) {
		HASH_DEL(a->failed, f);
		free(f);
	}
}

/* Remembers a failed attach; returns whether it is the first failure for this interface. */
static int failed_note(struct agent *a, int ifindex, const char *name)
{
	struct failed_iface *f;

	HASH_FIND_INT(a->failed, &ifindex, f);
	if (f && strcmp(f->name, name) == 0)
		return 0;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f)
			return 1;
		f->ifindex = ifindex;
		HASH_ADD_INT(a->failed, ifindex, f);
	}
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 1;
}

static void on_link_add(void *ctx, int ifindex, const char *name)
{
	struct agent *a = ctx;
	struct iface *i;
	int err;

	pthread_mutex_lock(&a->lock);
	HASH_FIND_INT(a->ifaces, &ifindex, i);
	if (i && strcmp(i->name, name) == 0)
		goto out;
	if (i) /* renamed: decide again */
		iface_forget(a, i, 0);
	if (!glob_match(a->opts.interfaces, a->opts.n_interfaces, name))
		goto out;
	i = calloc(1, sizeof(*i));
	if (!i)
		goto out;
	i->ifindex = ifindex;
	snprintf(i->name, sizeof(i->name), "%s", name);
	i->kind = glob_match(a->opts.pod_interfaces, a->opts.n_pod_interfaces, name) ? IFACE_POD :
										       IFACE_NODE;
	err = attach_iface(&a->actx, ifindex, &i->att);
	if (err) {
		if (failed_note(a, ifindex, name)) {
			pr_err("%s (ifindex %d): attach failed: %s (retried every "
			       "--reconcile-interval)",
			       name, ifindex, strerror(-err));
			a->attach_failures++;
		}
		free(i);
		goto out;
	}
	failed_forget(a, ifindex);
	HASH_ADD_INT(a->ifaces, ifindex, i);
	a->ifaces_added++;
	if (a->reconciling) {
		a->reconcile_repairs++;
		pr_warn("%s (ifindex %d): was not attached; repaired by the reconcile", name,
			ifindex);
	}
	pr_info("%s (ifindex %d): attached, kind %s, mode %s", name, ifindex,
		i->kind == IFACE_POD ? "pod" : "node", attach_used_name(i->att.used));
	/* Last: a stale filter of ours replaced in place may sit behind another one, and if
	 * putting it first fails the interface is forgotten (i freed). */
	if (i->att.used == ATTACHED_TC)
		keep_first(a, i);
out:
	pthread_mutex_unlock(&a->lock);
}

static void on_link_del(void *ctx, int ifindex)
{
	struct agent *a = ctx;
	struct iface *i;

	pthread_mutex_lock(&a->lock);
	failed_forget(a, ifindex);
	HASH_FIND_INT(a->ifaces, &ifindex, i);
	if (i)
		iface_forget(a, i, 1);
	pthread_mutex_unlock(&a->lock);
}

static void on_route(void *ctx, int add, int family, const void *addr, int ifindex)
{
	struct agent *a = ctx;
	struct route_ent key, *r;
	struct iface *i;

	memset(&key, 0, sizeof(key));
	key.key.family = family;
	memcpy(key.key.addr, addr, family == AF_INET ? 4 : 16);
	key.key.ifindex = ifindex;

	pthread_mutex_lock(&a->lock);
	HASH_FIND_INT(a->ifaces, &ifindex, i);
	HASH_FIND(hh, a->routes, &key.key, sizeof(key.key), r);
	if (add && !r && i && i->kind == IFACE_POD) {
		r = malloc(sizeof(*r));
		if (r) {
			*r = key;
			HASH_ADD(hh, a->routes, key, sizeof(r->key), r);
			attrib_route(flowtab_attrib(a->tab), 1, family, addr);
		}
	} else if (!add && r) {
		attrib_route(flowtab_attrib(a->tab), 0, family, addr);
		HASH_DEL(a->routes, r);
		free(r);
	}
	pthread_mutex_unlock(&a->lock);
}

/* Another filter at our legacy TC priority (e.g. the VPC CNI network policy agent's) went
 * ahead of ours: put ours first again. At most 10 times a minute per interface, so two tools
 * that both insist on running first do not trade places forever. */
static void keep_first(struct agent *a, struct iface *i)
{
	time_t now = time(NULL);
	int n;

	if (now - i->reorder_window >= 60) {
		i->reorder_window = now;
		i->reorders = 0;
	}
	if (i->reorders >= 10) {
		if (i->reorders++ == 10)
			pr_warn("%s: another TC filter keeps taking the first place at priority %u; "
				"giving up for a minute (choose --tc-priority or use tcx)",
				i->name, a->actx.tc_priority);
		return;
	}
	n = attach_tc_keep_first(&a->actx, i->ifindex, &i->att);
	if (n > 0) {
		i->reorders++;
		a->tc_reorders += (uint64_t)n;
	} else if (n < 0) {
		pr_err("%s: putting our TC filters first failed: %s", i->name, strerror(-n));
		if (i->att.used == ATTACHED_NONE) {
			a->attach_failures++;
			iface_forget(a, i, 0);
		}
	}
}

static void on_tc_filter(void *ctx, int ifindex, unsigned int prio, unsigned int handle)
{
	struct agent *a = ctx;
	struct iface *i;

	if (handle == ATTACH_TC_HANDLE || prio != a->actx.tc_priority)
		return;
	pthread_mutex_lock(&a->lock);
	HASH_FIND_INT(a->ifaces, &ifindex, i);
	if (i && i->att.used == ATTACHED_TC)
		keep_first(a, i);
	pthread_mutex_unlock(&a->lock);
}

static void on_resynced(void *ctx)
{
	struct agent *a = ctx;
	struct iface *i, *tmp;
	char name[IF_NAMESIZE];

	pthread_mutex_lock(&a->lock);
	HASH_ITER (hh, a->ifaces, i, tmp) {
		if (!if_indextoname((unsigned int)i->ifindex, name))
			iface_forget(a, i, 1);
		else if (i->att.used == ATTACHED_TC) /* filter events may have been lost too */
			keep_first(a, i);
	}
	pthread_mutex_unlock(&a->lock);
}

static const struct ifwatch_ops watch_ops = {
	.link_add = on_link_add,
	.link_del = on_link_del,
	.route = on_route,
	.tc_filter = on_tc_filter,
	.resynced = on_resynced,
};

/* Names of the kernel's drop reasons (SKB_DROP_REASON_NETFILTER_DROP -> netfilter_drop). */
static void load_drop_names(struct agent *a)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	const struct btf_enum *e;
	int id;

	if (!btf)
		return;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	e = t ? btf_enum(t) : NULL;
	for (int i = 0; t && i < btf_vlen(t); i++, e++) {
		const char *name = btf__name_by_offset(btf, e->name_off);
		char *n;

		if (e->val < 0 || e->val >= DROP_REASONS_MAX || !name)
			continue;
		if (strncmp(name, "SKB_DROP_REASON_", 16) == 0)
			name += 16;
		n = strdup(name);
		for (char *p = n; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		free(a->drop_names[e->val]);
		a->drop_names[e->val] = n;
	}
	btf__free(btf);
	if (a->drop_unknown) {
		free(a->drop_names[FL_DROP_UNKNOWN]);
		a->drop_names[FL_DROP_UNKNOWN] = strdup("unknown");
	}
}

static const char *agent_drop_name(void *ctx, unsigned int reason)
{
	struct agent *a = ctx;

	return reason < DROP_REASONS_MAX ? a->drop_names[reason] : NULL;
}

/* The tracepoints of the signals that are on; a signal whose hook fails is turned off. */
static void attach_tracepoints(struct agent *a)
{
	struct bpf_program *p[2] = { a->skel->progs.flowlens_retransmit,
				     a->drop_unknown ? a->skel->progs.flowlens_drop_noreason :
						       a->skel->progs.flowlens_drop };
	int on[2] = { bpf_program__autoload(p[0]), bpf_program__autoload(p[1]) };
	enum feature_id id[2] = { FEAT_SIG_RETRANSMITS, FEAT_SIG_DROPS };

	for (int i = 0; i < 2; i++) {
		if (!on[i])
			continue;
		a->tp_links[i] = bpf_program__attach(p[i]);
		if (!a->tp_links[i]) {
			features_set(&a->feat, id[i], FEAT_STATE_UNAVAILABLE,
				     "%s: cannot attach (%s)", bpf_program__name(p[i]),
				     strerror(errno));
			pr_warn("%s unavailable: %s", feature_name(id[i]), a->feat.f[id[i]].reason);
			a->tp_links[i] = NULL;
		}
	}
	flowtab_set_event_maps(a->tab, a->tp_links[0] ? bpf_map__fd(a->skel->maps.retrans) : -1,
			       a->tp_links[1] ? bpf_map__fd(a->skel->maps.drops) : -1,
			       &a->skel->bss->event_gen);
}

/* /v1/flows shows the largest aggregates of the last interval, not all of them. */
#define FLOWS_JSON_MAX 1000

static int on_sample(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;

	if (size >= sizeof(struct fl_sample))
		attrib_sample(flowtab_attrib(a->tab), data);
	return 0;
}

static int on_overflow(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;

	if (size < sizeof(struct fl_overflow_event))
		return 0;
	pthread_mutex_lock(&a->lock);
	flowtab_overflow(a->tab, data);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static const char *const counter_reasons[FL_CNT_MAX] = {
	[FL_CNT_TABLE_FULL] = "table_full",
	[FL_CNT_RINGBUF_FULL] = "ringbuf_full",
	[FL_CNT_TRUNCATED] = "truncated",
	[FL_CNT_NON_IP] = "non_ip",
	[FL_CNT_FRAGMENT] = "fragment",
	[FL_CNT_IPV6_EXT_LIMIT] = "ipv6_ext_limit",
	[FL_CNT_PULLED] = "headers_pulled",
	[FL_CNT_CT_LOOKUP] = "ct_lookup",
	[FL_CNT_CT_NAT] = "ct_nat",
	[FL_CNT_NAT_FULL] = "nat_full",
	[FL_CNT_HTTP_QUEUE_FULL] = "http_queue_full",
	[FL_CNT_SAMPLES_FULL] = "samples_full",
};
#define N_PACKET_REASONS (FL_CNT_PULLED + 1)

static const char *const xlate_names[] = {
	[XLATE_AUTO] = "auto",
	[XLATE_KFUNC] = "kfunc",
	[XLATE_NETLINK] = "netlink",
	[XLATE_OFF] = "off",
};

static void counter_family(struct expo *e, const char *name, const char *help, uint64_t v)
{
	expo_family(e, name, "counter", help);
	expo_u64(e, name, NULL, v);
}

static void gauge_family(struct expo *e, const char *name, const char *help, double v)
{
	expo_family(e, name, "gauge", help);
	expo_double(e, name, NULL, v);
}

/* Called with a->lock held. */
static int render_metrics(struct agent *a, char **out, size_t *len)
{
	const struct flowtab_stats *st = flowtab_stats(a->tab);
	const struct attrib_stats *as = attrib_stats(flowtab_attrib(a->tab));
	static const char *const kinds[] = { "pod", "node" };
	static const enum attach_used modes[] = { ATTACHED_TCX, ATTACHED_TC };
	char lb[EXPO_LABELS_MAX];
	struct expo e;
	struct iface *i;
	int err;

	err = expo_open(&e);
	if (err)
		return err;
	expo_family(&e, "flowlens_agent_build_info", "gauge",
		    "Build of the running agent (always 1).");
	expo_u64(&e, "flowlens_agent_build_info",
		 expo_labels(lb, sizeof(lb), "version", FLOWLENS_VERSION, "node", a->node, NULL),
		 1);

	expo_family(&e, "flowlens_agent_interfaces", "gauge",
		    "Interfaces the flow programs are attached to, by kind and attach mode.");
	for (size_t k = 0; k < 2; k++) {
		for (size_t m = 0; m < 2; m++) {
			uint64_t n = 0;

			for (i = a->ifaces; i; i = i->hh.next)
				if ((size_t)i->kind == k && i->att.used == modes[m])
					n++;
			expo_u64(&e, "flowlens_agent_interfaces",
				 expo_labels(lb, sizeof(lb), "kind", kinds[k], "mode",
					     attach_used_name(modes[m]), NULL),
				 n);
		}
	}
	expo_family(
		&e, "flowlens_agent_interface_info", "gauge",
		"One series per attached interface: its name, kind and attach mode (always 1).");
	for (i = a->ifaces; i; i = i->hh.next)
		expo_u64(&e, "flowlens_agent_interface_info",
			 expo_labels(lb, sizeof(lb), "interface", i->name, "kind",
				     kinds[i->kind == IFACE_POD ? 0 : 1], "mode",
				     attach_used_name(i->att.used), NULL),
			 1);
	expo_family(&e, "flowlens_agent_interface_events_total", "counter",
		    "Interfaces attached and forgotten since start.");
	expo_u64(&e, "flowlens_agent_interface_events_total",
		 expo_labels(lb, sizeof(lb), "event", "attached", NULL), a->ifaces_added);
	expo_u64(&e, "flowlens_agent_interface_events_total",
		 expo_labels(lb, sizeof(lb), "event", "forgotten", NULL), a->ifaces_removed);
	counter_family(&e, "flowlens_agent_attach_failures_total",
		       "Interfaces that matched but could not be attached.", a->attach_failures);
	counter_family(&e, "flowlens_agent_tc_reorders_total",
		       "Legacy TC: times another filter at our priority (e.g. the VPC CNI network "
		       "policy agent's) had gone ahead of ours and ours was put first again.",
		       a->tc_reorders);
	counter_family(&e, "flowlens_agent_netlink_overruns_total",
		       "Netlink notification overruns, each followed by a full resync.",
		       a->watch ? ifwatch_overruns(a->watch) : 0);
	counter_family(&e, "flowlens_agent_netlink_dump_retries_total",
		       "Netlink dumps done again because the kernel flagged them interrupted "
		       "(interfaces changed during the dump).",
		       a->watch ? ifwatch_dump_retries(a->watch) : 0);
	expo_family(&e, "flowlens_agent_reconciles_total", "counter",
		    "Periodic comparisons of attachments with the live interfaces "
		    "(--reconcile-interval), by result.");
	expo_u64(&e, "flowlens_agent_reconciles_total",
		 expo_labels(lb, sizeof(lb), "result", "ok", NULL), a->reconciles);
	expo_u64(&e, "flowlens_agent_reconciles_total",
		 expo_labels(lb, sizeof(lb), "result", "error", NULL), a->reconcile_errors);
	counter_family(&e, "flowlens_agent_reconcile_repairs_total",
		       "Interfaces a reconcile found unattached (attached them) or gone (forgot "
		       "them): a missed event (or one that raced the reconcile's dump). Should "
		       "stay near 0.",
		       a->reconcile_repairs);
	gauge_family(&e, "flowlens_agent_attach_failed_interfaces",
		     "Interfaces that match but are not attached (retried at each reconcile).",
		     (double)HASH_COUNT(a->failed));
	if (a->http)
		httpd_render_metrics(a->http, &e, "flowlens_agent");

	expo_family(&e, "flowlens_agent_flow_table_entries", "gauge",
		    "Entries in the kernel flow tables at the last drain, by address family.");
	expo_u64(&e, "flowlens_agent_flow_table_entries",
		 expo_labels(lb, sizeof(lb), "family", "ipv4", NULL), st->kernel_entries4);
	expo_u64(&e, "flowlens_agent_flow_table_entries",
		 expo_labels(lb, sizeof(lb), "family", "ipv6", NULL), st->kernel_entries6);
	expo_family(&e, "flowlens_agent_flow_table_capacity", "gauge",
		    "Capacity of each family's kernel flow table (--flow-table-size).");
	expo_u64(&e, "flowlens_agent_flow_table_capacity",
		 expo_labels(lb, sizeof(lb), "family", "ipv4", NULL), a->opts.flow_table_size);
	expo_u64(&e, "flowlens_agent_flow_table_capacity",
		 expo_labels(lb, sizeof(lb), "family", "ipv6", NULL), a->opts.flow_table_size);
	expo_family(&e, "flowlens_agent_datapath_events_total", "counter",
		    "Packets the datapath did not count in the flow table, by reason. table_full "
		    "packets are handed over through the ring buffer; ringbuf_full ones are lost.");
	for (int r = 0; r < FL_CNT_MAX; r++)
		if (r < N_PACKET_REASONS || r >= FL_CNT_HTTP_QUEUE_FULL)
			expo_u64(&e, "flowlens_agent_datapath_events_total",
				 expo_labels(lb, sizeof(lb), "reason", counter_reasons[r], NULL),
				 st->datapath[r]);
	expo_family(&e, "flowlens_agent_feature_info", "gauge",
		    "What this kernel and the agent's privileges allow: each optional mechanism "
		    "and signal is on, off (configured) or unavailable, with the reason.");
	for (int f = 0; f < FEAT_MAX; f++)
		expo_u64(&e, "flowlens_agent_feature_info",
			 expo_labels(lb, sizeof(lb), "feature", feature_name(f), "state",
				     feature_state_name(a->feat.f[f].state), "reason",
				     a->feat.f[f].reason, NULL),
			 1);
	expo_family(&e, "flowlens_agent_translation_info", "gauge",
		    "Where ClusterIP (DNAT) translations come from: kfunc (conntrack lookups in "
		    "the TC programs), netlink (user-space conntrack queries) or off.");
	expo_u64(&e, "flowlens_agent_translation_info",
		 expo_labels(lb, sizeof(lb), "mode", xlate_names[a->xlate], NULL), 1);
	expo_family(&e, "flowlens_agent_conntrack_lookups_total", "counter",
		    "Conntrack lookups for destination translations, by where they ran.");
	expo_u64(&e, "flowlens_agent_conntrack_lookups_total",
		 expo_labels(lb, sizeof(lb), "source", "datapath", NULL),
		 st->datapath[FL_CNT_CT_LOOKUP]);
	expo_u64(&e, "flowlens_agent_conntrack_lookups_total",
		 expo_labels(lb, sizeof(lb), "source", "netlink", NULL), as->xlate_queries);
	counter_family(&e, "flowlens_agent_conntrack_errors_total",
		       "Conntrack lookups that failed: netlink query errors, and translations the "
		       "datapath could not store (nat map update failed).",
		       as->xlate_query_errors + st->datapath[FL_CNT_NAT_FULL]);
	expo_family(&e, "flowlens_agent_tcp_connections_total", "counter",
		    "TCP connection attempts seen at this node's interfaces, by result (each "
		    "observation point counts its own view).");
	for (int r = 0; r < TCP_RESULT_MAX; r++)
		expo_u64(&e, "flowlens_agent_tcp_connections_total",
			 expo_labels(lb, sizeof(lb), "result", vocab_tcp_result[r], NULL),
			 as->tcp[r]);
	expo_family(
		&e, "flowlens_agent_samples_total", "counter",
		"Finished exchanges (HTTP requests) handed over by the datapath, by fate: "
		"applied, unattributed (ENI copies of what a pod veth reported), dropped (too "
		"many waiting for the next drain). The datapath's own losses are in "
		"flowlens_agent_datapath_events_total{reason=~\"samples_full|http_queue_full\"}.");
	expo_u64(&e, "flowlens_agent_samples_total",
		 expo_labels(lb, sizeof(lb), "fate", "applied", NULL),
		 as->samples - as->samples_unattributed - as->samples_dropped);
	expo_u64(&e, "flowlens_agent_samples_total",
		 expo_labels(lb, sizeof(lb), "fate", "unattributed", NULL),
		 as->samples_unattributed);
	expo_u64(&e, "flowlens_agent_samples_total",
		 expo_labels(lb, sizeof(lb), "fate", "dropped", NULL), as->samples_dropped);
	counter_family(&e, "flowlens_agent_tcp_retransmits_total",
		       "TCP retransmissions the kernel made (tcp_retransmit_skb tracepoint).",
		       as->retransmits);
	expo_family(&e, "flowlens_agent_drops_total", "counter",
		    "Packets the kernel dropped (kfree_skb tracepoint), by drop reason.");
	for (int r = 0; r < DROP_REASONS_MAX; r++)
		if (as->drops[r])
			expo_u64(&e, "flowlens_agent_drops_total",
				 expo_labels(lb, sizeof(lb), "reason",
					     a->drop_names[r] ? a->drop_names[r] : "other", NULL),
				 as->drops[r]);
	expo_family(&e, "flowlens_agent_tcp_connections_pending", "gauge",
		    "TCP connection attempts waiting for an answer (SYN seen, no SYN-ACK or RST).");
	expo_u64(&e, "flowlens_agent_tcp_connections_pending", NULL, as->tcp_open);
	expo_family(&e, "flowlens_agent_connections_translated_total", "counter",
		    "Connections by what conntrack said about their destination: nat (e.g. a "
		    "ClusterIP translated to a backend) or direct.");
	expo_u64(&e, "flowlens_agent_connections_translated_total",
		 expo_labels(lb, sizeof(lb), "translation", "nat", NULL), as->xlate_nat);
	expo_u64(&e, "flowlens_agent_connections_translated_total",
		 expo_labels(lb, sizeof(lb), "translation", "direct", NULL), as->xlate_direct);
	counter_family(&e, "flowlens_agent_overflow_records_total",
		       "Packets received through the overflow ring buffer.", st->overflow_records);
	counter_family(&e, "flowlens_agent_overflow_dropped_packets_total",
		       "Overflow packets dropped because the pending overflow table was full.",
		       st->overflow_dropped_packets);
	counter_family(&e, "flowlens_agent_eni_duplicate_packets_total",
		       "Packets seen at a node interface that were already counted at a pod veth.",
		       as->eni_duplicate_packets);
	counter_family(&e, "flowlens_agent_flows_evicted_total",
		       "Idle or orphaned kernel flow entries removed after their final read.",
		       st->evicted);
	counter_family(&e, "flowlens_agent_drains_total", "Drains of the kernel tables.",
		       st->drains);
	counter_family(&e, "flowlens_agent_drain_errors_total",
		       "Drains that could not read the kernel flow table.", a->drain_errors);
	expo_family(&e, "flowlens_agent_drain_duration_seconds", "histogram",
		    "Time to drain the kernel tables and build the interval's aggregates.");
	expo_histogram(&e, "flowlens_agent_drain_duration_seconds", "", drain_bounds, a->drain_hist,
		       N_DRAIN_BOUNDS, a->drain_sum);
	gauge_family(&e, "flowlens_agent_last_drain_duration_seconds",
		     "Duration of the most recent drain.", a->last_drain_seconds);
	gauge_family(&e, "flowlens_agent_connections",
		     "Connections tracked for initiator detection.", (double)as->connections);
	gauge_family(&e, "flowlens_agent_local_pod_ips",
		     "Addresses known to belong to pods on this node.", (double)as->local_ips);
	gauge_family(&e, "flowlens_agent_flow_aggregates",
		     "Flow aggregates produced by the last interval.", (double)as->aggregates);
	counter_family(&e, "flowlens_agent_output_errors_total",
		       "Flow log lines that could not be written.", a->output_errors);
	if (a->exp) {
		struct export_stats xs;

		export_get_stats(a->exp, &xs);
		expo_family(&e, "flowlens_agent_export_batches_total", "counter",
			    "Batches for the collector by outcome: sent, rejected by the collector "
			    "as bad input, dropped because the buffer was full, or not encodable.");
		expo_u64(&e, "flowlens_agent_export_batches_total",
			 expo_labels(lb, sizeof(lb), "result", "sent", NULL), xs.sent);
		expo_u64(&e, "flowlens_agent_export_batches_total",
			 expo_labels(lb, sizeof(lb), "result", "rejected", NULL), xs.rejected);
		expo_u64(&e, "flowlens_agent_export_batches_total",
			 expo_labels(lb, sizeof(lb), "result", "dropped", NULL), xs.dropped);
		expo_u64(&e, "flowlens_agent_export_batches_total",
			 expo_labels(lb, sizeof(lb), "result", "encode_error", NULL),
			 a->export_errors);
		counter_family(&e, "flowlens_agent_export_retries_total",
			       "Failed sends that were retried after a backoff.", xs.retries);
		gauge_family(&e, "flowlens_agent_export_queue_batches",
			     "Batches waiting to be sent.", (double)xs.queued_batches);
		gauge_family(&e, "flowlens_agent_export_queue_bytes",
			     "Compressed bytes waiting to be sent.", (double)xs.queued_bytes);
		gauge_family(&e, "flowlens_agent_export_queue_limit_bytes",
			     "Bound on queued bytes (--export-buffer-bytes).",
			     (double)a->opts.export_buffer_bytes);
		gauge_family(&e, "flowlens_agent_export_last_success_timestamp_seconds",
			     "Unix time of the last batch the collector accepted.",
			     (double)xs.last_success_unix_ms / 1000.0);
	}
	return expo_close(&e, out, len);
}

static void http_handler(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct agent *a = ctx;
	const char *path = req->path;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_text(resp, 405, "method not allowed\n");
		return;
	}
	pthread_mutex_lock(&a->lock);
	if (strcmp(path, "/metrics") == 0) {
		if (render_metrics(a, &resp->body, &resp->len) == 0) {
			resp->status = 200;
			resp->content_type = EXPO_CONTENT_TYPE;
		}
	} else if (strcmp(path, "/healthz") == 0) {
		if (a->ready)
			httpd_text(resp, 200, "ok\n");
		else
			httpd_text(resp, 503, "starting\n");
	} else if (strcmp(path, "/v1/flows") == 0) {
		resp->status = 200;
		resp->content_type = "application/json";
		resp->body = strdup(a->flows_json ? a->flows_json : "{\"flows\":[]}");
		resp->len = resp->body ? strlen(resp->body) : 0;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Reads jiffies and CLOCK_MONOTONIC together through the flowlens_clock program. */
static int sample_clock(struct agent *a, struct kernel_clock *c)
{
	uint8_t frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(bpf_program__fd(a->skel->progs.flowlens_clock), &opts))
		return -errno;
	c->jiffies = a->skel->bss->clock_sample.jiffies;
	c->ktime_ns = a->skel->bss->clock_sample.ktime_ns;
	c->hz = a->hz;
	return 0;
}

/* The kernel's HZ from two clock samples 200 ms apart, snapped to the usual values. */
static int calibrate_hz(struct agent *a)
{
	static const uint32_t known[] = { 100, 250, 300, 1000 };
	struct kernel_clock c0, c1;
	double hz, best = 1e9;
	int err;

	err = sample_clock(a, &c0);
	if (err)
		return err;
	usleep(200000);
	err = sample_clock(a, &c1);
	if (err)
		return err;
	hz = (double)(c1.jiffies - c0.jiffies) * 1e9 / (double)(c1.ktime_ns - c0.ktime_ns);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		double d = hz > known[i] ? hz - known[i] : known[i] - hz;

		if (d < best) {
			best = d;
			a->hz = known[i];
		}
	}
	pr_debug("kernel HZ measured %.1f, using %u", hz, a->hz);
	return 0;
}

static void drain(struct agent *a)
{
	struct kernel_clock clk;
	uint64_t t0 = clock_mono_ns();
	uint64_t end_ms = clock_unix_ms();
	struct flowjson_interval iv;
	double secs;
	size_t b;
	int err;

	/* Overflow records queued so far belong to this interval. */
	if (a->rb)
		ring_buffer__consume(a->rb);
	pthread_mutex_lock(&a->lock);
	if (sample_clock(a, &clk) == 0)
		attrib_set_clock(flowtab_attrib(a->tab), &clk);
	err = flowtab_drain(a->tab, t0);
	if (err) {
		a->drain_errors++;
		pr_warn("draining the flow table: %s", strerror(-err));
	}
	iv.node = a->node;
	iv.start_unix_ms = a->interval_start_ms;
	iv.end_unix_ms = end_ms;
	iv.mono_to_unix_ns = (int64_t)clock_ns(CLOCK_REALTIME) - (int64_t)clock_mono_ns();
	free(a->flows_json);
	a->flows_json =
		flowjson_document(attrib_aggregates(flowtab_attrib(a->tab)), &iv, FLOWS_JSON_MAX);
	if (a->opts.output == OUTPUT_JSON &&
	    flowjson_write_lines(stdout, attrib_aggregates(flowtab_attrib(a->tab)), &iv))
		a->output_errors++;
	if (a->exp &&
	    export_submit(a->exp, attrib_aggregates(flowtab_attrib(a->tab)), a->interval_start_ms,
			  end_ms, attrib_signals(flowtab_attrib(a->tab))))
		a->export_errors++;
	a->interval_start_ms = end_ms;
	secs = (double)(clock_mono_ns() - t0) / 1e9;
	for (b = 0; b < N_DRAIN_BOUNDS && secs > drain_bounds[b]; b++)
		;
	a->drain_hist[b]++;
	a->drain_sum += secs;
	a->last_drain_seconds = secs;
	pthread_mutex_unlock(&a->lock);
}

static uint64_t mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

/*
 * Events can be missed (a notification overrun during a burst of pods, a dump the kernel
 * flagged as interrupted, an attach that failed): compare with a full dump now and then.
 * What it changes is counted as a repair.
 */
static void reconcile(struct agent *a)
{
	int err;

	if (mono_ms() - a->last_reconcile_ms < a->opts.reconcile_ms)
		return;
	a->last_reconcile_ms = mono_ms();
	/* Events already queued are not misses: apply them before comparing. */
	if (ifwatch_process(a->watch))
		pr_debug("reconcile: pending events: resync failed; the dump below redoes it");
	a->reconciling = 1;
	err = ifwatch_resync(a->watch);
	a->reconciling = 0;
	pthread_mutex_lock(&a->lock);
	if (err) {
		a->reconcile_errors++;
		pr_warn("reconcile: netlink dump failed: %s", strerror(-err));
	} else {
		a->reconciles++;
	}
	pthread_mutex_unlock(&a->lock);
}

static int run_loop(struct agent *a)
{
	struct itimerspec its = { 0 };
	struct pollfd pfd[4];
	sigset_t mask;
	int sfd, tfd, err = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (sfd < 0 || tfd < 0) {
		err = -errno;
		goto out;
	}
	its.it_interval.tv_sec = (time_t)(a->opts.interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(a->opts.interval_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(tfd, 0, &its, NULL) == -1) {
		err = -errno;
		goto out;
	}
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = tfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = ifwatch_fd(a->watch), .events = POLLIN };
	pfd[3] = (struct pollfd){ .fd = ring_buffer__epoll_fd(a->rb), .events = POLLIN };

	for (;;) {
		if (poll(pfd, 4, -1) == -1) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				pr_info("signal %u: final drain, then detaching", si.ssi_signo);
			break;
		}
		if (pfd[2].revents & POLLIN) {
			err = ifwatch_process(a->watch);
			if (err) {
				/* The resync after an overrun failed: reconcile at the next tick. */
				pr_warn("netlink: %s; reconciling at the next interval",
					strerror(-err));
				a->last_reconcile_ms = 0;
				err = 0;
			}
		}
		if (pfd[3].revents & POLLIN)
			ring_buffer__consume(a->rb);
		if (pfd[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
				drain(a);
			reconcile(a);
		}
	}
	drain(a);
out:
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return err;
}

static unsigned int prog_id(const struct bpf_program *p)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
		return 0;
	return info.id;
}

/*
 * Two builds of the same programs: with the conntrack kfuncs, and without them (-DFL_NO_CT)
 * for kernels that lack them. Their skeletons have the same maps, programs and globals in the
 * same order, so one struct serves both.
 */
_Static_assert(sizeof(struct flow_bpf) == sizeof(struct flow_noct_bpf), "skeleton layouts");

/* What one load attempt includes; the agent narrows it when the kernel refuses a part. */
struct load_plan {
	int with_ct; /* the object with the conntrack kfuncs */
	int retransmit; /* the tcp_retransmit_skb program */
	int drop; /* 0: no kfree_skb program; 1: with reasons; 2: without (before 5.17) */
};

static int open_and_load(struct agent *a, const struct load_plan *p)
{
	a->skel = p->with_ct ? flow_bpf__open() : (struct flow_bpf *)flow_noct_bpf__open();
	if (!a->skel)
		return -errno;
	bpf_map__set_max_entries(a->skel->maps.flows4, a->opts.flow_table_size);
	bpf_map__set_max_entries(a->skel->maps.flows6, a->opts.flow_table_size);
	bpf_map__set_max_entries(a->skel->maps.nat, a->opts.flow_table_size);
	bpf_map__set_max_entries(a->skel->maps.http, a->opts.flow_table_size);
	bpf_map__set_max_entries(a->skel->maps.samples, a->opts.ringbuf_size);
	a->skel->rodata->http_enabled = (uint8_t)a->opts.signal_http;
	a->skel->rodata->dns_enabled = (uint8_t)a->opts.signal_dns;
	a->skel->rodata->samples_wakeup_bytes = a->opts.ringbuf_size / 2;
	/* Tracepoints of signals that are off, or that the kernel lacks, are not even loaded. */
	bpf_program__set_autoload(a->skel->progs.flowlens_retransmit, p->retransmit);
	bpf_program__set_autoload(a->skel->progs.flowlens_drop, p->drop == 1);
	bpf_program__set_autoload(a->skel->progs.flowlens_drop_noreason, p->drop == 2);
	bpf_map__set_max_entries(a->skel->maps.overflow, a->opts.ringbuf_size);
	a->skel->rodata->ct_enabled = (uint8_t)p->with_ct;
	return flow_bpf__load(a->skel);
}

/* The first plan: everything configured that the probe says this kernel and process allow. */
static void plan_from_probe(struct agent *a, struct load_plan *p)
{
	struct features *f = &a->feat;
	enum xlate_mode m = a->opts.translation;

	memset(p, 0, sizeof(*p));
	if (!f->vmlinux_btf)
		features_set(f, FEAT_BTF, FEAT_STATE_UNAVAILABLE,
			     "kernel built without BTF (CONFIG_DEBUG_INFO_BTF): no tracepoint "
			     "signals, no conntrack kfuncs");
	if (m == XLATE_NETLINK || m == XLATE_OFF)
		features_set(f, FEAT_CT_KFUNCS, FEAT_STATE_OFF, "--translation %s",
			     m == XLATE_OFF ? "off" : "netlink");
	else if (f->ct_kfuncs == KFUNC_NONE)
		features_set(f, FEAT_CT_KFUNCS, FEAT_STATE_UNAVAILABLE,
			     "kernel has no conntrack kfuncs (bpf_skb_ct_lookup: 6.0+, with "
			     "nf_conntrack loaded): translations from conntrack netlink");
	else if (f->ct_kfuncs == KFUNC_MODULE && !f->cap_sys_admin)
		features_set(f, FEAT_CT_KFUNCS, FEAT_STATE_UNAVAILABLE,
			     "the kfuncs are in module nf_conntrack, whose BTF only CAP_SYS_ADMIN "
			     "may open: translations from conntrack netlink");
	else
		p->with_ct = 1;
	if (!a->opts.signal_tcp)
		features_set(f, FEAT_SIG_RETRANSMITS, FEAT_STATE_OFF, "--signals");
	else if (!f->tp_retransmit)
		features_set(f, FEAT_SIG_RETRANSMITS, FEAT_STATE_UNAVAILABLE,
			     "no tcp_retransmit_skb tracepoint in kernel BTF");
	else
		p->retransmit = 1;
	if (!a->opts.signal_drops) {
		features_set(f, FEAT_SIG_DROPS, FEAT_STATE_OFF, "--signals");
		features_set(f, FEAT_DROP_REASONS, FEAT_STATE_OFF, "--signals");
	} else if (!f->tp_kfree_skb) {
		features_set(f, FEAT_SIG_DROPS, FEAT_STATE_UNAVAILABLE,
			     "no kfree_skb tracepoint in kernel BTF");
		features_set(f, FEAT_DROP_REASONS, FEAT_STATE_UNAVAILABLE,
			     "no kfree_skb tracepoint in kernel BTF");
	} else if (!f->kfree_skb_reason) {
		features_set(f, FEAT_DROP_REASONS, FEAT_STATE_UNAVAILABLE,
			     "kfree_skb has no reason argument (before 5.17): drops counted with "
			     "reason \"unknown\"");
		p->drop = 2;
	} else {
		p->drop = 1;
	}
	if (a->opts.attach_mode == ATTACH_TC)
		features_set(f, FEAT_TCX, FEAT_STATE_OFF, "--attach-mode tc");
	else if (!f->tcx)
		features_set(f, FEAT_TCX, FEAT_STATE_UNAVAILABLE,
			     "kernel has no tcx (before 6.6): legacy TC (clsact) filters");
	if (!a->opts.signal_tcp)
		features_set(f, FEAT_SIG_TCP, FEAT_STATE_OFF, "--signals");
	if (!a->opts.signal_http)
		features_set(f, FEAT_SIG_HTTP, FEAT_STATE_OFF, "--signals");
	if (!a->opts.signal_dns)
		features_set(f, FEAT_SIG_DNS, FEAT_STATE_OFF, "--signals");
}

/* Why a load failed, in words that name the cause. */
static void load_error(const struct load_failure *lf, int err, char *out, size_t n)
{
	if (lf->prog[0] && lf->verifier[0])
		snprintf(out, n, "the verifier rejected %s: %s", lf->prog, lf->verifier);
	else if (lf->missing_extern)
		snprintf(out, n, "the kernel lacks a function the programs call (%s)",
			 strerror(-err));
	else if (err == -EPERM || err == -EACCES)
		snprintf(out, n,
			 "%s: the kernel refused it to this process (needs CAP_BPF, CAP_NET_ADMIN, "
			 "CAP_PERFMON; CAP_SYS_RESOURCE before 5.11)",
			 strerror(-err));
	else
		snprintf(out, n, "%s%s%s", strerror(-err), lf->prog[0] ? " loading " : "",
			 lf->prog);
}

/*
 * Loads the programs, narrowing the plan when the kernel refuses an optional part: the
 * conntrack kfuncs (then netlink translates), the retransmit or the drop tracepoint (that
 * signal is off). Only a refused TC program, without which nothing is counted, fails the
 * agent.
 */
static int load_with_fallbacks(struct agent *a)
{
	struct load_plan p;
	struct load_failure lf;
	char why[320];
	int err = 0;

	plan_from_probe(a, &p);
	for (int attempt = 0; attempt < 5; attempt++) {
		load_capture_begin(&lf);
		err = open_and_load(a, &p);
		load_capture_end();
		if (!err)
			break;
		flow_bpf__destroy(a->skel);
		a->skel = NULL;
		load_error(&lf, err, why, sizeof(why));
		if (err == -EPERM && !lf.verifier[0])
			break; /* a missing capability: no narrower plan helps */
		if (p.drop && strncmp(lf.prog, "flowlens_drop", 13) == 0) {
			features_set(&a->feat, FEAT_SIG_DROPS, FEAT_STATE_UNAVAILABLE, "%s", why);
			p.drop = 0;
		} else if (p.retransmit && strcmp(lf.prog, "flowlens_retransmit") == 0) {
			features_set(&a->feat, FEAT_SIG_RETRANSMITS, FEAT_STATE_UNAVAILABLE, "%s",
				     why);
			p.retransmit = 0;
		} else if (p.with_ct) {
			/* The TC programs with the kfuncs, or the kfuncs themselves. */
			if (a->opts.translation == XLATE_KFUNC)
				break;
			features_set(&a->feat, FEAT_CT_KFUNCS, FEAT_STATE_UNAVAILABLE,
				     "%s: translations from conntrack netlink", why);
			p.with_ct = 0;
		} else {
			break;
		}
	}
	if (err) {
		pr_err("loading BPF programs: %s", why);
		return err;
	}
	a->xlate = p.with_ct			    ? XLATE_KFUNC :
		   a->opts.translation == XLATE_OFF ? XLATE_OFF :
						      XLATE_NETLINK;
	if (!p.retransmit && a->feat.f[FEAT_SIG_RETRANSMITS].state == FEAT_STATE_ON)
		features_set(&a->feat, FEAT_SIG_RETRANSMITS, FEAT_STATE_UNAVAILABLE, "not loaded");
	if (!p.drop)
		a->opts.signal_drops = 0;
	else if (p.drop == 2)
		a->drop_unknown = 1;
	return 0;
}

static int load_programs(struct agent *a)
{
	int err;

	static const struct {
		int cap;
		const char *name;
	} need[] = { { CAP_BPF, "CAP_BPF" },
		     { CAP_NET_ADMIN, "CAP_NET_ADMIN" },
		     { CAP_PERFMON, "CAP_PERFMON" } };
	char missing[64] = "";

	/*
	 * Without these the kernel refuses, and not always with EPERM: without CAP_PERFMON the
	 * verifier rejects pointer arithmetic. Say which one is missing instead.
	 */
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && !cap_effective(CAP_SYS_ADMIN); i++)
		if (!cap_effective(need[i].cap))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s", missing[0] ? ", " : "", need[i].name);
	if (missing[0]) {
		pr_err("loading BPF programs: missing %s (needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)",
		       missing);
		return -EPERM;
	}
	features_probe(&a->feat);
	if (a->feat.ringbuf == 0) {
		pr_err("loading BPF programs: the kernel has no BPF ring buffer (5.8+)");
		return -EOPNOTSUPP;
	}
	err = load_with_fallbacks(a);
	if (err)
		return err;
	if (a->opts.translation == XLATE_KFUNC && a->xlate != XLATE_KFUNC) {
		pr_err("--translation kfunc: %s", a->feat.f[FEAT_CT_KFUNCS].reason);
		return -EOPNOTSUPP;
	}
	features_log(&a->feat);
	/*
	 * Netlink is the source in netlink mode and the complement in kfunc mode: a connection
	 * whose packets all passed before conntrack had its entry (a lone SYN, a single UDP
	 * datagram) is asked about at the drain, so it is never reported untranslated.
	 */
	if (a->xlate != XLATE_OFF) {
		err = ctquery_open(&a->ctq);
		if (err && a->opts.translation == XLATE_NETLINK) {
			pr_err("conntrack netlink: %s", strerror(-err));
			return err;
		}
		if (err && a->xlate == XLATE_NETLINK) {
			/* Translations are lost, not the flows: untranslated, they still count. */
			features_set(
				&a->feat, FEAT_CT_NETLINK, FEAT_STATE_UNAVAILABLE,
				"%s (is nf_conntrack_netlink loaded?): ClusterIP translations off",
				strerror(-err));
			pr_warn("conntrack_netlink unavailable: %s",
				a->feat.f[FEAT_CT_NETLINK].reason);
			a->xlate = XLATE_OFF;
		} else if (err) {
			features_set(&a->feat, FEAT_CT_NETLINK, FEAT_STATE_UNAVAILABLE,
				     "%s: first packets may stay untranslated", strerror(-err));
			pr_warn("conntrack_netlink unavailable: %s",
				a->feat.f[FEAT_CT_NETLINK].reason);
		}
		err = 0;
	} else {
		features_set(&a->feat, FEAT_CT_NETLINK, FEAT_STATE_OFF, "--translation off");
	}
	bpf_program__set_autoattach(a->skel->progs.flowlens_clock, false);
	a->actx.prog_ingress = bpf_program__fd(a->skel->progs.flowlens_ingress);
	a->actx.prog_egress = bpf_program__fd(a->skel->progs.flowlens_egress);
	a->actx.mode = a->opts.attach_mode;
	a->actx.tc_priority = a->opts.tc_priority;
	return 0;
}

int main(int argc, char **argv)
{
	struct httpd_options hopts = { 0 };
	struct agent a;
	struct iface *i, *itmp;
	struct route_ent *r, *rtmp;
	struct failed_iface *f, *ftmp;
	struct httpd *http = NULL;
	sigset_t mask;
	const char *node;
	int err;

	memset(&a, 0, sizeof(a));
	err = options_parse(&a.opts, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	log_level = a.opts.log_level;
	log_setup_libbpf();
	pthread_mutex_init(&a.lock, NULL);
	node = getenv("FLOWLENS_NODE_NAME");
	if (node && *node)
		snprintf(a.node, sizeof(a.node), "%s", node);
	else if (gethostname(a.node, sizeof(a.node) - 1) == -1)
		strcpy(a.node, "unknown");

	/*
	 * Signals are read through a signalfd; block them before any thread starts. A shell
	 * starts background jobs with SIGINT ignored, and an ignored signal never reaches a
	 * signalfd: restore the default first.
	 */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = load_programs(&a);
	if (err)
		goto cleanup;
	err = calibrate_hz(&a);
	if (err) {
		pr_err("reading kernel clocks: %s", strerror(-err));
		goto cleanup;
	}
	err = flowtab_new(&a.tab, bpf_map__fd(a.skel->maps.flows4),
			  bpf_map__fd(a.skel->maps.flows6), bpf_map__fd(a.skel->maps.counters),
			  a.opts.overflow_pending_max, a.opts.idle_timeout_ms * 1000000ULL, kind_cb,
			  &a);
	if (err)
		goto cleanup;
	{
		struct sig_config sig = {
			.tcp = a.opts.signal_tcp,
			.http = a.opts.signal_http,
			.dns = a.opts.signal_dns,
			.drops = a.opts.signal_drops,
			.dns_timeout_ns = a.opts.dns_timeout_ms * 1000000ULL,
			.n_dns_bounds = a.opts.n_dns_buckets,
			.n_http_bounds = a.opts.n_http_buckets,
			.connect_timeout_ns = a.opts.tcp_connect_timeout_ms * 1000000ULL,
			.n_connect_bounds = a.opts.n_tcp_connect_buckets,
		};

		memcpy(sig.connect_bounds, a.opts.tcp_connect_buckets,
		       sizeof(double) * a.opts.n_tcp_connect_buckets);
		memcpy(sig.http_bounds, a.opts.http_buckets,
		       sizeof(double) * a.opts.n_http_buckets);
		memcpy(sig.dns_bounds, a.opts.dns_buckets, sizeof(double) * a.opts.n_dns_buckets);
		flowtab_set_dns_map(a.tab, bpf_map__fd(a.skel->maps.dns));
		load_drop_names(&a);
		attach_tracepoints(&a);
		export_set_drop_names(agent_drop_name, &a);
		/*
		 * CAP_SYS_ADMIN (granted only to use conntrack kfuncs that live in a module) is
		 * needed to load, not to run: the process that parses netlink and HTTP has none.
		 */
		if (cap_effective(CAP_SYS_ADMIN)) {
			int derr = cap_drop(CAP_SYS_ADMIN);

			if (derr)
				pr_warn("dropping CAP_SYS_ADMIN after load: %s", strerror(-derr));
			else
				pr_info("CAP_SYS_ADMIN dropped after load");
		}
		attrib_set_signals(flowtab_attrib(a.tab), &sig);
	}
	flowtab_set_translation(a.tab, a.xlate == XLATE_KFUNC ? bpf_map__fd(a.skel->maps.nat) : -1,
				a.ctq ? ctquery_lookup : NULL, a.ctq);
	a.rb = ring_buffer__new(bpf_map__fd(a.skel->maps.overflow), on_overflow, &a, NULL);
	if (a.rb && ring_buffer__add(a.rb, bpf_map__fd(a.skel->maps.samples), on_sample, &a)) {
		ring_buffer__free(a.rb);
		a.rb = NULL;
	}
	if (!a.rb) {
		err = -errno;
		pr_err("overflow ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	a.interval_start_ms = clock_unix_ms();
	if (a.opts.collector_url) {
		struct export_config xc = {
			.url = a.opts.collector_url,
			.token_file = a.opts.token_file,
			.ca_file = a.opts.collector_ca_file,
			.buffer_bytes = a.opts.export_buffer_bytes,
			.node = a.node,
			.timeout_ms = 5000,
			.backoff_min_ms = 200,
			.backoff_max_ms = 30000,
		};

		err = export_start(&a.exp, &xc);
		if (err) {
			pr_err("exporter: %s", strerror(-err));
			goto cleanup;
		}
		pr_info("exporting to %s", a.opts.collector_url);
	}
	/* Two descriptors per attached interface, more than select() or 1024 would allow. */
	pr_debug("open files limit %lu", httpd_raise_nofile());
	a.last_reconcile_ms = mono_ms();
	err = ifwatch_open(&a.watch, &watch_ops, &a, (int)a.opts.netlink_rcvbuf);
	if (err) {
		pr_err("netlink: %s", strerror(-err));
		goto cleanup;
	}
	hopts.host = a.opts.listen_host;
	hopts.port = a.opts.listen_port;
	hopts.max_body = 0;
	hopts.max_connections = 256;
	hopts.max_per_ip = 32;
	err = httpd_start(&http, &hopts, http_handler, &a);
	if (err) {
		pr_err("HTTP server on %s:%d: %s", a.opts.listen_host, a.opts.listen_port,
		       strerror(-err));
		goto cleanup;
	}
	pthread_mutex_lock(&a.lock);
	a.http = http;
	a.ready = 1;
	pthread_mutex_unlock(&a.lock);
	pr_info("flowlens-agent %s on node %s: %u interfaces attached, table %u entries, "
		"interval %llu ms, listening on %s:%d, translations %s, program ids ingress %u "
		"egress %u",
		FLOWLENS_VERSION, a.node, HASH_COUNT(a.ifaces), a.opts.flow_table_size,
		(unsigned long long)a.opts.interval_ms, a.opts.listen_host, a.opts.listen_port,
		xlate_names[a.xlate], prog_id(a.skel->progs.flowlens_ingress),
		prog_id(a.skel->progs.flowlens_egress));

	err = run_loop(&a);

cleanup:
	/* The final drain's batch is queued: give the sender a few seconds to deliver it. */
	export_stop(a.exp, 5000);
	pthread_mutex_lock(&a.lock);
	a.http = NULL;
	pthread_mutex_unlock(&a.lock);
	httpd_stop(http);
	ifwatch_close(a.watch);
	HASH_ITER (hh, a.ifaces, i, itmp) {
		attach_detach(&a.actx, i->ifindex, &i->att, 0);
		HASH_DEL(a.ifaces, i);
		free(i);
	}
	HASH_ITER (hh, a.routes, r, rtmp) {
		HASH_DEL(a.routes, r);
		free(r);
	}
	HASH_ITER (hh, a.failed, f, ftmp) {
		HASH_DEL(a.failed, f);
		free(f);
	}
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(a.tp_links[i]);
	for (int i = 0; i < DROP_REASONS_MAX; i++)
		free(a.drop_names[i]);
	ring_buffer__free(a.rb);
	flowtab_free(a.tab);
	flow_bpf__destroy(a.skel);
	ctquery_close(a.ctq);
	free(a.flows_json);
	options_free(&a.opts);
	pthread_mutex_destroy(&a.lock);
	if (err)
		pr_err("exiting: %s", strerror(-err));
	else
		pr_info("exited cleanly, all attachments removed");
	return err ? 1 : 0;
}
