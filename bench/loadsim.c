// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-loadsim: many simulated agents posting realistic batches to a real collector, to
 * size collector shards (issue 15). Not a test.
 *
 * The simulated cluster: NODES nodes in 3 zones, PODS pods each; W Deployments in W/10
 * namespaces, one ClusterIP Service each; every workload calls 3 others (a sparse call graph,
 * as in real clusters). Each agent sends one batch per --interval, spread evenly over the
 * interval across agents, with FLOWS aggregates: 70% client-side reports of its pods dialing a
 * callee's ClusterIP (the backend on a random node), 30% server-side reports of its pods
 * serving a caller's pod (on a random node: the collector waits for the client side's report
 * of the ClusterIP dialed, which the simulation does not pair, so they end as join timeouts,
 * the join table's worst case). No pod churn: addresses and names stay put. --metadata writes
 * the matching pods, ReplicaSets, Services and Nodes (the collector's --metadata-file), so
 * every address gets its names and the series are the ones a real cluster would make.
 *
 *   flowlens-loadsim --metadata FILE [--nodes N --pods P --workloads W]
 *   flowlens-loadsim --collector URL --token-file F [--nodes N ...] [--flows F] [--shard K/N]
 *                    [--interval 10] [--duration 60] [--collector-pid PID]
 *
 * Prints what was sent and answered (status counts, POST latency p50/p99 overall and while a
 * /metrics scrape was in flight), and with --collector-pid the collector's CPU (% of one core)
 * and RSS; scrapes /metrics every 15 s (size and time of the last).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "export.h"
#include "wire.h"

#define MAX_LAT (1 << 20)

static int nodes = 1000, pods = 30, workloads = 500, flows_per = 200, interval_s = 10;
static int shard_k, shard_n; /* --shard K/N: only shard K of N's aggregates */
static int duration_s = 60;

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state >> 16);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pod_ip(int node, int pod, uint8_t ip[4])
{
	ip[0] = 10;
	ip[1] = (uint8_t)(32 + (node >> 8));
	ip[2] = (uint8_t)(node & 0xff);
	ip[3] = (uint8_t)(1 + pod);
}

static int workload_of(int node, int pod)
{
	return (int)(((uint32_t)node * 2654435761u + (uint32_t)pod * 40503u) % (uint32_t)workloads);
}

static int callee(int w, int k)
{
	static const int mul[3] = { 7, 13, 31 }, add[3] = { 1, 5, 11 };

	return (w * mul[k] + add[k]) % workloads;
}

static void svc_ip(int w, uint8_t ip[4])
{
	ip[0] = 10;
	ip[1] = 100;
	ip[2] = (uint8_t)(w >> 8);
	ip[3] = (uint8_t)(w & 0xff);
}

/* Every workload's pods, as node * pods + pod, grouped by workload (wl_first[w] ...). */
static int *wl_first, *wl_pods;
/* Every workload's callers (the workloads that have it among their 3 callees). */
static int *caller_first, *callers;

static int index_workloads(void)
{
	int total = nodes * pods, *fill;

	wl_first = calloc((size_t)workloads + 1, sizeof(int));
	wl_pods = calloc((size_t)total, sizeof(int));
	fill = calloc((size_t)workloads, sizeof(int));
	if (!wl_first || !wl_pods || !fill)
		return -1;
	for (int i = 0; i < total; i++)
		wl_first[workload_of(i / pods, i % pods) + 1]++;
	for (int w = 0; w < workloads; w++)
		wl_first[w + 1] += wl_first[w];
	for (int i = 0; i < total; i++) {
		int w = workload_of(i / pods, i % pods);

		wl_pods[wl_first[w] + fill[w]++] = i;
	}
	free(fill);
	caller_first = calloc((size_t)workloads + 1, sizeof(int));
	callers = calloc((size_t)workloads * 3, sizeof(int));
	fill = calloc((size_t)workloads, sizeof(int));
	if (!caller_first || !callers || !fill)
		return -1;
	for (int w = 0; w < workloads; w++)
		for (int k = 0; k < 3; k++)
			caller_first[callee(w, k) + 1]++;
	for (int w = 0; w < workloads; w++)
		caller_first[w + 1] += caller_first[w];
	for (int w = 0; w < workloads; w++)
		for (int k = 0; k < 3; k++) {
			int c = callee(w, k);

			callers[caller_first[c] + fill[c]++] = w;
		}
	free(fill);
	return 0;
}

/* A random pod of workload w (any pod when w has none). */
static void backend_of(int w, int *node, int *pod)
{
	int n = wl_first[w + 1] - wl_first[w];
	int i = n ? wl_pods[wl_first[w] + (int)(rnd() % (uint32_t)n)] :
		    (int)(rnd() % (uint32_t)(nodes * pods));

	*node = i / pods;
	*pod = i % pods;
}

static int write_metadata(const char *path)
{
	FILE *f = fopen(path, "w");
	const char *sep = "";

	if (!f)
		return -1;
	fprintf(f, "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[");
	for (int n = 0; n < nodes; n++) {
		fprintf(f,
			"%s{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node-%d\","
			"\"labels\":{\"topology.kubernetes.io/zone\":\"zone-%c\"}},\"status\":{"
			"\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"172.16.%d.%d\"}]}}",
			sep, n, 'a' + n % 3, n >> 8, n & 0xff);
		sep = ",";
	}
	for (int w = 0; w < workloads; w++) {
		fprintf(f,
			",{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"namespace"
			"\":\"ns-%d\",\"name\":\"wl-%d-abc\",\"ownerReferences\":[{\"apiVersion\":"
			"\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"wl-%d\",\"controller\":true}]}}",
			w / 10, w, w);
		fprintf(f,
			",{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":"
			"\"ns-%d\",\"name\":\"wl-%d\"},\"spec\":{\"clusterIP\":\"10.100.%d.%d\","
			"\"clusterIPs\":[\"10.100.%d.%d\"],\"ports\":[{\"port\":80,\"targetPort\":8080}]}}",
			w / 10, w, w >> 8, w & 0xff, w >> 8, w & 0xff);
	}
	for (int n = 0; n < nodes; n++)
		for (int p = 0; p < pods; p++) {
			int w = workload_of(n, p);
			uint8_t ip[4];

			pod_ip(n, p, ip);
			fprintf(f,
				",{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"namespace\":"
				"\"ns-%d\",\"name\":\"wl-%d-abc-%d-%d\",\"uid\":\"u-%d-%d\",\"labels\":{"
				"\"pod-template-hash\":\"abc\"},\"ownerReferences\":[{\"apiVersion\":"
				"\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"wl-%d-abc\",\"controller\":"
				"true}]},\"spec\":{\"nodeName\":\"node-%d\"},\"status\":{\"phase\":"
				"\"Running\",\"podIP\":\"%d.%d.%d.%d\",\"podIPs\":[{\"ip\":\"%d.%d.%d.%d\"}]}}",
				w / 10, w, n, p, n, p, w, n, ip[0], ip[1], ip[2], ip[3], ip[0],
				ip[1], ip[2], ip[3]);
		}
	fprintf(f, "]}\n");
	return fclose(f);
}

/* One agent's batch for one interval, compressed. */
static int make_batch(int node, uint64_t seq, uint8_t **out, size_t *len)
{
	Flowlens__V1__Batch b = FLOWLENS__V1__BATCH__INIT;
	Flowlens__V1__FlowAggregate *fl = calloc((size_t)flows_per, sizeof(*fl));
	Flowlens__V1__FlowAggregate **ptrs = calloc((size_t)flows_per, sizeof(*ptrs));
	Flowlens__V1__Counters *ctr = calloc((size_t)flows_per * 2, sizeof(*ctr));
	uint8_t(*addr)[4] = calloc((size_t)flows_per * 3, 4);
	uint8_t boot[16] = { 0 };
	char name[32];
	uint8_t *packed;
	size_t plen;
	uLongf cl;
	int err = 0;

	snprintf(name, sizeof(name), "node-%d", node);
	memcpy(boot, &node, sizeof(node));
	b.schema_version = WIRE_SCHEMA_VERSION;
	b.node = name;
	b.boot_id = (ProtobufCBinaryData){ sizeof(boot), boot };
	b.seq = seq;
	b.interval_end_unix_ms = (uint64_t)time(NULL) * 1000;
	b.interval_start_unix_ms = b.interval_end_unix_ms - (uint64_t)interval_s * 1000;
	for (int i = 0; i < flows_per; i++) {
		Flowlens__V1__FlowAggregate *f = &fl[i];
		int p = i % pods, w = workload_of(node, p), bn, bp;

		flowlens__v1__flow_aggregate__init(f);
		flowlens__v1__counters__init(&ctr[2 * i]);
		flowlens__v1__counters__init(&ctr[2 * i + 1]);
		ctr[2 * i].packets = 1 + rnd() % 100;
		ctr[2 * i].bytes = ctr[2 * i].packets * (60 + rnd() % 1400);
		ctr[2 * i + 1].packets = 1 + rnd() % 100;
		ctr[2 * i + 1].bytes = ctr[2 * i + 1].packets * (60 + rnd() % 1400);
		f->forward = &ctr[2 * i];
		f->reply = &ctr[2 * i + 1];
		f->protocol = 6;
		f->server_port = 8080;
		f->tcp_syn = f->tcp_synack = 1;
		int n_callers = caller_first[w + 1] - caller_first[w];

		if (i % 10 < 7 || !n_callers) {
			/* This pod calls a callee's Service; the backend is anywhere. */
			int cw = callee(w, (int)(rnd() % 3));

			backend_of(cw, &bn, &bp);
			pod_ip(node, p, addr[3 * i]);
			pod_ip(bn, bp, addr[3 * i + 1]);
			svc_ip(cw, addr[3 * i + 2]);
			f->reporter = 1;
			f->dialed_ip = (ProtobufCBinaryData){ 4, addr[3 * i + 2] };
			f->dialed_port = 80;
		} else {
			/* This pod serves a caller's pod, usually on another node (no translation
			 * seen here: the collector joins it with the caller's report). */
			int cw = callers[caller_first[w] + (int)(rnd() % (uint32_t)n_callers)];

			backend_of(cw, &bn, &bp);
			pod_ip(bn, bp, addr[3 * i]);
			pod_ip(node, p, addr[3 * i + 1]);
			f->reporter = 2;
		}
		f->client_ip = (ProtobufCBinaryData){ 4, addr[3 * i] };
		f->server_ip = (ProtobufCBinaryData){ 4, addr[3 * i + 1] };
		ptrs[i] = f;
	}
	b.n_flows = 0;
	/* One shard of several: only the aggregates whose server address is this shard's, as
	 * the agents split them (every agent still sends this shard a batch every interval). */
	for (int i = 0; i < flows_per; i++)
		if (!shard_n || export_shard_of(ptrs[i]->server_ip.data, ptrs[i]->server_ip.len,
						(unsigned int)shard_n) == (unsigned int)shard_k)
			ptrs[b.n_flows++] = ptrs[i];
	b.flows = ptrs;
	plen = flowlens__v1__batch__get_packed_size(&b);
	packed = malloc(plen);
	cl = compressBound(plen);
	*out = malloc(cl);
	if (!packed || !*out) {
		err = -1;
	} else {
		flowlens__v1__batch__pack(&b, packed);
		compress2(*out, &cl, packed, plen, 6);
		*len = cl;
	}
	free(packed);
	free(fl);
	free(ptrs);
	free(ctr);
	free(addr);
	return err;
}

struct xfer {
	CURL *h;
	struct curl_slist *hdr;
	uint8_t *body;
	double start;
	int during_scrape;
};

static double lat[MAX_LAT], lat_scrape[MAX_LAT];
static size_t n_lat, n_lat_scrape;

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_d);
	return v[(size_t)(q * (double)(n - 1))];
}

static size_t discard(void *p, size_t s, size_t n, void *u)
{
	size_t *total = u;

	(void)p;
	if (total)
		*total += s * n;
	return s * n;
}

static void proc_usage(int pid, double *cpu_s, long *rss_kib)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	long pages = 0, rss = 0;
	FILE *f;

	*cpu_s = 0;
	*rss_kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			char *p = strrchr(buf, ')');

			if (p &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				   &ut, &st) == 2)
				*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) == 2)
			*rss_kib = rss * (sysconf(_SC_PAGESIZE) / 1024);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	const char *url = NULL, *token_file = NULL, *metadata = NULL;
	char auth[4200], token[4096] = "", batches_url[512], metrics_url[512];
	long codes[600] = { 0 };
	int pid = 0, running = 0;
	uint64_t sent = 0, aggregates = 0;
	double cpu0 = 0, cpu1 = 0, t0, next_scrape, scrape_s = 0;
	long rss = 0, rss_max = 0;
	size_t scrape_bytes = 0;
	CURLM *multi;
	CURL *scrape = NULL;
	size_t scrape_total = 0;
	double scrape_start = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--collector"))
			url = v;
		else if (!strcmp(a, "--token-file"))
			token_file = v;
		else if (!strcmp(a, "--metadata"))
			metadata = v;
		else if (!strcmp(a, "--nodes"))
			nodes = atoi(v);
		else if (!strcmp(a, "--pods"))
			pods = atoi(v);
		else if (!strcmp(a, "--workloads"))
			workloads = atoi(v);
		else if (!strcmp(a, "--flows"))
			flows_per = atoi(v);
		else if (!strcmp(a, "--interval"))
			interval_s = atoi(v);
		else if (!strcmp(a, "--duration"))
			duration_s = atoi(v);
		else if (!strcmp(a, "--collector-pid"))
			pid = atoi(v);
		else if (!strcmp(a, "--shard") && sscanf(v, "%d/%d", &shard_k, &shard_n) == 2 &&
			 shard_n > 0 && shard_n <= EXPORT_MAX_SHARDS && shard_k >= 0 &&
			 shard_k < shard_n)
			;
		else {
			fprintf(stderr,
				"flowlens-loadsim: bad argument %s (see the source's header)\n", a);
			return 2;
		}
	}
	if (nodes < 1 || pods < 1 || pods > 250 || workloads < 4 || flows_per < 1 ||
	    interval_s < 1 || nodes > 60000) {
		fprintf(stderr, "flowlens-loadsim: out-of-range sizes\n");
		return 2;
	}
	if (metadata)
		return write_metadata(metadata) ? 1 : 0;
	if (index_workloads()) {
		fprintf(stderr, "flowlens-loadsim: out of memory\n");
		return 1;
	}
	if (!url || !token_file) {
		fprintf(stderr, "flowlens-loadsim: --collector and --token-file (or --metadata)\n");
		return 2;
	}
	{
		FILE *f = fopen(token_file, "r");

		if (!f || !fgets(token, sizeof(token), f)) {
			fprintf(stderr, "flowlens-loadsim: cannot read %s\n", token_file);
			return 1;
		}
		fclose(f);
		token[strcspn(token, "\r\n")] = '\0';
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	snprintf(batches_url, sizeof(batches_url), "%s/v1/batches", url);
	snprintf(metrics_url, sizeof(metrics_url), "%s/metrics", url);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 256L);
	if (pid)
		proc_usage(pid, &cpu0, &rss);
	t0 = now_s();
	next_scrape = t0 + 15;
	/* Agent a sends at t0 + (k + a / nodes) * interval, k = 0, 1, ... */
	for (uint64_t slot = 0;; slot++) {
		double due = t0 + (double)slot * interval_s / nodes;
		int agent = (int)(slot % (uint64_t)nodes);
		uint64_t seq = slot / (uint64_t)nodes + 1;
		CURLMsg *m;
		int left;

		if (due - t0 >= duration_s)
			break;
		while (now_s() < due) {
			curl_multi_perform(multi, &running);
			while ((m = curl_multi_info_read(multi, &left))) {
				struct xfer *x;
				long code = 0;

				if (m->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
				if (m->easy_handle == scrape) {
					scrape_s = now_s() - scrape_start;
					scrape_bytes = scrape_total;
					curl_multi_remove_handle(multi, scrape);
					curl_easy_cleanup(scrape);
					scrape = NULL;
					continue;
				}
				curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
				codes[code >= 0 && code < 600 ? code : 0]++;
				if (x->during_scrape || scrape) {
					if (n_lat_scrape < MAX_LAT)
						lat_scrape[n_lat_scrape++] = now_s() - x->start;
				} else if (n_lat < MAX_LAT) {
					lat[n_lat++] = now_s() - x->start;
				}
				curl_multi_remove_handle(multi, x->h);
				curl_easy_cleanup(x->h);
				curl_slist_free_all(x->hdr);
				free(x->body);
				free(x);
			}
			if (!scrape && now_s() >= next_scrape) {
				scrape = curl_easy_init();
				scrape_total = 0;
				curl_easy_setopt(scrape, CURLOPT_URL, metrics_url);
				curl_easy_setopt(scrape, CURLOPT_WRITEFUNCTION, discard);
				curl_easy_setopt(scrape, CURLOPT_WRITEDATA, &scrape_total);
				curl_easy_setopt(scrape, CURLOPT_PRIVATE, NULL);
				curl_multi_add_handle(multi, scrape);
				scrape_start = now_s();
				next_scrape += 15;
			}
			curl_multi_poll(multi, NULL, 0, 1, NULL);
		}
		{
			struct xfer *x = calloc(1, sizeof(*x));
			size_t len = 0;

			if (!x || make_batch(agent, seq, &x->body, &len)) {
				free(x);
				continue;
			}
			x->h = curl_easy_init();
			x->hdr = curl_slist_append(NULL, auth);
			x->hdr = curl_slist_append(x->hdr, "Content-Type: application/x-protobuf");
			x->hdr = curl_slist_append(x->hdr, "Content-Encoding: deflate");
			x->hdr = curl_slist_append(x->hdr, "Expect:");
			curl_easy_setopt(x->h, CURLOPT_URL, batches_url);
			curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdr);
			curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
			curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)len);
			curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, discard);
			curl_easy_setopt(x->h, CURLOPT_WRITEDATA, NULL);
			curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
			curl_easy_setopt(x->h, CURLOPT_TIMEOUT, 30L);
			x->start = now_s();
			x->during_scrape = scrape != NULL;
			curl_multi_add_handle(multi, x->h);
			sent++;
			aggregates += (uint64_t)flows_per;
		}
		if (pid && slot % (uint64_t)nodes == 0) {
			double c;

			proc_usage(pid, &c, &rss);
			if (rss > rss_max)
				rss_max = rss;
		}
	}
	/* Let the last answers arrive. */
	running = 1;
	for (double end = now_s() + 30; running && now_s() < end;) {
		CURLMsg *m;
		int left;

		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left))) {
			long code = 0;

			if (m->msg != CURLMSG_DONE || m->easy_handle == scrape)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			codes[code >= 0 && code < 600 ? code : 0]++;
		}
		curl_multi_poll(multi, NULL, 0, 10, NULL);
	}
	{
		double elapsed = now_s() - t0;

		if (pid) {
			proc_usage(pid, &cpu1, &rss);
			if (rss > rss_max)
				rss_max = rss;
		}
		printf("loadsim: %d agents x %d aggregates every %d s for %.0f s: %llu batches "
		       "(%.1f/s), %.0f aggregates/s\n",
		       nodes, flows_per, interval_s, elapsed, (unsigned long long)sent,
		       (double)sent / elapsed, (double)aggregates / elapsed);
		printf("loadsim: answers:");
		for (int c = 0; c < 600; c++)
			if (codes[c])
				printf(" %d x%ld", c, codes[c]);
		printf("\nloadsim: POST latency p50 %.1f ms, p99 %.1f ms; during a /metrics scrape "
		       "p50 %.1f ms, p99 %.1f ms (%zu posts)\n",
		       pct(lat, n_lat, 0.5) * 1e3, pct(lat, n_lat, 0.99) * 1e3,
		       pct(lat_scrape, n_lat_scrape, 0.5) * 1e3,
		       pct(lat_scrape, n_lat_scrape, 0.99) * 1e3, n_lat_scrape);
		printf("loadsim: last /metrics scrape: %zu bytes in %.2f s\n", scrape_bytes,
		       scrape_s);
		if (pid)
			printf("loadsim: collector CPU %.1f%% of one core, RSS %.0f MiB (max %.0f)\n",
			       100.0 * (cpu1 - cpu0) / elapsed, (double)rss / 1024.0,
			       (double)rss_max / 1024.0);
	}
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return 0;
}
