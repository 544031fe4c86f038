// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <uthash.h>
#include "addr.h"
#include "meta_impl.h"

const char *meta_kind_name(enum meta_kind kind)
{
	return kind < META_KINDS ? kind_names[kind] : "?";
}

int meta_new(struct meta **out, uint64_t history_ms)
{
	struct meta *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->history_ms = history_ms;
	if (meta_set_cluster_cidrs(m, META_DEFAULT_CLUSTER_CIDRS)) {
		meta_free(m);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

void names_free(struct pod_names *n)
{
	free(n->ns);
	free(n->name);
	free(n->node);
	free(n->owner_kind);
	free(n->owner_name);
	free(n->hash);
	memset(n, 0, sizeof(*n));
}

int names_copy(struct pod_names *to, const struct pod_names *from)
{
	memset(to, 0, sizeof(*to));
	to->ns = strdup(from->ns);
	to->name = strdup(from->name);
	to->node = strdup(from->node);
	to->owner_kind = strdup(from->owner_kind);
	to->owner_name = strdup(from->owner_name);
	to->hash = strdup(from->hash);
	if (!to->ns || !to->name || !to->node || !to->owner_kind || !to->owner_name || !to->hash) {
		names_free(to);
		return -ENOMEM;
	}
	return 0;
}

void free_refs(struct addr_ref **h)
{
	struct addr_ref *r, *t;

	HASH_ITER (hh, *h, r, t) {
		HASH_DEL(*h, r);
		free(r);
	}
}

static void free_owned(struct owned **h)
{
	struct owned *o, *t;

	HASH_ITER (hh, *h, o, t) {
		HASH_DEL(*h, o);
		free(o->owner_kind);
		free(o->owner_name);
		free(o);
	}
}

void meta_free(struct meta *m)
{
	struct pod *p, *pt;
	struct ip_entry *e, *et;
	struct svc *s, *st;
	struct node *n, *nt;

	if (!m)
		return;
	HASH_ITER (hh, m->pods, p, pt) {
		HASH_DEL(m->pods, p);
		names_free(&p->n);
		free(p);
	}
	HASH_ITER (hh, m->ips, e, et) {
		HASH_DEL(m->ips, e);
		while (e->list) {
			struct binding *b = e->list;

			e->list = b->next;
			names_free(&b->n);
			free(b);
		}
		free(e);
	}
	HASH_ITER (hh, m->svcs, s, st) {
		HASH_DEL(m->svcs, s);
		free(s->ns);
		free(s->name);
		free(s);
	}
	HASH_ITER (hh, m->nodes, n, nt) {
		HASH_DEL(m->nodes, n);
		free(n->name);
		free(n->zone);
		free(n);
	}
	free_refs(&m->svc_ips);
	free_refs(&m->node_ips);
	free_owned(&m->rs);
	free_owned(&m->jobs);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void meta_lock(struct meta *m)
{
	pthread_mutex_lock(&m->lock);
}

void meta_unlock(struct meta *m)
{
	pthread_mutex_unlock(&m->lock);
}

int meta_set_cluster_cidrs(struct meta *m, const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL;
	struct cidr c[CIDRS_MAX];
	int n = 0, err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		char *slash = strchr(tok, '/'), *end;
		long bits;
		int v4;

		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (!slash || n == CIDRS_MAX) {
			err = -EINVAL;
			break;
		}
		*slash = 0;
		v4 = strchr(tok, ':') == NULL;
		bits = strtol(slash + 1, &end, 10);
		if (*end || bits < 0 || bits > (v4 ? 32 : 128) || addr_parse(tok, c[n].addr) < 0) {
			err = -EINVAL;
			break;
		}
		c[n].bits = (int)bits + (v4 ? 96 : 0);
		n++;
	}
	free(copy);
	if (err)
		return err;
	memcpy(m->cidrs, c, sizeof(c[0]) * (size_t)n);
	m->n_cidrs = n;
	m->gen++;
	return 0;
}

int in_cidr(const struct cidr *c, const uint8_t a[16])
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, a, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	return ((c->addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0;
}

/*
 * The binding of an address during [start, end]: the newest that began by the end, unless it
 * had ended before the start (the pod was gone for the whole interval).
 */
static struct binding *binding_at(struct meta *m, const uint8_t a[16], uint64_t start, uint64_t end,
				  int *stable)
{
	struct ip_entry *e;
	struct binding *b, *oldest = NULL;

	HASH_FIND(hh, m->ips, a, 16, e);
	if (!e)
		return NULL;
	/* One open binding: the same answer whatever the time. */
	if (stable)
		*stable = !e->list->next && !e->list->to_ms;
	for (b = e->list; b; b = b->next) {
		if (b->from_ms <= end)
			return b->to_ms && b->to_ms < start ? NULL : b;
		oldest = b;
	}
	return oldest; /* before any binding we know of: the first one */
}

/* Workload of a pod through its controller chain. */
static void workload_of(struct meta *m, const struct pod_names *n, struct meta_ident *out)
{
	char key[KEY_MAX];
	struct owned *o;
	size_t ol, hl;

	out->workload = n->name;
	out->kind = "Pod";
	if (!*n->owner_kind)
		return;
	out->workload = n->owner_name;
	out->kind = n->owner_kind;
	snprintf(key, sizeof(key), "%s/%s", n->ns, n->owner_name);
	if (!strcmp(n->owner_kind, "ReplicaSet")) {
		HASH_FIND_STR(m->rs, key, o);
		if (o && !strcmp(o->owner_kind, "Deployment")) {
			out->workload = o->owner_name;
			out->kind = "Deployment";
			return;
		}
		if (o)
			return;
		/* ReplicaSet not seen (yet): Deployments name theirs <deployment>-<hash>. */
		ol = strlen(n->owner_name);
		hl = strlen(n->hash);
		if (hl && ol > hl + 1 && n->owner_name[ol - hl - 1] == '-' &&
		    !strcmp(n->owner_name + ol - hl, n->hash)) {
			snprintf(out->buf, sizeof(out->buf), "%.*s", (int)(ol - hl - 1),
				 n->owner_name);
			out->workload = out->buf;
			out->kind = "Deployment";
		}
	} else if (!strcmp(n->owner_kind, "Job")) {
		HASH_FIND_STR(m->jobs, key, o);
		if (o && !strcmp(o->owner_kind, "CronJob")) {
			out->workload = o->owner_name;
			out->kind = "CronJob";
		}
	}
}

static const char *zone_of(struct meta *m, const char *node)
{
	struct node *n;

	if (!node || !*node)
		return "";
	HASH_FIND_STR(m->nodes, node, n);
	return n && n->zone ? n->zone : "";
}

void meta_ident(struct meta *m, const uint8_t addr[16], uint64_t start_unix_ms,
		uint64_t end_unix_ms, const char *reporter_node, struct meta_ident *out)
{
	struct addr_ref *r;
	struct binding *b;

	out->buf[0] = 0;
	out->stable = 1;
	out->namespace = out->pod = out->node = out->zone = "";
	HASH_FIND(hh, m->node_ips, addr, 16, r);
	if (r) {
		const struct node *n = r->obj;

		out->kind =
			reporter_node && !strcmp(reporter_node, n->name) ? "host" : "remote-node";
		out->workload = n->name;
		out->node = n->name;
		out->zone = n->zone ? n->zone : "";
		return;
	}
	b = binding_at(m, addr, start_unix_ms, end_unix_ms, &out->stable);
	if (b) {
		out->namespace = b->n.ns;
		out->pod = b->n.name;
		out->node = b->n.node;
		out->zone = zone_of(m, b->n.node);
		workload_of(m, &b->n, out);
		return;
	}
	/* Link-local and multicast (IPv6 neighbour discovery, the VPC CNI's gateway) stay local. */
	if ((addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80) || addr[0] == 0xff ||
	    (addr_is_v4(addr) &&
	     ((addr[12] == 169 && addr[13] == 254) || (addr[12] & 0xf0) == 224))) {
		out->kind = "link-local";
		out->workload = out->kind;
		return;
	}
	out->kind = "world";
	for (int i = 0; i < m->n_cidrs; i++) {
		if (in_cidr(&m->cidrs[i], addr)) {
			out->kind = "unknown";
			break;
		}
	}
	out->workload = out->kind;
}

int meta_service(struct meta *m, const uint8_t addr[16], struct meta_service *out)
{
	struct addr_ref *r;
	const struct svc *s;

	HASH_FIND(hh, m->svc_ips, addr, 16, r);
	if (!r)
		return 0;
	s = r->obj;
	out->namespace = s->ns;
	out->name = s->name;
	return 1;
}

const char *meta_pod_node(struct meta *m, const uint8_t addr[16], uint64_t start_unix_ms,
			  uint64_t end_unix_ms)
{
	struct binding *b = binding_at(m, addr, start_unix_ms, end_unix_ms, NULL);

	return b ? b->n.node : "";
}

uint64_t meta_generation(struct meta *m)
{
	return m->gen;
}

void meta_stats(struct meta *m, struct meta_stats *out)
{
	*out = m->st;
	out->objects[META_POD] = HASH_COUNT(m->pods);
	out->objects[META_SERVICE] = HASH_COUNT(m->svcs);
	out->objects[META_NODE] = HASH_COUNT(m->nodes);
	out->objects[META_REPLICASET] = HASH_COUNT(m->rs);
	out->objects[META_JOB] = HASH_COUNT(m->jobs);
}
