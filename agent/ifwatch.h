/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Follows network interfaces and host routes of the agent's network namespace through
 * rtnetlink (libmnl): a dump at start, then link, route and TC filter notifications. After a
 * notification overrun (ENOBUFS) everything is dumped again, and the caller reconciles
 * periodically with ifwatch_resync(). A dump the kernel flags as interrupted (the tables
 * changed under it) is done again, never taken as complete.
 */
#ifndef FLOWLENS_IFWATCH_H
#define FLOWLENS_IFWATCH_H

struct ifwatch_ops {
	/* A link exists (new, changed or re-dumped): must be idempotent. */
	void (*link_add)(void *ctx, int ifindex, const char *name);
	void (*link_del)(void *ctx, int ifindex);
	/* A host route (/32 or /128) through ifindex was added or removed. */
	void (*route)(void *ctx, int add, int family, const void *addr, int ifindex);
	/* A TC filter was added or replaced on ifindex (priority, handle); may be NULL. */
	void (*tc_filter)(void *ctx, int ifindex, unsigned int prio, unsigned int handle);
	/* After a re-dump: the caller drops what the dump no longer showed. */
	void (*resynced)(void *ctx);
};

struct ifwatch;

/* rcvbuf: the notification socket's buffer (0: IFWATCH_RCVBUF). Returns 0 or -errno. */
int ifwatch_open(struct ifwatch **out, const struct ifwatch_ops *ops, void *ctx, int rcvbuf);
int ifwatch_fd(const struct ifwatch *w);
/* Handles pending notifications. Returns 0 or a negative errno. */
int ifwatch_process(struct ifwatch *w);
unsigned long ifwatch_overruns(const struct ifwatch *w);
/* Dumps everything again and calls resynced(). Returns 0 or a negative errno. */
int ifwatch_resync(struct ifwatch *w);
/* Dumps done again because the kernel flagged them interrupted. */
unsigned long ifwatch_dump_retries(const struct ifwatch *w);

#define IFWATCH_RCVBUF (8 << 20)
void ifwatch_close(struct ifwatch *w);

#endif
