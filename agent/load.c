// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading: the probe says what this kernel and these privileges allow (probe.c); the first
 * load plan takes everything configured that the probe allows; when the kernel still refuses
 * a part, the plan narrows (the object without conntrack kfuncs, no tracepoint programs) and
 * the cause is recorded in flowlens_agent_feature_info. Also the kernel's drop reason names
 * (BTF), the tracepoint attachments and the jiffies/CLOCK_MONOTONIC clock reading.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "flow.h"
#include "flow.skel.h"
#include "flow_noct.skel.h"
#include "clock.h"
#include "log.h"

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

/* Names of the kernel's drop reasons (SKB_DROP_REASON_NETFILTER_DROP -> netfilter_drop). */
void load_drop_names(struct agent *a)
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

const char *load_drop_name(void *ctx, unsigned int reason)
{
	struct agent *a = ctx;

	return reason < DROP_REASONS_MAX ? a->drop_names[reason] : NULL;
}

/* The tracepoints of the signals that are on; a signal whose hook fails is turned off. */
void load_tracepoints(struct agent *a)
{
	struct bpf_program *p[2] = { a->feat.tp_retransmit_err ?
					     a->skel->progs.flowlens_retransmit_err :
					     a->skel->progs.flowlens_retransmit,
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

/*
 * The per-CPU last-flow slots (bpf/cache.bpf.h) are turned on only once every CPU's slot was
 * flushed, which proves this kernel runs the flush on a chosen CPU; not on PREEMPT_RT, where
 * TC programs on one CPU can interleave.
 */
void load_slots(struct agent *a)
{
	int fd = bpf_program__fd(a->skel->progs.flowlens_cache_flush);
	char rt = '0';
	FILE *f;
	int err;

	if (!a->opts.flow_slots) {
		features_set(&a->feat, FEAT_FLOW_SLOTS, FEAT_STATE_OFF, "--flow-slots off");
		return;
	}
	f = fopen("/sys/kernel/realtime", "r");
	if (f) {
		if (fread(&rt, 1, 1, f) != 1)
			rt = '0';
		fclose(f);
	}
	if (rt == '1') {
		features_set(&a->feat, FEAT_FLOW_SLOTS, FEAT_STATE_UNAVAILABLE,
			     "PREEMPT_RT kernel: TC programs of one CPU can interleave");
		pr_warn("flow_slots unavailable: %s", a->feat.f[FEAT_FLOW_SLOTS].reason);
		return;
	}
	err = flowtab_flush_slots(fd, libbpf_num_possible_cpus(), NULL);
	if (err) {
		features_set(
			&a->feat, FEAT_FLOW_SLOTS, FEAT_STATE_UNAVAILABLE,
			"cannot run the flush on a chosen CPU (BPF_F_TEST_RUN_ON_CPU, 5.10+): %s",
			strerror(-err));
		pr_warn("flow_slots unavailable: %s", a->feat.f[FEAT_FLOW_SLOTS].reason);
		return;
	}
	a->skel->bss->cache_on = 1;
	flowtab_set_slots(a->tab, fd);
}

/* Reads jiffies and CLOCK_MONOTONIC together through the flowlens_clock program. */
int load_sample_clock(struct agent *a, struct kernel_clock *c)
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
int load_calibrate_hz(struct agent *a)
{
	static const uint32_t known[] = { 100, 250, 300, 1000 };
	struct kernel_clock c0, c1;
	double hz, best = 1e9;
	int err;

	err = load_sample_clock(a, &c0);
	if (err)
		return err;
	usleep(200000);
	err = load_sample_clock(a, &c1);
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

unsigned int load_prog_id(const struct bpf_program *p)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
		return 0;
	return info.id;
}

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
	bpf_program__set_autoload(a->skel->progs.flowlens_retransmit,
				  p->retransmit && !a->feat.tp_retransmit_err);
	bpf_program__set_autoload(a->skel->progs.flowlens_retransmit_err,
				  p->retransmit && a->feat.tp_retransmit_err);
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
		} else if (p.retransmit && strncmp(lf.prog, "flowlens_retransmit", 19) == 0) {
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

int load_programs(struct agent *a)
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
