// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Conntrack from user space (ctnetlink, libnetfilter_conntrack): the fallback for kernels
 * whose TC programs cannot call the conntrack kfuncs. One GET per tuple: the kernel matches it
 * against both directions of every entry, like the kfunc does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include "addr.h"
#include "ctquery.h"

struct ctquery {
	struct nfct_handle *h;
	struct nf_conntrack *found; /* set by the callback */
};

static int on_entry(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ctquery *q = data;

	(void)type;
	if (!q->found)
		q->found = nfct_clone(ct);
	return NFCT_CB_CONTINUE; /* STOP would leave the ack unread for the next query */
}

int ctquery_open(struct ctquery **out)
{
	struct ctquery *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->h = nfct_open(CONNTRACK, 0);
	if (!q->h) {
		int err = -errno;

		free(q);
		return err ? err : -EPROTONOSUPPORT;
	}
	nfct_callback_register(q->h, NFCT_T_ALL, on_entry, q);
	*out = q;
	return 0;
}

void ctquery_close(struct ctquery *q)
{
	if (!q)
		return;
	nfct_close(q->h);
	free(q);
}

/* One GET for saddr:sport -> daddr:dport; 0 found (q->found set), -ENOENT, or -errno. */
static int get(struct ctquery *q, const struct fl_key *k, int reverse)
{
	const uint32_t *s = reverse ? k->daddr : k->saddr, *d = reverse ? k->saddr : k->daddr;
	uint16_t sp = reverse ? k->dport : k->sport, dp = reverse ? k->sport : k->dport;
	struct nf_conntrack *ct = nfct_new();
	int v4 = addr_is_v4(k->saddr), err = 0;

	if (!ct)
		return -ENOMEM;
	nfct_set_attr_u8(ct, ATTR_L3PROTO, v4 ? AF_INET : AF_INET6);
	if (v4) {
		nfct_set_attr_u32(ct, ATTR_IPV4_SRC, s[3]);
		nfct_set_attr_u32(ct, ATTR_IPV4_DST, d[3]);
	} else {
		nfct_set_attr(ct, ATTR_IPV6_SRC, s);
		nfct_set_attr(ct, ATTR_IPV6_DST, d);
	}
	nfct_set_attr_u8(ct, ATTR_L4PROTO, k->proto);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sp));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dp));
	q->found = NULL;
	if (nfct_query(q->h, NFCT_Q_GET, ct) == -1)
		err = -errno;
	nfct_destroy(ct);
	if (!err && !q->found)
		err = -ENOENT;
	return err;
}

int ctquery_lookup(void *ctx, const struct fl_key *k, struct fl_nat *n)
{
	struct ctquery *q = ctx;
	int v4 = addr_is_v4(k->saddr), err;

	err = get(q, k, 0);
	if (err == -ENOENT)
		err = get(q, k, 1);
	if (err)
		return err;
	memset(n, 0, sizeof(*n));
	if (v4) {
		uint32_t a;

		a = nfct_get_attr_u32(q->found, ATTR_ORIG_IPV4_DST);
		addr_map(AF_INET, &a, n->dialed);
		a = nfct_get_attr_u32(q->found, ATTR_REPL_IPV4_SRC);
		addr_map(AF_INET, &a, n->backend);
	} else {
		addr_map(AF_INET6, nfct_get_attr(q->found, ATTR_ORIG_IPV6_DST), n->dialed);
		addr_map(AF_INET6, nfct_get_attr(q->found, ATTR_REPL_IPV6_SRC), n->backend);
	}
	n->dialed_port = ntohs(nfct_get_attr_u16(q->found, ATTR_ORIG_PORT_DST));
	n->backend_port = ntohs(nfct_get_attr_u16(q->found, ATTR_REPL_PORT_SRC));
	nfct_destroy(q->found);
	q->found = NULL;
	return memcmp(n->dialed, n->backend, 16) || n->dialed_port != n->backend_port;
}
