/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the metadata (meta.h), shared by its parts and not by other modules:
 *   meta.c        lifecycle, cluster ranges, and the lookups (who held an IP when, services)
 *   meta_apply.c  Kubernetes objects (JSON) applied: pods, services, nodes, owners; relists
 */
#ifndef FLOWLENS_META_IMPL_H
#define FLOWLENS_META_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <uthash.h>
#include "meta.h"

#define KEY_MAX 320 /* namespace (63) + "/" + name (253) */
#define POD_IPS_MAX 4
#define SVC_IPS_MAX 4
#define NODE_IPS_MAX 8
#define CIDRS_MAX 32

/* A ReplicaSet or Job: only its controller matters (the workload above it). */
struct owned {
	char key[KEY_MAX];
	char *owner_kind;
	char *owner_name;
	int mark;
	UT_hash_handle hh;
};

/* What a pod is called: copied into each of its IP bindings, which outlive the pod. */
struct pod_names {
	char *ns;
	char *name;
	char *node;
	char *owner_kind;
	char *owner_name;
	char *hash; /* pod-template-hash label: names the Deployment when its ReplicaSet is unknown */
};

struct pod {
	char key[KEY_MAX];
	struct pod_names n;
	uint8_t ips[POD_IPS_MAX][16];
	int n_ips;
	int mark;
	UT_hash_handle hh;
};

/* One pod holding one IP from from_ms until to_ms (0: still). */
struct binding {
	struct binding *next; /* newer first */
	char pod_key[KEY_MAX];
	struct pod_names n;
	uint64_t from_ms;
	uint64_t to_ms;
};

struct ip_entry {
	uint8_t addr[16];
	struct binding *list;
	UT_hash_handle hh;
};

struct svc {
	char key[KEY_MAX];
	char *ns;
	char *name;
	uint8_t ips[SVC_IPS_MAX][16];
	int n_ips;
	int mark;
	UT_hash_handle hh;
};

struct node {
	char *name;
	char *zone;
	uint8_t ips[NODE_IPS_MAX][16];
	int n_ips;
	int mark;
	UT_hash_handle hh;
};

/* IP -> service or node; rebuilt for an object whenever it changes. */
struct addr_ref {
	uint8_t addr[16];
	void *obj;
	UT_hash_handle hh;
};

struct cidr {
	uint8_t addr[16]; /* IPv4-mapped for IPv4 */
	int bits; /* of the 128 */
};

struct meta {
	pthread_mutex_t lock;
	uint64_t history_ms;
	struct pod *pods;
	struct ip_entry *ips;
	struct svc *svcs;
	struct addr_ref *svc_ips;
	struct node *nodes;
	struct addr_ref *node_ips;
	struct owned *rs;
	struct owned *jobs;
	struct cidr cidrs[CIDRS_MAX];
	int n_cidrs;
	int synced[META_KINDS];
	uint64_t gen;
	struct meta_stats st;
};

static const char *const kind_names[META_KINDS] = { "pods", "services", "nodes", "replicasets",
						    "jobs" };

/* meta.c */
void names_free(struct pod_names *n);
int names_copy(struct pod_names *to, const struct pod_names *from);
void free_refs(struct addr_ref **h);
int in_cidr(const struct cidr *c, const uint8_t a[16]);

#endif
