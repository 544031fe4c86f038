// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlens-collector: authenticates agents, applies their delta batches once each, and
 * exports cumulative flow series for Prometheus.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "clock.h"
#include "collector.h"
#include "log.h"
#include "secret.h"
#include "wire.h"

/* Called with c->lock held. */
static void take_snapshot(struct collector *c)
{
	int err = persist_snapshot(c->persist, c->store, clock_mono_ms());

	if (err) {
		c->snapshot_errors++;
		pr_warn("snapshot to %s: %s", c->o.state_dir, strerror(-err));
	} else {
		c->snapshots++;
	}
}

/* Where names come from: the file, a kubeconfig, the in-cluster service account, or none. */
static int start_metadata(struct collector *c)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	struct kube_config kc = { 0 };
	int err = meta_new(&c->meta, c->o.ip_history_ms);

	if (err)
		return err;
	if (c->o.cluster_cidrs && meta_set_cluster_cidrs(c->meta, c->o.cluster_cidrs)) {
		pr_err("--cluster-cidrs: '%s' is not a list of CIDRs", c->o.cluster_cidrs);
		return -EINVAL;
	}
	if (c->o.metadata_file) {
		err = metafile_open(&c->mfile, c->o.metadata_file, c->meta);
		if (!err)
			pr_info("names from %s", c->o.metadata_file);
		return err;
	}
	if (c->o.kubeconfig) {
		kc.kubeconfig = c->o.kubeconfig;
	} else if (c->o.in_cluster == 1 || (c->o.in_cluster == -1 && host && *host)) {
		kc.in_cluster = 1;
	} else {
		pr_warn("no --metadata-file, --kubeconfig or in-cluster API: addresses are named "
			"only unknown or world");
		return 0;
	}
	err = kube_start(&c->kube, &kc, c->meta);
	if (err)
		return err;
	/* Name what is replayed and first received with a synced view, if it comes soon. */
	for (int i = 0; i < 100 && !collector_metadata_ready(c); i++)
		usleep(100000);
	if (!collector_metadata_ready(c))
		pr_warn("kube: not all kinds listed after 10 s; going on (ready when they are)");
	return 0;
}

int main(int argc, char **argv)
{
	struct store_config scfg;
	struct httpd_options hopts = { 0 };
	struct collector c;
	struct httpd *http = NULL;
	char *cert = NULL, *key = NULL;
	sigset_t mask;
	int err, sig;
	struct timespec tick = { .tv_sec = 1 };
	uint64_t last_snapshot;
	char identity[256] = "";

	memset(&c, 0, sizeof(c));
	err = collector_options_parse(&c.o, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	log_level = c.o.log_level;
	pthread_mutex_init(&c.lock, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	err = ingest_load_token(&c);
	if (err) {
		pr_err("token file %s: %s (a token needs at least 16 and at most 4096 characters)",
		       c.o.token_file, ingest_token_error(err));
		goto out;
	}
	pthread_mutex_init(&c.decode_lock, NULL);
	pr_info("open files limit %lu", httpd_raise_nofile());
	err = start_metadata(&c);
	if (err)
		goto out;
	memset(&scfg, 0, sizeof(scfg));
	scfg.meta = c.meta;
	scfg.labels.pod_labels = c.o.pod_labels;
	scfg.labels.ip_labels = c.o.ip_labels;
	/* Without names the collector cannot tell a client on another node: nothing waits. */
	scfg.join_wait_ms = c.mfile || c.kube ? c.o.join_wait_ms : 0;
	scfg.max_series = c.o.max_series;
	scfg.ttl_ms = c.o.ttl_ms;
	scfg.max_agents = c.o.max_agents;
	scfg.zero_hold_ms = c.o.zero_hold_ms;
	scfg.max_joins = c.o.max_joins;
	scfg.agent_protect_ms = c.o.agent_protect_ms;
	/* Values are checked by the options: [A-Za-z0-9_.-] only. */
	snprintf(c.const_labels, sizeof(c.const_labels), "%s%s%s%s%s%s%s",
		 c.o.cluster_name ? "cluster=\"" : "", c.o.cluster_name ? c.o.cluster_name : "",
		 c.o.cluster_name ? "\"" : "", c.o.cluster_name && c.o.shard ? "," : "",
		 c.o.shard ? "shard=\"" : "", c.o.shard ? c.o.shard : "", c.o.shard ? "\"" : "");
	scfg.const_labels = c.const_labels;
	scfg.hold_from_batch = c.o.ha_lease != NULL;
	c.scfg = scfg;
	err = store_new(&c.store, &scfg);
	if (err)
		goto out;
	if (c.o.state_dir) {
		err = persist_open(&c.persist, c.o.state_dir, 1);
		if (!err)
			err = persist_load(c.persist, &c.store, &scfg, c.o.max_decompressed,
					   clock_mono_ms(), &c.restored);
		if (err) {
			pr_err("state in %s: %s", c.o.state_dir, strerror(-err));
			goto out;
		}
		{
			struct store_stats st;

			store_stats(c.store, clock_mono_ms(), &st);
			pr_info("state restored from %s: %llu series, %llu logged batches replayed "
				"(%llu already in the snapshot)",
				c.o.state_dir, (unsigned long long)st.series,
				(unsigned long long)c.restored.replayed,
				(unsigned long long)c.restored.duplicates);
		}
		/*
		 * What waited past its time while the collector was down is applied before the
		 * first scrape: Prometheus saw the old process apply it.
		 */
		store_tick(c.store, clock_mono_ms());
		/* Fold the replayed log into a snapshot right away. */
		if (persist_snapshot(c.persist, c.store, clock_mono_ms()))
			pr_warn("writing a snapshot to %s failed", c.o.state_dir);
	}
	if (c.o.ha_lease || c.o.peers) {
		struct ha_config hc = {
			.lease = c.o.ha_lease,
			.identity = identity,
			.lease_ms = c.o.ha_lease_ms,
			.renew_ms = c.o.ha_renew_ms,
			.kubeconfig = c.o.kubeconfig,
			.peers = c.o.peers,
			.peer_ca_file = c.o.peer_ca_file,
			.token_file = c.o.peer_token_file ? c.o.peer_token_file : c.o.token_file,
		};
		struct store_stats st;

		if (c.o.peer_token_file) {
			char *t = secret_read(c.o.peer_token_file);

			if (!t) {
				err = -errno;
				pr_err("--peer-token-file %s: %s", c.o.peer_token_file,
				       strerror(-err));
				goto out;
			}
			free(t);
		}
		if (!c.o.ha_identity && gethostname(identity, sizeof(identity) - 1) == -1)
			snprintf(identity, sizeof(identity), "flowlens-collector-%d",
				 (int)getpid());
		if (c.o.ha_identity)
			snprintf(identity, sizeof(identity), "%s", c.o.ha_identity);
		err = ha_start(&c.ha, &hc);
		if (err) {
			pr_err("high availability: %s", strerror(-err));
			goto out;
		}
		/* Nothing of its own (a new or lost disk): a peer's copy first, if one answers. */
		store_stats(c.store, clock_mono_ms(), &st);
		c.startup_bootstrap = ha_has_peers(c.ha) && !st.series && !st.agents_tracked &&
				      c.o.peer_bootstrap_ms;
		c.bootstrapping = c.startup_bootstrap;
		if (c.o.ha_lease)
			pr_info("high availability: lease %s as %s%s", c.o.ha_lease, identity,
				ha_has_peers(c.ha) ? ", with peers" : "");
	}
	if (c.o.tls_cert_file) {
		cert = ingest_read_file(c.o.tls_cert_file, 1 << 20, NULL);
		key = ingest_read_file(c.o.tls_key_file, 1 << 20, NULL);
		if (!cert || !key) {
			err = -errno;
			pr_err("reading TLS certificate/key: %s", strerror(errno));
			goto out;
		}
	}
	hopts.host = c.o.listen_host;
	hopts.port = c.o.listen_port;
	hopts.max_body = c.o.max_body;
	hopts.tls_cert_pem = cert;
	hopts.tls_key_pem = key;
	hopts.precheck = ingest_precheck;
	hopts.max_connections = (unsigned int)c.o.max_connections;
	hopts.max_per_ip = (unsigned int)c.o.max_connections_per_ip;
	hopts.max_buffered = c.o.max_buffered;
	hopts.timeout_s = (unsigned int)((c.o.request_timeout_ms + 999) / 1000);
	/* /metrics and health answer while a batch is decoded or applied. */
	hopts.threads = 4;
	pthread_mutex_lock(&c.lock);
	err = httpd_start(&http, &hopts, collector_serve_http, &c);
	c.http = http;
	pthread_mutex_unlock(&c.lock);
	if (err) {
		pr_err("HTTP%s server on %s:%d: %s", cert ? "S" : "", c.o.listen_host,
		       c.o.listen_port, strerror(-err));
		goto out;
	}
	if (c.startup_bootstrap) {
		uint64_t until = clock_mono_ms() + c.o.peer_bootstrap_ms;
		struct timespec pause = { .tv_sec = 1 };
		int peer_gapped;

		for (;;) {
			/* Nothing here: even a peer that missed batches has more. */
			err = replica_bootstrap(&c, 1, &peer_gapped);
			if (err == 0)
				break;
			if (err == -ENODATA) {
				pr_info("ha: the peer is starting without state too: a new shard, "
					"starting empty");
				break;
			}
			if (clock_mono_ms() >= until) {
				pr_warn("ha: no complete peer answered within %llu ms: starting without "
					"state (a new shard, or every replica lost its state)",
					(unsigned long long)c.o.peer_bootstrap_ms);
				break;
			}
			if (sigtimedwait(&mask, NULL, &pause) > 0)
				goto out;
		}
		pthread_mutex_lock(&c.lock);
		c.startup_bootstrap = 0;
		c.bootstrapping = 0;
		pthread_mutex_unlock(&c.lock);
	}
	c.ready = 1;
	pr_info("flowlens-collector %s listening on %s:%d (%s), max series %llu, series ttl %llu ms",
		FLOWLENS_VERSION, c.o.listen_host, c.o.listen_port, cert ? "https" : "http",
		(unsigned long long)c.o.max_series, (unsigned long long)c.o.ttl_ms);

	/* Housekeeping once a second until SIGINT/SIGTERM: TTL expiry, token rotation. */
	last_snapshot = clock_mono_ms();
	for (;;) {
		sig = sigtimedwait(&mask, NULL, &tick);
		if (sig > 0) {
			/*
			 * Drain: refuse batches (agents keep and retry them) and keep serving
			 * /metrics for the grace period so Prometheus scrapes the final values;
			 * nothing applied is then lost and nothing is applied twice.
			 */
			pr_info("signal %d: refusing batches, serving /metrics for %llu ms more",
				sig, (unsigned long long)c.o.shutdown_grace_ms);
			pthread_mutex_lock(&c.lock);
			c.draining = 1;
			pthread_mutex_unlock(&c.lock);
			/* The other replica exports from now on: it waits for nothing. */
			ha_release(c.ha);
			pthread_mutex_lock(&c.lock);
			/* The last scrapes see real values (held series that were shown as 0). */
			store_set_draining(c.store);
			/* Nothing may wait past the end; with --state-dir it waits in the snapshot. */
			if (!c.persist)
				store_tick(c.store, UINT64_MAX);
			pthread_mutex_unlock(&c.lock);
			if (c.o.shutdown_grace_ms) {
				struct timespec g = {
					.tv_sec = (time_t)(c.o.shutdown_grace_ms / 1000),
					.tv_nsec = (long)(c.o.shutdown_grace_ms % 1000) * 1000000L
				};

				if (sigtimedwait(&mask, NULL, &g) > 0)
					pr_info("second signal: exiting now");
			}
			break;
		}
		if (c.mfile && metafile_poll(c.mfile) > 0)
			pr_info("metadata file %s reloaded", c.o.metadata_file);
		meta_lock(c.meta);
		meta_expire(c.meta, (uint64_t)time(NULL) * 1000);
		meta_unlock(c.meta);
		pthread_mutex_lock(&c.lock);
		store_tick(c.store, clock_mono_ms());
		store_expire(c.store, clock_mono_ms());
		/* A log that failed is repaired by the next snapshot: try it every second. */
		if (c.persist && (clock_mono_ms() - last_snapshot >= c.o.snapshot_ms ||
				  persist_broken(c.persist))) {
			take_snapshot(&c);
			last_snapshot = clock_mono_ms();
		}
		err = ingest_load_token(&c);
		if (err && err != c.token_err)
			pr_warn("token file %s: %s; keeping the previous token", c.o.token_file,
				ingest_token_error(err));
		c.token_err = err;
		pthread_mutex_unlock(&c.lock);
		replica_tick(&c);
	}
	err = 0;
out:
	pthread_mutex_lock(&c.lock);
	c.http = NULL;
	pthread_mutex_unlock(&c.lock);
	httpd_stop(http);
	ha_stop(c.ha);
	free(c.takeover_progress);
	if (c.persist && c.ready) {
		pthread_mutex_lock(&c.lock);
		take_snapshot(&c);
		pthread_mutex_unlock(&c.lock);
	}
	persist_close(c.persist);
	store_free(c.store);
	kube_stop(c.kube);
	metafile_close(c.mfile);
	meta_free(c.meta);
	free(c.token);
	free(cert);
	free(key);
	collector_options_free(&c.o);
	pthread_mutex_destroy(&c.lock);
	return err ? 1 : 0;
}
