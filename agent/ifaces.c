// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Interfaces as they come and go. Netlink tells of links (attach to those matching the
 * globs, forget those gone), of host routes through pod interfaces (local pod IPs, for
 * attribution) and of other TC filters (legacy TC: keep ours first). Events can be missed,
 * so a periodic reconcile compares everything with a full dump and counts what it repairs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include "agent.h"
#include "clock.h"
#include "log.h"

static void keep_first(struct agent *a, struct iface *i);

static int glob_match(char *const *globs, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return 1;
	return 0;
}

int ifaces_kind_of(void *ctx, int ifindex)
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

/*
 * Events can be missed (a notification overrun during a burst of pods, a dump the kernel
 * flagged as interrupted, an attach that failed): compare with a full dump now and then.
 * What it changes is counted as a repair.
 */
void ifaces_reconcile(struct agent *a)
{
	int err;

	if (clock_mono_ms() - a->last_reconcile_ms < a->opts.reconcile_ms)
		return;
	a->last_reconcile_ms = clock_mono_ms();
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

const struct ifwatch_ops ifaces_watch_ops = {
	.link_add = on_link_add,
	.link_del = on_link_del,
	.route = on_route,
	.tc_filter = on_tc_filter,
	.resynced = on_resynced,
};
