// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "expo.h"
#include "ipproto.h"
#include "labels.h"
#include "wire.h"

void labels_key(const Flowlens__V1__FlowAggregate *f, enum flow_direction dir, struct series_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->source, f->client_ip.data, f->client_ip.len);
	memcpy(k->destination, f->server_ip.data, f->server_ip.len);
	k->family = f->client_ip.len == 4 ? 4 : 6;
	k->destination_port = (uint16_t)f->server_port;
	k->protocol = (uint8_t)f->protocol;
	k->reporter = (uint8_t)(f->reporter <= 3 ? f->reporter : 0);
	k->direction = (uint8_t)dir;
}

void labels_overflow_key(enum flow_direction dir, struct series_key *k)
{
	memset(k, 0, sizeof(*k));
	k->reporter = LABELS_OVERFLOW;
	k->direction = (uint8_t)dir;
}

int labels_format(const struct series_key *k, char *buf, size_t size)
{
	const char *dir = k->direction == DIR_FORWARD ? "forward" : "reply";
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], port[8], pbuf[8];
	int af = k->family == 4 ? AF_INET : AF_INET6;

	if (k->reporter == LABELS_OVERFLOW) {
		expo_labels(buf, size, "source_ip", "overflow", "destination_ip", "overflow",
			    "destination_port", "overflow", "protocol", "overflow", "direction",
			    dir, "reporter", "overflow", NULL);
		return buf[0] ? (int)strlen(buf) : -1;
	}
	if (!inet_ntop(af, k->source, src, sizeof(src)) ||
	    !inet_ntop(af, k->destination, dst, sizeof(dst)))
		return -1;
	snprintf(port, sizeof(port), "%u", k->destination_port);
	expo_labels(buf, size, "source_ip", src, "destination_ip", dst, "destination_port", port,
		    "protocol", ipproto_name(k->protocol, pbuf, sizeof(pbuf)), "direction", dir,
		    "reporter", wire_reporter_name(k->reporter), NULL);
	return buf[0] ? (int)strlen(buf) : -1;
}
