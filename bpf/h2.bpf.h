/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/2 without TLS (h2c): finds the frames of a connection and hands its header blocks to
 * user space in order (struct fl_h2_rec), never DATA. Part of the HTTP signal; optional.
 *
 * A connection is found by its client's preface ("PRI * HTTP/2.0...") in the first payload
 * segments HTTP looks at anyway; its server side by the SETTINGS frame it must send first.
 * A connection the agent joined late is found by a segment that starts with a HEADERS frame
 * (marked midstream: the agent cannot know its HPACK state). From then on each payload
 * segment of the connection walks the frame headers it holds (9 bytes each, at most
 * H2_STEPS headers and record chunks per segment), continuing a frame that an earlier segment
 * began. A segment that starts beyond the expected sequence number (bytes this hook did not
 * see) or holds more frames than the walk takes loses the frame boundaries: the direction is
 * resynchronised at the next segment that starts with a plausible frame header, and the
 * agent is told (FL_H2_REC_DESYNC).
 */
#ifndef FLOWLENS_H2_BPF_H
#define FLOWLENS_H2_BPF_H

#define H2_STEPS 128
#define H2_MAX_FRAME 16384 /* SETTINGS_MAX_FRAME_SIZE's default; larger ones are not followed */

struct h2_pos {
	__u32 off; /* first payload byte of the segment in the skb */
	__u32 end; /* one past its last */
	__u32 seq; /* its TCP sequence number */
	__u32 side;
};

/*
 * Where a frame header must start (a walk in step): any length (a peer may raise
 * SETTINGS_MAX_FRAME_SIZE), any type (extensions), the stream id's reserved bit 0.
 */
static __always_inline int h2_sane(const __u8 *b)
{
	return !(b[5] & 0x80);
}

/*
 * Where a frame header may start (finding a connection, or the boundaries again): a type the
 * walk knows, within the default frame size, reserved bit 0.
 */
static __always_inline int h2_plausible(const __u8 *b)
{
	return b[0] == 0 && b[1] <= (H2_MAX_FRAME >> 8) && b[3] <= FL_H2_CONTINUATION &&
	       !(b[5] & 0x80);
}

/* One record for user space; a full ring buffer loses it, which its sequence number shows. */
static __always_inline void h2_put(struct __sk_buff *skb, const struct fl_key *q,
				   struct fl_h2_dir *d, __u32 side, __u8 type, __u8 chunk,
				   __u32 pos, __u32 len)
{
	struct fl_h2_rec *r;

	d->rec_seq++;
	r = bpf_ringbuf_reserve(&samples, sizeof(*r), 0);
	if (!r) {
		count(FL_CNT_SAMPLES_FULL);
		return;
	}
	__builtin_memcpy(&r->key, q, sizeof(*q));
	r->side = side;
	r->type = type;
	r->flags = d->flags;
	r->chunk = chunk;
	r->ts_ns = bpf_ktime_get_ns();
	r->stream = d->stream;
	r->seq = d->rec_seq;
	r->frame = d->type;
	r->pad = 0;
	r->pad2 = 0;
	r->len = 0;
	if (len > FL_H2_CHUNK)
		len = FL_H2_CHUNK;
	if (len > 0) {
		/* 1..FL_H2_CHUNK in a form whose bounds the verifier sees at the call */
		len = ((len - 1) & (FL_H2_CHUNK - 1)) + 1;
		if (bpf_skb_load_bytes(skb, pos, r->data, len) == 0)
			r->len = len;
	}
	bpf_ringbuf_submit(r, sample_flags(&samples));
}

/* The direction lost its frame boundaries: told once, until it resynchronises. */
static __always_inline void h2_lost(struct __sk_buff *skb, const struct fl_key *q,
				    struct fl_h2_dir *d, __u32 side)
{
	count(FL_CNT_H2_DESYNC);
	d->sync = 0;
	d->remain = 0;
	h2_put(skb, q, d, side, FL_H2_REC_DESYNC, 0, 0, 0);
}

/* What h2_walk works on, handed over through a per-CPU map (see there). */
struct h2_args {
	struct fl_key q;
	struct h2_pos sp;
	__u32 pos; /* the walk's position: kept in memory so that the verifier does not follow
		      its value along every path (which multiplies with each frame) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2_args);
} h2_args SEC(".maps");

/*
 * Walks the frames of one payload segment (h2_args.sp) of a direction of connection
 * h2_args.q (client tuple, dir 0), continuing the walk the previous segment left in its
 * state. A global function: the verifier checks it once, not once per path of the program
 * that calls it (the walk's loop times every path would exceed its budget). Its arguments
 * come through a per-CPU map because a global function takes only the context and scalars
 * on the kernels flowlens supports (5.10).
 */
__noinline int h2_walk(struct __sk_buff *skb)
{
	struct fl_h2_dir *d;
	struct h2_args *x;
	struct fl_h2 *st;
	struct h2_pos *sp;
	struct fl_key *q;
	__u32 pos, end, side, zero = 0;
	__s32 ahead;
	__u8 b[9];
	int i;

	x = bpf_map_lookup_elem(&h2_args, &zero);
	if (!skb || !x)
		return 0;
	q = &x->q;
	sp = &x->sp;
	st = bpf_map_lookup_elem(&h2, q);
	if (!st)
		return 0;
	side = sp->side & 1;
	d = side ? &st->d[1] : &st->d[0];
	pos = sp->off;
	end = sp->end;
	if (!d->sync) {
		/* Resynchronise on a segment that starts with a plausible frame header. */
		if (bpf_skb_load_bytes(skb, pos, b, 9) || !h2_plausible(b))
			return 0;
		d->sync = 1;
		d->next_seq = sp->seq;
		d->remain = 0;
	}
	ahead = (__s32)(sp->seq - d->next_seq);
	if (ahead < 0) {
		/* A retransmission: only bytes past the walk are new. */
		if ((__u32)-ahead >= end - pos)
			return 0;
		pos += (__u32)-ahead;
	} else if (ahead > 0) {
		/* Bytes this hook did not see: the frame boundaries are lost. */
		h2_lost(skb, q, d, side);
		return 0;
	}
	x->pos = pos;
	for (i = 0; i < H2_STEPS && x->pos < end; i++) {
		__u32 n, at = 0, len = 0;
		__u8 type = 0, chunk = 0;

		pos = x->pos;
		n = end - pos;

		if (d->remain == 0) {
			if (n < 9 || bpf_skb_load_bytes(skb, pos, b, 9) || !h2_sane(b))
				break; /* a frame header split over segments, or not one */
			d->remain = (__u32)b[0] << 16 | (__u32)b[1] << 8 | b[2];
			d->type = b[3];
			d->flags = b[4];
			d->stream =
				((__u32)b[5] << 24 | (__u32)b[6] << 16 | (__u32)b[7] << 8 | b[8]) &
				0x7fffffff;
			d->first = 1;
			x->pos = pos + 9;
			if (d->type == FL_H2_DATA && (d->flags & FL_H2_END_STREAM))
				type = FL_H2_REC_DATA_END;
			else if (d->remain == 0 &&
				 (d->type == FL_H2_HEADERS || d->type == FL_H2_CONTINUATION))
				type = FL_H2_REC_FRAME, chunk = FL_H2_FIRST | FL_H2_LAST;
		} else {
			if (n > d->remain)
				n = d->remain;
			if (d->type == FL_H2_HEADERS || d->type == FL_H2_CONTINUATION ||
			    d->type == FL_H2_RST_STREAM) {
				if (n > FL_H2_CHUNK)
					n = FL_H2_CHUNK;
				type = FL_H2_REC_FRAME;
				chunk = (d->first ? FL_H2_FIRST : 0) |
					(n == d->remain ? FL_H2_LAST : 0);
				at = pos;
				len = n;
				d->first = 0;
			}
			x->pos = pos + n;
			d->remain -= n;
		}
		if (type)
			h2_put(skb, q, d, side, type, chunk, at, len);
	}
	if (x->pos < end) {
		/* Not a frame header where one was due (split over segments, or not HTTP/2),
		 * or more frames than one walk takes (a large GSO packet of small frames). */
		h2_lost(skb, q, d, side);
		return 0;
	}
	d->next_seq = sp->seq + (end - sp->off);
	return 1;
}

/* The TCP sequence number of the segment p parsed. */
static __always_inline int h2_seq(struct __sk_buff *skb, const struct parsed *p, __u32 *seq)
{
	if (bpf_skb_load_bytes(skb, p->l4_off + 4, seq, 4))
		return -1;
	*seq = bpf_ntohl(*seq);
	return 0;
}

/*
 * A direction that looks like HTTP/2 (b: its segment's first 12 bytes): the client's preface
 * or a HEADERS frame opens the connection's state; the server's SETTINGS or HEADERS frame
 * joins a connection whose client side was found. Returns the direction's fl_stats.l7 value,
 * or 0 when it is not HTTP/2. The segment's frames are walked next, by h2_step (the
 * preface's 24 bytes are behind the walk's start, so they are skipped).
 */
static __noinline int h2_detect(struct __sk_buff *skb, struct fl_key *k, const struct parsed *p,
				const __u8 *b)
{
	struct h2_pos sp = {};
	struct fl_h2 *st;
	struct fl_key q;
	__u32 w;

	if (!skb || !k || !p || !b)
		return 0;
	sp.off = p->payload_off & 0x3ff;
	sp.end = p->l3_len ? p->l3_off + p->l3_len : skb->len;
	if (sp.end > skb->len || sp.end <= sp.off || h2_seq(skb, p, &sp.seq))
		return 0;
	__builtin_memcpy(&w, b, 4);
	if (w != W4('P', 'R', 'I', ' ')) {
		if ((b[3] != FL_H2_SETTINGS && b[3] != FL_H2_HEADERS) || !h2_plausible(b))
			return 0;
		/* The server: its first frame, on a connection whose client was found. */
		__builtin_memcpy(&q, k, sizeof(q));
		__builtin_memcpy(q.saddr, k->daddr, 16);
		__builtin_memcpy(q.daddr, k->saddr, 16);
		q.sport = k->dport;
		q.dport = k->sport;
		q.dir = 0;
		q.pad = 0;
		st = bpf_map_lookup_elem(&h2, &q);
		if (st) {
			st->d[1].sync = 1;
			st->d[1].next_seq = sp.seq;
			st->d[1].remain = 0;
			return FL_L7_H2_SERVER;
		}
		/*
		 * A client joined late: a request's HEADERS (an odd stream, flags a HEADERS frame
		 * may have) whose block does not start with a static :status (0x88-0x8e), which
		 * is how a response's usually starts.
		 */
		if (b[3] != FL_H2_HEADERS || (b[4] & ~0x2d) || !(b[8] & 1) ||
		    (b[9] >= 0x88 && b[9] <= 0x8e))
			return 0;
	}
	__builtin_memcpy(&q, k, sizeof(q));
	q.dir = 0;
	q.pad = 0;
	{
		/* The client: its preface (24 bytes), or a request's HEADERS (joined late). */
		struct fl_h2 init = {};
		__u8 pre[24];

		if (w == W4('P', 'R', 'I', ' ')) {
			/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": its distinctive words */
			if (sp.end - sp.off < 24 || bpf_skb_load_bytes(skb, sp.off, pre, 24) ||
			    __builtin_memcmp(pre + 4, "* HT", 4) ||
			    __builtin_memcmp(pre + 8, "TP/2", 4) ||
			    __builtin_memcmp(pre + 16, "\r\nSM", 4) ||
			    __builtin_memcmp(pre + 20, "\r\n\r\n", 4))
				return 0;
			sp.off += 24;
			sp.seq += 24;
		} else {
			/*
			 * Found already, by a packet whose flow entry was new (its l7 could not
			 * be kept, so the segments since were not walked): the walk goes on from
			 * this frame. Its HPACK state is unknown anyway (midstream).
			 */
			st = bpf_map_lookup_elem(&h2, &q);
			if (st) {
				st->d[0].sync = 1;
				st->d[0].next_seq = sp.seq;
				st->d[0].remain = 0;
				return FL_L7_H2_CLIENT;
			}
			init.midstream = 1;
		}
		init.d[0].sync = 1;
		init.d[0].next_seq = sp.seq;
		if (bpf_map_update_elem(&h2, &q, &init, BPF_ANY)) {
			count(FL_CNT_H2_FULL);
			return 0;
		}
		st = bpf_map_lookup_elem(&h2, &q);
		if (!st)
			return 0;
		h2_put(skb, &q, &st->d[0], 0, FL_H2_REC_PREFACE,
		       init.midstream ? FL_H2_MIDSTREAM : 0, 0, 0);
		return FL_L7_H2_CLIENT;
	}
}

/* A payload segment of a direction found to be HTTP/2 (l7 says which side). */
static __always_inline void h2_step(struct __sk_buff *skb, struct fl_key *k, const struct parsed *p,
				    __u8 l7)
{
	__u32 zero = 0;
	struct h2_args *x = bpf_map_lookup_elem(&h2_args, &zero);
	struct h2_pos *sp;
	struct fl_key *q;

	if (!x)
		return;
	sp = &x->sp;
	q = &x->q;
	sp->off = p->payload_off & 0x3ff;
	sp->end = p->l3_len ? p->l3_off + p->l3_len : skb->len;
	sp->side = 0;
	if (sp->end > skb->len || sp->end <= sp->off || h2_seq(skb, p, &sp->seq))
		return;
	__builtin_memcpy(q, k, sizeof(*q));
	q->dir = 0;
	q->pad = 0;
	if (l7 == FL_L7_H2_SERVER) {
		__builtin_memcpy(q->saddr, k->daddr, 16);
		__builtin_memcpy(q->daddr, k->saddr, 16);
		q->sport = k->dport;
		q->dport = k->sport;
		sp->side = 1;
	}
	h2_walk(skb);
}

#endif
