// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubernetes objects into the metadata: pods (their IPs bound for the time they hold them, and
 * their workload through owner references), services (ClusterIPs), nodes (addresses, zone),
 * ReplicaSets and Jobs (the controller above them); relists that forget what is gone; expiry of
 * the IP history.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "hashutil.h"
#include "meta_impl.h"

/* JSON helpers: a string at a path of keys, or "" */
static const char *jstr(json_object *o, const char *k1, const char *k2)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k1, &v))
		return "";
	if (k2 && !json_object_object_get_ex(v, k2, &v))
		return "";
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static json_object *jget(json_object *o, const char *k1, const char *k2)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k1, &v))
		return NULL;
	if (k2 && !json_object_object_get_ex(v, k2, &v))
		return NULL;
	return v;
}

static int make_key(json_object *obj, char key[KEY_MAX], const char **ns, const char **name)
{
	*ns = jstr(obj, "metadata", "namespace");
	*name = jstr(obj, "metadata", "name");
	if (!**name)
		return -EINVAL;
	snprintf(key, KEY_MAX, "%s/%s", *ns, *name);
	return 0;
}

/* The controller owner reference: kind and name, or "" */
static void controller_of(json_object *obj, const char **kind, const char **name)
{
	json_object *refs = jget(obj, "metadata", "ownerReferences");
	size_t n = refs && json_object_is_type(refs, json_type_array) ?
			   json_object_array_length(refs) :
			   0;

	*kind = "";
	*name = "";
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(refs, i), *c;

		if (json_object_object_get_ex(r, "controller", &c) && json_object_get_boolean(c)) {
			*kind = jstr(r, "kind", NULL);
			*name = jstr(r, "name", NULL);
			return;
		}
	}
	if (n) {
		json_object *r = json_object_array_get_idx(refs, 0);

		*kind = jstr(r, "kind", NULL);
		*name = jstr(r, "name", NULL);
	}
}

static struct ip_entry *ip_get(struct meta *m, const uint8_t a[16])
{
	struct ip_entry *e;

	HASH_FIND_OR_ADD(hh, m->ips, addr, a, e);
	return e;
}

static void binding_close(struct meta *m, const char *pod_key, const uint8_t a[16], uint64_t now)
{
	struct ip_entry *e;

	HASH_FIND(hh, m->ips, a, 16, e);
	if (!e)
		return;
	for (struct binding *b = e->list; b; b = b->next)
		if (!b->to_ms && strcmp(b->pod_key, pod_key) == 0)
			b->to_ms = now ? now : 1;
}

static void binding_open(struct meta *m, const struct pod *p, const uint8_t a[16], uint64_t from)
{
	struct ip_entry *e = ip_get(m, a);
	struct binding *b;

	if (!e)
		return;
	/* Another pod still holding it (a missed delete): it holds it no longer. */
	for (b = e->list; b; b = b->next)
		if (!b->to_ms)
			b->to_ms = from ? from : 1;
	b = calloc(1, sizeof(*b));
	if (!b || names_copy(&b->n, &p->n)) {
		free(b);
		return;
	}
	snprintf(b->pod_key, sizeof(b->pod_key), "%s", p->key);
	b->from_ms = from;
	b->next = e->list;
	e->list = b;
	m->st.ip_bindings++;
}

static int has_ip(uint8_t ips[][16], int n, const uint8_t a[16])
{
	for (int i = 0; i < n; i++)
		if (!memcmp(ips[i], a, 16))
			return 1;
	return 0;
}

static void pod_delete(struct meta *m, struct pod *p, uint64_t now)
{
	for (int i = 0; i < p->n_ips; i++)
		binding_close(m, p->key, p->ips[i], now);
	HASH_DEL(m->pods, p);
	names_free(&p->n);
	free(p);
}

static int str_set(char **dst, const char *v)
{
	char *n;

	if (*dst && strcmp(*dst, v) == 0)
		return 0;
	n = strdup(v);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 1;
}

/*
 * Pods that have finished (Succeeded, Failed) or share the node's network hold no IP of
 * their own. The first list after start binds IPs "since always" (from 0): the flows of the
 * first batches happened before the collector could have seen any event.
 */
static int apply_pod(struct meta *m, enum meta_event ev, json_object *obj, uint64_t now,
		     int initial)
{
	const char *ns, *name, *phase = jstr(obj, "status", "phase"), *okind, *oname;
	uint8_t ips[POD_IPS_MAX][16];
	json_object *arr, *hn;
	char key[KEY_MAX];
	struct pod *p;
	int n_ips = 0, changed = 0;
	uint64_t from = initial ? 0 : now;

	if (make_key(obj, key, &ns, &name))
		return -EINVAL;
	HASH_FIND_STR(m->pods, key, p);
	if (ev == META_DELETED) {
		if (p)
			pod_delete(m, p, now);
		return 0;
	}
	hn = jget(obj, "spec", "hostNetwork");
	if (strcmp(phase, "Succeeded") && strcmp(phase, "Failed") &&
	    !(hn && json_object_get_boolean(hn))) {
		arr = jget(obj, "status", "podIPs");
		for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) &&
				   i < json_object_array_length(arr) && n_ips < POD_IPS_MAX;
		     i++) {
			const char *ip = jstr(json_object_array_get_idx(arr, i), "ip", NULL);

			if (addr_parse(ip, ips[n_ips]) > 0 && !has_ip(ips, n_ips, ips[n_ips]))
				n_ips++;
		}
		if (!n_ips && addr_parse(jstr(obj, "status", "podIP"), ips[0]) > 0)
			n_ips = 1;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		snprintf(p->key, sizeof(p->key), "%s", key);
		HASH_ADD_STR(m->pods, key, p);
	}
	p->mark = 1;
	controller_of(obj, &okind, &oname);
	changed |= str_set(&p->n.ns, ns);
	changed |= str_set(&p->n.name, name);
	changed |= str_set(&p->n.node, jstr(obj, "spec", "nodeName"));
	changed |= str_set(&p->n.owner_kind, okind);
	changed |= str_set(&p->n.owner_name, oname);
	changed |= str_set(&p->n.hash,
			   jstr(jget(obj, "metadata", "labels"), "pod-template-hash", NULL));
	if (changed < 0 || !p->n.ns || !p->n.name || !p->n.node || !p->n.owner_kind ||
	    !p->n.owner_name || !p->n.hash) {
		pod_delete(m, p, now);
		return -ENOMEM;
	}
	/* Addresses given up, then new ones; open bindings of kept ones follow name changes. */
	for (int i = 0; i < p->n_ips; i++)
		if (!has_ip(ips, n_ips, p->ips[i]))
			binding_close(m, p->key, p->ips[i], now);
	for (int i = 0; i < n_ips; i++) {
		struct ip_entry *e;

		if (!has_ip(p->ips, p->n_ips, ips[i])) {
			binding_open(m, p, ips[i], from);
			continue;
		}
		if (!changed)
			continue;
		HASH_FIND(hh, m->ips, ips[i], 16, e);
		for (struct binding *b = e ? e->list : NULL; b; b = b->next) {
			if (!b->to_ms && strcmp(b->pod_key, p->key) == 0) {
				struct pod_names fresh;

				if (names_copy(&fresh, &p->n) == 0) {
					names_free(&b->n);
					b->n = fresh;
				}
			}
		}
	}
	memcpy(p->ips, ips, sizeof(ips[0]) * (size_t)n_ips);
	p->n_ips = n_ips;
	return 0;
}

static void refs_drop(struct addr_ref **h, void *obj)
{
	struct addr_ref *r, *t;

	HASH_ITER (hh, *h, r, t) {
		if (r->obj == obj) {
			HASH_DEL(*h, r);
			free(r);
		}
	}
}

static void refs_add(struct addr_ref **h, uint8_t ips[][16], int n, void *obj)
{
	for (int i = 0; i < n; i++) {
		struct addr_ref *r;

		HASH_FIND(hh, *h, ips[i], 16, r);
		if (r) {
			r->obj = obj; /* the newest claim wins */
			continue;
		}
		r = calloc(1, sizeof(*r));
		if (!r)
			return;
		memcpy(r->addr, ips[i], 16);
		r->obj = obj;
		HASH_ADD(hh, *h, addr, sizeof(r->addr), r);
	}
}

static void svc_delete(struct meta *m, struct svc *s)
{
	refs_drop(&m->svc_ips, s);
	HASH_DEL(m->svcs, s);
	free(s->ns);
	free(s->name);
	free(s);
}

static int apply_service(struct meta *m, enum meta_event ev, json_object *obj)
{
	const char *ns, *name;
	char key[KEY_MAX];
	json_object *arr;
	struct svc *s;
	uint8_t ips[SVC_IPS_MAX][16];
	int n = 0;

	if (make_key(obj, key, &ns, &name))
		return -EINVAL;
	HASH_FIND_STR(m->svcs, key, s);
	if (ev == META_DELETED) {
		if (s)
			svc_delete(m, s);
		return 0;
	}
	arr = jget(obj, "spec", "clusterIPs");
	for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) &&
			   i < json_object_array_length(arr) && n < SVC_IPS_MAX;
	     i++) {
		json_object *v = json_object_array_get_idx(arr, i);

		if (json_object_is_type(v, json_type_string) &&
		    addr_parse(json_object_get_string(v), ips[n]) > 0)
			n++;
	}
	if (!n && addr_parse(jstr(obj, "spec", "clusterIP"), ips[0]) > 0) /* not "None" */
		n = 1;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->ns = strdup(ns);
		s->name = strdup(name);
		HASH_ADD_STR(m->svcs, key, s);
		if (!s->ns || !s->name) {
			svc_delete(m, s);
			return -ENOMEM;
		}
	}
	s->mark = 1;
	refs_drop(&m->svc_ips, s);
	memcpy(s->ips, ips, sizeof(ips[0]) * (size_t)n);
	s->n_ips = n;
	refs_add(&m->svc_ips, s->ips, n, s);
	return 0;
}

static void node_delete(struct meta *m, struct node *n)
{
	refs_drop(&m->node_ips, n);
	HASH_DEL(m->nodes, n);
	free(n->name);
	free(n->zone);
	free(n);
}

static int apply_node(struct meta *m, enum meta_event ev, json_object *obj)
{
	const char *name = jstr(obj, "metadata", "name"), *zone;
	json_object *labels = jget(obj, "metadata", "labels"), *arr;
	uint8_t ips[NODE_IPS_MAX][16];
	struct node *n;
	int k = 0;

	if (!*name)
		return -EINVAL;
	HASH_FIND_STR(m->nodes, name, n);
	if (ev == META_DELETED) {
		if (n)
			node_delete(m, n);
		return 0;
	}
	zone = jstr(labels, "topology.kubernetes.io/zone", NULL);
	if (!*zone)
		zone = jstr(labels, "failure-domain.beta.kubernetes.io/zone", NULL);
	arr = jget(obj, "status", "addresses");
	for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) &&
			   i < json_object_array_length(arr) && k < NODE_IPS_MAX;
	     i++) {
		json_object *a = json_object_array_get_idx(arr, i);
		const char *type = jstr(a, "type", NULL);

		if ((!strcmp(type, "InternalIP") || !strcmp(type, "ExternalIP")) &&
		    addr_parse(jstr(a, "address", NULL), ips[k]) > 0 && !has_ip(ips, k, ips[k]))
			k++;
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || !(n->name = strdup(name))) {
			free(n);
			return -ENOMEM;
		}
		HASH_ADD_KEYPTR(hh, m->nodes, n->name, strlen(n->name), n);
	}
	n->mark = 1;
	if (str_set(&n->zone, zone) < 0) {
		node_delete(m, n);
		return -ENOMEM;
	}
	refs_drop(&m->node_ips, n);
	memcpy(n->ips, ips, sizeof(ips[0]) * (size_t)k);
	n->n_ips = k;
	refs_add(&m->node_ips, n->ips, k, n);
	return 0;
}

static int apply_owned(struct owned **h, enum meta_event ev, json_object *obj)
{
	const char *ns, *name, *okind, *oname;
	char key[KEY_MAX];
	struct owned *o;

	if (make_key(obj, key, &ns, &name))
		return -EINVAL;
	HASH_FIND_STR(*h, key, o);
	if (ev == META_DELETED) {
		if (o) {
			HASH_DEL(*h, o);
			free(o->owner_kind);
			free(o->owner_name);
			free(o);
		}
		return 0;
	}
	controller_of(obj, &okind, &oname);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		snprintf(o->key, sizeof(o->key), "%s", key);
		HASH_ADD_STR(*h, key, o);
	}
	o->mark = 1;
	if (str_set(&o->owner_kind, okind) < 0 || str_set(&o->owner_name, oname) < 0)
		return -ENOMEM;
	return 0;
}

int meta_apply(struct meta *m, enum meta_kind kind, enum meta_event ev, json_object *obj,
	       uint64_t now_unix_ms)
{
	int err;

	if (!obj || !json_object_is_type(obj, json_type_object)) {
		m->st.bad_objects_total++;
		return -EINVAL;
	}
	m->st.events_total++;
	m->gen++;
	switch (kind) {
	case META_POD:
		err = apply_pod(m, ev, obj, now_unix_ms, !m->synced[META_POD]);
		break;
	case META_SERVICE:
		err = apply_service(m, ev, obj);
		break;
	case META_NODE:
		err = apply_node(m, ev, obj);
		break;
	case META_REPLICASET:
		err = apply_owned(&m->rs, ev, obj);
		break;
	case META_JOB:
		err = apply_owned(&m->jobs, ev, obj);
		break;
	default:
		err = -EINVAL;
	}
	if (err == -EINVAL)
		m->st.bad_objects_total++;
	return err;
}

void meta_relist_begin(struct meta *m, enum meta_kind kind)
{
	struct pod *p;
	struct svc *s;
	struct node *n;
	struct owned *o;

	switch (kind) {
	case META_POD:
		for (p = m->pods; p; p = p->hh.next)
			p->mark = 0;
		break;
	case META_SERVICE:
		for (s = m->svcs; s; s = s->hh.next)
			s->mark = 0;
		break;
	case META_NODE:
		for (n = m->nodes; n; n = n->hh.next)
			n->mark = 0;
		break;
	case META_REPLICASET:
	case META_JOB:
		for (o = kind == META_JOB ? m->jobs : m->rs; o; o = o->hh.next)
			o->mark = 0;
		break;
	default:
		break;
	}
}

void meta_relist_end(struct meta *m, enum meta_kind kind, uint64_t now_unix_ms)
{
	m->gen++;
	struct pod *p, *pt;
	struct svc *s, *st;
	struct node *n, *nt;
	struct owned *o, *ot, **h = kind == META_JOB ? &m->jobs : &m->rs;

	switch (kind) {
	case META_POD:
		HASH_ITER (hh, m->pods, p, pt)
			if (!p->mark)
				pod_delete(m, p, now_unix_ms);
		break;
	case META_SERVICE:
		HASH_ITER (hh, m->svcs, s, st)
			if (!s->mark)
				svc_delete(m, s);
		break;
	case META_NODE:
		HASH_ITER (hh, m->nodes, n, nt)
			if (!n->mark)
				node_delete(m, n);
		break;
	case META_REPLICASET:
	case META_JOB:
		HASH_ITER (hh, *h, o, ot) {
			if (o->mark)
				continue;
			HASH_DEL(*h, o);
			free(o->owner_kind);
			free(o->owner_name);
			free(o);
		}
		break;
	default:
		break;
	}
	meta_mark_synced(m, kind);
}

void meta_mark_synced(struct meta *m, enum meta_kind kind)
{
	if (kind < META_KINDS)
		m->synced[kind] = 1;
}

int meta_synced(struct meta *m)
{
	for (int k = 0; k < META_KINDS; k++)
		if (!m->synced[k])
			return 0;
	return 1;
}

void meta_expire(struct meta *m, uint64_t now_unix_ms)
{
	struct ip_entry *e, *et;

	HASH_ITER (hh, m->ips, e, et) {
		struct binding **pp = &e->list;

		while (*pp) {
			struct binding *b = *pp;

			if (b->to_ms && b->to_ms + m->history_ms <= now_unix_ms) {
				*pp = b->next;
				names_free(&b->n);
				free(b);
				m->st.ip_bindings--;
				m->gen++;
				continue;
			}
			pp = &b->next;
		}
		if (!e->list) {
			HASH_DEL(m->ips, e);
			free(e);
		}
	}
}
