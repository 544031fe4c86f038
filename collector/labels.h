/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The label layer: which inputs make a flow series distinct, and how they are written as
 * Prometheus labels. It is the one place that knows the flow label names; the Kubernetes
 * identity work replaces the IP inputs with workload and service names here.
 */
#ifndef FLOWLENS_LABELS_H
#define FLOWLENS_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include "flowlens.pb-c.h"

enum flow_direction {
	DIR_FORWARD = 0, /* initiator -> responder */
	DIR_REPLY = 1,
};

/* The inputs of one series' labels; compared bytewise, so always zero the padding. */
struct series_key {
	uint8_t source[16]; /* the initiator; IPv4 in the first 4 bytes */
	uint8_t destination[16];
	uint16_t destination_port;
	uint8_t protocol;
	uint8_t reporter; /* Flowlens__V1__Reporter, or LABELS_OVERFLOW */
	uint8_t direction;
	uint8_t family; /* 4 or 6; 0 for the overflow series */
	uint8_t pad[2];
};

#define LABELS_OVERFLOW 255
#define LABELS_TEXT_MAX 512

void labels_key(const Flowlens__V1__FlowAggregate *f, enum flow_direction dir,
		struct series_key *k);
/* The key of the series that collects what no longer fits. */
void labels_overflow_key(enum flow_direction dir, struct series_key *k);
/* Writes the escaped {name="value",...} text. Returns its length, or -1 if it does not fit. */
int labels_format(const struct series_key *k, char *buf, size_t size);

#endif
