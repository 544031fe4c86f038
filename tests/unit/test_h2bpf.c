// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The datapath's HTTP/2 frame walk (bpf/h2.bpf.h) under BPF_PROG_TEST_RUN: TCP segments built
 * by hand, with their sequence numbers, cut where real ones are (a HEADERS frame spanning two
 * segments, a retransmission, many frames in one GSO-sized packet, bytes never seen). The
 * records handed up must carry exactly the header-block bytes the segments held, in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "bpf_env.h"
#include "check.h"

#define RECS_MAX 64
#define SEG_MAX 3000

struct recs {
	struct fl_h2_rec r[RECS_MAX];
	int n;
	int other; /* records of another size (fl_sample) */
};

static int on_rec(void *ctx, void *data, size_t len)
{
	struct recs *rs = ctx;

	if (len != sizeof(struct fl_h2_rec))
		rs->other++;
	else if (rs->n < RECS_MAX)
		memcpy(&rs->r[rs->n++], data, sizeof(struct fl_h2_rec));
	return 0;
}

/* A TCP segment of the test connection (client 10.8.1.2:43000, server 10.8.2.3:8080). */
static void seg(struct env *e, int from_server, uint32_t seq, const uint8_t *p, size_t n)
{
	struct pkt_spec s = { .family = AF_INET,
			      .proto = 6,
			      .src = from_server ? "10.8.2.3" : "10.8.1.2",
			      .dst = from_server ? "10.8.1.2" : "10.8.2.3",
			      .sport = from_server ? 8080 : 43000,
			      .dport = from_server ? 43000 : 8080,
			      .tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
			      .payload = (int)n };
	static uint8_t buf[SEG_MAX + 100];
	int len;

	if (n > SEG_MAX)
		return;
	memset(buf, 0, sizeof(buf));
	len = pkt_build(buf, &s);
	memcpy(buf + len - n, p, n);
	buf[38] = (uint8_t)(seq >> 24); /* 14 Ethernet + 20 IPv4 + 4: the sequence number */
	buf[39] = (uint8_t)(seq >> 16);
	buf[40] = (uint8_t)(seq >> 8);
	buf[41] = (uint8_t)seq;
	CHECK(run_raw(from_server ? e->prog_eg : e->prog_in, buf, len) == -1,
	      "the packet's fate is unchanged (TC_ACT_UNSPEC)");
}

/* Appends a frame header (and payload p of n bytes, when p) at b; returns the new end. */
static uint8_t *frame(uint8_t *b, uint8_t type, uint8_t flags, uint32_t stream, const uint8_t *p,
		      size_t n)
{
	b[0] = (uint8_t)(n >> 16);
	b[1] = (uint8_t)(n >> 8);
	b[2] = (uint8_t)n;
	b[3] = type;
	b[4] = flags;
	b[5] = (uint8_t)(stream >> 24);
	b[6] = (uint8_t)(stream >> 16);
	b[7] = (uint8_t)(stream >> 8);
	b[8] = (uint8_t)stream;
	if (p)
		memcpy(b + 9, p, n);
	else
		memset(b + 9, 0x5a, n);
	return b + 9 + n;
}

/* The payload bytes of side's FRAME records for stream, in record order. */
static size_t block_of(const struct recs *rs, int side, uint32_t stream, uint8_t *out, size_t max)
{
	size_t n = 0;

	for (int i = 0; i < rs->n; i++) {
		const struct fl_h2_rec *r = &rs->r[i];

		if (r->side != side || r->type != FL_H2_REC_FRAME || r->stream != stream ||
		    n + r->len > max)
			continue;
		memcpy(out + n, r->data, r->len);
		n += r->len;
	}
	return n;
}

static int count_type(const struct recs *rs, int side, int type)
{
	int n = 0;

	for (int i = 0; i < rs->n; i++)
		n += rs->r[i].side == side && rs->r[i].type == type;
	return n;
}

/* Record numbers of each side run 1, 2, 3... without a gap. */
static int seqs_ok(const struct recs *rs)
{
	uint32_t next[2] = { 1, 1 };

	for (int i = 0; i < rs->n; i++) {
		int s = rs->r[i].side & 1;

		if (rs->r[i].seq != next[s])
			return 0;
		next[s]++;
	}
	return 1;
}

void test_h2bpf(void)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static uint8_t b[SEG_MAX], blk[600], got[1200];
	struct recs rs = { .n = 0 };
	struct ring_buffer *rb;
	struct env e;
	uint32_t cs = 1000, ss = 7000; /* the next sequence number of client and server */
	uint8_t *p;
	size_t n, first;

	if (env_open(&e, 1024)) {
		CHECK(0, "load");
		return;
	}
	rb = ring_buffer__new(bpf_map__fd(e.skel->maps.samples), on_rec, &rs, NULL);
	CHECK(rb != NULL, "samples ring buffer");
	if (!rb)
		goto out;
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (uint8_t)(i * 7 + 3);

	/* Client: preface, SETTINGS, and a HEADERS of 300 bytes cut after 100 of them. */
	memcpy(b, preface, 24);
	p = frame(b + 24, FL_H2_SETTINGS, 0, 0, NULL, 12);
	p = frame(p, FL_H2_HEADERS, FL_H2_END_HEADERS, 1, blk, 300);
	first = (size_t)(p - b) - 200;
	seg(&e, 0, cs, b, first);
	cs += (uint32_t)first;
	/* ...its last 200 bytes and a DATA frame ending the request. */
	memcpy(b, blk + 100, 200);
	p = frame(b + 200, FL_H2_DATA, FL_H2_END_STREAM, 1, NULL, 40);
	n = (size_t)(p - b);
	seg(&e, 0, cs, b, n);
	seg(&e, 0, cs, b, n); /* retransmitted: nothing new */
	cs += (uint32_t)n;
	/* Server: SETTINGS, HEADERS, DATA, trailers (HEADERS, END_STREAM). */
	p = frame(b, FL_H2_SETTINGS, 0, 0, NULL, 6);
	p = frame(p, FL_H2_HEADERS, FL_H2_END_HEADERS, 1, blk + 300, 20);
	p = frame(p, FL_H2_DATA, 0, 1, NULL, 500);
	p = frame(p, FL_H2_HEADERS, FL_H2_END_HEADERS | FL_H2_END_STREAM, 1, blk + 320, 10);
	n = (size_t)(p - b);
	seg(&e, 1, ss, b, n);
	ss += (uint32_t)n;
	ring_buffer__consume(rb);
	CHECK(count_type(&rs, 0, FL_H2_REC_PREFACE) == 1, "one preface record");
	n = block_of(&rs, 0, 1, got, sizeof(got));
	CHECK(n == 300 && !memcmp(got, blk, 300),
	      "the client's block, cut over two segments and 2 records, is the 300 bytes sent "
	      "(%zu)",
	      n);
	CHECK(count_type(&rs, 0, FL_H2_REC_DATA_END) == 1, "the request's END_STREAM, once");
	n = block_of(&rs, 1, 1, got, sizeof(got));
	CHECK(n == 30 && !memcmp(got, blk + 300, 30),
	      "the server's blocks (response and trailers) are the 30 bytes sent (%zu), no DATA",
	      n);
	CHECK(seqs_ok(&rs), "record numbers without gaps");
	CHECK(counter(&e, FL_CNT_H2_DESYNC) == 0, "no desync");

	/* A DATA frame of 20,000 bytes (a peer raised SETTINGS_MAX_FRAME_SIZE) over 8 segments,
	 * then a HEADERS: followed, no desync. */
	rs.n = 0;
	p = frame(b, FL_H2_DATA, 0, 3, NULL, 0);
	b[0] = 0;
	b[1] = 20000 >> 8;
	b[2] = 20000 & 0xff;
	memset(b + 9, 0x11, 2491);
	seg(&e, 0, cs, b, 2500);
	cs += 2500;
	for (int i = 0; i < 7; i++) {
		memset(b, 0x22, 2500);
		n = 2500;
		if (i == 6) {
			n = 20000 - 2491 - 6 * 2500;
			p = frame(b + n, FL_H2_HEADERS, FL_H2_END_HEADERS, 9, blk + 40, 12);
			n = (size_t)(p - b);
		}
		seg(&e, 0, cs, b, n);
		cs += (uint32_t)n;
	}
	ring_buffer__consume(rb);
	CHECK(block_of(&rs, 0, 9, got, sizeof(got)) == 12 && !memcmp(got, blk + 40, 12),
	      "the HEADERS after a 20,000-byte DATA frame over 8 segments");
	CHECK(counter(&e, FL_CNT_H2_DESYNC) == 0 && rs.n == 1, "no desync, no DATA handed up (%d)",
	      rs.n);
	/* A 9-byte segment (an empty DATA ending the stream) of a flow its CPU's slot holds by
	 * now: walked too (a slot keeps tiny payloads of HTTP/2 flows off its fast path). */
	rs.n = 0;
	p = frame(b, FL_H2_DATA, FL_H2_END_STREAM, 9, NULL, 0);
	seg(&e, 0, cs, b, 9);
	cs += 9;
	p = frame(b, FL_H2_HEADERS, FL_H2_END_HEADERS, 11, blk + 60, 10);
	n = (size_t)(p - b);
	seg(&e, 0, cs, b, n);
	cs += (uint32_t)n;
	ring_buffer__consume(rb);
	CHECK(count_type(&rs, 0, FL_H2_REC_DATA_END) == 1 &&
		      block_of(&rs, 0, 11, got, sizeof(got)) == 10 &&
		      counter(&e, FL_CNT_H2_DESYNC) == 0,
	      "a 9-byte segment walked, the next frame in step");

	/* 100 empty DATA frames and a HEADERS in one packet (a GSO-sized burst): all walked. */
	rs.n = 0;
	p = b;
	for (int i = 0; i < 100; i++)
		p = frame(p, FL_H2_DATA, 0, 3, NULL, 0);
	p = frame(p, FL_H2_HEADERS, FL_H2_END_HEADERS, 3, blk, 8);
	n = (size_t)(p - b);
	seg(&e, 0, cs, b, n);
	cs += (uint32_t)n;
	ring_buffer__consume(rb);
	CHECK(block_of(&rs, 0, 3, got, sizeof(got)) == 8 && !memcmp(got, blk, 8),
	      "the HEADERS after 100 frames in one packet");
	CHECK(counter(&e, FL_CNT_H2_DESYNC) == 0, "no desync");

	/* 200 frames in one packet: more than one walk takes: the boundaries are lost... */
	rs.n = 0;
	p = b;
	for (int i = 0; i < 200; i++)
		p = frame(p, FL_H2_DATA, 0, 3, NULL, 0);
	n = (size_t)(p - b);
	seg(&e, 0, cs, b, n);
	cs += (uint32_t)n;
	/* ...and found again at the next segment that starts with a frame header. */
	p = frame(b, FL_H2_HEADERS, FL_H2_END_HEADERS, 5, blk + 8, 12);
	n = (size_t)(p - b);
	seg(&e, 0, cs, b, n);
	cs += (uint32_t)n;
	ring_buffer__consume(rb);
	CHECK(counter(&e, FL_CNT_H2_DESYNC) == 1 && count_type(&rs, 0, FL_H2_REC_DESYNC) == 1,
	      "too many frames: one desync, told to user space");
	CHECK(block_of(&rs, 0, 5, got, sizeof(got)) == 12 && !memcmp(got, blk + 8, 12),
	      "resynchronised at the next frame header");

	/* Bytes this hook never saw (a segment 1000 bytes ahead): desync, then resync. */
	rs.n = 0;
	p = frame(b, FL_H2_HEADERS, FL_H2_END_HEADERS, 7, blk + 20, 16);
	n = (size_t)(p - b);
	seg(&e, 0, cs + 1000, b, n);
	seg(&e, 0, cs + 1000 + (uint32_t)n, b, n);
	ring_buffer__consume(rb);
	CHECK(count_type(&rs, 0, FL_H2_REC_DESYNC) == 1, "a gap in the sequence: desync");
	CHECK(block_of(&rs, 0, 7, got, sizeof(got)) == 16,
	      "the next segment with a frame header is walked again");

	/* Not HTTP/2: a connection whose client never sent the preface hands up nothing. */
	rs.n = 0;
	{
		struct pkt_spec s = { .family = AF_INET,
				      .proto = 6,
				      .src = "10.8.1.9",
				      .dst = "10.8.2.3",
				      .sport = 43001,
				      .dport = 5432,
				      .tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				      .payload = 200 };
		int len;

		for (int i = 0; i < 10; i++)
			run(e.prog_in, &s, &len);
	}
	ring_buffer__consume(rb);
	CHECK(rs.n == 0 && map_count(bpf_map__fd(e.skel->maps.h2)) == 1,
	      "other TCP: no record, no h2 state (%d records)", rs.n);
	ring_buffer__free(rb);
out:
	flow_bpf__destroy(e.skel);
}
