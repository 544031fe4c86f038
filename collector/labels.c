// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "addr.h"
#include "expo.h"
#include "ipproto.h"
#include "labels.h"
#include "wire.h"

static int done(char *buf)
{
	return buf[0] ? (int)strlen(buf) : -1;
}

/* Up to three extra label pairs of a signal series; a NULL name leaves its pair out. */
struct extra_labels {
	const char *k[3], *v[3];
};

/*
 * The identity labels of both ends, then direction (flows only) and reporter, then the extra
 * pairs (signals: result, method, status class and HTTP version, rcode and qtype, reason).
 */
static int identity_labels(const struct labels_config *c, const struct flow_view *v,
			   const char *direction, const struct extra_labels *x, char *buf,
			   size_t size)
{
	char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "", port[8], pbuf[8];

	if (c->ip_labels && (addr_str(v->src_ip, src, sizeof(src)) < 0 ||
			     addr_str(v->dst_ip, dst, sizeof(dst)) < 0))
		return -1;
	snprintf(port, sizeof(port), "%u", v->port);
	expo_labels(buf, size, "source_namespace", v->src.namespace, "source_workload",
		    v->src.workload, "source_workload_kind", v->src.kind, "source_pod",
		    c->pod_labels ? v->src.pod : NULL, "source_ip", c->ip_labels ? src : NULL,
		    "destination_namespace", v->dst.namespace, "destination_workload",
		    v->dst.workload, "destination_workload_kind", v->dst.kind, "destination_pod",
		    c->pod_labels ? v->dst.pod : NULL, "destination_ip", c->ip_labels ? dst : NULL,
		    "destination_service", v->service, "destination_port", port, "protocol",
		    ipproto_name(v->protocol, pbuf, sizeof(pbuf)), "direction", direction,
		    "reporter", wire_reporter_name(v->reporter), x->k[0] ? x->k[0] : "",
		    x->k[0] ? x->v[0] : NULL, x->k[1] ? x->k[1] : "", x->k[1] ? x->v[1] : NULL,
		    x->k[2] ? x->k[2] : "", x->k[2] ? x->v[2] : NULL, NULL);
	return done(buf);
}

int labels_flow(const struct labels_config *c, const struct flow_view *v, enum flow_direction dir,
		char *buf, size_t size)
{
	static const struct extra_labels none;

	return identity_labels(c, v, dir == DIR_FORWARD ? "forward" : "reply", &none, buf, size);
}

int labels_signal(const struct labels_config *c, const struct flow_view *v, const char *extra_k,
		  const char *extra_v, const char *extra2_k, const char *extra2_v, char *buf,
		  size_t size)
{
	const struct extra_labels x = { { extra_k, extra2_k, NULL }, { extra_v, extra2_v, NULL } };

	return identity_labels(c, v, NULL, &x, buf, size);
}

int labels_signal3(const struct labels_config *c, const struct flow_view *v, const char *k1,
		   const char *v1, const char *k2, const char *v2, const char *k3, const char *v3,
		   char *buf, size_t size)
{
	const struct extra_labels x = { { k1, k2, k3 }, { v1, v2, v3 } };

	return identity_labels(c, v, NULL, &x, buf, size);
}

int labels_zone(const struct flow_view *v, enum flow_direction dir, char *buf, size_t size)
{
	const char *from = dir == DIR_FORWARD ? v->src.zone : v->dst.zone;
	const char *to = dir == DIR_FORWARD ? v->dst.zone : v->src.zone;

	expo_labels(buf, size, "source_zone", from, "destination_zone", to, "reporter",
		    wire_reporter_name(v->reporter), NULL);
	return done(buf);
}

int labels_flow_overflow(const struct labels_config *c, enum flow_direction dir, char *buf,
			 size_t size)
{
	const char *o = "overflow";

	expo_labels(buf, size, "source_namespace", o, "source_workload", o, "source_workload_kind",
		    o, "source_pod", c->pod_labels ? o : NULL, "source_ip", c->ip_labels ? o : NULL,
		    "destination_namespace", o, "destination_workload", o,
		    "destination_workload_kind", o, "destination_pod", c->pod_labels ? o : NULL,
		    "destination_ip", c->ip_labels ? o : NULL, "destination_service", o,
		    "destination_port", o, "protocol", o, "direction",
		    dir == DIR_FORWARD ? "forward" : "reply", "reporter", o, NULL);
	return done(buf);
}
