/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the running kernel offers the agent, found out before anything is loaded (kernel BTF,
 * module BTF, the process's capabilities), and what the agent made of it: each optional
 * mechanism and signal is on, off (configured so) or unavailable (with the reason), so that a
 * kernel without one hook costs that signal alone. Exported as flowlens_agent_feature_info.
 */
#ifndef FLOWLENS_PROBE_H
#define FLOWLENS_PROBE_H

enum feature_id {
	FEAT_BTF, /* kernel BTF (/sys/kernel/btf/vmlinux): CO-RE and tp_btf tracepoints */
	FEAT_TCX, /* tcx links (6.6+); otherwise legacy TC (clsact) */
	FEAT_CT_KFUNCS, /* conntrack lookups in the datapath; otherwise netlink queries */
	FEAT_CT_NETLINK, /* conntrack queries over netlink (ctnetlink) */
	FEAT_DROP_REASONS, /* kfree_skb's reason argument (5.17+) */
	FEAT_SIG_TCP, /* TCP outcomes and connect latency (TC programs) */
	FEAT_SIG_RETRANSMITS, /* tcp_retransmit_skb tracepoint */
	FEAT_SIG_HTTP,
	FEAT_SIG_DNS,
	FEAT_SIG_DROPS, /* kfree_skb tracepoint */
	FEAT_FLOW_SLOTS, /* per-CPU last-flow slots (BPF_F_TEST_RUN_ON_CPU, 5.10+) */
	FEAT_MAX,
};

enum feature_state {
	FEAT_STATE_ON = 0,
	FEAT_STATE_OFF, /* turned off by configuration */
	FEAT_STATE_UNAVAILABLE, /* the kernel or the agent's privileges do not allow it */
};

enum kfunc_home {
	KFUNC_NONE = 0,
	KFUNC_VMLINUX, /* nf_conntrack built in */
	KFUNC_MODULE, /* in module BTF: usable only with CAP_SYS_ADMIN (libbpf must find the
			 module's BTF object by id) */
};

struct features {
	/* What the probe found. */
	int vmlinux_btf;
	int tcx;
	int ringbuf; /* 1 yes, 0 no, -1 not allowed to ask */
	int kfree_skb_reason;
	int tp_kfree_skb;
	int tp_retransmit;
	int tp_retransmit_err; /* tcp_retransmit_skb(sk, skb, int err): fires for failed tries too */
	enum kfunc_home ct_kfuncs;
	int cap_sys_admin; /* effective */
	/* What the agent does with it. */
	struct {
		enum feature_state state;
		char reason[200];
	} f[FEAT_MAX];
};

void features_probe(struct features *f);
void features_set(struct features *f, enum feature_id id, enum feature_state st, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
const char *feature_name(enum feature_id id);
const char *feature_state_name(enum feature_state st);
/* One log line per feature that is not on. */
void features_log(const struct features *f);

/*
 * A failed load, as libbpf reported it while load_capture was on: the program the kernel
 * refused and the verifier's own last word on it.
 */
struct load_failure {
	char prog[64];
	char verifier[200];
	int missing_extern; /* a __ksym the kernel lacks */
};

void load_capture_begin(struct load_failure *lf);
/* What one libbpf message says about a failed load (used by the capture; tested alone). */
void load_failure_note(struct load_failure *lf, const char *msg);
void load_capture_end(void);

/* Whether the process holds capability CAP in its effective set. */
int cap_effective(int cap);
/* Drops CAP from the effective, permitted and inheritable sets (and the bounding set where
 * allowed): for what is needed only to load the programs. */
int cap_drop(int cap);

#endif
