/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the flow programs and every knob the agent sets before load, in one place. */
#ifndef FLOWLENS_MAPS_BPF_H
#define FLOWLENS_MAPS_BPF_H

#include "flow.h"

#define TC_ACT_UNSPEC_ (-1)

/* Four payload bytes as a little-endian word, for comparing them at once. */
#define W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

/* Sizes are set by the agent before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key4);
	__type(value, struct fl_stats);
} flows4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_stats);
} flows6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FL_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} overflow SEC(".maps");

/* Destination translations (ClusterIP -> backend) found by conntrack lookups. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_nat);
} nat SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &what);

	if (c)
		(*c)++;
}

/* Set by the agent before load: 1 = look translations up in conntrack from here. */
const volatile __u8 ct_enabled = 0;
/* Set by the agent before load: 1 = follow HTTP/1.x requests and responses. */
const volatile __u8 http_enabled = 0;

/* HTTP requests waiting for their responses, per connection and interface. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fl_key);
	__type(value, struct fl_http);
} http SEC(".maps");

/* HTTP/2 (h2c) connections: where each direction's next frame starts (struct fl_h2). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_key);
	__type(value, struct fl_h2);
} h2 SEC(".maps");

/* Set by the agent before load: 1 = follow DNS queries and answers (port 53, UDP and TCP). */
const volatile __u8 dns_enabled = 0;

/* DNS queries waiting for their answers; the agent sweeps the unanswered ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_dns_key);
	__type(value, struct fl_dns_query);
} dns SEC(".maps");

/*
 * TCP retransmissions by the retransmitting socket's tuple (saddr = the socket's own
 * address), and packets the kernel dropped by tuple and reason (struct fl_event_key). The
 * agent takes them (lookup and delete) at every drain, one
 * generation (event_gen) at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_event_key);
	__type(value, __u64);
} retrans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fl_event_key);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * The generation the tracepoint programs count into (fl_event_key.gen).
 * At each drain the agent flips it, lets the programs that read the old value finish, then
 * takes the old generation's keys: deleting a key a program is adding to would lose the add.
 */
__u8 event_gen;

/* Each CPU's "last flow" slots (struct fl_slot, cache.bpf.h), indexed by hook (enum fl_dir). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct fl_slot);
} slots SEC(".maps");

/*
 * Set by the agent after load, once it has flushed every CPU's slot through
 * flowlens_cache_flush (which proves this kernel runs it on a chosen CPU): 1 = use the slots.
 */
__u8 cache_on;

/*
 * Set by the agent: wake it only when this much is waiting; otherwise it takes the samples at
 * its next drain. (A wakeup per sample costs the agent a context switch per request.)
 */
const volatile __u32 samples_wakeup_bytes = 0;

/*
 * A sample wakes the agent only while the data waiting is within 4 KiB above the threshold:
 * the samples that cross it, not every sample after it. A wakeup is an irq_work, a
 * self-IPI (an MSR write that traps on a VM); once one is sent, the agent's poll sees the
 * data (ring buffers poll level-triggered), so more wake nobody. While the agent is busy
 * (a drain) and the data grows past the window, no sample pays for a wakeup. 4 KiB is 56
 * samples: more than can be reserved between one sample's reservation and its query.
 */
#define FL_WAKEUP_WINDOW 4096

static __always_inline __u64 sample_flags(void *rb)
{
	__u64 avail = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	return avail >= samples_wakeup_bytes && avail < samples_wakeup_bytes + FL_WAKEUP_WINDOW ?
		       BPF_RB_FORCE_WAKEUP :
		       BPF_RB_NO_WAKEUP;
}

/* Finished exchanges (one record per request, never per packet). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} samples SEC(".maps");

#endif
