/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Attaching the flow programs to one interface: tcx links at the head of the chain where the
 * kernel has tcx (6.6+), otherwise legacy clsact filters at a configured priority with a
 * handle of our own, so that we only ever replace or remove filters we created.
 */
#ifndef FLOWLENS_ATTACH_H
#define FLOWLENS_ATTACH_H

#include <stdint.h>
#include "options.h"

/* Legacy TC filter handle that marks flowlens' own filters. */
#define ATTACH_TC_HANDLE 0xf10e

enum attach_used {
	ATTACHED_NONE = 0,
	ATTACHED_TCX,
	ATTACHED_TC,
};

struct attach_ctx {
	int prog_ingress;
	int prog_egress;
	enum attach_mode mode;
	uint16_t tc_priority;
	int tcx_unsupported; /* learned at run time in auto mode */
};

struct attachment {
	enum attach_used used;
	int link_fd[2]; /* tcx: ingress, egress */
};

/* Attaches both programs to ifindex. Returns 0 or a negative errno (nothing left attached). */
int attach_iface(struct attach_ctx *ctx, int ifindex, struct attachment *out);
/* Detaches what attach_iface() attached. gone: the interface no longer exists. */
void attach_detach(struct attach_ctx *ctx, int ifindex, struct attachment *a, int gone);
/* Legacy TC only: puts our filters back in front where another filter at our priority went
 * ahead of them (and would end the chain before ours runs). Returns the number of hooks
 * re-attached (0: ours were first), or a negative errno; on a failed re-attach nothing of ours
 * is left on the interface and a->used is ATTACHED_NONE. */
int attach_tc_keep_first(struct attach_ctx *ctx, int ifindex, struct attachment *a);
const char *attach_used_name(enum attach_used u);

#endif
