// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/syscall.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "log.h"

/* From linux/bpf.h of 6.6+, which the build headers may predate. */
#define FL_BPF_TCX_INGRESS 46
#define FL_BPF_TCX_EGRESS 47
#define FL_BPF_F_BEFORE (1U << 3)

/* The BPF_LINK_CREATE part of union bpf_attr with the tcx member (kernel 6.6 layout). */
struct tcx_link_create_attr {
	__u32 prog_fd;
	__u32 target_ifindex;
	__u32 attach_type;
	__u32 flags;
	__u32 relative_fd;
	__u32 pad;
	__u64 expected_revision;
	__u8 rest[64]; /* the kernel requires the unused tail of the attr to be zero */
};

static int tcx_link_create(int prog_fd, int ifindex, __u32 type)
{
	struct tcx_link_create_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = (__u32)prog_fd;
	attr.target_ifindex = (__u32)ifindex;
	attr.attach_type = type;
	/* BPF_F_BEFORE with no relative program: first in the chain, ahead of e.g. the VPC
	 * CNI network policy agent's programs that end the chain with TC_ACT_OK. */
	attr.flags = FL_BPF_F_BEFORE;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : (int)fd;
}

static int attach_tcx(struct attach_ctx *ctx, int ifindex, struct attachment *a)
{
	int in, eg;

	in = tcx_link_create(ctx->prog_ingress, ifindex, FL_BPF_TCX_INGRESS);
	if (in < 0)
		return in;
	eg = tcx_link_create(ctx->prog_egress, ifindex, FL_BPF_TCX_EGRESS);
	if (eg < 0) {
		close(in);
		return eg;
	}
	a->link_fd[0] = in;
	a->link_fd[1] = eg;
	a->used = ATTACHED_TCX;
	return 0;
}

static int tc_filter_is_ours(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point);

static int tc_attach_one(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point,
			 int prog_fd)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = ATTACH_TC_HANDLE,
			    .priority = ctx->tc_priority);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ATTACH_TC_HANDLE,
			    .priority = ctx->tc_priority, .prog_fd = prog_fd);
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	if (bpf_tc_query(&hook, &q) == 0) {
		if (!tc_filter_is_ours(ctx, ifindex, point)) {
			pr_err("ifindex %d: a filter that is not ours holds priority %u handle %#x; "
			       "choose another --tc-priority",
			       ifindex, ctx->tc_priority, ATTACH_TC_HANDLE);
			return -EBUSY;
		}
		pr_info("ifindex %d: replacing a stale flowlens filter (prog id %u)", ifindex,
			q.prog_id);
		opts.flags = BPF_TC_F_REPLACE;
	}
	return bpf_tc_attach(&hook, &opts);
}

static void tc_detach_one(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ATTACH_TC_HANDLE,
			    .priority = ctx->tc_priority);
	int err;

	/* Only our own handle/priority is removed; the clsact qdisc and others' filters stay. */
	err = bpf_tc_detach(&hook, &opts);
	if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
		pr_warn("ifindex %d: detaching tc filter: %s", ifindex, strerror(-err));
}

static int attach_tc(struct attach_ctx *ctx, int ifindex, struct attachment *a)
{
	int err;

	err = tc_attach_one(ctx, ifindex, BPF_TC_INGRESS, ctx->prog_ingress);
	if (err)
		return err;
	err = tc_attach_one(ctx, ifindex, BPF_TC_EGRESS, ctx->prog_egress);
	if (err) {
		tc_detach_one(ctx, ifindex, BPF_TC_INGRESS);
		return err;
	}
	a->used = ATTACHED_TC;
	return 0;
}

int attach_iface(struct attach_ctx *ctx, int ifindex, struct attachment *out)
{
	int err;

	out->used = ATTACHED_NONE;
	out->link_fd[0] = out->link_fd[1] = -1;
	if (ctx->mode == ATTACH_TC || (ctx->mode == ATTACH_AUTO && ctx->tcx_unsupported))
		return attach_tc(ctx, ifindex, out);
	err = attach_tcx(ctx, ifindex, out);
	if (err == 0 || ctx->mode == ATTACH_TCX)
		return err;
	if (err == -EINVAL || err == -EOPNOTSUPP) {
		/* Kernels before 6.6 reject the attach type: use clsact from now on. */
		pr_info("tcx not available (%s); using legacy TC (clsact) at priority %u",
			strerror(-err), ctx->tc_priority);
		ctx->tcx_unsupported = 1;
		return attach_tc(ctx, ifindex, out);
	}
	return err;
}

void attach_detach(struct attach_ctx *ctx, int ifindex, struct attachment *a, int gone)
{
	switch (a->used) {
	case ATTACHED_TCX:
		/* Closing the link fd detaches; a vanished device took the links with it. */
		for (int i = 0; i < 2; i++) {
			if (a->link_fd[i] >= 0)
				close(a->link_fd[i]);
			a->link_fd[i] = -1;
		}
		break;
	case ATTACHED_TC:
		if (!gone) {
			tc_detach_one(ctx, ifindex, BPF_TC_INGRESS);
			tc_detach_one(ctx, ifindex, BPF_TC_EGRESS);
		}
		break;
	case ATTACHED_NONE:
		break;
	}
	a->used = ATTACHED_NONE;
}

/*
 * Legacy TC: filters of one priority share one cls_bpf instance, which runs its programs in
 * list order, newest first, and stops at the first verdict other than TC_ACT_UNSPEC. The VPC
 * CNI network policy agent attaches at priority 1 (the lowest there is) and answers every
 * packet TC_ACT_OK or TC_ACT_SHOT, so a program behind it never runs. Ours must be first:
 * when another filter went ahead of it, ours is deleted and added again, which puts it at the
 * head. The other filter keeps running after ours (we return TC_ACT_UNSPEC): no packet's fate
 * changes, and for the microseconds between delete and add we merely see nothing.
 */
struct first_filter {
	uint32_t prio;
	uint32_t handle; /* of the first filter at prio, 0: none */
};

static int first_filter_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);
	struct first_filter *f = data;

	if (nlh->nlmsg_type != RTM_NEWTFILTER || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*t)))
		return MNL_CB_OK;
	/* The dump gives the classifier instance (handle 0), then its filters in run order. */
	if (!f->handle && t->tcm_handle && TC_H_MAJ(t->tcm_info) >> 16 == f->prio)
		f->handle = t->tcm_handle;
	return MNL_CB_OK;
}

/*
 * The program name of the filter with our handle at our priority: cls_bpf keeps the name the
 * attaching process gave (libbpf: "<program name>:[<id>]"). Read from the filter dump, it
 * needs only CAP_NET_ADMIN; asking the kernel about the program by id would take
 * CAP_SYS_ADMIN, which the agent does not hold.
 */
struct our_filter {
	uint32_t prio;
	char name[64];
};

static int bpf_opt_cb(const struct nlattr *attr, void *data)
{
	struct our_filter *f = data;

	if (mnl_attr_get_type(attr) == TCA_BPF_NAME &&
	    mnl_attr_validate(attr, MNL_TYPE_STRING) == 0)
		snprintf(f->name, sizeof(f->name), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int filter_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == TCA_OPTIONS)
		mnl_attr_parse_nested(attr, bpf_opt_cb, data);
	return MNL_CB_OK;
}

static int our_filter_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);
	struct our_filter *f = data;

	if (nlh->nlmsg_type != RTM_NEWTFILTER || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*t)))
		return MNL_CB_OK;
	if (t->tcm_handle == ATTACH_TC_HANDLE && TC_H_MAJ(t->tcm_info) >> 16 == f->prio)
		mnl_attr_parse(nlh, sizeof(*t), filter_attr_cb, f);
	return MNL_CB_OK;
}

static int tc_dump(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point, mnl_cb_t cb,
		   void *data);

/* Is the filter holding our slot one of ours (left by an agent that crashed)? */
static int tc_filter_is_ours(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point)
{
	struct our_filter f = { .prio = ctx->tc_priority };

	return tc_dump(ctx, ifindex, point, our_filter_cb, &f) == 0 &&
	       strncmp(f.name, "flowlens_", 9) == 0;
}

/* The handle of the filter that runs first at our priority on one hook. */
static int tc_first_handle(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point,
			   uint32_t *handle)
{
	struct first_filter f = { .prio = ctx->tc_priority };
	int err = tc_dump(ctx, ifindex, point, first_filter_cb, &f);

	*handle = f.handle;
	return err;
}

/* Dumps the filters at our priority on one hook through cb. */
static int tc_dump(struct attach_ctx *ctx, int ifindex, enum bpf_tc_attach_point point, mnl_cb_t cb,
		   void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct tcmsg *t;
	unsigned int seq = (unsigned int)time(NULL), portid;
	ssize_t n;
	int ret = 0;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETTFILTER;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	t = mnl_nlmsg_put_extra_header(nlh, sizeof(*t));
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = ifindex;
	t->tcm_parent = TC_H_MAKE(TC_H_CLSACT,
				  point == BPF_TC_INGRESS ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
	t->tcm_info = TC_H_MAKE((uint32_t)ctx->tc_priority << 16, htons(ETH_P_ALL));
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		int r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);

		if (r == MNL_CB_ERROR) {
			ret = -errno;
			goto out;
		}
		if (r == MNL_CB_STOP)
			break;
	}
	if (n < 0)
		ret = -errno;
out:
	mnl_socket_close(nl);
	return ret;
}

int attach_tc_keep_first(struct attach_ctx *ctx, int ifindex, struct attachment *a)
{
	static const enum bpf_tc_attach_point points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	int moved = 0;

	if (a->used != ATTACHED_TC)
		return 0;
	for (int i = 0; i < 2; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
				    .attach_point = points[i]);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, del, .handle = ATTACH_TC_HANDLE,
				    .priority = ctx->tc_priority);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, add, .handle = ATTACH_TC_HANDLE,
				    .priority = ctx->tc_priority,
				    .prog_fd = i == 0 ? ctx->prog_ingress : ctx->prog_egress);
		uint32_t first = 0;
		int err = tc_first_handle(ctx, ifindex, points[i], &first);

		if (err)
			return err;
		if (first == ATTACH_TC_HANDLE || first == 0)
			continue;
		err = bpf_tc_detach(&hook, &del);
		if (err && err != -ENOENT)
			return err;
		err = bpf_tc_attach(&hook, &add);
		if (err) {
			/* Not attached on this hook any more: the caller forgets the interface. */
			tc_detach_one(ctx, ifindex, points[1 - i]);
			a->used = ATTACHED_NONE;
			return err;
		}
		pr_info("ifindex %d %s: filter handle %#x had gone ahead of ours at priority %u; "
			"ours is first again",
			ifindex, i == 0 ? "ingress" : "egress", first, ctx->tc_priority);
		moved++;
	}
	return moved;
}

const char *attach_used_name(enum attach_used u)
{
	switch (u) {
	case ATTACHED_TCX:
		return "tcx";
	case ATTACHED_TC:
		return "tc";
	default:
		return "none";
	}
}
