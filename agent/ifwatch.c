// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include "ifwatch.h"

struct ifwatch {
	struct mnl_socket *events;
	struct mnl_socket *dump;
	const struct ifwatch_ops *ops;
	void *ctx;
	unsigned int seq;
	unsigned long overruns;
	unsigned long dump_retries;
};

struct link_attrs {
	const char *name;
};

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_attrs *la = data;

	if (mnl_attr_get_type(attr) == IFLA_IFNAME &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		la->name = mnl_attr_get_str(attr);
	return MNL_CB_OK;
}

struct route_attrs {
	const void *dst;
	int oif;
	int table;
};

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	struct route_attrs *ra = data;

	switch (mnl_attr_get_type(attr)) {
	case RTA_DST:
		ra->dst = mnl_attr_get_payload(attr);
		break;
	case RTA_OIF:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
			ra->oif = (int)mnl_attr_get_u32(attr);
		break;
	case RTA_TABLE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
			ra->table = (int)mnl_attr_get_u32(attr);
		break;
	}
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifwatch *w = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
		struct link_attrs la = { 0 };

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)))
			return MNL_CB_OK;
		mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, &la);
		if (nlh->nlmsg_type == RTM_DELLINK)
			w->ops->link_del(w->ctx, ifm->ifi_index);
		else if (la.name)
			w->ops->link_add(w->ctx, ifm->ifi_index, la.name);
		break;
	}
	case RTM_NEWTFILTER: {
		const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*t)) || !w->ops->tc_filter ||
		    !t->tcm_handle)
			return MNL_CB_OK;
		w->ops->tc_filter(w->ctx, t->tcm_ifindex, TC_H_MAJ(t->tcm_info) >> 16,
				  t->tcm_handle);
		break;
	}
	case RTM_NEWROUTE:
	case RTM_DELROUTE: {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
		struct route_attrs ra = { 0 };
		int host_len;

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)))
			return MNL_CB_OK;
		host_len = rtm->rtm_family == AF_INET ? 32 : 128;
		if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
		    rtm->rtm_dst_len != host_len || rtm->rtm_type != RTN_UNICAST)
			return MNL_CB_OK;
		ra.table = rtm->rtm_table;
		mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, &ra);
		if (!ra.dst || !ra.oif || ra.table != RT_TABLE_MAIN)
			return MNL_CB_OK;
		w->ops->route(w->ctx, nlh->nlmsg_type == RTM_NEWROUTE, rtm->rtm_family, ra.dst,
			      ra.oif);
		break;
	}
	}
	return MNL_CB_OK;
}

/*
 * A dump socket that failed mid-dump may still hold the rest of that dump, which the next
 * dump would read as its own: replace it.
 */
static int dump_socket_reset(struct ifwatch *w)
{
	if (w->dump)
		mnl_socket_close(w->dump);
	w->dump = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!w->dump)
		return -errno;
	if (mnl_socket_bind(w->dump, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(w->dump);
		w->dump = NULL;
		return err;
	}
	return 0;
}

/*
 * One dump, read to its end. Returns 0, -EINTR when the kernel flagged it inconsistent
 * (NLM_F_DUMP_INTR: the table changed while it was being dumped; what was read may miss
 * entries), or another -errno.
 */
static int dump_one(struct ifwatch *w, int type, int family)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	unsigned int portid = mnl_socket_get_portid(w->dump);
	unsigned int seq = ++w->seq;
	ssize_t n;
	int ret;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (unsigned short)type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	if (type == RTM_GETLINK) {
		struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

		ifm->ifi_family = AF_UNSPEC;
	} else {
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

		rtm->rtm_family = (unsigned char)family;
	}
	if (mnl_socket_sendto(w->dump, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(w->dump, buf, sizeof(buf));
		if (n <= 0) {
			ret = n == 0 ? -EIO : -errno;
			break;
		}
		/* libmnl stops with errno EINTR on a message flagged NLM_F_DUMP_INTR. */
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, msg_cb, w);
		if (ret == MNL_CB_STOP) {
			ret = 0;
			break;
		}
		if (ret < 0) {
			ret = -errno;
			break;
		}
	}
	if (ret) {
		int err = dump_socket_reset(w);

		if (err)
			return err;
	}
	return ret;
}

#define DUMP_ATTEMPTS 20

/* Links, then IPv4 and IPv6 host routes; an interrupted dump is done again (the callbacks are
 * idempotent), up to DUMP_ATTEMPTS times. */
static int dump_all(struct ifwatch *w)
{
	static const struct {
		int type, family;
	} what[] = { { RTM_GETLINK, AF_UNSPEC },
		     { RTM_GETROUTE, AF_INET },
		     { RTM_GETROUTE, AF_INET6 } };
	int err = 0;

	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		for (int attempt = 0; attempt < DUMP_ATTEMPTS; attempt++) {
			err = dump_one(w, what[i].type, what[i].family);
			if (err != -EINTR)
				break;
			w->dump_retries++;
		}
		if (err)
			return err;
	}
	return 0;
}

int ifwatch_resync(struct ifwatch *w)
{
	int err = dump_all(w);

	if (!err && w->ops->resynced)
		w->ops->resynced(w->ctx);
	return err;
}

unsigned long ifwatch_dump_retries(const struct ifwatch *w)
{
	return w->dump_retries;
}

int ifwatch_open(struct ifwatch **out, const struct ifwatch_ops *ops, void *ctx, int rcvbuf)
{
	struct ifwatch *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	w->ops = ops;
	w->ctx = ctx;
	w->seq = (unsigned int)time(NULL);
	/* Subscribe first, then dump, so no change between the two is missed. */
	w->events = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	w->dump = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!w->events || !w->dump) {
		err = -errno;
		goto fail;
	}
	/* Room for a burst of pods starting at once (with CAP_NET_ADMIN, past rmem_max). */
	if (!rcvbuf)
		rcvbuf = IFWATCH_RCVBUF;
	{
		int fd = mnl_socket_get_fd(w->events);

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) == -1)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (mnl_socket_bind(w->events,
			    RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_TC,
			    MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_bind(w->dump, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	err = dump_all(w);
	if (err)
		goto fail;
	*out = w;
	return 0;
fail:
	ifwatch_close(w);
	return err;
}

int ifwatch_fd(const struct ifwatch *w)
{
	return mnl_socket_get_fd(w->events);
}

int ifwatch_process(struct ifwatch *w)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;
	int err;

	for (;;) {
		n = mnl_socket_recvfrom(w->events, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* Notifications were lost: start again from a full dump. */
				w->overruns++;
				err = ifwatch_resync(w);
				if (err)
					return err;
				continue;
			}
			return -errno;
		}
		mnl_cb_run(buf, (size_t)n, 0, 0, msg_cb, w);
	}
}

unsigned long ifwatch_overruns(const struct ifwatch *w)
{
	return w->overruns;
}

void ifwatch_close(struct ifwatch *w)
{
	if (!w)
		return;
	if (w->events)
		mnl_socket_close(w->events);
	if (w->dump)
		mnl_socket_close(w->dump);
	free(w);
}
