/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The label layer: how a flow aggregate, named by the metadata (meta.h), is written as
 * Prometheus labels. It is the one place that knows the flow label names.
 */
#ifndef FLOWLENS_LABELS_H
#define FLOWLENS_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include "meta.h"

enum flow_direction {
	DIR_FORWARD = 0, /* initiator -> responder */
	DIR_REPLY = 1,
};

struct labels_config {
	int pod_labels; /* source_pod, destination_pod */
	int ip_labels; /* source_ip, destination_ip */
};

/* One aggregate as the labels see it. */
struct flow_view {
	struct meta_ident src; /* the initiator */
	struct meta_ident dst; /* the backend that answered */
	const char *service; /* the Service the client dialed, "" when none */
	const char *service_namespace;
	const uint8_t *src_ip; /* 16 bytes, IPv4-mapped */
	const uint8_t *dst_ip;
	uint16_t port; /* the port the client dialed */
	uint8_t protocol;
	uint8_t reporter; /* Flowlens__V1__Reporter */
};

#define LABELS_TEXT_MAX 1024

/* Writes the escaped {name="value",...} text. Returns its length, or -1 if it does not fit. */
int labels_flow(const struct labels_config *c, const struct flow_view *v, enum flow_direction dir,
		char *buf, size_t size);
/*
 * The signals' labels (connection outcomes, latency histograms): the flow labels without
 * direction, plus extra_k="extra_v" and extra2_k="extra2_v" where the names are not NULL.
 */
int labels_signal(const struct labels_config *c, const struct flow_view *v, const char *extra_k,
		  const char *extra_v, const char *extra2_k, const char *extra2_v, char *buf,
		  size_t size);
/* The same with up to three extra pairs (HTTP requests: method, status class, version). */
int labels_signal3(const struct labels_config *c, const struct flow_view *v, const char *k1,
		   const char *v1, const char *k2, const char *v2, const char *k3, const char *v3,
		   char *buf, size_t size);
/* flowlens_zone_bytes_total: the zones the bytes left and entered, and the reporter. */
int labels_zone(const struct flow_view *v, enum flow_direction dir, char *buf, size_t size);
/* The series that collects what no longer fits (every identity label "overflow"). */
int labels_flow_overflow(const struct labels_config *c, enum flow_direction dir, char *buf,
			 size_t size);

#endif
