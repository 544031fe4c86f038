// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-agent: loads the flow programs, attaches them to matching interfaces as they come
 * and go, drains the flow table every interval into flow aggregates, and serves /metrics,
 * /healthz and /v1/flows.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/capability.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <uthash.h>
#include "hashutil.h"
#include "agent.h"
#include "clock.h"
#include "flow.h"
#include "flow.skel.h"
#include "flowjson.h"
#include "log.h"

/* /v1/flows shows the largest aggregates of the last interval, not all of them. */
#define FLOWS_JSON_MAX 1000

/* The samples ring holds finished exchanges and HTTP/2 header-block records (by size). */
static int on_sample(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;

	if (size == sizeof(struct fl_h2_rec)) {
		if (a->h2)
			h2_record(a->h2, data);
	} else if (size >= sizeof(struct fl_sample)) {
		attrib_sample(flowtab_attrib(a->tab), data);
	}
	return 0;
}

/* An HTTP/2 request the decoder finished. */
static void on_h2_sample(void *ctx, const struct fl_sample *s)
{
	struct agent *a = ctx;

	attrib_sample(flowtab_attrib(a->tab), s);
}

/* HTTP/2 connections without a header block for this long are forgotten (gRPC channels idle
 * for minutes keep theirs). */
#define H2_IDLE_NS (15ULL * 60 * 1000000000)

static int on_overflow(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;

	if (size < sizeof(struct fl_overflow_event))
		return 0;
	pthread_mutex_lock(&a->lock);
	flowtab_overflow(a->tab, data);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* The node interfaces' driver counters (--ethtool-stats), as of this drain. */
static void read_ethstats(struct agent *a)
{
	struct iface *i;
	int err;

	if (a->ethtool_sock < 0)
		return;
	for (i = a->ifaces; i; i = i->hh.next) {
		if (i->kind == IFACE_POD)
			continue;
		err = ethstats_read(a->ethtool_sock, i->name, a->opts.ethtool_stats,
				    a->opts.n_ethtool_stats, &i->eth);
		/* An interface that just went away is the watcher's business, not an error. */
		if (err && err != -ENODEV) {
			a->ethtool_errors++;
			pr_debug("ethtool statistics of %s: %s", i->name, strerror(-err));
		}
	}
}

static void drain(struct agent *a)
{
	struct kernel_clock clk;
	uint64_t t0 = clock_mono_ns();
	uint64_t end_ms = clock_unix_ms();
	struct flowjson_interval iv;
	double secs;
	size_t b;
	int err;

	/* Overflow records queued so far belong to this interval. */
	if (a->rb)
		ring_buffer__consume(a->rb);
	pthread_mutex_lock(&a->lock);
	if (load_sample_clock(a, &clk) == 0)
		attrib_set_clock(flowtab_attrib(a->tab), &clk);
	err = flowtab_drain(a->tab, t0);
	if (err) {
		a->drain_errors++;
		pr_warn("draining the flow table: %s", strerror(-err));
	}
	iv.node = a->node;
	iv.start_unix_ms = a->interval_start_ms;
	iv.end_unix_ms = end_ms;
	iv.mono_to_unix_ns = (int64_t)clock_ns(CLOCK_REALTIME) - (int64_t)clock_mono_ns();
	free(a->flows_json);
	a->flows_json =
		flowjson_document(attrib_aggregates(flowtab_attrib(a->tab)), &iv, FLOWS_JSON_MAX);
	if (a->opts.output == OUTPUT_JSON &&
	    flowjson_write_lines(stdout, attrib_aggregates(flowtab_attrib(a->tab)), &iv))
		a->output_errors++;
	if (a->exp &&
	    export_submit(a->exp, attrib_aggregates(flowtab_attrib(a->tab)), a->interval_start_ms,
			  end_ms, attrib_signals(flowtab_attrib(a->tab))))
		a->export_errors++;
	a->interval_start_ms = end_ms;
	if (a->h2)
		h2_sweep(a->h2, clock_mono_ns());
	read_ethstats(a);
	secs = (double)(clock_mono_ns() - t0) / 1e9;
	for (b = 0; b < N_DRAIN_BOUNDS && secs > drain_bounds[b]; b++)
		;
	a->drain_hist[b]++;
	a->drain_sum += secs;
	a->last_drain_seconds = secs;
	pthread_mutex_unlock(&a->lock);
}

static int run_loop(struct agent *a)
{
	struct itimerspec its = { 0 };
	struct pollfd pfd[4];
	sigset_t mask;
	int sfd, tfd, err = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (sfd < 0 || tfd < 0) {
		err = -errno;
		goto out;
	}
	its.it_interval.tv_sec = (time_t)(a->opts.interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(a->opts.interval_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(tfd, 0, &its, NULL) == -1) {
		err = -errno;
		goto out;
	}
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = tfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = ifwatch_fd(a->watch), .events = POLLIN };
	pfd[3] = (struct pollfd){ .fd = ring_buffer__epoll_fd(a->rb), .events = POLLIN };

	for (;;) {
		if (poll(pfd, 4, -1) == -1) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				pr_info("signal %u: final drain, then detaching", si.ssi_signo);
			break;
		}
		if (pfd[2].revents & POLLIN) {
			err = ifwatch_process(a->watch);
			if (err) {
				/* The resync after an overrun failed: reconcile at the next tick. */
				pr_warn("netlink: %s; reconciling at the next interval",
					strerror(-err));
				a->last_reconcile_ms = 0;
				err = 0;
			}
		}
		if (pfd[3].revents & POLLIN)
			ring_buffer__consume(a->rb);
		if (pfd[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
				drain(a);
			ifaces_reconcile(a);
		}
	}
	drain(a);
out:
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	return err;
}

int main(int argc, char **argv)
{
	struct httpd_options hopts = { 0 };
	struct agent a;
	struct iface *i, *itmp;
	struct httpd *http = NULL;
	sigset_t mask;
	const char *node;
	int err;

	memset(&a, 0, sizeof(a));
	err = options_parse(&a.opts, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	log_level = a.opts.log_level;
	log_setup_libbpf();
	pthread_mutex_init(&a.lock, NULL);
	a.ethtool_sock =
		a.opts.n_ethtool_stats ? socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
	node = getenv("FLOWLENS_NODE_NAME");
	if (node && *node)
		snprintf(a.node, sizeof(a.node), "%s", node);
	else if (gethostname(a.node, sizeof(a.node) - 1) == -1)
		strcpy(a.node, "unknown");

	/*
	 * Signals are read through a signalfd; block them before any thread starts. A shell
	 * starts background jobs with SIGINT ignored, and an ignored signal never reaches a
	 * signalfd: restore the default first.
	 */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = load_programs(&a);
	if (err)
		goto cleanup;
	err = load_calibrate_hz(&a);
	if (err) {
		pr_err("reading kernel clocks: %s", strerror(-err));
		goto cleanup;
	}
	err = flowtab_new(&a.tab, bpf_map__fd(a.skel->maps.flows4),
			  bpf_map__fd(a.skel->maps.flows6), bpf_map__fd(a.skel->maps.counters),
			  a.opts.overflow_pending_max, a.opts.idle_timeout_ms * 1000000ULL,
			  ifaces_kind_of, &a);
	if (err)
		goto cleanup;
	{
		struct sig_config sig = {
			.tcp = a.opts.signal_tcp,
			.http = a.opts.signal_http,
			.dns = a.opts.signal_dns,
			.drops = a.opts.signal_drops,
			.dns_timeout_ns = a.opts.dns_timeout_ms * 1000000ULL,
			.n_dns_bounds = a.opts.n_dns_buckets,
			.n_http_bounds = a.opts.n_http_buckets,
			.connect_timeout_ns = a.opts.tcp_connect_timeout_ms * 1000000ULL,
			.n_connect_bounds = a.opts.n_tcp_connect_buckets,
		};

		memcpy(sig.connect_bounds, a.opts.tcp_connect_buckets,
		       sizeof(double) * a.opts.n_tcp_connect_buckets);
		memcpy(sig.http_bounds, a.opts.http_buckets,
		       sizeof(double) * a.opts.n_http_buckets);
		memcpy(sig.dns_bounds, a.opts.dns_buckets, sizeof(double) * a.opts.n_dns_buckets);
		flowtab_set_dns_map(a.tab, bpf_map__fd(a.skel->maps.dns));
		load_drop_names(&a);
		load_tracepoints(&a);
		load_slots(&a);
		export_set_drop_names(load_drop_name, &a);
		/*
		 * CAP_SYS_ADMIN (granted only to use conntrack kfuncs that live in a module) is
		 * needed to load, not to run: the process that parses netlink and HTTP has none.
		 */
		if (cap_effective(CAP_SYS_ADMIN)) {
			int derr = cap_drop(CAP_SYS_ADMIN);

			if (derr)
				pr_warn("dropping CAP_SYS_ADMIN after load: %s", strerror(-derr));
			else
				pr_info("CAP_SYS_ADMIN dropped after load");
		}
		attrib_set_signals(flowtab_attrib(a.tab), &sig);
		if (sig.http) {
			err = h2_new(&a.h2, H2_IDLE_NS, on_h2_sample, &a);
			if (err)
				goto cleanup;
		}
	}
	flowtab_set_translation(a.tab, a.xlate == XLATE_KFUNC ? bpf_map__fd(a.skel->maps.nat) : -1,
				a.ctq ? ctquery_lookup : NULL, a.ctq);
	a.rb = ring_buffer__new(bpf_map__fd(a.skel->maps.overflow), on_overflow, &a, NULL);
	if (a.rb && ring_buffer__add(a.rb, bpf_map__fd(a.skel->maps.samples), on_sample, &a)) {
		ring_buffer__free(a.rb);
		a.rb = NULL;
	}
	if (!a.rb) {
		err = -errno;
		pr_err("overflow ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	a.interval_start_ms = clock_unix_ms();
	if (a.opts.collector_url) {
		struct export_config xc = {
			.url = a.opts.collector_url,
			.token_file = a.opts.token_file,
			.ca_file = a.opts.collector_ca_file,
			.buffer_bytes = a.opts.export_buffer_bytes,
			.node = a.node,
			.timeout_ms = 5000,
			.backoff_min_ms = 200,
			.backoff_max_ms = 30000,
		};

		err = export_start(&a.exp, &xc);
		if (err) {
			pr_err("exporter: %s", strerror(-err));
			goto cleanup;
		}
		pr_info("exporting to %s", a.opts.collector_url);
	}
	/* Two descriptors per attached interface, more than select() or 1024 would allow. */
	pr_debug("open files limit %lu", httpd_raise_nofile());
	a.last_reconcile_ms = clock_mono_ms();
	err = ifwatch_open(&a.watch, &ifaces_watch_ops, &a, (int)a.opts.netlink_rcvbuf);
	if (err) {
		pr_err("netlink: %s", strerror(-err));
		goto cleanup;
	}
	hopts.host = a.opts.listen_host;
	hopts.port = a.opts.listen_port;
	hopts.max_body = 0;
	hopts.max_connections = 256;
	hopts.max_per_ip = 32;
	err = httpd_start(&http, &hopts, serve_http, &a);
	if (err) {
		pr_err("HTTP server on %s:%d: %s", a.opts.listen_host, a.opts.listen_port,
		       strerror(-err));
		goto cleanup;
	}
	pthread_mutex_lock(&a.lock);
	a.http = http;
	a.ready = 1;
	pthread_mutex_unlock(&a.lock);
	pr_info("flowlens-agent %s on node %s: %u interfaces attached, table %u entries, "
		"interval %llu ms, listening on %s:%d, translations %s, program ids ingress %u "
		"egress %u",
		FLOWLENS_VERSION, a.node, HASH_COUNT(a.ifaces), a.opts.flow_table_size,
		(unsigned long long)a.opts.interval_ms, a.opts.listen_host, a.opts.listen_port,
		opt_choice_name(options_translations, a.xlate),
		load_prog_id(a.skel->progs.flowlens_ingress),
		load_prog_id(a.skel->progs.flowlens_egress));

	err = run_loop(&a);

cleanup:
	/* The final drain's batch is queued: give the sender a few seconds to deliver it. */
	export_stop(a.exp, 5000);
	pthread_mutex_lock(&a.lock);
	a.http = NULL;
	pthread_mutex_unlock(&a.lock);
	httpd_stop(http);
	ifwatch_close(a.watch);
	HASH_ITER (hh, a.ifaces, i, itmp) {
		attach_detach(&a.actx, i->ifindex, &i->att, 0);
		HASH_DEL(a.ifaces, i);
		free(i);
	}
	HASH_FREE_ALL(hh, a.routes);
	HASH_FREE_ALL(hh, a.failed);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(a.tp_links[i]);
	for (int i = 0; i < DROP_REASONS_MAX; i++)
		free(a.drop_names[i]);
	ring_buffer__free(a.rb);
	h2_free(a.h2);
	flowtab_free(a.tab);
	flow_bpf__destroy(a.skel);
	ctquery_close(a.ctq);
	free(a.flows_json);
	if (a.ethtool_sock >= 0)
		close(a.ethtool_sock);
	options_free(&a.opts);
	pthread_mutex_destroy(&a.lock);
	if (err)
		pr_err("exiting: %s", strerror(-err));
	else
		pr_info("exited cleanly, all attachments removed");
	return err ? 1 : 0;
}
