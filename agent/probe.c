// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kernel feature probing before load, the per-feature state the agent reports, the capture of
 * libbpf's account of a failed load (which program, what the verifier said), and the
 * capability helpers around loading.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "probe.h"
#include "log.h"

static const char *const feature_names[FEAT_MAX] = {
	[FEAT_BTF] = "kernel_btf",
	[FEAT_TCX] = "tcx",
	[FEAT_CT_KFUNCS] = "conntrack_kfuncs",
	[FEAT_CT_NETLINK] = "conntrack_netlink",
	[FEAT_DROP_REASONS] = "drop_reasons",
	[FEAT_SIG_TCP] = "signal_tcp",
	[FEAT_SIG_RETRANSMITS] = "signal_retransmits",
	[FEAT_SIG_HTTP] = "signal_http",
	[FEAT_SIG_DNS] = "signal_dns",
	[FEAT_SIG_DROPS] = "signal_drops",
	[FEAT_FLOW_SLOTS] = "flow_slots",
};

const char *feature_name(enum feature_id id)
{
	return id < FEAT_MAX ? feature_names[id] : "unknown";
}

const char *feature_state_name(enum feature_state st)
{
	switch (st) {
	case FEAT_STATE_ON:
		return "on";
	case FEAT_STATE_OFF:
		return "off";
	case FEAT_STATE_UNAVAILABLE:
		return "unavailable";
	}
	return "unknown";
}

void features_set(struct features *f, enum feature_id id, enum feature_state st, const char *fmt,
		  ...)
{
	va_list ap;

	f->f[id].state = st;
	va_start(ap, fmt);
	vsnprintf(f->f[id].reason, sizeof(f->f[id].reason), fmt, ap);
	va_end(ap);
}

void features_log(const struct features *f)
{
	for (int i = 0; i < FEAT_MAX; i++) {
		if (f->f[i].state == FEAT_STATE_UNAVAILABLE)
			pr_warn("%s unavailable: %s", feature_names[i], f->f[i].reason);
		else if (f->f[i].state == FEAT_STATE_OFF)
			pr_info("%s off: %s", feature_names[i], f->f[i].reason);
	}
}

int cap_effective(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return 0;
	return !!(d[cap / 32].effective & (1U << (cap % 32)));
}

int cap_drop(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	d[cap / 32].inheritable &= ~(1U << (cap % 32));
	/* The bounding set needs CAP_SETPCAP, which the chart does not grant: best effort. */
	(void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return cap_effective(cap) ? -EPERM : 0;
}

/* The number of arguments a tp_btf target passes (btf_trace_<name>: void *, then its own). */
static int tp_args(const struct btf *btf, const char *name, const char **third_type)
{
	char tn[128];
	const struct btf_type *t;
	const struct btf_param *p;
	int id;

	snprintf(tn, sizeof(tn), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, tn, BTF_KIND_TYPEDEF);
	if (id <= 0)
		return -1;
	t = btf__type_by_id(btf, id);
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* pointer */
	t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	if (!t || !btf_is_func_proto(t))
		return -1;
	p = btf_params(t);
	if (third_type) {
		const struct btf_type *a = btf_vlen(t) > 3 ? btf__type_by_id(btf, p[3].type) : NULL;

		*third_type = a ? btf__name_by_offset(btf, a->name_off) : NULL;
	}
	return btf_vlen(t) - 1;
}

static int has_enum_value(const struct btf *btf, const char *type, const char *value)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *e = t ? btf_enum(t) : NULL;

	for (int i = 0; t && i < btf_vlen(t); i++, e++)
		if (strcmp(btf__name_by_offset(btf, e->name_off), value) == 0)
			return 1;
	return 0;
}

/* 1: the kernel has BPF ring buffers; 0: it has not; -1: not allowed to ask (no CAP_BPF). */
static int probe_ringbuf(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, NULL, 0, 0, 4096, NULL);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return errno == EPERM ? -1 : 0;
}

void features_probe(struct features *f)
{
	struct btf *vmlinux, *mod;
	const char *third = NULL;

	memset(f, 0, sizeof(*f));
	f->cap_sys_admin = cap_effective(CAP_SYS_ADMIN);
	f->ringbuf = probe_ringbuf();
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return;
	f->vmlinux_btf = 1;
	f->tcx = has_enum_value(vmlinux, "bpf_attach_type", "BPF_TCX_INGRESS");
	f->tp_retransmit = tp_args(vmlinux, "tcp_retransmit_skb", &third) >= 2;
	f->tp_retransmit_err = f->tp_retransmit && third && strcmp(third, "int") == 0;
	f->tp_kfree_skb = tp_args(vmlinux, "kfree_skb", &third) >= 2;
	/* kfree_skb(skb, location, enum skb_drop_reason reason[, rx_sk]) since 5.17. */
	f->kfree_skb_reason = f->tp_kfree_skb && third && strcmp(third, "skb_drop_reason") == 0;
	if (btf__find_by_name_kind(vmlinux, "bpf_skb_ct_lookup", BTF_KIND_FUNC) > 0) {
		f->ct_kfuncs = KFUNC_VMLINUX;
	} else {
		/* Where nf_conntrack is a module (and loaded), its kfuncs are in its own BTF. */
		mod = btf__load_module_btf("nf_conntrack", vmlinux);
		if (mod && btf__find_by_name_kind(mod, "bpf_skb_ct_lookup", BTF_KIND_FUNC) > 0)
			f->ct_kfuncs = KFUNC_MODULE;
		btf__free(mod);
	}
	btf__free(vmlinux);
}

static struct load_failure *capture;
static libbpf_print_fn_t saved_print;

/* The verifier's last word: the last line of its log that is not its statistics. */
static void last_verifier_line(const char *log, char *out, size_t n)
{
	const char *end = strstr(log, "-- END PROG LOAD LOG --");
	const char *p, *line = NULL, *line_end = NULL;

	if (!end)
		end = log + strlen(log);
	for (p = log; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		if (e > p && strncmp(p, "processed ", 10) && strncmp(p, "verification time", 17) &&
		    strncmp(p, "stack depth", 11) && strncmp(p, "-- BEGIN", 8)) {
			line = p;
			line_end = e;
		}
		p = nl ? nl + 1 : end;
	}
	if (line)
		snprintf(out, n, "%.*s", (int)(line_end - line), line);
}

void load_failure_note(struct load_failure *lf, const char *msg)
{
	const char *q;

	if ((q = strstr(msg, "prog '")) && strstr(msg, "load failed") && !lf->prog[0])
		sscanf(q, "prog '%63[^']'", lf->prog);
	if ((q = strstr(msg, "-- BEGIN PROG LOAD LOG --")))
		last_verifier_line(q + 26, lf->verifier, sizeof(lf->verifier));
	if (strstr(msg, "extern (func ksym)") && strstr(msg, "not found"))
		lf->missing_extern = 1;
}

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	va_list copy;

	va_copy(copy, ap);
	if (vasprintf(&msg, fmt, copy) < 0)
		msg = NULL;
	va_end(copy);
	if (msg && capture)
		load_failure_note(capture, msg);
	/* libbpf's own account (the whole verifier log) at debug: the agent says it in one line. */
	if (msg && LOG_LVL_DEBUG <= log_level) {
		size_t n = strlen(msg);

		if (n && msg[n - 1] == '\n')
			msg[n - 1] = 0;
		log_msg(LOG_LVL_DEBUG, "libbpf: %s", msg);
	}
	(void)level;
	free(msg);
	return 0;
}

void load_capture_begin(struct load_failure *lf)
{
	memset(lf, 0, sizeof(*lf));
	capture = lf;
	saved_print = libbpf_set_print(capture_print);
}

void load_capture_end(void)
{
	libbpf_set_print(saved_print);
	capture = NULL;
}
