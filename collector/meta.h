/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The collector's picture of the cluster: who held which IP when (pods, with their workload
 * through owner references), which IPs are Services, which are nodes and in which zone.
 * Fed by the Kubernetes watcher or a static metadata file (kube.c) with objects in the
 * Kubernetes API's own JSON shapes. Not thread-safe: callers hold meta_lock().
 */
#ifndef FLOWLENS_META_H
#define FLOWLENS_META_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* Pod and service ranges when none are configured: the private and CGNAT ranges, ULA. */
#define META_DEFAULT_CLUSTER_CIDRS "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"

enum meta_kind {
	META_POD = 0,
	META_SERVICE,
	META_NODE,
	META_REPLICASET,
	META_JOB,
	META_KINDS,
};

enum meta_event {
	META_ADDED = 0, /* also MODIFIED: an upsert */
	META_DELETED,
};

/* What an address is, at one time, as far as the metadata knows. */
struct meta_ident {
	const char *namespace; /* "" when not a pod (or not known) */
	const char *workload; /* workload name, node name for host/remote-node, else = kind */
	const char *kind; /* Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, Pod,
			     host, remote-node, world, unknown, link-local */
	const char *pod; /* "" when not a pod */
	const char *node; /* the pod's node, or the node itself; "" otherwise */
	const char *zone; /* topology.kubernetes.io/zone of that node, "" when not known */
	char buf[320]; /* storage for a derived workload name */
	/*
	 * 1 when the answer cannot change with time until the metadata changes (see
	 * meta_generation): no other pod held the address within the history.
	 */
	int stable;
};

struct meta_service {
	const char *namespace;
	const char *name;
};

struct meta_stats {
	uint64_t objects[META_KINDS];
	uint64_t ip_bindings; /* pod IP bindings, including those of deleted pods still kept */
	uint64_t events_total;
	uint64_t bad_objects_total; /* objects without the fields we need */
};

struct meta;

/* history_ms: how long a deleted pod's IP binding is kept for late batches. */
int meta_new(struct meta **out, uint64_t history_ms);
void meta_free(struct meta *m);
void meta_lock(struct meta *m);
void meta_unlock(struct meta *m);

/*
 * Address ranges that belong to the cluster (pod and service CIDRs), "a.b.c.d/n" or IPv6,
 * comma-separated. Addresses outside are "world"; inside and not known, "unknown". Returns 0
 * or -EINVAL.
 */
int meta_set_cluster_cidrs(struct meta *m, const char *list);

/* One object (a JSON object in the API's shape). now_unix_ms stamps IP changes. */
int meta_apply(struct meta *m, enum meta_kind kind, enum meta_event ev, json_object *obj,
	       uint64_t now_unix_ms);
/*
 * A full list of one kind replaces what was known of it: objects missing from it are
 * deleted. Call meta_relist_begin, meta_apply for each listed object, then meta_relist_end.
 */
void meta_relist_begin(struct meta *m, enum meta_kind kind);
void meta_relist_end(struct meta *m, enum meta_kind kind, uint64_t now_unix_ms);
/* Drops IP bindings of deleted pods older than the history. */
void meta_expire(struct meta *m, uint64_t now_unix_ms);

/*
 * Names an address (16 bytes, IPv4-mapped for IPv4) as it was during the interval [start,
 * end] (Unix ms) of the report: the pod that held it by the end, unless that pod was gone
 * before the start. reporter_node is the node whose agent reported the flow: its own
 * addresses are "host". The strings stay valid until the lock is released.
 */
void meta_ident(struct meta *m, const uint8_t addr[16], uint64_t start_unix_ms,
		uint64_t end_unix_ms, const char *reporter_node, struct meta_ident *out);
/* The Service whose ClusterIP this is; 0 when there is none. */
int meta_service(struct meta *m, const uint8_t addr[16], struct meta_service *out);
/* The node of a pod IP (at when), or "" - used to tell whether a client is on another node. */
const char *meta_pod_node(struct meta *m, const uint8_t addr[16], uint64_t start_unix_ms,
			  uint64_t end_unix_ms);
void meta_stats(struct meta *m, struct meta_stats *out);
/* Changes whenever something a name depends on changed (any object, binding or range). */
uint64_t meta_generation(struct meta *m);
/* Whether every kind has been listed at least once (for readiness). */
int meta_synced(struct meta *m);
void meta_mark_synced(struct meta *m, enum meta_kind kind);

const char *meta_kind_name(enum meta_kind kind);

#endif
