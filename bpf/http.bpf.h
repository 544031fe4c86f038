/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP/1.x request and response heads: method, status and timing of each request. Optional. */
#ifndef FLOWLENS_HTTP_BPF_H
#define FLOWLENS_HTTP_BPF_H

/* The method of a request line's first four bytes; FL_HTTP_METHODS when it is not one. */
static __always_inline __u8 http_method(__u32 w)
{
	switch (w) {
	case W4('G', 'E', 'T', ' '):
		return FL_HTTP_GET;
	case W4('P', 'O', 'S', 'T'):
		return FL_HTTP_POST;
	case W4('P', 'U', 'T', ' '):
		return FL_HTTP_PUT;
	case W4('D', 'E', 'L', 'E'):
		return FL_HTTP_DELETE;
	case W4('H', 'E', 'A', 'D'):
		return FL_HTTP_HEAD;
	case W4('P', 'A', 'T', 'C'):
		return FL_HTTP_PATCH;
	case W4('O', 'P', 'T', 'I'):
		return FL_HTTP_OPTIONS;
	case W4('C', 'O', 'N', 'N'):
	case W4('T', 'R', 'A', 'C'):
		return FL_HTTP_OTHER;
	}
	return FL_HTTP_METHODS;
}

static __always_inline int digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/*
 * A TCP segment whose payload starts a request line ("GET /...") queues the request's start
 * time on its connection; one that starts a status line ("HTTP/1.1 200") answers the oldest
 * queued request and hands the finished exchange to user space. One that starts like HTTP/2
 * goes to h2_detect. Anything else (the rest of a message, another protocol) matches none and
 * costs one 12-byte read. Returns what the direction was found to carry (fl_stats.l7), or 0.
 */
static __noinline int http_inspect(struct __sk_buff *skb, struct fl_key *k, const struct parsed *p)
{
	struct fl_sample *sm;
	struct fl_http *st;
	struct fl_key q;
	__u8 b[12];
	__u32 w;
	__u64 now;
	__u32 off;
	__u8 m, i;

	if (!skb || !k || !p)
		return 0;
	off = p->payload_off & 0x3ff;
	if (bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return 0;
	__builtin_memcpy(&w, b, 4);
	__builtin_memcpy(&q, k, sizeof(q));
	q.dir = 0;
	q.pad = 0;
	if (w == W4('H', 'T', 'T', 'P') && b[4] == '/' && b[5] == '1' && b[6] == '.') {
		/* A response: the request was sent the other way. */
		__builtin_memcpy(q.saddr, k->daddr, 16);
		__builtin_memcpy(q.daddr, k->saddr, 16);
		q.sport = k->dport;
		q.dport = k->sport;
		st = bpf_map_lookup_elem(&http, &q);
		if (!st || !st->count)
			return FL_L7_HTTP;
		now = bpf_ktime_get_ns();
		i = st->head & (FL_HTTP_QUEUE - 1);
		sm = bpf_ringbuf_reserve(&samples, sizeof(*sm), 0);
		if (!sm) {
			count(FL_CNT_SAMPLES_FULL);
		} else {
			__builtin_memcpy(&sm->key, &q, sizeof(q));
			sm->duration_ns = now - st->start_ns[i];
			sm->status =
				digit(b[9]) && digit(b[10]) && digit(b[11]) ?
					(b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0') :
					0;
			sm->kind = FL_SAMPLE_HTTP;
			sm->method = st->method[i];
			sm->pad = 0;
			bpf_ringbuf_submit(sm, sample_flags(&samples));
		}
		st->head++;
		st->count--;
		return FL_L7_HTTP;
	}
	m = http_method(w);
	if (m == FL_HTTP_METHODS)
		return h2_detect(skb, k, p, b);
	now = bpf_ktime_get_ns();
	st = bpf_map_lookup_elem(&http, &q);
	if (!st) {
		struct fl_http init = {};

		init.start_ns[0] = now;
		init.method[0] = m;
		init.count = 1;
		bpf_map_update_elem(&http, &q, &init, BPF_ANY);
		return FL_L7_HTTP;
	}
	if (st->count >= FL_HTTP_QUEUE) {
		count(FL_CNT_HTTP_QUEUE_FULL);
		return FL_L7_HTTP;
	}
	i = (st->head + st->count) & (FL_HTTP_QUEUE - 1);
	st->start_ns[i] = now;
	st->method[i] = m;
	st->count++;
	return FL_L7_HTTP;
}

/* The first bytes of an HTTP/2 preface or of a HEADERS or SETTINGS frame. */
static __always_inline int h2_maybe(const __u8 *pp, __u32 w)
{
	return w == W4('P', 'R', 'I', ' ') ||
	       (pp[0] == 0 && (pp[3] == FL_H2_HEADERS || pp[3] == FL_H2_SETTINGS));
}

/*
 * HTTP on a TCP payload of a direction still looked at: a request or response head, or what
 * may start HTTP/2, is handed to http_inspect. A direction whose first FL_L7_TRIES payload
 * segments start no HTTP message is not looked at again. Returns what this segment showed the
 * direction to carry (fl_stats.l7), or 0.
 */
static __always_inline __u8 http_step(struct __sk_buff *skb, struct fl_key *key,
				      const struct parsed *p, struct fl_stats *v)
{
	__u32 end = p->l3_len ? p->l3_off + p->l3_len : skb->len;
	__u32 off = p->payload_off & 0x3ff; /* headers end within 1 KiB */

	/* 12 bytes: a method, or "HTTP/1.x NNN" */
	if (end >= off + 12 && end <= skb->len) {
		__u8 *pp = (__u8 *)(long)skb->data + off;
		int l7 = 0;
		__u32 w;

		/* Linear payload: look first, cheaply; else read it (a helper call). */
		if ((void *)(pp + 12) <= (void *)(long)skb->data_end) {
			__builtin_memcpy(&w, pp, 4);
			if (w == W4('H', 'T', 'T', 'P') || http_method(w) != FL_HTTP_METHODS ||
			    h2_maybe(pp, w))
				l7 = http_inspect(skb, key, p);
		} else {
			l7 = http_inspect(skb, key, p);
		}
		/*
	 * A direction whose first payload segments start no HTTP message is not
	 * HTTP (a bulk transfer, a database): it is not looked at again.
	 */
		if (v && v->l7 < FL_L7_HTTP)
			v->l7 = l7 ? (__u8)l7 : v->l7 + 1;
		return (__u8)l7;
	}
	return 0;
}

#endif
