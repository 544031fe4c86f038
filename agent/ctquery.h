/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Destination translations from conntrack over netlink (fallback for kernels without kfuncs). */
#ifndef FLOWLENS_CTQUERY_H
#define FLOWLENS_CTQUERY_H

#include "flow.h"

struct ctquery;

int ctquery_open(struct ctquery **out);
void ctquery_close(struct ctquery *q);
/* A flowtab_ct_fn: ctx is the struct ctquery. */
int ctquery_lookup(void *ctx, const struct fl_key *k, struct fl_nat *n);

#endif
