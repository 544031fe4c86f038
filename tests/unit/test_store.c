// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The collector's store without a network: the wire round trip, batches applied once, the
 * cross-node join, signals, snapshots, rendering that yields its lock, and the metadata.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <zlib.h>
#include "expo.h"
#include "kube.h"
#include "meta.h"
#include "store.h"
#include "wire.h"

#include "check.h"

/* A batch with one IPv4 and one IPv6 aggregate, built field by field. */
struct test_batch {
	Flowlens__V1__Batch b;
	Flowlens__V1__FlowAggregate f[2];
	Flowlens__V1__FlowAggregate *pf[2];
	Flowlens__V1__Counters c[4];
	uint8_t addr[4][16];
	uint8_t boot[16];
};

static void make_batch(struct test_batch *t, const char *node, uint64_t seq)
{
	memset(t, 0, sizeof(*t));
	flowlens__v1__batch__init(&t->b);
	t->b.schema_version = WIRE_SCHEMA_VERSION;
	t->b.node = (char *)node;
	memset(t->boot, 0x42, sizeof(t->boot));
	t->b.boot_id.data = t->boot;
	t->b.boot_id.len = 16;
	t->b.seq = seq;
	inet_pton(AF_INET, "10.1.1.2", t->addr[0]);
	inet_pton(AF_INET, "10.1.2.3", t->addr[1]);
	inet_pton(AF_INET6, "fd00::2", t->addr[2]);
	inet_pton(AF_INET6, "fd00::3", t->addr[3]);
	for (int i = 0; i < 2; i++) {
		Flowlens__V1__FlowAggregate *f = &t->f[i];

		flowlens__v1__flow_aggregate__init(f);
		flowlens__v1__counters__init(&t->c[2 * i]);
		flowlens__v1__counters__init(&t->c[2 * i + 1]);
		f->client_ip.data = t->addr[2 * i];
		f->server_ip.data = t->addr[2 * i + 1];
		f->client_ip.len = f->server_ip.len = i ? 16 : 4;
		f->server_port = i ? 443 : 80;
		f->protocol = 6;
		f->reporter = FLOWLENS__V1__REPORTER__REPORTER_CLIENT;
		t->c[2 * i].packets = 10 + (uint64_t)i;
		t->c[2 * i].bytes = 1000 + (uint64_t)i;
		t->c[2 * i + 1].packets = 20 + (uint64_t)i;
		t->c[2 * i + 1].bytes = 2000 + (uint64_t)i;
		f->forward = &t->c[2 * i];
		f->reply = &t->c[2 * i + 1];
		t->pf[i] = f;
	}
	t->b.flows = t->pf;
	t->b.n_flows = 2;
}

static void test_wire_round_trip(void)
{
	struct test_batch t;
	struct wire_batch wd;
	Flowlens__V1__Batch *d;
	const char *why = NULL;
	uint8_t *buf;
	size_t len;

	make_batch(&t, "node-a", 7);
	CHECK(wire_encode(&t.b, &buf, &len) == 0, "encode");
	CHECK(wire_decode(buf, len, 1 << 20, &wd, &why) == WIRE_OK, "decode: %s", why);
	d = wd.b;
	if (d) {
		CHECK(strcmp(d->node, "node-a") == 0 && d->seq == 7 && d->n_flows == 2, "header");
		CHECK(d->flows[1]->server_ip.len == 16 &&
			      memcmp(d->flows[1]->server_ip.data, t.addr[3], 16) == 0,
		      "ipv6 address");
		CHECK(d->flows[0]->forward->bytes == 1000 && d->flows[1]->reply->packets == 21,
		      "counters");
		wire_free(&wd);
	}
	/* Every truncation of a valid body is refused, never crashes. */
	for (size_t cut = 0; cut < len; cut++)
		CHECK(wire_decode(buf, cut, 1 << 20, &wd, &why) != WIRE_OK, "cut %zu accepted",
		      cut);
	CHECK(wire_decode(buf, len, 16, &wd, &why) == WIRE_ERR_TOO_LARGE, "decompressed limit");
	free(buf);

	t.b.seq = 0;
	wire_encode(&t.b, &buf, &len);
	CHECK(wire_decode(buf, len, 1 << 20, &wd, &why) == WIRE_ERR_INVALID, "seq 0 refused");
	free(buf);
	t.b.seq = 1;
	t.f[0].server_ip.len = 16; /* mixed families */
	wire_encode(&t.b, &buf, &len);
	CHECK(wire_decode(buf, len, 1 << 20, &wd, &why) == WIRE_ERR_INVALID, "mixed families");
	free(buf);
	t.f[0].server_ip.len = 4;
	t.b.schema_version = WIRE_SCHEMA_VERSION + 1;
	wire_encode(&t.b, &buf, &len);
	CHECK(wire_decode(buf, len, 1 << 20, &wd, &why) == WIRE_ERR_VERSION, "future version");
	free(buf);
}

/* (noinline: GCC's -Wdangling-pointer takes the heap text for the local it was written through) */
__attribute__((noinline)) static char *render(struct store *s, uint64_t now)
{
	struct expo e;
	char *out = NULL;
	size_t len;

	expo_open(&e);
	store_render(s, &e, now, NULL, NULL);
	expo_close(&e, &out, &len);
	return out;
}

static uint64_t series_value(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	return p ? strtoull(strchr(p, ' ') + 1, NULL, 10) : ~0ULL;
}

static void test_store_merge(void)
{
	struct store_config cfg = { .max_series = 3,
				    .ttl_ms = 1000,
				    .max_agents = 10,
				    .zero_hold_ms = 0,
				    .labels = { .ip_labels = 1 } };
	const char *fwd4 =
		"flowlens_flow_bytes_total{source_namespace=\"\",source_workload=\"unknown\","
		"source_workload_kind=\"unknown\",source_ip=\"10.1.1.2\",destination_namespace="
		"\"\",destination_workload=\"unknown\",destination_workload_kind=\"unknown\","
		"destination_ip=\"10.1.2.3\",destination_service=\"\",destination_port=\"80\","
		"protocol=\"tcp\",direction=\"forward\",reporter=\"client\"} ";
	struct store_stats st;
	struct test_batch t;
	struct store *s;
	char *out;

	CHECK(store_new(&s, &cfg) == 0, "store");
	make_batch(&t, "n1", 1);
	CHECK(store_apply(s, &t.b, 100) == STORE_APPLIED, "apply 1");
	CHECK(store_apply(s, &t.b, 100) == STORE_DUPLICATE, "same seq again is a duplicate");
	t.b.seq = 2;
	CHECK(store_apply(s, &t.b, 200) == STORE_APPLIED, "apply 2");
	out = render(s, 200);
	CHECK(series_value(out, fwd4) == 2000, "deltas merged: %llu",
	      (unsigned long long)series_value(out, fwd4));
	/* Ordering: every bytes line before the packets family. */
	CHECK(strstr(out, "# TYPE flowlens_flow_packets_total") >
		      strstr(out, "flowlens_flow_bytes_total{"),
	      "families contiguous");
	free(out);

	/* A restarted agent (new boot id) starts a new sequence at 1. */
	t.boot[0] ^= 1;
	t.b.seq = 1;
	CHECK(store_apply(s, &t.b, 300) == STORE_APPLIED, "new boot id, seq 1");

	/*
	 * 3 label sets allowed: IPv4 forward, reply and the zone series; the IPv6 aggregate's
	 * two directions fold into the two overflow series, in each of the 3 applies.
	 */
	store_stats(s, 300, &st);
	CHECK(st.series == 5 && st.series_overflow_total == 6,
	      "series %llu overflow %llu (3 kept + 2 overflow series)",
	      (unsigned long long)st.series, (unsigned long long)st.series_overflow_total);
	out = render(s, 300);
	CHECK(strstr(out, "source_workload=\"overflow\"") != NULL, "overflow series exported");
	free(out);

	/* TTL: nothing updated since 300 -> all gone at 1300. */
	store_expire(s, 1300);
	store_stats(s, 1300, &st);
	CHECK(st.series == 0 && st.series_expired_total == 5, "expired %llu left %llu",
	      (unsigned long long)st.series_expired_total, (unsigned long long)st.series);
	store_free(s);

	/* New series are exported as 0 during the hold. */
	cfg.zero_hold_ms = 50;
	cfg.max_series = 100;
	store_new(&s, &cfg);
	make_batch(&t, "n1", 1);
	store_apply(s, &t.b, 1000);
	out = render(s, 1020);
	CHECK(series_value(out, fwd4) == 0, "held at zero");
	free(out);
	out = render(s, 1050);
	CHECK(series_value(out, fwd4) == 1000, "real value after the hold");
	free(out);
	store_free(s);

	/*
	 * Shutting down: a held series already shown as 0 is shown at its real value; one never
	 * shown is shown as 0 first (a scraper must see it start from 0).
	 */
	store_new(&s, &cfg);
	store_apply(s, &t.b, 1000);
	store_set_draining(s);
	out = render(s, 1010);
	CHECK(series_value(out, fwd4) == 0, "never shown: 0 first, even while draining");
	free(out);
	out = render(s, 1011);
	CHECK(series_value(out, fwd4) == 1000, "then its real value");
	free(out);
	store_free(s);
}

static void test_store_snapshot(void)
{
	struct store_config cfg = { .max_series = 100, .ttl_ms = 1 << 30, .max_agents = 10 };
	struct store *a, *b;
	struct test_batch t;
	char *ra, *rb;
	FILE *f = tmpfile();
	long size;
	int c;

	store_new(&a, &cfg);
	make_batch(&t, "n1", 5);
	store_apply(a, &t.b, 1000);
	CHECK(store_save(a, f, 2000, 1700000000000ULL) == 0, "save");
	size = ftell(f);
	rewind(f);
	store_new(&b, &cfg);
	CHECK(store_restore(b, f, 50000, 1700000048000ULL, 1700000048000ULL) == 0, "restore");
	ra = render(a, 60000);
	rb = render(b, 60000);
	CHECK(strcmp(ra, rb) == 0, "restored series render the same:\n%s\nvs\n%s", ra, rb);
	free(ra);
	free(rb);
	CHECK(store_apply(b, &t.b, 60000) == STORE_DUPLICATE, "dedup state restored");
	store_free(b);

	/* A damaged snapshot is refused, not half-loaded silently. */
	fseek(f, size / 2, SEEK_SET);
	c = fgetc(f);
	fseek(f, size / 2, SEEK_SET);
	fputc(c ^ 0x55, f);
	rewind(f);
	store_new(&b, &cfg);
	CHECK(store_restore(b, f, 50000, 1700000048000ULL, 1700000048000ULL) == -EINVAL,
	      "damaged snapshot refused");
	store_free(b);
	store_free(a);
	fclose(f);

	/*
	 * Shown as 0, then at its real value while draining, then saved: the next process must
	 * not show it as 0 again for the rest of the hold (Prometheus: a reset, counted twice).
	 */
	cfg.zero_hold_ms = 10000;
	store_new(&a, &cfg);
	store_apply(a, &t.b, 1000);
	ra = render(a, 1500); /* held: 0, marked shown */
	store_set_draining(a);
	rb = render(a, 2000); /* draining: the real value */
	CHECK(strstr(ra, "} 0\n") && !strstr(rb, "} 0\n"), "0 first, then real while draining");
	free(ra);
	free(rb);
	f = tmpfile();
	CHECK(store_save(a, f, 2500, 1700000002500ULL) == 0, "save while draining");
	rewind(f);
	store_new(&b, &cfg);
	CHECK(store_restore(b, f, 503000, 1700000003000ULL, 1700000003000ULL) == 0, "restore");
	rb = render(b, 503100);
	CHECK(!strstr(rb, "} 0\n"), "restored: real value, no second hold:\n%s", rb);
	free(rb);
	store_free(b);
	store_free(a);
	fclose(f);

	CHECK(store_mono_of_unix(50000, 1700000048000ULL, 1700000047000ULL) == 49000,
	      "one second ago");
	CHECK(store_mono_of_unix(500, 1700000048000ULL, 1700000040000ULL) == 0,
	      "before the clock began");
}

/* The render yields every STORE_RENDER_CHUNK series; an expiry tried meanwhile frees nothing. */
struct yield_probe {
	struct store *s;
	unsigned int calls;
};

static void yield_probe(void *arg)
{
	struct yield_probe *y = arg;

	y->calls++;
	store_expire(y->s, UINT64_MAX / 2); /* everything is past its TTL */
}

static void test_store_render_yields(void)
{
	struct store_config cfg = {
		.max_series = 100000, .ttl_ms = 1000, .max_agents = 10, .labels = { .ip_labels = 1 }
	};
	struct yield_probe y = { 0 };
	struct store_stats st;
	struct test_batch t;
	struct expo e;
	char *plain, *yielded;
	size_t len;

	store_new(&y.s, &cfg);
	make_batch(&t, "n1", 1);
	/* 5,000 clients: 2 flow series each (the zone series are shared). */
	for (unsigned int i = 0; i < 5000; i++) {
		t.addr[0][2] = (uint8_t)(i >> 8);
		t.addr[0][3] = (uint8_t)i;
		t.b.seq = i + 1;
		store_apply(y.s, &t.b, 100);
	}
	store_stats(y.s, 150, &st);
	plain = render(y.s, 200);
	expo_open(&e);
	store_render(y.s, &e, 200, yield_probe, &y);
	expo_close(&e, &yielded, &len);
	/* Every family walks all series: at least 8 walks of st.series. */
	CHECK(st.series >= 10000 && y.calls >= 8 * st.series / STORE_RENDER_CHUNK,
	      "render of %llu series yielded %u times", (unsigned long long)st.series, y.calls);
	CHECK(strcmp(plain, yielded) == 0, "a yielding render writes the same text");
	store_stats(y.s, 300, &st);
	CHECK(st.series > 0, "nothing expired while a render walked the series");
	store_expire(y.s, UINT64_MAX / 2);
	store_stats(y.s, UINT64_MAX / 2, &st);
	CHECK(st.series == 0, "expired once the render was over (%llu left)",
	      (unsigned long long)st.series);
	free(plain);
	free(yielded);
	store_free(y.s);
}

static const char meta_doc[] =
	"{\"kind\":\"List\",\"items\":["
	"{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\",\"labels\":{\"topology.kubernetes.io/"
	"zone\":\"za\"}},\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":"
	"\"192.168.9.1\"}]}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"api-6f7-x\","
	"\"labels\":{\"pod-template-hash\":\"6f7\"},\"ownerReferences\":[{\"kind\":"
	"\"ReplicaSet\",\"name\":\"api-6f7\",\"controller\":true}]},\"spec\":{\"nodeName\":"
	"\"n1\"},\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"10.5.0.1\"},{\"ip\":"
	"\"fd00:5::1\"}]}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"rs-only-y\","
	"\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs-only\",\"controller\":"
	"true}]},\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"podIP\":\"10.5.0.2\"}},"
	"{\"kind\":\"Job\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"nightly-1\","
	"\"ownerReferences\":[{\"kind\":\"CronJob\",\"name\":\"nightly\",\"controller\":true}]}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"nightly-1-z\","
	"\"ownerReferences\":[{\"kind\":\"Job\",\"name\":\"nightly-1\",\"controller\":true}]},"
	"\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"podIP\":\"10.5.0.3\"}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"done\"},\"status\":{"
	"\"phase\":\"Succeeded\",\"podIP\":\"10.5.0.4\"}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"kube-system\",\"name\":\"hostnet\"},"
	"\"spec\":{\"hostNetwork\":true,\"nodeName\":\"n1\"},\"status\":{\"podIP\":"
	"\"192.168.9.1\"}},"
	"{\"kind\":\"Service\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"api\"},\"spec\":{"
	"\"clusterIP\":\"10.96.5.5\"}},"
	"{\"kind\":\"Service\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"headless\"},"
	"\"spec\":{\"clusterIP\":\"None\"}},"
	"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"\"}}"
	"]}";

static void ip16(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out + 12) == 1)
		out[10] = out[11] = 0xff;
	else
		inet_pton(AF_INET6, s, out);
}

static void check_ident(struct meta *m, const char *ip, uint64_t start, uint64_t end,
			const char *ns, const char *workload, const char *kind, const char *zone)
{
	struct meta_ident id;
	uint8_t a[16];

	ip16(ip, a);
	meta_ident(m, a, start, end, "n1", &id);
	CHECK(!strcmp(id.namespace, ns) && !strcmp(id.workload, workload) &&
		      !strcmp(id.kind, kind) && !strcmp(id.zone, zone),
	      "%s: got %s/%s (%s) zone %s, want %s/%s (%s) zone %s", ip, id.namespace, id.workload,
	      id.kind, id.zone, ns, workload, kind, zone);
}

static void test_meta(void)
{
	json_object *doc = json_tokener_parse(meta_doc), *ev;
	struct meta_service svc;
	struct meta_stats ms;
	struct meta *m;
	uint8_t a[16];

	CHECK(meta_new(&m, 60000) == 0, "meta");
	CHECK(kube_apply_list(m, doc, 1000) == 0, "list applied");
	json_object_put(doc);
	check_ident(m, "10.5.0.1", 0, 1000, "ns", "api", "Deployment", "za");
	check_ident(m, "fd00:5::1", 0, 1000, "ns", "api", "Deployment", "za");
	check_ident(m, "10.5.0.2", 0, 1000, "ns", "rs-only", "ReplicaSet", "za");
	check_ident(m, "10.5.0.3", 0, 1000, "ns", "nightly", "CronJob", "za");
	check_ident(m, "10.5.0.4", 0, 1000, "", "unknown", "unknown", "");
	check_ident(m, "192.168.9.1", 0, 1000, "", "n1", "host", "za");
	check_ident(m, "8.8.8.8", 0, 1000, "", "world", "world", "");
	check_ident(m, "fe80::1", 0, 1000, "", "link-local", "link-local", "");
	ip16("10.96.5.5", a);
	CHECK(meta_service(m, a, &svc) && !strcmp(svc.name, "api") && !strcmp(svc.namespace, "ns"),
	      "service by ClusterIP");
	meta_stats(m, &ms);
	CHECK(ms.objects[META_POD] == 5 && ms.objects[META_SERVICE] == 2 &&
		      ms.bad_objects_total == 1,
	      "objects %llu pods %llu services %llu bad", (unsigned long long)ms.objects[META_POD],
	      (unsigned long long)ms.objects[META_SERVICE],
	      (unsigned long long)ms.bad_objects_total);

	/* 10.5.0.1 moves from api-6f7-x (deleted at 5000) to a bare pod (added at 6000). */
	meta_lock(m);
	ev = json_tokener_parse("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"api-6f7-x\"}}");
	meta_apply(m, META_POD, META_DELETED, ev, 5000);
	json_object_put(ev);
	ev = json_tokener_parse("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"solo\"},\"spec\":{"
				"\"nodeName\":\"n1\"},\"status\":{\"podIP\":\"10.5.0.1\"}}");
	meta_apply(m, META_POD, META_ADDED, ev, 6000);
	json_object_put(ev);
	meta_unlock(m);
	check_ident(m, "10.5.0.1", 3000, 4000, "ns", "api", "Deployment", "za");
	check_ident(m, "10.5.0.1", 4000, 5500, "ns", "api", "Deployment", "za");
	check_ident(m, "10.5.0.1", 5200, 5800, "", "unknown", "unknown", "");
	check_ident(m, "10.5.0.1", 5500, 6500, "ns", "solo", "Pod", "za");
	meta_expire(m, 5000 + 60000);
	check_ident(m, "10.5.0.1", 3000, 4000, "ns", "solo", "Pod", "za");
	CHECK(meta_set_cluster_cidrs(m, "10.0.0.0/8,bogus") == -EINVAL, "bad CIDR list refused");
	CHECK(meta_set_cluster_cidrs(m, "10.5.0.0/24") == 0, "CIDRs");
	check_ident(m, "10.6.0.1", 0, 1000, "", "world", "world", "");
	meta_free(m);
}

/* The store and metadata the join tests share: meta_doc's objects, a 5 s join wait. */
static struct meta *join_fixture(struct store_config *cfg, struct store **s)
{
	json_object *doc = json_tokener_parse(meta_doc);
	struct meta *m;

	*cfg = (struct store_config){
		.max_series = 100, .ttl_ms = 1 << 30, .max_agents = 10, .join_wait_ms = 5000
	};
	meta_new(&m, 60000);
	kube_apply_list(m, doc, 1000);
	json_object_put(doc);
	cfg->meta = m;
	store_new(s, cfg);
	return m;
}

/* A batch from node of one connection (client, server:8080), the interval ending at 2000. */
static void one_flow(struct test_batch *t, const char *node, uint64_t seq, const char *client,
		     const char *server)
{
	make_batch(t, node, seq);
	t->b.interval_end_unix_ms = 2000;
	t->b.n_flows = 1;
	inet_pton(AF_INET, client, t->addr[0]);
	inet_pton(AF_INET, server, t->addr[1]);
	t->f[0].server_port = 8080;
}

/* A server-side report of connection (client, server:8080) from node. */
static void apply_server_side(struct store *s, struct test_batch *t, const char *node, uint64_t seq,
			      const char *client, const char *server, uint64_t now)
{
	one_flow(t, node, seq, client, server);
	t->f[0].reporter = FLOWLENS__V1__REPORTER__REPORTER_SERVER;
	store_apply(s, &t->b, now);
}

/* The client side's report of the same connection, dialed through 10.96.5.5:80. */
static void apply_client_side(struct store *s, struct test_batch *t, const char *node, uint64_t seq,
			      const char *client, const char *server, uint64_t now)
{
	static uint8_t vip[4] = { 10, 96, 5, 5 };

	one_flow(t, node, seq, client, server);
	t->f[0].dialed_ip.data = vip;
	t->f[0].dialed_ip.len = 4;
	t->f[0].dialed_port = 80;
	store_apply(s, &t->b, now);
}

/* A server-side report waits for the client side, which says what was dialed. */
static void test_store_join(void)
{
	struct store_config cfg;
	struct test_batch t;
	struct store_stats st;
	struct store *s;
	struct meta *m = join_fixture(&cfg, &s);
	char *out;

	/* Server side on node n2: client 10.5.0.3 (a pod on n1) -> backend 10.5.0.1:8080. */
	apply_server_side(s, &t, "n2", 1, "10.5.0.3", "10.5.0.1", 100);
	store_stats(s, 100, &st);
	CHECK(st.pending == 1, "server side waits: %llu pending", (unsigned long long)st.pending);
	/* The client side on n1 reports it dialed 10.96.5.5:80. */
	apply_client_side(s, &t, "n1", 1, "10.5.0.3", "10.5.0.1", 200);
	store_stats(s, 200, &st);
	CHECK(st.pending == 0 && st.joined_total == 1, "joined: %llu pending %llu joined",
	      (unsigned long long)st.pending, (unsigned long long)st.joined_total);
	out = render(s, 300);
	CHECK(strstr(out,
		     "source_workload=\"nightly\",source_workload_kind=\"CronJob\",destination_"
		     "namespace=\"ns\",destination_workload=\"api\",destination_workload_kind="
		     "\"Deployment\",destination_service=\"api\",destination_port=\"80\",protocol="
		     "\"tcp\",direction=\"forward\",reporter=\"server\"} 1000") != NULL,
	      "server side named with the dialed service:\n%s", out);
	free(out);
	/* Another server-side report with no client side: applied as direct after the wait. */
	make_batch(&t, "n2", 2);
	t.b.interval_end_unix_ms = 2000;
	t.b.n_flows = 1;
	inet_pton(AF_INET, "10.5.0.3", t.addr[0]);
	inet_pton(AF_INET, "10.5.0.2", t.addr[1]);
	t.f[0].reporter = FLOWLENS__V1__REPORTER__REPORTER_SERVER;
	store_apply(s, &t.b, 300);
	store_tick(s, 5299);
	store_stats(s, 5299, &st);
	CHECK(st.pending == 1, "still waiting before the deadline");
	store_tick(s, 5300);
	store_stats(s, 5300, &st);
	CHECK(st.pending == 0 && st.join_timeouts_total == 1, "applied after the wait");
	out = render(s, 5300);
	CHECK(strstr(out,
		     "destination_workload=\"rs-only\",destination_workload_kind=\"ReplicaSet\","
		     "destination_service=\"\",destination_port=\"80\"") != NULL,
	      "direct after the wait");
	free(out);

	/* The same aggregate key again after its backend's pod was replaced: not a stale name. */
	{
		json_object *ev;

		meta_lock(m);
		ev = json_tokener_parse(
			"{\"metadata\":{\"namespace\":\"ns\",\"name\":\"rs-only-y\"}}");
		meta_apply(m, META_POD, META_DELETED, ev, 2500);
		json_object_put(ev);
		ev = json_tokener_parse("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"new\"},"
					"\"status\":{\"podIP\":\"10.5.0.2\"}}");
		meta_apply(m, META_POD, META_ADDED, ev, 2600);
		json_object_put(ev);
		meta_unlock(m);
	}
	make_batch(&t, "n2", 3);
	t.b.interval_start_unix_ms = 2700;
	t.b.interval_end_unix_ms = 3000;
	t.b.n_flows = 1;
	inet_pton(AF_INET, "10.5.0.3", t.addr[0]);
	inet_pton(AF_INET, "10.5.0.2", t.addr[1]);
	t.f[0].reporter = FLOWLENS__V1__REPORTER__REPORTER_SERVER;
	store_apply(s, &t.b, 5400);
	out = render(s, 5400);
	CHECK(strstr(out, "destination_workload=\"new\",destination_workload_kind=\"Pod\"") != NULL,
	      "named by the new pod after the metadata changed");
	free(out);
	store_free(s);
	meta_free(m);
}

/*
 * A client side's report releases exactly the pendings of its own connection, from every node
 * that reported it, found through the per-connection index (also after a snapshot restore),
 * and leaves the others waiting.
 */
static void test_store_join_index(void)
{
	struct store_config cfg;
	struct test_batch t;
	struct store_stats st;
	struct store *s, *r;
	struct meta *m = join_fixture(&cfg, &s);
	FILE *f = tmpfile();

	apply_server_side(s, &t, "n2", 1, "10.5.0.3", "10.5.0.1", 100);
	apply_server_side(s, &t, "n2", 2, "10.5.0.3", "10.5.0.2", 100);
	apply_server_side(s, &t, "n3", 1, "10.5.0.3", "10.5.0.1", 100);
	store_stats(s, 100, &st);
	CHECK(st.pending == 3, "three pendings, two of one connection: %llu",
	      (unsigned long long)st.pending);
	apply_client_side(s, &t, "n1", 1, "10.5.0.3", "10.5.0.1", 200);
	store_stats(s, 200, &st);
	CHECK(st.pending == 1 && st.joined_total == 2,
	      "both nodes' pendings of the connection joined, the other waits: %llu pending, "
	      "%llu joined",
	      (unsigned long long)st.pending, (unsigned long long)st.joined_total);
	apply_client_side(s, &t, "n1", 2, "10.5.0.3", "10.5.0.1", 300);
	store_stats(s, 300, &st);
	CHECK(st.pending == 1 && st.joined_total == 2, "nothing left to join for it");
	CHECK(store_save(s, f, 400, 1700000000000ULL) == 0, "save");
	rewind(f);
	store_new(&r, &cfg);
	CHECK(store_restore(r, f, 500, 1700000000100ULL, 1700000000000ULL) == 0, "restore");
	store_stats(r, 500, &st);
	CHECK(st.pending == 1, "the pending restored: %llu", (unsigned long long)st.pending);
	apply_client_side(r, &t, "n1", 3, "10.5.0.3", "10.5.0.2", 600);
	store_stats(r, 600, &st);
	CHECK(st.pending == 0 && st.joined_total == 1,
	      "a restored pending is found by its client side: %llu pending, %llu joined",
	      (unsigned long long)st.pending, (unsigned long long)st.joined_total);
	store_free(r);
	store_free(s);
	meta_free(m);
	fclose(f);
}

/*
 * A server side's signals waiting for the join survive a snapshot (a restart inside the join
 * wait lost them: the soak's server-side DNS was short of dig's count after a restart).
 */
static void test_store_pending_signals_snapshot(void)
{
	Flowlens__V1__FlowAggregate__ErrorCountsEntry ec, *ecp = &ec;
	struct store_config cfg;
	struct test_batch t;
	struct store_stats st;
	struct store *s, *r;
	struct meta *m = join_fixture(&cfg, &s);
	FILE *f = tmpfile();
	char *out;

	one_flow(&t, "n2", 1, "10.5.0.3", "10.5.0.1");
	t.f[0].reporter = FLOWLENS__V1__REPORTER__REPORTER_SERVER;
	t.f[0].protocol = 17;
	t.f[0].server_port = 53;
	flowlens__v1__flow_aggregate__error_counts_entry__init(&ec);
	ec.key = "dns:NOERROR:A";
	ec.value = 7;
	t.f[0].n_error_counts = 1;
	t.f[0].error_counts = &ecp;
	store_apply(s, &t.b, 100);
	store_stats(s, 100, &st);
	CHECK(st.pending == 1, "the server side waits: %llu", (unsigned long long)st.pending);
	CHECK(store_save(s, f, 200, 1700000000000ULL) == 0, "save");
	rewind(f);
	store_new(&r, &cfg);
	CHECK(store_restore(r, f, 300, 1700000000100ULL, 1700000000000ULL) == 0, "restore");
	store_tick(r, 10000);
	store_stats(r, 10000, &st);
	CHECK(st.pending == 0 && st.join_timeouts_total == 1, "applied after the wait");
	out = render(r, 10000);
	CHECK(strstr(out, "rcode=\"NOERROR\",qtype=\"A\"") &&
		      strstr(strstr(out, "rcode=\"NOERROR\",qtype=\"A\""), "} 7\n"),
	      "its 7 DNS answers, restored with it");
	free(out);
	store_free(r);
	store_free(s);
	meta_free(m);
	fclose(f);
}

/* Signals: known names become series, unknown ones and mismatched bounds are counted. */
static void test_store_signals(void)
{
	struct store_config cfg = { .max_series = 100, .ttl_ms = 1 << 30, .max_agents = 10 };
	Flowlens__V1__FlowAggregate__ErrorCountsEntry ec[5], *ecp[5];
	Flowlens__V1__Histogram h, *hp = &h;
	double bounds[3] = { 0.01, 0.1, 1 }, other[3] = { 0.01, 0.2, 1 };
	uint64_t counts[4] = { 1, 2, 0, 1 };
	const char *keys[5] = { "tcp_refused", "http:GET:5xx", "http:BREW:2xx", "dns:NXDOMAIN:AAAA",
				"drop:netfilter_drop" };
	struct test_batch t;
	struct store_stats st;
	struct store *s;
	char *out;

	store_new(&s, &cfg);
	make_batch(&t, "n1", 1);
	t.b.n_flows = 1;
	for (int i = 0; i < 5; i++) {
		flowlens__v1__flow_aggregate__error_counts_entry__init(&ec[i]);
		ec[i].key = (char *)keys[i];
		ec[i].value = (uint64_t)i + 1;
		ecp[i] = &ec[i];
	}
	t.f[0].n_error_counts = 5;
	t.f[0].error_counts = ecp;
	flowlens__v1__histogram__init(&h);
	h.name = "http_request_duration_seconds";
	h.n_bounds = 3;
	h.bounds = bounds;
	h.n_counts = 4;
	h.counts = counts;
	h.sum = 2.5;
	t.f[0].n_histograms = 1;
	t.f[0].histograms = &hp;
	store_apply(s, &t.b, 100);
	out = render(s, 100);
	CHECK(strstr(out, "flowlens_tcp_connections_total{") &&
		      strstr(out, "result=\"refused\"} 1"),
	      "tcp result series");
	CHECK(strstr(out, "method=\"GET\",status_class=\"5xx\",http_version=\"1.1\"} 2") != NULL,
	      "http series");
	CHECK(strstr(out, "rcode=\"NXDOMAIN\",qtype=\"AAAA\"} 4") != NULL, "dns series");
	CHECK(strstr(out, "reason=\"netfilter_drop\"} 5") != NULL, "drop series");
	CHECK(strstr(out, "flowlens_http_request_duration_seconds_bucket{") &&
		      strstr(out, "le=\"0.1\"} 3") && strstr(out, "le=\"+Inf\"} 4") &&
		      strstr(out, "_sum{") && strstr(out, "} 2.5\n"),
	      "histogram exposition:\n%s", out);
	CHECK(strstr(out, "BREW") == NULL, "unknown method not exported");
	free(out);
	/* The same series with other bounds: refused, counted. */
	t.b.seq = 2;
	h.bounds = other;
	store_apply(s, &t.b, 200);
	store_stats(s, 200, &st);
	CHECK(st.signals_ignored_total == 2 && st.histogram_mismatch_total == 1,
	      "ignored %llu mismatched %llu", (unsigned long long)st.signals_ignored_total,
	      (unsigned long long)st.histogram_mismatch_total);
	out = render(s, 200);
	CHECK(strstr(out, "le=\"+Inf\"} 4") != NULL, "mismatched histogram not merged");
	free(out);
	store_free(s);
}

/*
 * The replicas of a shard (collector/replica.c): constant labels, progress and how far behind
 * another store is, missed batches, agents that have not delivered since a takeover, the
 * hold bounded by the last Lease renewal, and a series held again.
 */
static void test_store_replicas(void)
{
	struct store_config cfg = { .max_series = 100,
				    .ttl_ms = 1 << 30,
				    .max_agents = 10,
				    .zero_hold_ms = 1000,
				    .labels = { .ip_labels = 1 },
				    .const_labels = "cluster=\"c1\",shard=\"0\"",
				    .hold_from_batch = 1 };
	/* Forward or reply (2000 or 4000 bytes over the two batches): both held or both not. */
	const char *fwd4 =
		"flowlens_flow_bytes_total{cluster=\"c1\",shard=\"0\",source_namespace=\"\","
		"source_workload=\"unknown\",source_workload_kind=\"unknown\",source_ip="
		"\"10.1.1.2\"";
	struct store *a, *b;
	struct test_batch t;
	struct store_stats st;
	char *progress = NULL, *out;
	size_t len = 0;
	FILE *f;

	store_new(&a, &cfg);
	store_new(&b, &cfg);
	for (uint64_t seq = 1; seq <= 2; seq++) {
		make_batch(&t, "n1", seq);
		store_apply(a, &t.b, 100);
		if (seq == 1)
			store_apply(b, &t.b, 100);
	}
	f = open_memstream(&progress, &len);
	store_progress(a, f);
	fclose(f);
	CHECK(store_behind(b, progress) == 1 && store_behind(a, progress) == 0,
	      "behind the other store's progress: b %zu, a %zu", store_behind(b, progress),
	      store_behind(a, progress));
	make_batch(&t, "n1", 2);
	store_apply(b, &t.b, 100);
	CHECK(store_behind(b, progress) == 0, "caught up: %zu", store_behind(b, progress));
	free(progress);
	/* seq 3 never reaches b: seq 4 is a gap of one. */
	make_batch(&t, "n1", 4);
	store_apply(b, &t.b, 100);
	store_stats(b, 100, &st);
	CHECK(st.gaps_total == 1, "missed batches counted: %llu",
	      (unsigned long long)st.gaps_total);
	/* Lagging: b got nothing from n1 whose interval ended at or after 6000. */
	make_batch(&t, "n1", 5);
	t.b.interval_end_unix_ms = 5000;
	store_apply(b, &t.b, 200);
	CHECK(store_lagging(b, 6000, 60000, 300) == 1, "lagging until a newer batch: %zu",
	      store_lagging(b, 6000, 60000, 300));
	make_batch(&t, "n1", 5); /* a duplicate still shows the agent delivers */
	t.b.interval_end_unix_ms = 7000;
	store_apply(b, &t.b, 300);
	CHECK(store_lagging(b, 6000, 60000, 300) == 0, "a newer batch arrived: %zu",
	      store_lagging(b, 6000, 60000, 300));
	/* a's series were created at 100 (no batch time): held until 1100. */
	out = render(a, 2000);
	CHECK(series_value(out, fwd4) % 2000 == 0 && series_value(out, fwd4) / 2000 - 1 < 2,
	      "constant labels first, real value after the hold: %llu",
	      (unsigned long long)series_value(out, fwd4));
	free(out);
	/* The exporter's last Lease renewal bounds the hold: at 500 it was not over. */
	store_set_hold_horizon(a, 500);
	out = render(a, 2000);
	CHECK(series_value(out, fwd4) == 0,
	      "held while its hold ended after the last renewal: %llu",
	      (unsigned long long)series_value(out, fwd4));
	free(out);
	store_set_hold_horizon(a, UINT64_MAX);
	/*
	 * A new exporter (from 3000) whose predecessor renewed last at 1050: held at 0 for a
	 * whole hold again, however many renders (any reader) come in it, then real.
	 */
	store_stats(a, 2000, &st);
	CHECK(store_rehold(a, 1200, 3000) == 0, "a series whose hold ended before 1200: not held");
	/*
	 * a showed them at their value (the renders at 2000): a re-hold by this same process
	 * (its own Lease renewed after an API blip lapsed its hold) would show 0 after the value,
	 * a counter reset (issue 35). Never held again.
	 */
	CHECK(store_rehold(a, 0, 3000) == 0 && store_rehold(a, 1050, 3000) == 0,
	      "series this process showed at their value: never held again");
	out = render(a, 3000);
	CHECK(series_value(out, fwd4) % 2000 == 0 && series_value(out, fwd4) / 2000 - 1 < 2,
	      "...still at their value: %llu", (unsigned long long)series_value(out, fwd4));
	free(out);
	/* b never rendered its series: every one is held again, for a whole hold. */
	store_stats(b, 2000, &st);
	CHECK(store_rehold(b, 1050, 3000) == st.series, "every series never shown held again: %llu",
	      (unsigned long long)st.series);
	out = render(b, 3000);
	free(out);
	out = render(b, 3999);
	CHECK(series_value(out, fwd4) == 0, "still held after a first render: %llu",
	      (unsigned long long)series_value(out, fwd4));
	free(out);
	out = render(b, 4000);
	CHECK(series_value(out, fwd4) != 0 && series_value(out, fwd4) != ~0ULL,
	      "then its value: %llu", (unsigned long long)series_value(out, fwd4));
	free(out);
	store_free(a);
	store_free(b);
	/*
	 * When agents were last seen survives a snapshot (a restart, a peer's copy): an agent
	 * gone for an hour is not one a new exporter waits for, one seen a second ago is.
	 */
	store_new(&a, &cfg);
	store_new(&b, &cfg);
	make_batch(&t, "gone", 1);
	store_apply(a, &t.b, 1000);
	make_batch(&t, "alive", 1);
	store_apply(a, &t.b, 3600000);
	f = tmpfile();
	store_save(a, f, 3601000, 1700003601000ULL);
	rewind(f);
	CHECK(store_restore(b, f, 500000, 1700003602000ULL, 1700003601000ULL) == 0, "restore");
	fclose(f);
	CHECK(store_lagging(b, 1700003602000ULL, 60000, 500000) == 1,
	      "after a restore only the agent seen lately is waited for: %zu",
	      store_lagging(b, 1700003602000ULL, 60000, 500000));
	store_free(a);
	store_free(b);
}

static int cmp_line(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Whether two exports hold the same lines, whatever their order (series are kept hashed). */
static int same_lines(const char *a, const char *b)
{
	char *ca = strdup(a), *cb = strdup(b), *la[512], *lb[512], *save;
	size_t na = 0, nb = 0;
	int same = ca && cb;

	for (char *l = ca ? strtok_r(ca, "\n", &save) : NULL; l && na < 512;
	     l = strtok_r(NULL, "\n", &save))
		la[na++] = l;
	for (char *l = cb ? strtok_r(cb, "\n", &save) : NULL; l && nb < 512;
	     l = strtok_r(NULL, "\n", &save))
		lb[nb++] = l;
	same = same && na == nb && na < 512;
	if (same) {
		qsort(la, na, sizeof(la[0]), cmp_line);
		qsort(lb, nb, sizeof(lb[0]), cmp_line);
		for (size_t i = 0; i < na && same; i++)
			same = !strcmp(la[i], lb[i]);
	}
	free(ca);
	free(cb);
	return same;
}

/*
 * One batch of the join tests' stream (W = 5 s): n1 (the client 10.5.0.3's node) and n2 (the
 * servers' node) each send intervals ending at 1000 + seq * 1000. n2's seq 1 carries the
 * server side of 10.5.0.3 -> server:8080; n1's batch seq named_seq (0: none) carries the client
 * side naming the ClusterIP 10.96.5.5:80 it dialed for that connection.
 */
static void join_stream_batch(struct store *s, const char *node, uint64_t seq, const char *server,
			      uint64_t named_seq, uint64_t now)
{
	static uint8_t vip[4] = { 10, 96, 5, 5 };
	struct test_batch t;
	uint64_t end = 1000 + seq * 1000;

	if (!strcmp(node, "n2") && seq == 1) {
		one_flow(&t, "n2", 1, "10.5.0.3", server);
		t.f[0].reporter = FLOWLENS__V1__REPORTER__REPORTER_SERVER;
	} else if (!strcmp(node, "n1") && seq == named_seq) {
		one_flow(&t, "n1", seq, "10.5.0.3", server);
		t.f[0].dialed_ip.data = vip;
		t.f[0].dialed_ip.len = 4;
		t.f[0].dialed_port = 80;
	} else {
		make_batch(&t, node, seq);
		t.b.n_flows = 0;
	}
	t.b.interval_end_unix_ms = end;
	store_apply(s, &t.b, now);
}

/* Sends: "interleaved" (n2 then n1, each interval, as they are sent), "server first" (all of
 * n2's, then n1's) or "client first"; receipt at end + 50 (or at late, when not 0), ticking
 * after every batch. */
enum join_order { INTERLEAVED, SERVER_FIRST, CLIENT_FIRST };
static void join_stream(struct store *s, enum join_order order, const char *server,
			uint64_t named_seq, uint64_t n, uint64_t late)
{
	for (int pass = 0; pass < (order == INTERLEAVED ? 1 : 2); pass++)
		for (uint64_t seq = 1; seq <= n; seq++) {
			uint64_t now = late ? late : 1000 + seq * 1000 + 50;
			const char *first = order == CLIENT_FIRST ? "n1" : "n2";
			const char *second = order == CLIENT_FIRST ? "n2" : "n1";

			if (order == INTERLEAVED || pass == 0)
				join_stream_batch(s, first, seq, server, named_seq, now);
			if (order == INTERLEAVED || pass == 1)
				join_stream_batch(s, second, seq, server, named_seq, now);
			store_tick(s, now);
		}
}

/*
 * Issue 35: replicas decide the cross-node join on batch time. A server-side report waits
 * until its client's node's batches passed its interval end + the wait, then is named by what
 * the client side named in time or is direct: the same decision at the same point of the
 * stream on every replica, whenever and in whatever order the two nodes' batches reached it.
 */
static void test_store_join_batch_time(void)
{
	const char *rs_direct = "destination_workload=\"rs-only\",destination_workload_kind="
				"\"ReplicaSet\",destination_service=\"\",destination_port="
				"\"8080\",protocol=\"tcp\",direction=\"forward\",reporter="
				"\"server\"} 1000";
	const char *api_named =
		"destination_workload=\"api\",destination_workload_kind="
		"\"Deployment\",destination_service=\"api\",destination_port="
		"\"80\",protocol=\"tcp\",direction=\"forward\",reporter=\"server\"} 1000";
	const char *api_direct = "destination_workload=\"api\",destination_workload_kind="
				 "\"Deployment\",destination_service=\"\",destination_port="
				 "\"8080\",protocol=\"tcp\",direction=\"forward\",reporter="
				 "\"server\"} 1000";
	struct store_config cfg;
	struct store *ref, *other;
	struct store_stats st;
	struct meta *m = join_fixture(&cfg, &ref);
	char *a, *b;

	/*
	 * A direct connection (the client side never names a Service), the server side's report
	 * due at 7000. On time, its receipt's deadline (2950 + 5000) is later than the batch
	 * time's release (the tick at 7050). The other replica gets every batch 18 s late, all
	 * of n2's first: still waiting until n1's batch ending at 7000, then the same export.
	 */
	{
		join_stream_batch(ref, "n2", 1, "10.5.0.2", 0, 2950);
		join_stream_batch(ref, "n1", 1, "10.5.0.2", 0, 2950);
		for (uint64_t seq = 2; seq <= 8; seq++) {
			uint64_t now = 1000 + seq * 1000 + 50;

			join_stream_batch(ref, "n2", seq, "10.5.0.2", 0, now);
			join_stream_batch(ref, "n1", seq, "10.5.0.2", 0, now);
			store_tick(ref, now);
			store_stats(ref, now, &st);
			CHECK(st.pending == (now < 7050 ? 1u : 0u),
			      "on time, at %llu: %llu pending (due 7000 in batch time)",
			      (unsigned long long)now, (unsigned long long)st.pending);
		}
	}
	store_new(&other, &cfg);
	for (uint64_t seq = 1; seq <= 8; seq++) {
		join_stream_batch(other, "n2", seq, "10.5.0.2", 0, 20000 + seq);
		store_tick(other, 20000 + seq);
	}
	for (uint64_t seq = 1; seq <= 8; seq++) {
		join_stream_batch(other, "n1", seq, "10.5.0.2", 0, 20100 + seq);
		store_tick(other, 20100 + seq);
		store_stats(other, 20100 + seq, &st);
		CHECK(st.pending == (seq < 6 ? 1u : 0u),
		      "18 s late, n2 first, after n1's batch ending %llu: %llu pending (waits for "
		      "the client's node only)",
		      (unsigned long long)(1000 + seq * 1000), (unsigned long long)st.pending);
	}
	a = render(ref, 9100);
	b = render(other, 20200);
	CHECK(strstr(a, rs_direct) && strstr(b, rs_direct),
	      "both show the server side, direct:\n%s\n%s", a, b);
	CHECK(same_lines(a, b), "the same export from both:\n%s\n---\n%s", a, b);
	free(a);
	free(b);
	store_free(ref);
	store_free(other);

	/*
	 * The client side names the ClusterIP in its interval ending at 6000, in time for the
	 * report due at 7000: named on a replica that got the batches interleaved and on one
	 * that applied every batch of n2 (the server's node) past the due time first.
	 */
	store_new(&ref, &cfg);
	store_new(&other, &cfg);
	join_stream(ref, INTERLEAVED, "10.5.0.1", 5, 8, 0);
	join_stream(other, SERVER_FIRST, "10.5.0.1", 5, 8, 30000);
	a = render(ref, 30100);
	b = render(other, 30100);
	CHECK(strstr(a, api_named) != NULL, "named in time: joined:\n%s", a);
	CHECK(same_lines(a, b), "the same export, n2 first:\n%s\n---\n%s", a, b);
	free(a);
	free(b);
	store_free(ref);
	store_free(other);

	/*
	 * Named only in the interval ending at 8000, after the wait: direct on both, also
	 * where the naming was applied before the server side (every batch of n1 first).
	 */
	store_new(&ref, &cfg);
	store_new(&other, &cfg);
	join_stream(ref, INTERLEAVED, "10.5.0.1", 7, 8, 0);
	join_stream(other, CLIENT_FIRST, "10.5.0.1", 7, 8, 30000);
	a = render(ref, 30100);
	b = render(other, 30100);
	CHECK(strstr(a, api_direct) != NULL, "named after the wait: direct:\n%s", a);
	CHECK(same_lines(a, b), "the same export, n1 first:\n%s\n---\n%s", a, b);
	free(a);
	free(b);
	store_free(ref);
	store_free(other);

	/*
	 * The batch time survives a snapshot (a restart, a peer's copy): the agents' applied
	 * interval ends (the nodes' clocks), the pending's due time and client node. Saved
	 * between the batch that passed the due time and the tick that would release it, and
	 * restored with 2 s left on this process's clock: released by the first tick.
	 */
	{
		struct store *saved, *restored;
		FILE *f = tmpfile();

		store_new(&saved, &cfg);
		join_stream(saved, INTERLEAVED, "10.5.0.2", 0, 5, 0);
		join_stream_batch(saved, "n2", 6, "10.5.0.2", 0, 7050);
		join_stream_batch(saved, "n1", 6, "10.5.0.2", 0, 7050);
		store_stats(saved, 7050, &st);
		CHECK(st.pending == 1, "saved while waiting (%llu)",
		      (unsigned long long)st.pending);
		CHECK(store_save(saved, f, 7050, 1700000007050ULL) == 0, "save");
		rewind(f);
		store_new(&restored, &cfg);
		CHECK(store_restore(restored, f, 100, 1700000007050ULL, 1700000007050ULL) == 0,
		      "restore");
		store_tick(restored, 150);
		store_stats(restored, 150, &st);
		CHECK(st.pending == 0 && st.join_timeouts_total == 1,
		      "restored: released by batch time, before its clock's deadline (%llu)",
		      (unsigned long long)st.pending);
		store_free(saved);
		store_free(restored);
		fclose(f);
	}
	meta_free(m);
}

void test_store(void)
{
	test_wire_round_trip();
	test_store_merge();
	test_store_snapshot();
	test_store_render_yields();
	test_meta();
	test_store_join();
	test_store_join_batch_time();
	test_store_join_index();
	test_store_signals();
	test_store_pending_signals_snapshot();
	test_store_replicas();
}
