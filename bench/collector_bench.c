// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * collector-bench: the collector's ingest path (inflate + unpack + validate + merge) in
 * aggregates per second on one core, and the time and memory to render /metrics at 10k, 100k
 * and 1M series. Usage: collector-bench [MAX_SERIES] (default 1000000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "expo.h"
#include "store.h"
#include "wire.h"

#define PER_BATCH 1000

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * The render yields the collector's lock every STORE_RENDER_CHUNK series: the longest stretch
 * between yields is the longest a batch waits for the lock behind a scrape.
 */
static double hold_last, hold_max;

static void hold_mark(void *arg)
{
	double t = cpu_now();

	(void)arg;
	if (t - hold_last > hold_max)
		hold_max = t - hold_last;
	hold_last = t;
}

/* Encodes batch number i of PER_BATCH aggregates with distinct client addresses. */
static int encode_batch(uint64_t i, uint64_t seq, uint8_t **out, size_t *len)
{
	static Flowlens__V1__FlowAggregate f[PER_BATCH];
	static Flowlens__V1__FlowAggregate *pf[PER_BATCH];
	static Flowlens__V1__Counters c[2 * PER_BATCH];
	static uint8_t addr[PER_BATCH][4];
	static uint8_t server[4] = { 10, 0, 0, 1 }, boot[16] = { 1 };
	Flowlens__V1__Batch b = FLOWLENS__V1__BATCH__INIT;

	for (int k = 0; k < PER_BATCH; k++) {
		uint64_t id = i * PER_BATCH + (uint64_t)k;

		flowlens__v1__flow_aggregate__init(&f[k]);
		flowlens__v1__counters__init(&c[2 * k]);
		flowlens__v1__counters__init(&c[2 * k + 1]);
		addr[k][0] = 10;
		addr[k][1] = (uint8_t)(id >> 16);
		addr[k][2] = (uint8_t)(id >> 8);
		addr[k][3] = (uint8_t)id;
		f[k].client_ip.data = addr[k];
		f[k].client_ip.len = 4;
		f[k].server_ip.data = server;
		f[k].server_ip.len = 4;
		f[k].server_port = 443;
		f[k].protocol = 6;
		f[k].reporter = FLOWLENS__V1__REPORTER__REPORTER_CLIENT;
		c[2 * k].packets = 10;
		c[2 * k].bytes = 15000;
		c[2 * k + 1].packets = 8;
		c[2 * k + 1].bytes = 900;
		f[k].forward = &c[2 * k];
		f[k].reply = &c[2 * k + 1];
		pf[k] = &f[k];
	}
	b.schema_version = WIRE_SCHEMA_VERSION;
	b.node = "bench-node";
	b.boot_id.data = boot;
	b.boot_id.len = 16;
	b.seq = seq;
	b.flows = pf;
	b.n_flows = PER_BATCH;
	return wire_encode(&b, out, len);
}

int main(int argc, char **argv)
{
	uint64_t max_series = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	const uint64_t sizes[] = { 10000, 100000, 1000000 };
	uint64_t seq = 1;

	printf("collector-bench: batches of %d aggregates (2 series each), one core\n", PER_BATCH);
	printf("%10s %16s %16s %12s %12s %14s %12s\n", "series", "ingest new/s", "ingest known/s",
	       "render ms", "render MiB", "bytes/series", "lock hold ms");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint64_t n = sizes[si], batches = n / 2 / PER_BATCH;
		struct store_config cfg = { .max_series = n + 16,
					    .ttl_ms = 1ULL << 40,
					    .max_agents = 16,
					    .zero_hold_ms = 0,
					    /* distinct series per client, as before names */
					    .labels = { .ip_labels = 1 } };
		uint8_t **bodies = calloc(batches, sizeof(*bodies));
		size_t *lens = calloc(batches, sizeof(*lens));
		double t0, t_new, t_known, t_render;
		long rss0, rss1;
		struct store *s;
		struct expo e;
		char *out;
		size_t len;

		if (n > max_series)
			break;
		for (uint64_t b = 0; b < batches; b++)
			if (encode_batch(b, 1, &bodies[b], &lens[b]))
				return 1;
		rss0 = rss_kib();
		store_new(&s, &cfg);
		/* Pass 1 creates every series; pass 2 merges into existing ones. */
		for (int pass = 0; pass < 2; pass++) {
			t0 = cpu_now();
			for (uint64_t b = 0; b < batches; b++) {
				struct wire_batch d;
				const char *why;

				if (wire_decode(bodies[b], lens[b], 64 << 20, &d, &why) != WIRE_OK)
					return 1;
				d.b->seq = seq++; /* every batch is new to the dedup */
				store_apply(s, d.b, 1);
				wire_free(&d);
			}
			if (pass == 0) {
				t_new = cpu_now() - t0;
				rss1 = rss_kib();
			} else {
				t_known = cpu_now() - t0;
			}
		}
		t0 = cpu_now();
		hold_last = t0;
		hold_max = 0;
		expo_open(&e);
		store_render(s, &e, 2, hold_mark, NULL);
		hold_mark(NULL);
		expo_close(&e, &out, &len);
		t_render = cpu_now() - t0;
		printf("%10llu %16.0f %16.0f %12.1f %12.1f %14.0f %12.2f\n", (unsigned long long)n,
		       (double)(batches * PER_BATCH) / t_new,
		       (double)(batches * PER_BATCH) / t_known, t_render * 1000,
		       (double)len / (1 << 20), (double)(rss1 - rss0) * 1024 / (double)n,
		       hold_max * 1000);
		free(out);
		store_free(s);
		for (uint64_t b = 0; b < batches; b++)
			free(bodies[b]);
		free(bodies);
		free(lens);
	}
	return 0;
}
