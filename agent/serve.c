// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What the agent serves over HTTP: /metrics (its own health), /healthz and /v1/flows. */
#include <stdlib.h>
#include <string.h>
#include "expo.h"
#include "agent.h"
#include "clock.h"
#include "log.h"
#include "secret.h"

const double drain_bounds[N_DRAIN_BOUNDS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					      0.01,   0.025,   0.05,   0.1,   0.25,   1 };

#define COUNTER_NAME(e, name) [e] = name,
static const char *const counter_reasons[FL_CNT_MAX] = { FL_COUNTERS(COUNTER_NAME) };
#undef COUNTER_NAME
#define N_PACKET_REASONS (FL_CNT_PULLED + 1)

/*
 * The agent's own metric families, one row each: identifier, name, type, help. Samples are
 * written under the family begun last (expo_begin), so a name is written once.
 */
#define AGENT_METRICS(X)                                                                          \
	X(M_BUILD_INFO, "flowlens_agent_build_info", "gauge",                                     \
	  "Build of the running agent (always 1).")                                               \
	X(M_INTERFACES, "flowlens_agent_interfaces", "gauge",                                     \
	  "Interfaces the flow programs are attached to, by kind and attach "                     \
	  "mode.")                                                                                \
	X(M_INTERFACE_INFO, "flowlens_agent_interface_info", "gauge",                             \
	  "One series per attached interface: its name, kind and attach mode "                    \
	  "(always 1).")                                                                          \
	X(M_INTERFACE_EVENTS_TOTAL, "flowlens_agent_interface_events_total", "counter",           \
	  "Interfaces attached and forgotten since start.")                                       \
	X(M_ATTACH_FAILURES_TOTAL, "flowlens_agent_attach_failures_total", "counter",             \
	  "Interfaces that matched but could not be attached.")                                   \
	X(M_TC_REORDERS_TOTAL, "flowlens_agent_tc_reorders_total", "counter",                     \
	  "Legacy TC: times another filter at our priority (e.g. the VPC CNI "                    \
	  "network policy agent's) had gone ahead of ours and ours was put "                      \
	  "first again.")                                                                         \
	X(M_NETLINK_OVERRUNS_TOTAL, "flowlens_agent_netlink_overruns_total", "counter",           \
	  "Netlink notification overruns, each followed by a full resync.")                       \
	X(M_NETLINK_DUMP_RETRIES_TOTAL, "flowlens_agent_netlink_dump_retries_total", "counter",   \
	  "Netlink dumps done again because the kernel flagged them interrupted "                 \
	  "(interfaces changed during the dump).")                                                \
	X(M_RECONCILES_TOTAL, "flowlens_agent_reconciles_total", "counter",                       \
	  "Periodic comparisons of attachments with the live interfaces "                         \
	  "(--reconcile-interval), by result.")                                                   \
	X(M_RECONCILE_REPAIRS_TOTAL, "flowlens_agent_reconcile_repairs_total", "counter",         \
	  "Interfaces a reconcile found unattached (attached them) or gone "                      \
	  "(forgot them): a missed event (or one that raced the reconcile's "                     \
	  "dump). Should stay near 0.")                                                           \
	X(M_ATTACH_FAILED_INTERFACES, "flowlens_agent_attach_failed_interfaces", "gauge",         \
	  "Interfaces that match but are not attached (retried at each "                          \
	  "reconcile).")                                                                          \
	X(M_FLOW_TABLE_ENTRIES, "flowlens_agent_flow_table_entries", "gauge",                     \
	  "Entries in the kernel flow tables at the last drain, by address "                      \
	  "family.")                                                                              \
	X(M_FLOW_TABLE_CAPACITY, "flowlens_agent_flow_table_capacity", "gauge",                   \
	  "Capacity of each family's kernel flow table (--flow-table-size).")                     \
	X(M_DATAPATH_EVENTS_TOTAL, "flowlens_agent_datapath_events_total", "counter",             \
	  "Packets the datapath did not count in the flow table, by reason. "                     \
	  "table_full packets are handed over through the ring buffer; "                          \
	  "ringbuf_full ones are lost.")                                                          \
	X(M_FEATURE_INFO, "flowlens_agent_feature_info", "gauge",                                 \
	  "What this kernel and the agent's privileges allow: each optional "                     \
	  "mechanism and signal is on, off (configured) or unavailable, with "                    \
	  "the reason.")                                                                          \
	X(M_TRANSLATION_INFO, "flowlens_agent_translation_info", "gauge",                         \
	  "Where ClusterIP (DNAT) translations come from: kfunc (conntrack "                      \
	  "lookups in the TC programs), netlink (user-space conntrack queries) "                  \
	  "or off.")                                                                              \
	X(M_CONNTRACK_LOOKUPS_TOTAL, "flowlens_agent_conntrack_lookups_total", "counter",         \
	  "Conntrack lookups for destination translations, by where they ran.")                   \
	X(M_CONNTRACK_ERRORS_TOTAL, "flowlens_agent_conntrack_errors_total", "counter",           \
	  "Conntrack lookups that failed: netlink query errors, and "                             \
	  "translations the datapath could not store (nat map update failed).")                   \
	X(M_TCP_CONNECTIONS_TOTAL, "flowlens_agent_tcp_connections_total", "counter",             \
	  "TCP connection attempts seen at this node's interfaces, by result "                    \
	  "(each observation point counts its own view).")                                        \
	X(M_SAMPLES_TOTAL, "flowlens_agent_samples_total", "counter",                             \
	  "Finished exchanges (HTTP/1.x requests, DNS queries) handed over by the datapath, "     \
	  "and HTTP/2 ones the agent decoded (a gRPC call is two: its HTTP/2 request and "        \
	  "its gRPC status), by "                                                                 \
	  "fate: applied, unattributed (ENI copies of what a pod veth "                           \
	  "reported), dropped (too many waiting for the next drain). The "                        \
	  "datapath's own losses are in "                                                         \
	  "flowlens_agent_datapath_events_total{reason=~\"samples_full|http_queue_full\"}.")      \
	X(M_HTTP2_CONNECTIONS, "flowlens_agent_http2_connections", "gauge",                       \
	  "HTTP/2 (h2c) connections whose header blocks are being decoded.")                      \
	X(M_HTTP2_REQUESTS_TOTAL, "flowlens_agent_http2_requests_total", "counter",               \
	  "HTTP/2 requests finished, by decoding: ok (every header block decoded with the "       \
	  "connection's HPACK table), or why some were read without it (only static-table "       \
	  "and literal fields: no_preface, the connection began before the agent; "               \
	  "record_gap, a record lost to a full ring buffer; desync, the datapath lost the "       \
	  "frame boundaries; decode_error).")                                                     \
	X(M_HTTP2_NOT_FOLLOWED_TOTAL, "flowlens_agent_http2_not_followed_total", "counter",       \
	  "HTTP/2 work not done, by what: connection (more than 16384 at once), stream (more "    \
	  "than 4096 open on one connection or 262144 on all), response (to a request not "       \
	  "seen), buffer (a header block over the 64 MiB budget of all connections' buffers).")   \
	X(M_TCP_RETRANSMITS_TOTAL, "flowlens_agent_tcp_retransmits_total", "counter",             \
	  "TCP retransmissions the kernel made (tcp_retransmit_skb tracepoint).")                 \
	X(M_DROPS_TOTAL, "flowlens_agent_drops_total", "counter",                                 \
	  "Packets the kernel dropped (kfree_skb tracepoint), by drop reason.")                   \
	X(M_TCP_CONNECTIONS_PENDING, "flowlens_agent_tcp_connections_pending", "gauge",           \
	  "TCP connection attempts waiting for an answer (SYN seen, no SYN-ACK "                  \
	  "or RST).")                                                                             \
	X(M_CONNECTIONS_TRANSLATED_TOTAL, "flowlens_agent_connections_translated_total",          \
	  "counter",                                                                              \
	  "Connections by what conntrack said about their destination: nat "                      \
	  "(e.g. a ClusterIP translated to a backend) or direct.")                                \
	X(M_OVERFLOW_RECORDS_TOTAL, "flowlens_agent_overflow_records_total", "counter",           \
	  "Packets received through the overflow ring buffer.")                                   \
	X(M_OVERFLOW_DROPPED_PACKETS_TOTAL, "flowlens_agent_overflow_dropped_packets_total",      \
	  "counter",                                                                              \
	  "Overflow packets dropped because the pending overflow table was "                      \
	  "full.")                                                                                \
	X(M_ENI_DUPLICATE_PACKETS_TOTAL, "flowlens_agent_eni_duplicate_packets_total", "counter", \
	  "Packets seen at a node interface that were already counted at a pod "                  \
	  "veth.")                                                                                \
	X(M_FLOWS_EVICTED_TOTAL, "flowlens_agent_flows_evicted_total", "counter",                 \
	  "Kernel flow entries removed after their final read, by reason: idle, finished "        \
	  "(TCP FIN or RST, then a quiet interval), pressure (table half full, quiet for an "     \
	  "interval), interface_gone.")                                                           \
	X(M_SLOT_FLUSH_RETRIES_TOTAL, "flowlens_agent_slot_flush_retries_total", "counter",       \
	  "Flushes of a CPU's last-flow slot run again because a packet was changing it.")        \
	X(M_SLOT_FLUSH_ERRORS_TOTAL, "flowlens_agent_slot_flush_errors_total", "counter",         \
	  "Drains before which a CPU's last-flow slot could not be flushed (its packets "         \
	  "are counted at a later drain).")                                                       \
	X(M_DRAINS_TOTAL, "flowlens_agent_drains_total", "counter",                               \
	  "Drains of the kernel tables.")                                                         \
	X(M_DRAIN_ERRORS_TOTAL, "flowlens_agent_drain_errors_total", "counter",                   \
	  "Drains that could not read the kernel flow table.")                                    \
	X(M_DRAIN_DURATION_SECONDS, "flowlens_agent_drain_duration_seconds", "histogram",         \
	  "Time to drain the kernel tables and build the interval's aggregates.")                 \
	X(M_LAST_DRAIN_DURATION_SECONDS, "flowlens_agent_last_drain_duration_seconds", "gauge",   \
	  "Duration of the most recent drain.")                                                   \
	X(M_CONNECTIONS, "flowlens_agent_connections", "gauge",                                   \
	  "Connections tracked for initiator detection.")                                         \
	X(M_LOCAL_POD_IPS, "flowlens_agent_local_pod_ips", "gauge",                               \
	  "Addresses known to belong to pods on this node.")                                      \
	X(M_FLOW_AGGREGATES, "flowlens_agent_flow_aggregates", "gauge",                           \
	  "Flow aggregates produced by the last interval.")                                       \
	X(M_OUTPUT_ERRORS_TOTAL, "flowlens_agent_output_errors_total", "counter",                 \
	  "Flow log lines that could not be written.")                                            \
	X(M_NODE_ETHTOOL_STAT_TOTAL, "flowlens_node_ethtool_stat_total", "counter",               \
	  "Driver counters of the node's interfaces (ethtool -S, --ethtool-stats) as of the "     \
	  "last interval; on EKS the ENA allowance counters: packets queued or dropped because "  \
	  "the instance exceeded its bandwidth, packet rate, conntrack or link-local limit.")     \
	X(M_ETHTOOL_ERRORS_TOTAL, "flowlens_agent_ethtool_errors_total", "counter",               \
	  "Node interface statistics that could not be read.")                                    \
	X(M_FLOWS_API_REFUSED_TOTAL, "flowlens_agent_flows_api_refused_total", "counter",         \
	  "/v1/flows requests refused: without the agent's bearer token (reason "                 \
	  "unauthorized), or from another host when the agent has no token (not_loopback).")      \
	X(M_EXPORT_BATCHES_TOTAL, "flowlens_agent_export_batches_total", "counter",               \
	  "Batches for the collector by outcome: sent, rejected by the "                          \
	  "collector as bad input, dropped because the buffer was full, or not "                  \
	  "encodable.")                                                                           \
	X(M_EXPORT_RETRIES_TOTAL, "flowlens_agent_export_retries_total", "counter",               \
	  "Failed sends that were retried after a backoff.")                                      \
	X(M_EXPORT_QUEUE_BATCHES, "flowlens_agent_export_queue_batches", "gauge",                 \
	  "Batches waiting to be sent.")                                                          \
	X(M_EXPORT_QUEUE_BYTES, "flowlens_agent_export_queue_bytes", "gauge",                     \
	  "Compressed bytes waiting to be sent.")                                                 \
	X(M_EXPORT_QUEUE_LIMIT_BYTES, "flowlens_agent_export_queue_limit_bytes", "gauge",         \
	  "Bound on queued bytes (--export-buffer-bytes).")                                       \
	X(M_EXPORT_LAST_SUCCESS_TIMESTAMP_SECONDS,                                                \
	  "flowlens_agent_export_last_success_timestamp_seconds", "gauge",                        \
	  "Unix time of the last batch the collector accepted (any replica).")                    \
	X(M_EXPORT_DEST_BATCHES_TOTAL, "flowlens_agent_export_destination_batches_total",         \
	  "counter",                                                                              \
	  "Batches by collector replica (--collector URL) and outcome: sent, rejected, "          \
	  "dropped.")                                                                             \
	X(M_EXPORT_DEST_QUEUE_BYTES, "flowlens_agent_export_destination_queue_bytes", "gauge",    \
	  "Compressed bytes waiting to be sent, by collector replica.")                           \
	X(M_EXPORT_DEST_LAST_SUCCESS,                                                             \
	  "flowlens_agent_export_destination_last_success_timestamp_seconds", "gauge",            \
	  "Unix time of the last batch the collector replica accepted.")

enum agent_metric { AGENT_METRICS(EXPO_ENUM) };

static const struct expo_def agent_metrics[] = { AGENT_METRICS(EXPO_DEF) };

/* Called with a->lock held. */

/* Each collector replica's own progress: one that is away shows here, not in the sums. */
static void render_destinations(struct expo *e, struct exporter *x)
{
	static const char *const results[] = { "sent", "rejected", "dropped" };
	size_t n = export_destinations(x);
	char lb[EXPO_LABELS_MAX];

	expo_begin(e, &agent_metrics[M_EXPORT_DEST_BATCHES_TOTAL]);
	for (size_t i = 0; i < n; i++) {
		struct export_stats st;
		const char *url = export_destination(x, i, &st);
		const uint64_t v[] = { st.sent, st.rejected, st.dropped };

		for (size_t r = 0; r < 3; r++)
			expo_put(e,
				 expo_labels(lb, sizeof(lb), "collector", url, "result", results[r],
					     NULL),
				 v[r]);
	}
	expo_begin(e, &agent_metrics[M_EXPORT_DEST_QUEUE_BYTES]);
	for (size_t i = 0; i < n; i++) {
		struct export_stats st;
		const char *url = export_destination(x, i, &st);

		expo_put(e, expo_labels(lb, sizeof(lb), "collector", url, NULL), st.queued_bytes);
	}
	expo_begin(e, &agent_metrics[M_EXPORT_DEST_LAST_SUCCESS]);
	for (size_t i = 0; i < n; i++) {
		struct export_stats st;
		const char *url = export_destination(x, i, &st);

		expo_put_double(e, expo_labels(lb, sizeof(lb), "collector", url, NULL),
				(double)st.last_success_unix_ms / 1000.0);
	}
}

static int serve_metrics(struct agent *a, char **out, size_t *len)
{
	const struct flowtab_stats *st = flowtab_stats(a->tab);
	const struct attrib_stats *as = attrib_stats(flowtab_attrib(a->tab));
	static const char *const kinds[] = { "pod", "node" };
	static const enum attach_used modes[] = { ATTACHED_TCX, ATTACHED_TC };
	char lb[EXPO_LABELS_MAX];
	struct expo e;
	struct iface *i;
	int err;

	err = expo_open(&e);
	if (err)
		return err;
	expo_begin(&e, &agent_metrics[M_BUILD_INFO]);
	expo_put(&e,
		 expo_labels(lb, sizeof(lb), "version", FLOWLENS_VERSION, "node", a->node, NULL),
		 1);

	expo_begin(&e, &agent_metrics[M_INTERFACES]);
	for (size_t k = 0; k < 2; k++) {
		for (size_t m = 0; m < 2; m++) {
			uint64_t n = 0;

			for (i = a->ifaces; i; i = i->hh.next)
				if ((size_t)i->kind == k && i->att.used == modes[m])
					n++;
			expo_put(&e,
				 expo_labels(lb, sizeof(lb), "kind", kinds[k], "mode",
					     attach_used_name(modes[m]), NULL),
				 n);
		}
	}
	expo_begin(&e, &agent_metrics[M_INTERFACE_INFO]);
	for (i = a->ifaces; i; i = i->hh.next)
		expo_put(&e,
			 expo_labels(lb, sizeof(lb), "interface", i->name, "kind",
				     kinds[i->kind == IFACE_POD ? 0 : 1], "mode",
				     attach_used_name(i->att.used), NULL),
			 1);
	expo_begin(&e, &agent_metrics[M_INTERFACE_EVENTS_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "event", "attached", NULL), a->ifaces_added);
	expo_put(&e, expo_labels(lb, sizeof(lb), "event", "forgotten", NULL), a->ifaces_removed);
	expo_single(&e, &agent_metrics[M_ATTACH_FAILURES_TOTAL], a->attach_failures);
	expo_single(&e, &agent_metrics[M_TC_REORDERS_TOTAL], a->tc_reorders);
	expo_single(&e, &agent_metrics[M_NETLINK_OVERRUNS_TOTAL],
		    a->watch ? ifwatch_overruns(a->watch) : 0);
	expo_single(&e, &agent_metrics[M_NETLINK_DUMP_RETRIES_TOTAL],
		    a->watch ? ifwatch_dump_retries(a->watch) : 0);
	expo_begin(&e, &agent_metrics[M_RECONCILES_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "result", "ok", NULL), a->reconciles);
	expo_put(&e, expo_labels(lb, sizeof(lb), "result", "error", NULL), a->reconcile_errors);
	expo_single(&e, &agent_metrics[M_RECONCILE_REPAIRS_TOTAL], a->reconcile_repairs);
	expo_single_double(&e, &agent_metrics[M_ATTACH_FAILED_INTERFACES],
			   (double)HASH_COUNT(a->failed));
	if (a->http)
		httpd_render_metrics(a->http, &e, "flowlens_agent");

	expo_begin(&e, &agent_metrics[M_FLOW_TABLE_ENTRIES]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "family", "ipv4", NULL), st->kernel_entries4);
	expo_put(&e, expo_labels(lb, sizeof(lb), "family", "ipv6", NULL), st->kernel_entries6);
	expo_begin(&e, &agent_metrics[M_FLOW_TABLE_CAPACITY]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "family", "ipv4", NULL), a->opts.flow_table_size);
	expo_put(&e, expo_labels(lb, sizeof(lb), "family", "ipv6", NULL), a->opts.flow_table_size);
	expo_begin(&e, &agent_metrics[M_DATAPATH_EVENTS_TOTAL]);
	for (int r = 0; r < FL_CNT_MAX; r++)
		if (r < N_PACKET_REASONS || r >= FL_CNT_HTTP_QUEUE_FULL)
			expo_put(&e,
				 expo_labels(lb, sizeof(lb), "reason", counter_reasons[r], NULL),
				 st->datapath[r]);
	expo_begin(&e, &agent_metrics[M_FEATURE_INFO]);
	for (int f = 0; f < FEAT_MAX; f++)
		expo_put(&e,
			 expo_labels(lb, sizeof(lb), "feature", feature_name(f), "state",
				     feature_state_name(a->feat.f[f].state), "reason",
				     a->feat.f[f].reason, NULL),
			 1);
	expo_begin(&e, &agent_metrics[M_TRANSLATION_INFO]);
	expo_put(&e,
		 expo_labels(lb, sizeof(lb), "mode",
			     opt_choice_name(options_translations, a->xlate), NULL),
		 1);
	expo_begin(&e, &agent_metrics[M_CONNTRACK_LOOKUPS_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "source", "datapath", NULL),
		 st->datapath[FL_CNT_CT_LOOKUP]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "source", "netlink", NULL), as->xlate_queries);
	expo_single(&e, &agent_metrics[M_CONNTRACK_ERRORS_TOTAL],
		    as->xlate_query_errors + st->datapath[FL_CNT_NAT_FULL]);
	expo_begin(&e, &agent_metrics[M_TCP_CONNECTIONS_TOTAL]);
	for (int r = 0; r < TCP_RESULT_MAX; r++)
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", vocab_tcp_result[r], NULL),
			 as->tcp[r]);
	expo_begin(&e, &agent_metrics[M_SAMPLES_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "fate", "applied", NULL),
		 as->samples - as->samples_unattributed - as->samples_dropped);
	expo_put(&e, expo_labels(lb, sizeof(lb), "fate", "unattributed", NULL),
		 as->samples_unattributed);
	expo_put(&e, expo_labels(lb, sizeof(lb), "fate", "dropped", NULL), as->samples_dropped);
	if (a->h2) {
		const struct h2_stats *hs = h2_stats(a->h2);
		uint64_t bad = 0;

		expo_single(&e, &agent_metrics[M_HTTP2_CONNECTIONS], hs->connections);
		expo_begin(&e, &agent_metrics[M_HTTP2_REQUESTS_TOTAL]);
		for (int r = 1; r < H2_REASONS; r++) {
			bad += hs->undecodable[r];
			expo_put(&e,
				 expo_labels(lb, sizeof(lb), "decoding", h2_reason_name[r], NULL),
				 hs->undecodable[r]);
		}
		expo_put(&e, expo_labels(lb, sizeof(lb), "decoding", "ok", NULL),
			 hs->requests - bad);
		expo_begin(&e, &agent_metrics[M_HTTP2_NOT_FOLLOWED_TOTAL]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "what", "connection", NULL),
			 hs->connections_refused);
		expo_put(&e, expo_labels(lb, sizeof(lb), "what", "stream", NULL),
			 hs->streams_refused);
		expo_put(&e, expo_labels(lb, sizeof(lb), "what", "response", NULL), hs->unmatched);
		expo_put(&e, expo_labels(lb, sizeof(lb), "what", "buffer", NULL),
			 hs->buffers_refused);
	}
	expo_single(&e, &agent_metrics[M_TCP_RETRANSMITS_TOTAL], as->retransmits);
	expo_begin(&e, &agent_metrics[M_DROPS_TOTAL]);
	for (int r = 0; r < DROP_REASONS_MAX; r++)
		if (as->drops[r])
			expo_put(&e,
				 expo_labels(lb, sizeof(lb), "reason",
					     a->drop_names[r] ? a->drop_names[r] : "other", NULL),
				 as->drops[r]);
	expo_begin(&e, &agent_metrics[M_TCP_CONNECTIONS_PENDING]);
	expo_put(&e, NULL, as->tcp_open);
	expo_begin(&e, &agent_metrics[M_CONNECTIONS_TRANSLATED_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "translation", "nat", NULL), as->xlate_nat);
	expo_put(&e, expo_labels(lb, sizeof(lb), "translation", "direct", NULL), as->xlate_direct);
	expo_single(&e, &agent_metrics[M_OVERFLOW_RECORDS_TOTAL], st->overflow_records);
	expo_single(&e, &agent_metrics[M_OVERFLOW_DROPPED_PACKETS_TOTAL],
		    st->overflow_dropped_packets);
	expo_single(&e, &agent_metrics[M_ENI_DUPLICATE_PACKETS_TOTAL], as->eni_duplicate_packets);
	expo_begin(&e, &agent_metrics[M_FLOWS_EVICTED_TOTAL]);
	for (int r = 0; r < FLOWTAB_EVICT_N; r++)
		expo_put(&e, expo_labels(lb, sizeof(lb), "reason", flowtab_evict_names[r], NULL),
			 st->evicted_by[r]);
	expo_single(&e, &agent_metrics[M_SLOT_FLUSH_RETRIES_TOTAL], st->slot_flush_retries);
	expo_single(&e, &agent_metrics[M_SLOT_FLUSH_ERRORS_TOTAL], st->slot_flush_errors);
	expo_single(&e, &agent_metrics[M_DRAINS_TOTAL], st->drains);
	expo_single(&e, &agent_metrics[M_DRAIN_ERRORS_TOTAL], a->drain_errors);
	expo_begin(&e, &agent_metrics[M_DRAIN_DURATION_SECONDS]);
	expo_histogram(&e, agent_metrics[M_DRAIN_DURATION_SECONDS].name, "", drain_bounds,
		       a->drain_hist, N_DRAIN_BOUNDS, a->drain_sum);
	expo_single_double(&e, &agent_metrics[M_LAST_DRAIN_DURATION_SECONDS],
			   a->last_drain_seconds);
	expo_single_double(&e, &agent_metrics[M_CONNECTIONS], (double)as->connections);
	expo_single_double(&e, &agent_metrics[M_LOCAL_POD_IPS], (double)as->local_ips);
	expo_single_double(&e, &agent_metrics[M_FLOW_AGGREGATES], (double)as->aggregates);
	expo_single(&e, &agent_metrics[M_OUTPUT_ERRORS_TOTAL], a->output_errors);
	expo_begin(&e, &agent_metrics[M_NODE_ETHTOOL_STAT_TOTAL]);
	for (i = a->ifaces; i; i = i->hh.next)
		for (int k = 0; k < a->opts.n_ethtool_stats; k++)
			if (i->eth.present & (1U << k))
				expo_put(&e,
					 expo_labels(lb, sizeof(lb), "interface", i->name, "stat",
						     a->opts.ethtool_stats[k], NULL),
					 i->eth.value[k]);
	expo_single(&e, &agent_metrics[M_ETHTOOL_ERRORS_TOTAL], a->ethtool_errors);
	expo_begin(&e, &agent_metrics[M_FLOWS_API_REFUSED_TOTAL]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "reason", "unauthorized", NULL),
		 a->flows_refused[0]);
	expo_put(&e, expo_labels(lb, sizeof(lb), "reason", "not_loopback", NULL),
		 a->flows_refused[1]);
	if (a->exp) {
		struct export_stats xs;

		export_get_stats(a->exp, &xs);
		expo_begin(&e, &agent_metrics[M_EXPORT_BATCHES_TOTAL]);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "sent", NULL), xs.sent);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "rejected", NULL), xs.rejected);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "dropped", NULL), xs.dropped);
		expo_put(&e, expo_labels(lb, sizeof(lb), "result", "encode_error", NULL),
			 a->export_errors);
		expo_single(&e, &agent_metrics[M_EXPORT_RETRIES_TOTAL], xs.retries);
		expo_single_double(&e, &agent_metrics[M_EXPORT_QUEUE_BATCHES],
				   (double)xs.queued_batches);
		expo_single_double(&e, &agent_metrics[M_EXPORT_QUEUE_BYTES],
				   (double)xs.queued_bytes);
		expo_single_double(&e, &agent_metrics[M_EXPORT_QUEUE_LIMIT_BYTES],
				   (double)a->opts.export_buffer_bytes);
		expo_single_double(&e, &agent_metrics[M_EXPORT_LAST_SUCCESS_TIMESTAMP_SECONDS],
				   (double)xs.last_success_unix_ms / 1000.0);
		render_destinations(&e, a->exp);
	}
	return expo_close(&e, out, len);
}

/*
 * Who may read /v1/flows (every flow's addresses on the node): with --token-file, whoever
 * presents the same bearer token the agent sends to the collector (re-read, it rotates);
 * without one, only clients on this host. /metrics and /healthz stay open to Prometheus and
 * the kubelet. Returns -1 when allowed, else the index of the refusal's counter.
 */
static int flows_refusal(const struct agent *a, const struct httpd_request *req)
{
	char *token;
	int ok;

	if (!a->opts.token_file)
		return httpd_from_loopback(req) ? -1 : 1;
	token = secret_read(a->opts.token_file);
	ok = token && secret_bearer_ok(httpd_header(req, "Authorization"), token, strlen(token));
	free(token);
	return ok ? -1 : 0;
}

void serve_http(void *ctx, const struct httpd_request *req, struct httpd_response *resp)
{
	struct agent *a = ctx;
	const char *path = req->path;
	int refusal = strcmp(path, "/v1/flows") == 0 ? flows_refusal(a, req) : -1;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		httpd_text(resp, 405, "method not allowed\n");
		return;
	}
	pthread_mutex_lock(&a->lock);
	if (strcmp(path, "/metrics") == 0) {
		if (serve_metrics(a, &resp->body, &resp->len) == 0) {
			resp->status = 200;
			resp->content_type = EXPO_CONTENT_TYPE;
		}
	} else if (strcmp(path, "/healthz") == 0) {
		if (a->ready)
			httpd_text(resp, 200, "ok\n");
		else
			httpd_text(resp, 503, "starting\n");
	} else if (strcmp(path, "/v1/flows") == 0 && refusal >= 0) {
		a->flows_refused[refusal]++;
		if (refusal == 0)
			httpd_text(resp, 401, "/v1/flows needs the agent's bearer token\n");
		else
			httpd_text(resp, 403,
				   "/v1/flows: only from this host when the agent has no "
				   "--token-file\n");
	} else if (strcmp(path, "/v1/flows") == 0) {
		resp->status = 200;
		resp->content_type = "application/json";
		resp->body = strdup(a->flows_json ? a->flows_json : "{\"flows\":[]}");
		resp->len = resp->body ? strlen(resp->body) : 0;
	}
	pthread_mutex_unlock(&a->lock);
}
