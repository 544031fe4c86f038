// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The per-CPU last-flow slots (bpf/cache.bpf.h): a known flow's packets wait in its CPU's slot
 * and reach the table at the next flush, every one exactly once, whatever happens meanwhile
 * (other flows, SYN/FIN/RST, another CPU, the agent removing the entry, a full table, a flush
 * that interrupts a program). The expected numbers are the frames this test sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "check.h"
#include "flowtab.h"
#include "bpf_env.h"

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0, "pin to CPU %d: %s", cpu,
	      strerror(errno));
}

/* Every CPU's slot (the per-CPU map's one element). */
static int slots_read(struct env *e, struct fl_slot *out)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.slots), &zero, out) ? -errno : 0;
}

static int slots_write(struct env *e, const struct fl_slot *in)
{
	__u32 zero = 0;

	return bpf_map_update_elem(bpf_map__fd(e->skel->maps.slots), &zero, in, BPF_ANY) ? -errno :
											   0;
}

/* A bulk TCP segment: 0xab filler, no HTTP head, so HTTP stops looking after a few. */
static const struct pkt_spec bulk = { .family = AF_INET,
				      .proto = 6,
				      .src = "10.9.1.2",
				      .dst = "10.9.2.3",
				      .sport = 45000,
				      .dport = 5432,
				      .tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				      .payload = 1000 };

struct sent {
	__u64 packets;
	__u64 bytes;
};

static void send_n(int prog, const struct pkt_spec *s, int n, struct sent *tally)
{
	int len;

	for (int i = 0; i < n; i++) {
		run(prog, s, &len);
		tally->packets++;
		tally->bytes += (__u64)(len - 14);
	}
}

/*
 * One flow, then another taking turns with it, then its FIN, then its ACKs at the other hook:
 * the table lags behind what was sent until a flush (the slots are in use), the flags the
 * entry counts arrive at once, and after the flush every flow holds exactly what was sent.
 */
static void test_slot_exact(void)
{
	struct pkt_spec other = bulk, fin = bulk, acks = bulk, six = bulk, tagged = bulk;
	struct fl_key ka = make_key(&bulk, FL_DIR_INGRESS), kb, kr, k6, kt;
	struct sent a = { 0 }, b = { 0 }, r = { 0 }, s6 = { 0 }, tg = { 0 };
	struct fl_slot sl[ncpus];
	struct fl_stats v;
	struct env e;

	CHECK(env_open(&e, 1024) == 0, "load");
	pin(0);
	send_n(e.prog_in, &bulk, 40, &a);
	CHECK(read_flow_raw(&e, &ka, &v) == 0 && v.packets < a.packets && v.packets > 0,
	      "before a flush the table lags (%llu of %llu): the slot holds the rest",
	      (unsigned long long)v.packets, (unsigned long long)a.packets);
	CHECK(slots_read(&e, sl) == 0 && sl[0].valid && sl[0].packets == a.packets - v.packets &&
		      memcmp(&sl[0].key, &ka, sizeof(ka)) == 0,
	      "CPU 0's slot holds the flow's other %llu packets",
	      (unsigned long long)sl[0].packets);

	other.proto = 17;
	other.sport = 45001;
	other.dport = 9000;
	other.tcp_flags = 0;
	other.payload = 200;
	kb = make_key(&other, FL_DIR_INGRESS);
	for (int i = 0; i < 20; i++) {
		send_n(e.prog_in, &bulk, 1, &a);
		send_n(e.prog_in, &other, 1, &b);
	}
	fin.tcp_flags = TCPF_ACK_BIT | TCPF_FIN_BIT;
	send_n(e.prog_in, &fin, 1, &a);
	CHECK(read_flow_raw(&e, &ka, &v) == 0 && v.fin == 1,
	      "a FIN is counted in the entry at once");
	CHECK(read_flow(&e, &ka, &v) == 0 && v.packets == a.packets && v.bytes == a.bytes,
	      "after a flush: %llu packets %llu bytes, sent %llu/%llu",
	      (unsigned long long)v.packets, (unsigned long long)v.bytes,
	      (unsigned long long)a.packets, (unsigned long long)a.bytes);
	CHECK(v.flags_or == (TCPF_ACK_BIT | TCPF_PSH_BIT | TCPF_FIN_BIT), "flags %#x", v.flags_or);
	CHECK(read_flow(&e, &kb, &v) == 0 && v.packets == b.packets && v.bytes == b.bytes,
	      "the flow taking turns: %llu packets, sent %llu", (unsigned long long)v.packets,
	      (unsigned long long)b.packets);
	CHECK(slots_read(&e, sl) == 0 && !sl[0].valid && sl[0].packets == 0, "flushed slot empty");

	/* The stream's ACKs at the other hook take turns with its data: a slot each. */
	acks.src = bulk.dst;
	acks.dst = bulk.src;
	acks.sport = bulk.dport;
	acks.dport = bulk.sport;
	acks.tcp_flags = TCPF_ACK_BIT;
	acks.payload = 0;
	kr = make_key(&acks, FL_DIR_EGRESS);
	for (int i = 0; i < 30; i++) {
		send_n(e.prog_in, &bulk, 1, &a);
		send_n(e.prog_eg, &acks, 1, &r);
	}
	CHECK(read_flow_raw(&e, &kr, &v) == 0 && v.packets < r.packets,
	      "ACKs at egress wait in that hook's slot (%llu of %llu in the entry)",
	      (unsigned long long)v.packets, (unsigned long long)r.packets);
	CHECK(read_flow_raw(&e, &ka, &v) == 0 && v.packets < a.packets,
	      "while the data waits in the ingress slot");
	CHECK(read_flow(&e, &kr, &v) == 0 && v.packets == r.packets && v.bytes == r.bytes,
	      "ACKs after a flush: %llu packets, sent %llu", (unsigned long long)v.packets,
	      (unsigned long long)r.packets);
	CHECK(read_flow(&e, &ka, &v) == 0 && v.packets == a.packets && v.bytes == a.bytes,
	      "data after a flush");

	/* IPv6 takes the slot too; a VLAN-tagged frame (not the common shape) never does. */
	six.family = AF_INET6;
	six.src = "fd00:9::2";
	six.dst = "fd00:9::3";
	k6 = make_key(&six, FL_DIR_INGRESS);
	send_n(e.prog_in, &six, 30, &s6);
	CHECK(read_flow_raw(&e, &k6, &v) == 0 && v.packets < s6.packets,
	      "IPv6: the slot holds packets (%llu of %llu in the entry)",
	      (unsigned long long)v.packets, (unsigned long long)s6.packets);
	CHECK(read_flow(&e, &k6, &v) == 0 && v.packets == s6.packets && v.bytes == s6.bytes,
	      "IPv6 after a flush: %llu packets, sent %llu", (unsigned long long)v.packets,
	      (unsigned long long)s6.packets);
	tagged.vlan_tags = 1;
	tagged.sport = 45002;
	kt = make_key(&tagged, FL_DIR_INGRESS);
	send_n(e.prog_in, &tagged, 30, &tg);
	CHECK(read_flow_raw(&e, &kt, &v) == 0 && v.packets == tg.packets &&
		      v.bytes == tg.bytes - 4 * tg.packets /* L3 bytes: after the tag */,
	      "VLAN-tagged: every packet in the entry (%llu of %llu)",
	      (unsigned long long)v.packets, (unsigned long long)tg.packets);

	/* Another CPU's slot is flushed too (the run there is an IPI). */
	if (ncpus >= 2) {
		pin(1);
		send_n(e.prog_in, &bulk, 10, &a);
		pin(0);
		send_n(e.prog_in, &bulk, 10, &a);
		CHECK(slots_read(&e, sl) == 0 && sl[1].valid && sl[1].packets > 0,
		      "CPU 1's slot holds packets");
		CHECK(read_flow(&e, &ka, &v) == 0 && v.packets == a.packets && v.bytes == a.bytes,
		      "two CPUs: %llu packets, sent %llu", (unsigned long long)v.packets,
		      (unsigned long long)a.packets);
	}
	flow_bpf__destroy(e.skel);
}

/*
 * The fast path compares the frame with the slot field by field: a slot that differs from the
 * packet's flow in any one field (put there by hand) must not take the packet, one that
 * differs in none must.
 */
static void test_slot_key_fields(void)
{
	static const char *const names[] = { "source address", "destination address",
					     "source port",    "destination port",
					     "protocol",       "interface" };
	struct fl_key ka = make_key(&bulk, FL_DIR_INGRESS);
	struct fl_slot sl[ncpus], held;
	struct fl_stats v0, v1;
	struct sent a = { 0 };
	struct env e;

	CHECK(env_open(&e, 1024) == 0, "load");
	pin(0);
	send_n(e.prog_in, &bulk, 30, &a);
	flush(&e);
	CHECK(slots_read(&e, sl) == 0 && memcmp(&sl[0].key, &ka, sizeof(ka)) == 0, "slot's key");
	held = sl[0];
	for (int f = -1; f < 6; f++) {
		flush(&e); /* the previous round's packet into the table */
		CHECK(slots_read(&e, sl) == 0, "read the slots");
		sl[0] = held;
		sl[0].valid = 1;
		sl[0].packets = 0;
		sl[0].bytes = 0;
		switch (f) {
		case 0:
			sl[0].key.saddr[3] ^= htonl(1);
			break;
		case 1:
			sl[0].key.daddr[3] ^= htonl(1);
			break;
		case 2:
			sl[0].key.sport++;
			break;
		case 3:
			sl[0].key.dport++;
			break;
		case 4:
			sl[0].key.proto = 17;
			break;
		case 5:
			sl[0].key.ifindex += 1000;
			break;
		}
		CHECK(slots_write(&e, sl) == 0, "write the slot");
		CHECK(read_flow_raw(&e, &ka, &v0) == 0, "entry");
		send_n(e.prog_in, &bulk, 1, &a);
		CHECK(read_flow_raw(&e, &ka, &v1) == 0 && slots_read(&e, sl) == 0, "read back");
		if (f < 0)
			CHECK(v1.packets == v0.packets && sl[0].packets == 1,
			      "the same flow: counted in the slot");
		else
			CHECK(v1.packets == v0.packets + 1 && sl[0].packets == 0,
			      "a slot whose %s differs: the packet is counted in the table",
			      names[f]);
	}
	CHECK(read_flow(&e, &ka, &v1) == 0 && v1.packets == a.packets && v1.bytes == a.bytes,
	      "%llu packets, sent %llu", (unsigned long long)v1.packets,
	      (unsigned long long)a.packets);
	flow_bpf__destroy(e.skel);
}

static int ev_events;
static __u64 ev_packets, ev_bytes;

static int on_overflow(void *ctx, void *data, size_t size)
{
	const struct fl_overflow_event *ev = data;

	(void)ctx;
	if (size < sizeof(*ev))
		return 0;
	ev_events++;
	ev_packets += ev->packets;
	ev_bytes += ev->bytes;
	return 0;
}

/* The agent's final read of an entry: lookup-and-delete, or two calls before Linux 5.14. */
static int take_entry(int fd, const void *key, struct fl_stats *v)
{
	if (bpf_map_lookup_and_delete_elem(fd, key, v) == 0)
		return 0;
	if (errno == ENOENT || bpf_map_lookup_elem(fd, key, v))
		return -1;
	return bpf_map_delete_elem(fd, key);
}

/*
 * The agent removes an entry (lookup and delete) while packets wait in a slot: the flush
 * creates it again with exactly those. With the table full, they go through the overflow
 * ring buffer as one record that carries their count.
 */
static void test_slot_removed_entry(void)
{
	struct fl_key ka = make_key(&bulk, FL_DIR_INGRESS);
	struct fl_key4 k4 = { .saddr = ka.saddr[3],
			      .daddr = ka.daddr[3],
			      .ifindex = ka.ifindex,
			      .sport = ka.sport,
			      .dport = ka.dport,
			      .proto = ka.proto,
			      .dir = ka.dir };
	struct sent a = { 0 }, fill = { 0 };
	struct fl_stats v1, v2;
	struct ring_buffer *rb;
	struct env e;

	CHECK(env_open(&e, 4) == 0, "load a table of 4");
	pin(0);
	send_n(e.prog_in, &bulk, 30, &a);
	CHECK(take_entry(e.flows4_fd, &k4, &v1) == 0, "take the entry");
	CHECK(v1.packets < a.packets, "packets wait in the slot (%llu of %llu in the entry)",
	      (unsigned long long)v1.packets, (unsigned long long)a.packets);
	CHECK(read_flow(&e, &ka, &v2) == 0 && v1.packets + v2.packets == a.packets &&
		      v1.bytes + v2.bytes == a.bytes,
	      "re-created by the flush: %llu + %llu packets, sent %llu",
	      (unsigned long long)v1.packets, (unsigned long long)v2.packets,
	      (unsigned long long)a.packets);

	/* Again, with 4 other flows filling the table meanwhile. */
	CHECK(take_entry(e.flows4_fd, &k4, &v1) == 0 && v1.packets == v2.packets, "take it again");
	a.packets = a.bytes = 0;
	send_n(e.prog_in, &bulk, 20, &a);
	CHECK(take_entry(e.flows4_fd, &k4, &v1) == 0, "take it a third time");
	for (int i = 0; i < 4; i++) {
		struct pkt_spec u = { .family = AF_INET,
				      .proto = 17,
				      .src = "10.9.5.1",
				      .dst = "10.9.5.2",
				      .sport = (uint16_t)(1000 + i),
				      .dport = 9000,
				      .payload = 10 };

		send_n(e.prog_in, &u, 1, &fill);
	}
	ev_events = 0;
	ev_packets = ev_bytes = 0;
	rb = ring_buffer__new(bpf_map__fd(e.skel->maps.overflow), on_overflow, NULL, NULL);
	CHECK(rb != NULL, "ring buffer");
	flush(&e);
	if (rb)
		ring_buffer__consume(rb);
	CHECK(ev_events == 1 && v1.packets + ev_packets == a.packets &&
		      v1.bytes + ev_bytes == a.bytes,
	      "full table: %d record(s), %llu + %llu packets, sent %llu", ev_events,
	      (unsigned long long)v1.packets, (unsigned long long)ev_packets,
	      (unsigned long long)a.packets);
	CHECK(counter(&e, FL_CNT_TABLE_FULL) == 1, "table_full %llu",
	      (unsigned long long)counter(&e, FL_CNT_TABLE_FULL));
	ring_buffer__free(rb);
	flow_bpf__destroy(e.skel);
}

/*
 * A flush that finds the slot busy (a program on that CPU was changing it when the flush's
 * IPI arrived) leaves it alone and reports it; the agent runs it again. A packet that finds
 * the slot busy (a flush on its own CPU was interrupted) counts in the table directly.
 */
static void test_slot_busy(void)
{
	struct fl_key ka = make_key(&bulk, FL_DIR_INGRESS);
	struct fl_slot sl[ncpus];
	struct sent a = { 0 };
	struct fl_stats v0, v1;
	uint64_t retries = 0;
	struct env e;
	int err;

	CHECK(env_open(&e, 1024) == 0, "load");
	pin(0);
	send_n(e.prog_in, &bulk, 30, &a);
	CHECK(slots_read(&e, sl) == 0 && sl[0].valid && sl[0].packets > 0, "slot in use");
	sl[0].busy = 1;
	CHECK(slots_write(&e, sl) == 0, "mark CPU 0's slot busy");
	CHECK(read_flow_raw(&e, &ka, &v0) == 0, "entry");
	send_n(e.prog_in, &bulk, 1, &a);
	CHECK(read_flow_raw(&e, &ka, &v1) == 0 && v1.packets == v0.packets + 1,
	      "a packet finding the slot busy is counted in the entry at once");
	err = flowtab_flush_slots(e.flush_fd, ncpus, &retries);
	CHECK(err == -EBUSY && retries > 0, "a busy slot: flush says %d after %llu retries", err,
	      (unsigned long long)retries);
	CHECK(slots_read(&e, sl) == 0 && sl[0].valid && sl[0].busy && sl[0].packets > 0,
	      "and leaves it alone");
	sl[0].busy = 0;
	CHECK(slots_write(&e, sl) == 0, "the program finishes");
	CHECK(read_flow(&e, &ka, &v1) == 0 && v1.packets == a.packets && v1.bytes == a.bytes,
	      "then flushed exactly: %llu packets, sent %llu", (unsigned long long)v1.packets,
	      (unsigned long long)a.packets);
	flow_bpf__destroy(e.skel);
}

static int samples;

static int on_sample(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	samples++;
	return 0;
}

/*
 * Flows whose packets the datapath must each look at keep doing so: every request and answer
 * of an HTTP connection whose acknowledgements use the slot is seen, and DNS never uses it.
 */
static void test_slot_signals(void)
{
	struct pkt_spec req = { .family = AF_INET,
				.proto = 6,
				.src = "10.9.3.2",
				.dst = "10.9.4.3",
				.sport = 46000,
				.dport = 8080,
				.tcp_flags = TCPF_ACK_BIT | TCPF_PSH_BIT,
				.data = "GET /x HTTP/1.1\r\nHost: y\r\n\r\n",
				.payload = 30 };
	struct pkt_spec ack = req, resp = req,
			dns = { .family = AF_INET,
				.proto = 17,
				.src = "10.9.3.2",
				.dst = "10.9.4.53",
				.sport = 46001,
				.dport = 53,
				.payload = 30 };
	struct fl_key kack, kdns = make_key(&dns, FL_DIR_INGRESS);
	struct sent c = { 0 }, d = { 0 };
	struct ring_buffer *rb;
	struct fl_stats v;
	struct env e;

	ack.data = NULL;
	ack.payload = 0;
	ack.tcp_flags = TCPF_ACK_BIT;
	resp.src = req.dst;
	resp.dst = req.src;
	resp.sport = req.dport;
	resp.dport = req.sport;
	resp.data = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	resp.payload = 38;
	kack = make_key(&ack, FL_DIR_INGRESS);
	CHECK(env_open(&e, 1024) == 0, "load");
	pin(0);
	samples = 0;
	rb = ring_buffer__new(bpf_map__fd(e.skel->maps.samples), on_sample, NULL, NULL);
	CHECK(rb != NULL, "samples ring buffer");
	for (int i = 0; i < 12; i++) {
		send_n(e.prog_in, &req, 1, &c);
		run(e.prog_eg, &resp, NULL);
		send_n(e.prog_in, &ack, 3, &c);
	}
	if (rb)
		ring_buffer__consume(rb);
	CHECK(samples == 12, "12 requests answered, %d samples", samples);
	CHECK(read_flow_raw(&e, &kack, &v) == 0 && v.packets < c.packets,
	      "its acknowledgements used the slot (%llu of %llu in the entry)",
	      (unsigned long long)v.packets, (unsigned long long)c.packets);
	CHECK(read_flow(&e, &kack, &v) == 0 && v.packets == c.packets && v.bytes == c.bytes,
	      "after a flush: %llu packets, sent %llu", (unsigned long long)v.packets,
	      (unsigned long long)c.packets);
	send_n(e.prog_in, &dns, 20, &d);
	CHECK(read_flow_raw(&e, &kdns, &v) == 0 && v.packets == d.packets && v.bytes == d.bytes,
	      "DNS: every packet in the entry without a flush (%llu of %llu)",
	      (unsigned long long)v.packets, (unsigned long long)d.packets);
	ring_buffer__free(rb);
	flow_bpf__destroy(e.skel);
}

void test_slots(void)
{
	cpu_set_t saved;

	if (sched_getaffinity(0, sizeof(saved), &saved)) {
		CHECK(0, "sched_getaffinity: %s", strerror(errno));
		return;
	}
	test_slot_exact();
	test_slot_key_fields();
	test_slot_removed_entry();
	test_slot_busy();
	test_slot_signals();
	sched_setaffinity(0, sizeof(saved), &saved);
}
