// Writes flowlens's Grafana dashboards (grafana/dashboards/*.json). Generated so that the
// variables, the label filter and the panel conventions are written once; the JSON files are
// committed (Grafana, the ConfigMaps and the Helm chart read them) and tests/grafana/run.sh
// checks they are current, type-check against @grafana/schema and that every query returns
// data from the demo's Prometheus.   Run: node grafana/generate.mjs  (or make dashboards)
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const outDir = join(dirname(fileURLToPath(import.meta.url)), "dashboards");
const DS = { type: "prometheus", uid: "${datasource}" };

// Label filters. Dashboards show the client's view (reporter="client") of requests: that is
// what the callers experienced, and what the SLO rules use.
const CL = 'cluster=~"$cluster"';
const DST = `${CL},destination_namespace=~"$namespace",destination_workload=~"$workload"`;
const CLIENT = `${DST},reporter="client"`;

// A multi-valued query variable whose "All" is the regex .* (series without the label match).
const queryVar = (name, label, query) => ({
    name,
    label,
    type: "query",
    datasource: DS,
    query: { query, refId: `var-${name}` },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: ".*",
    current: { text: "All", value: "$__all" },
    sort: 1,
});

// The variables every dashboard has; `namespace` and `workload` are the destination's.
function variables({ namespaceQuery, workloadQuery } = {}) {
  const q = queryVar;
  return {
    list: [
      {
        name: "datasource",
        label: "Data source",
        type: "datasource",
        query: "prometheus",
        current: { text: "default", value: "default" },
        refresh: 1,
      },
      q("cluster", "Cluster", "label_values(flowlens_flow_bytes_total, cluster)"),
      q(
        "namespace",
        "Namespace",
        namespaceQuery ?? `label_values(flowlens_flow_bytes_total{${CL}}, destination_namespace)`,
      ),
      q(
        "workload",
        "Workload",
        workloadQuery ??
          `label_values(flowlens_flow_bytes_total{${CL},destination_namespace=~"$namespace"}, destination_workload)`,
      ),
    ],
  };
}

let nextId = 1;
function target(expr, refId, opts = {}) {
  return { datasource: DS, expr, refId, legendFormat: opts.legend ?? "__auto", ...opts.extra };
}
function timeseries(title, gridPos, targets, unit, description, opts = {}) {
  return {
    id: nextId++,
    type: "timeseries",
    title,
    description,
    datasource: DS,
    gridPos,
    targets: targets.map(([expr, legend], i) =>
      target(expr, String.fromCharCode(65 + i), { legend }),
    ),
    fieldConfig: {
      defaults: {
        unit,
        min: opts.min ?? 0,
        custom: { drawStyle: "line", lineWidth: 1, fillOpacity: opts.fill ?? 10, showPoints: "never" },
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: "table", placement: "bottom", showLegend: true, calcs: ["mean", "max"] },
      tooltip: { mode: "multi", sort: "desc" },
    },
  };
}
function stat(title, gridPos, expr, unit, description, thresholds) {
  return {
    id: nextId++,
    type: "stat",
    title,
    description,
    datasource: DS,
    gridPos,
    targets: [target(expr, "A", { legend: "{{slo}}" })],
    fieldConfig: {
      defaults: {
        unit,
        thresholds: { mode: "absolute", steps: thresholds },
        color: { mode: "thresholds" },
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      colorMode: "background",
      graphMode: "area",
      textMode: "value_and_name",
      justifyMode: "auto",
      orientation: "auto",
    },
  };
}
// units: { "column as renamed": unit }; order: columns by name, in this order, first.
function table(title, gridPos, queries, description, renames, units = {}, order = []) {
  return {
    id: nextId++,
    type: "table",
    title,
    description,
    datasource: DS,
    gridPos,
    targets: queries.map(([expr, refId]) =>
      target(expr, refId, { legend: "", extra: { instant: true, range: false, format: "table" } }),
    ),
    transformations: [
      { id: "merge", options: {} },
      {
        id: "organize",
        options: { excludeByName: { Time: true }, renameByName: renames, indexByName: Object.fromEntries(order.map((c, i) => [c, i])) },
      },
    ],
    fieldConfig: {
      defaults: {},
      overrides: Object.entries(units).map(([name, unit]) => ({ matcher: { id: "byName", options: name }, properties: [{ id: "unit", value: unit }] })),
    },
    options: { showHeader: true, cellHeight: "sm", footer: { show: false, reducer: ["sum"] } },
  };
}
function row(title, y) {
  return { id: nextId++, type: "row", title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] };
}
function dashboard(uid, title, description, panels, templating, tags = []) {
  return {
    uid,
    title,
    description,
    tags: ["flowlens", ...tags],
    timezone: "browser",
    editable: true,
    graphTooltip: 1,
    refresh: "30s",
    schemaVersion: 39,
    version: 1,
    time: { from: "now-1h", to: "now" },
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: "",
    links: [
      { title: "flowlens", type: "dashboards", tags: ["flowlens"], asDropdown: true, icon: "external link", includeVars: true, keepTime: true, targetBlank: false, tooltip: "", url: "" },
    ],
    annotations: { list: [] },
    templating,
    panels,
  };
}
const W = (x, y, w, h) => ({ x, y, w, h });

// Workloads as "namespace/workload" ids, so one name means one node on the map.
// Addresses without a namespace (world, host, nodes) are named by the workload alone.
const nsJoin = (inner, dst, side) =>
  `label_replace(label_join(${inner}, "${dst}", "/", "${side}_namespace", "${side}_workload"), "${dst}", "$1", "${dst}", "/(.*)")`;
const idOf = (side, inner) => nsJoin(inner, "id", side);
const bySide = (side) => `${side}_namespace, ${side}_workload`;
// ---- Flow map -------------------------------------------------------------------------
// Grafana's Node Graph panel reads its fields by *name* (id, title, subtitle, mainstat,
// secondarystat, arc__*, detail__*; source and target on edges) and prints a stat as
// value.toFixed(2) + " " + unit, the unit id as it is. Renaming with "organize" only sets a
// display name, which the panel ignores (tests/e2e/demo.sh renders the panel and found the
// map empty); so each stat gets its field name from a calculateField alias, and titles come
// from the queries' labels. Stats are in units that read well printed raw: kB/s, req/s.
// Map levels: a node per workload (id namespace/workload, title the workload, the namespace
// under it) or per namespace (endpoints without one, world, nodes, by their name).
const LEVELS = {
  workload: {
    key: (side, inner, dst) => nsJoin(inner, dst, side),
    titles: (side, inner) =>
      `label_replace(label_replace(${inner}, "title", "$1", "${side}_workload", "(.*)"), "subtitle", "$1", "${side}_namespace", "(.*)")`,
  },
  namespace: {
    key: (side, inner, dst) =>
      `label_replace(label_replace(${inner}, "${dst}", "$1", "${side}_workload", "(.*)"), "${dst}", "$1", "${side}_namespace", "(.+)")`,
    titles: (side, inner) => `label_replace(${inner}, "title", "$1", "id", "(.*)")`,
  },
};
function flowMapQueries(level) {
  const { key, titles } = LEVELS[level];
  const flowF = `${CL},reporter=~"client|node",destination_namespace=~"$namespace"`;
  const reqF = `${CL},reporter="client",destination_namespace=~"$namespace"`;
  const rate = (m, f) => `rate(${m}{${f}}[$__rate_interval])`;
  const node = (side, expr, withTitles = false) => {
    const inner = key(side, `sum by (${bySide(side)}) (${expr})`, "id");
    return withTitles ? `sum by (id, title, subtitle) (${titles(side, inner)})` : `sum by (id) (${inner})`;
  };
  const edge = (expr, by = "") =>
    `label_join(${key("destination", key("source", `sum by (${bySide("source")}, ${bySide("destination")}${by}) (${expr})`, "source"), "target")}, "id", " -> ", "source", "target")`;
  const http = node("destination", rate("flowlens_http_requests_total", reqF));
  // 0 (not nothing) where HTTP answered without a 5xx, so the ring is drawn all green.
  const share5xx = `(\n${node("destination", rate("flowlens_http_requests_total", `${reqF},status_class="5xx"`))}\n  or\n${http} * 0\n)\n  /\n${http}`;
  // Every node of the map, 0: without HTTP both arcs are 0 and the panel draws a grey ring.
  const zero = `(\n${node("destination", rate("flowlens_flow_bytes_total", flowF))}\n  or\n${node("source", rate("flowlens_flow_bytes_total", flowF))}\n) * 0`;
  return {
    // Every workload that sent or received bytes; mainstat: kB/s received (sent, for pure clients).
    nodes: `(\n${node("destination", rate("flowlens_flow_bytes_total", flowF), true)}\n  or\n${node("source", rate("flowlens_flow_bytes_total", flowF), true)}\n) / 1000`,
    nodes_requests: http,
    nodes_errors: `(\n${share5xx}\n)\n  or\n${zero}`,
    nodes_ok: `(\n1 - (\n${share5xx}\n)\n)\n  or\n${zero}`,
    edges: `sum by (id, source, target) (${edge(rate("flowlens_flow_bytes_total", flowF))}) / 1000`,
    edges_requests: `sum by (id) (${edge(rate("flowlens_http_requests_total", reqF))})`,
    edges_p99: `histogram_quantile(0.99, sum by (id, le) (${edge(rate("flowlens_http_request_duration_seconds_bucket", reqF), ", le")}))`,
  };
}
// The Node Graph field each query's value becomes.
const FLOW_MAP_FIELDS = {
  nodes: "mainstat",
  nodes_requests: "secondarystat",
  nodes_errors: "arc__errors",
  nodes_ok: "arc__ok",
  edges: "mainstat",
  edges_requests: "secondarystat",
  edges_p99: "detail__p99_latency_seconds",
};

function nodeGraphPanel(level, title, description, gridPos) {
  const q = flowMapQueries(level);
  const instant = (expr, refId) =>
    target(expr, refId, { legend: "", extra: { instant: true, range: false, format: "table" } });
  const named = Object.entries(FLOW_MAP_FIELDS).map(([refId, field]) => ({
    id: "calculateField",
    filter: { id: "byRefId", options: `/^${refId}$/` },
    options: {
      mode: "binary",
      alias: field,
      binary: { left: { matcher: { id: "byName", options: `Value #${refId}` } }, operator: "*", right: { fixed: "1" } },
      replaceFields: false,
    },
  }));
  return {
    id: nextId++,
    type: "nodeGraph",
    title,
    description,
    datasource: DS,
    gridPos,
    targets: Object.entries(q).map(([refId, expr]) => instant(expr, refId)),
    transformations: [
      ...named,
      { id: "joinByField", filter: { id: "byRefId", options: "/^nodes/" }, options: { byField: "id", mode: "outer" } },
      { id: "joinByField", filter: { id: "byRefId", options: "/^edges/" }, options: { byField: "id", mode: "outer" } },
      {
        id: "organize",
        options: {
          excludeByName: Object.fromEntries([
            ...["Time", "Time 1", "Time 2", "Time 3", "Time 4"].map((t) => [t, true]),
            ...Object.keys(FLOW_MAP_FIELDS).map((r) => [`Value #${r}`, true]),
          ]),
        },
      },
    ],
    fieldConfig: {
      defaults: {},
      overrides: [
        { matcher: { id: "byName", options: "arc__errors" }, properties: [{ id: "color", value: { mode: "fixed", fixedColor: "red" } }, { id: "displayName", value: "5xx share" }] },
        { matcher: { id: "byName", options: "arc__ok" }, properties: [{ id: "color", value: { mode: "fixed", fixedColor: "green" } }, { id: "displayName", value: "other answers" }] },
        { matcher: { id: "byName", options: "detail__p99_latency_seconds" }, properties: [{ id: "unit", value: "s" }, { id: "displayName", value: "p99 latency" }] },
      ],
    },
    options: {
      nodes: {
        mainStatUnit: "kB/s",
        secondaryStatUnit: "req/s",
        arcs: [
          { field: "arc__errors", color: "red" },
          { field: "arc__ok", color: "green" },
        ],
      },
      edges: { mainStatUnit: "kB/s", secondaryStatUnit: "req/s" },
    },
  };
}

function flowMapDashboard() {
  nextId = 1;
  const stats =
    "inside: kB/s received and HTTP requests/s received, ring: share of 5xx answers (red) and of the rest (green), grey without HTTP. Edges (caller -> callee): kB/s, HTTP requests/s; p99 request latency in the edge's details. Client side, instant queries over the dashboard's rate interval.";
  const nodeGraph = nodeGraphPanel(
    "workload",
    "Flow map: workloads and who talks to whom",
    `Nodes: workloads (title; namespace under it; world, host, remote-node for the rest), ${stats} Many workloads: the namespace map below, or pick namespaces with the variable above.`,
    W(0, 0, 24, 18),
  );
  const namespaces = nodeGraphPanel(
    "namespace",
    "Namespaces: who talks to whom",
    `Nodes: namespaces (world, host, nodes by their names), ${stats} Readable at any number of workloads.`,
    W(0, 18, 10, 12),
  );
  const reqF = `${CL},reporter="client",destination_namespace=~"$namespace",destination_workload=~"$workload"`;
  const by = "source_namespace, source_workload, destination_namespace, destination_workload, destination_service";
  const edgesTable = table(
    "Service map: who calls whom (client side)",
    W(10, 18, 14, 12),
    [
      [`sum by (${by}) (rate(flowlens_flow_bytes_total{${CL},reporter=~"client|node",destination_namespace=~"$namespace",destination_workload=~"$workload"}[$__rate_interval]))`, "bytes"],
      [`sum by (${by}) (rate(flowlens_http_requests_total{${reqF}}[$__rate_interval]))`, "requests"],
      [`(sum by (${by}) (rate(flowlens_http_requests_total{${reqF},status_class="5xx"}[$__rate_interval])) or sum by (${by}) (rate(flowlens_http_requests_total{${reqF}}[$__rate_interval])) * 0) / sum by (${by}) (rate(flowlens_http_requests_total{${reqF}}[$__rate_interval]))`, "errors"],
      [`histogram_quantile(0.99, sum by (${by}, le) (rate(flowlens_http_request_duration_seconds_bucket{${reqF}}[$__rate_interval])))`, "p99"],
    ],
    "One row per caller and callee: bytes/s, HTTP requests/s, share of 5xx, p99 latency. The same instant queries as the flow map's edges.",
    {
      "Value #bytes": "bytes/s",
      "Value #requests": "requests/s",
      "Value #errors": "5xx share",
      "Value #p99": "p99 latency",
      source_namespace: "caller namespace",
      source_workload: "caller",
      destination_namespace: "callee namespace",
      destination_workload: "callee",
      destination_service: "service",
    },
    { "bytes/s": "Bps", "requests/s": "reqps", "5xx share": "percentunit", "p99 latency": "s" },
    ["source_namespace", "source_workload", "destination_namespace", "destination_workload", "destination_service"],
  );
  const zones = timeseries(
    "Cross-zone bytes/s (client side)",
    W(0, 30, 24, 8),
    [[`sum by (source_zone, destination_zone) (rate(flowlens_zone_bytes_total{${CL},reporter="client",source_zone!="",destination_zone!=""}[$__rate_interval]))`, "{{source_zone}} -> {{destination_zone}}"]],
    "Bps",
    "Bytes between availability zones: what the AWS inter-AZ data transfer bill counts.",
  );
  return dashboard(
    "flowlens-flow-map",
    "flowlens / Flow map",
    "Workloads as nodes and their traffic as edges, from flowlens's eBPF flows and HTTP signals.",
    [nodeGraph, namespaces, edgesTable, zones],
    variables(),
    ["network"],
  );
}

// The gRPC statuses counted as errors by default (slo/slo.h SLO_GRPC_ERRORS_DEFAULT).
const GRPC_ERRORS = "UNKNOWN|DEADLINE_EXCEEDED|UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS";

// ---- Service RED ------------------------------------------------------------------------
// Requests to an address without a Service (world, a pod by IP) carry the destination's
// workload as their service, so that a legend does not read "/".
const named = (e) =>
  `label_replace(label_join(${e}, "service_or_workload", ";", "destination_service", "destination_workload"), "destination_service", "$1", "service_or_workload", ";(.*)")`;
function servicesDashboard() {
  nextId = 1;
  const svc = "destination_namespace, destination_service";
  const p = [];
  p.push(row("HTTP: requests, errors, duration (client side, by destination service)", 0));
  p.push(timeseries("Requests/s", W(0, 1, 8, 8), [[`sum by (${svc}) (${named(`rate(flowlens_http_requests_total{${CLIENT}}[$__rate_interval])`)})`, "{{destination_namespace}}/{{destination_service}}"]], "reqps", "HTTP/1.x and HTTP/2 (gRPC included) requests answered, as the callers saw them."));
  p.push(timeseries("Error share (5xx)", W(8, 1, 8, 8), [[`sum by (${svc}) (${named(`rate(flowlens_http_requests_total{${CLIENT},status_class="5xx"}[$__rate_interval])`)}) / sum by (${svc}) (${named(`rate(flowlens_http_requests_total{${CLIENT}}[$__rate_interval])`)})`, "{{destination_namespace}}/{{destination_service}}"]], "percentunit", "Share of requests answered 5xx."));
  p.push(timeseries("Duration p50 / p90 / p99", W(16, 1, 8, 8), [0.5, 0.9, 0.99].map((q) => [`histogram_quantile(${q}, sum by (${svc}, le) (${named(`rate(flowlens_http_request_duration_seconds_bucket{${CLIENT}}[$__rate_interval])`)}))`, `p${q * 100} {{destination_service}}`]), "s", "From the request's first byte to the response's first byte, seen on the wire."));
  p.push(timeseries("Requests/s by source workload", W(0, 9, 12, 8), [[`sum by (source_namespace, source_workload, destination_service) (${named(`rate(flowlens_http_requests_total{${CLIENT}}[$__rate_interval])`)})`, "{{source_namespace}}/{{source_workload}} -> {{destination_service}}"]], "reqps", "Who sends the requests."));
  p.push(timeseries("Requests/s by status class and method", W(12, 9, 12, 8), [[`sum by (destination_service, method, status_class, http_version) (${named(`rate(flowlens_http_requests_total{${CLIENT}}[$__rate_interval])`)})`, "{{destination_service}} {{method}} {{status_class}} HTTP/{{http_version}}"]], "reqps", ""));
  p.push(row("gRPC: calls by status, errors, duration (client side, by destination service)", 17));
  p.push(timeseries("gRPC calls/s by status", W(0, 18, 8, 8), [[`sum by (${svc}, grpc_status) (rate(flowlens_grpc_requests_total{${CLIENT}}[$__rate_interval]))`, "{{destination_service}} {{grpc_status}}"]], "reqps", "gRPC calls by the grpc-status of their trailers, as the callers saw them: HTTP/2 without TLS, decoded off the wire (no proxy, any language)."));
  p.push(timeseries("gRPC error share (server-side statuses)", W(8, 18, 8, 8), [[`sum by (${svc}) (rate(flowlens_grpc_requests_total{${CLIENT},grpc_status=~"${GRPC_ERRORS}"}[$__rate_interval])) / sum by (${svc}) (rate(flowlens_grpc_requests_total{${CLIENT}}[$__rate_interval]))`, "{{destination_namespace}}/{{destination_service}}"]], "percentunit", `Share of calls that ended ${GRPC_ERRORS.split("|").join(", ")}: the statuses flowlens-slo counts as errors by default.`));
  p.push(timeseries("gRPC duration p50 / p99", W(16, 18, 8, 8), [0.5, 0.99].map((q) => [`histogram_quantile(${q}, sum by (${svc}, le) (rate(flowlens_grpc_request_duration_seconds_bucket{${CLIENT}}[$__rate_interval])))`, `p${q * 100} {{destination_service}}`]), "s", "From the request's HEADERS to the end of the response (its trailers), seen on the wire."));
  p.push(row("TCP: connections", 26));
  p.push(timeseries("Connection attempts by result", W(0, 27, 8, 8), [[`sum by (destination_service, destination_workload, result) (rate(flowlens_tcp_connections_total{${CLIENT}}[$__rate_interval]))`, "{{destination_workload}} {{result}}"]], "cps", "established, refused (RST to the SYN), timeout (no answer), reset (established, then reset)."));
  p.push(timeseries("Connect latency p50 / p99", W(8, 27, 8, 8), [0.5, 0.99].map((q) => [`histogram_quantile(${q}, sum by (destination_workload, le) (rate(flowlens_tcp_connect_duration_seconds_bucket{${CLIENT}}[$__rate_interval])))`, `p${q * 100} {{destination_workload}}`]), "s", "SYN to SYN-ACK as the client side saw it."));
  p.push(timeseries("Retransmissions and drops", W(16, 27, 8, 8), [
    [`sum by (destination_workload) (rate(flowlens_tcp_retransmits_total{${DST}}[$__rate_interval]))`, "retransmits to {{destination_workload}}"],
    [`sum by (reason) (rate(flowlens_drops_total{${CL}}[$__rate_interval]))`, "drops: {{reason}}"],
  ], "pps", "TCP retransmissions (tcp_retransmit_skb) and packets the kernel dropped, by reason (kfree_skb)."));
  p.push(row("Bytes", 35));
  p.push(timeseries("Bytes/s by destination service", W(0, 36, 24, 8), [[`sum by (destination_namespace, destination_workload, destination_service, protocol) (rate(flowlens_flow_bytes_total{${DST},reporter=~"client|node"}[$__rate_interval]))`, "{{destination_namespace}}/{{destination_workload}} {{destination_service}} {{protocol}}"]], "Bps", "Both directions of every flow, counted once (client side, or the node for traffic without a pod client)."));
  p.push(row("DNS", 44));
  p.push(timeseries("Queries/s by rcode", W(0, 45, 8, 8), [[`sum by (destination_service, rcode) (rate(flowlens_dns_requests_total{${CL},reporter="client"}[$__rate_interval]))`, "{{destination_service}} {{rcode}}"]], "reqps", "timeout: no answer within the agent's --dns-timeout."));
  p.push(timeseries("Queries/s by type", W(8, 45, 8, 8), [[`sum by (qtype) (rate(flowlens_dns_requests_total{${CL},reporter="client"}[$__rate_interval]))`, "{{qtype}}"]], "reqps", ""));
  p.push(row("Node network limits (EKS)", 53));
  p.push(timeseries("Packets over an EC2 network allowance", W(0, 54, 24, 8), [[`sum by (node, interface, stat) (rate(flowlens_node_ethtool_stat_total{stat=~".+_allowance_exceeded"}[$__rate_interval]))`, "{{node}} {{interface}} {{stat}}"]], "pps", "Packets the ENA driver queued or dropped because the instance exceeded its bandwidth (bw_in/bw_out), packet rate (pps), conntrack or link-local allowance (DNS to the VPC resolver: 1024 packets/s per ENI). They explain DNS timeouts and retransmissions that no flow shows. Empty off AWS: no ENA driver."));
  p.push(timeseries("DNS latency p50 / p99", W(16, 45, 8, 8), [0.5, 0.99].map((q) => [`histogram_quantile(${q}, sum by (destination_service, le) (rate(flowlens_dns_request_duration_seconds_bucket{${CL},reporter="client"}[$__rate_interval])))`, `p${q * 100} {{destination_service}}`]), "s", ""));
  return dashboard("flowlens-services", "flowlens / Services (RED)", "Requests, errors and duration per destination service, TCP connections and DNS, from flowlens's eBPF signals (no proxy).", p, variables(), ["red"]);
}

// ---- SLOs -------------------------------------------------------------------------------
function sloDashboard() {
  nextId = 1;
  const S = 'slo_namespace=~"$namespace",slo_target=~"$workload",slo=~"$slo"';
  const p = [];
  // One row per SLO (the demo has 10: as stats side by side their names could not be read).
  p.push(
    table(
      "SLOs: objective, SLI and error budget",
      W(0, 0, 16, 10),
      [
        // The same labels on the three (no __name__ on one only), so that merge makes one row per SLO.
        [`sum by (slo, slo_namespace, slo_target) (flowlens_slo:objective:ratio{${S}})`, "objective"],
        [`sum by (slo, slo_namespace, slo_target) (1 - flowlens_slo:sli_error:ratio_rate1h{${S}})`, "sli"],
        [`sum by (slo, slo_namespace, slo_target) (flowlens_slo:period_error_budget_remaining:ratio{${S}})`, "budget"],
      ],
      "Objective: what the SLO file promises. SLI: 1 - the error ratio over the last hour. Error budget remaining: 1 - (errors in the period / errors the objective allows); below 0 the SLO is broken.",
      { "Value #objective": "objective", "Value #sli": "SLI (1h)", "Value #budget": "error budget left", slo_namespace: "namespace", slo_target: "for" },
      { objective: "percentunit", "SLI (1h)": "percentunit", "error budget left": "percentunit" },
      ["slo", "slo_namespace", "slo_target", "Value #objective", "Value #sli", "Value #budget"],
    ),
  );
  const under = stat("SLOs under their objective (1h)", W(16, 0, 8, 10), `count((1 - flowlens_slo:sli_error:ratio_rate1h{${S}}) < on (slo) flowlens_slo:objective:ratio{${S}}) or vector(0)`, "none", "SLOs whose last hour was worse than the objective.", [{ color: "green", value: null }, { color: "red", value: 1 }]);
  under.options.textMode = "value";
  p.push(under);
  p.push(timeseries("Burn rate by window", W(0, 10, 12, 9), ["5m", "30m", "1h", "6h", "1d", "3d"].map((w) => [`flowlens_slo:sli_error:ratio_rate${w}{${S}} / on (slo) group_left () flowlens_slo:error_budget:ratio{${S}}`, `{{slo}} ${w}`]), "x", "How fast the error budget burns: 1 spends it exactly over the period. Pages at 14.4 (1h and 5m) and 6 (6h and 30m), tickets at 3 (1d and 2h) and 1 (3d and 6h)."));
  p.push(timeseries("Error ratio (SLI errors)", W(12, 10, 12, 9), [[`flowlens_slo:sli_error:ratio_rate5m{${S}}`, "{{slo}} 5m"], [`flowlens_slo:sli_error:ratio_rate1h{${S}}`, "{{slo}} 1h"]], "percentunit", "Bad events / all events, client side."));
  p.push(timeseries("Error budget remaining over time", W(0, 19, 12, 8), [[`flowlens_slo:period_error_budget_remaining:ratio{${S}}`, "{{slo}}"]], "percentunit", "", { min: null }));
  p.push({
    id: nextId++,
    type: "table",
    title: "Burn-rate alerts (pending and firing)",
    description: "FlowlensSLOErrorBudgetBurn alerts from the generated rules: severity page or ticket.",
    datasource: DS,
    gridPos: W(12, 19, 12, 8),
    targets: [target(`ALERTS{alertname="FlowlensSLOErrorBudgetBurn",${S}}`, "A", { legend: "", extra: { instant: true, range: false, format: "table" } })],
    transformations: [{ id: "organize", options: { excludeByName: { Time: true, __name__: true, Value: true, alertname: true } } }],
    fieldConfig: { defaults: {}, overrides: [] },
    options: { showHeader: true, cellHeight: "sm", footer: { show: false, reducer: ["sum"] } },
  });
  // namespace and workload select the SLOs' own labels: the Service or workload an SLO is for.
  const vars = variables({
    namespaceQuery: "label_values(flowlens_slo:objective:ratio, slo_namespace)",
    workloadQuery: 'label_values(flowlens_slo:objective:ratio{slo_namespace=~"$namespace"}, slo_target)',
  });
  vars.list.push(
    queryVar("slo", "SLO", 'label_values(flowlens_slo:objective:ratio{slo_namespace=~"$namespace",slo_target=~"$workload"}, slo)'),
  );
  return dashboard("flowlens-slos", "flowlens / SLOs", "SLIs, error budgets and burn rates from the rules flowlens-slo generates.", p, vars, ["slo"]);
}

// ---- Agent and collector health ---------------------------------------------------------
function healthDashboard() {
  nextId = 1;
  const A = CL;
  const p = [];
  p.push(row("Agents", 0));
  p.push(timeseries("Attached interfaces per node", W(0, 1, 8, 8), [[`sum by (node, instance) (flowlens_agent_interfaces{${A}})`, "{{node}} ({{instance}})"]], "short", "Interfaces the agent's programs are attached to (pod veths and ENIs)."));
  p.push(timeseries("Flow table fill", W(8, 1, 8, 8), [[`flowlens_agent_flow_table_entries{${A}} / flowlens_agent_flow_table_capacity{${A}}`, "{{node}} ({{instance}})"]], "percentunit", "Kernel flow table entries / capacity. Full: new flows go through the overflow ring buffer.", { min: 0 }));
  p.push(timeseries("Lost events", W(16, 1, 8, 8), [
    [`sum by (node, instance, reason) (rate(flowlens_agent_datapath_events_total{${A},reason=~"table_full|ringbuf_full|samples_full|http_queue_full|h2_desync|h2_full"}[$__rate_interval]))`, "{{instance}} {{reason}}"],
    [`sum by (node, instance) (rate(flowlens_agent_overflow_dropped_packets_total{${A}}[$__rate_interval]))`, "{{instance}} overflow dropped"],
    [`sum by (node, instance, decoding) (rate(flowlens_agent_http2_requests_total{${A},decoding!="ok"}[$__rate_interval]))`, "{{instance}} HTTP/2 read without HPACK state: {{decoding}}"],
  ], "pps", "Packets or exchanges the datapath could not count, and HTTP/2 requests whose header blocks could not all be decoded (no_preface: connections older than the agent). Should be 0 once connections have turned over."));
  p.push(timeseries("Export batches by result", W(0, 9, 8, 8), [[`sum by (node, instance, result) (rate(flowlens_agent_export_batches_total{${A}}[$__rate_interval]))`, "{{instance}} {{result}}"]], "ops", "sent, rejected (by the collector), dropped (buffer full while the collector was away), encode_error."));
  p.push(timeseries("Export retries and queue", W(8, 9, 8, 8), [
    [`sum by (node, instance) (rate(flowlens_agent_export_retries_total{${A}}[$__rate_interval]))`, "{{instance}} retries/s"],
    [`sum by (node, instance) (flowlens_agent_export_queue_batches{${A}})`, "{{instance}} queued batches"],
  ], "short", ""));
  p.push(timeseries("Drain duration", W(16, 9, 8, 8), [[`max by (node, instance) (flowlens_agent_last_drain_duration_seconds{${A}})`, "{{instance}}"]], "s", "Time to read and aggregate the kernel table per interval."));
  p.push(row("Collector", 17));
  // Replicas of a shard each hold every series and get every batch: count the exporting one.
  const exporting = (m) => `(${m} and on (job, instance) flowlens_collector_ha_exporting{${A}} == 1)`;
  p.push(timeseries("Series and limit", W(0, 18, 8, 8), [
    [`sum(${exporting(`flowlens_collector_series{${A}}`)})`, "series"],
    [`max(flowlens_collector_series_limit{${A}})`, "limit"],
    [`sum(flowlens_collector_ha_exporting{${A}})`, "exporting replicas"],
  ], "short", "Label sets exported by the exporting replica of each shard; beyond the limit new ones fold into an overflow series. Exporting replicas: 1 per shard (0: no flow series)."));
  p.push(timeseries("Series overflow and expiry", W(8, 18, 8, 8), [
    [`sum(${exporting(`rate(flowlens_collector_series_overflow_total{${A}}[$__rate_interval])`)})`, "overflowed/s"],
    [`sum(${exporting(`rate(flowlens_collector_series_expired_total{${A}}[$__rate_interval])`)})`, "expired/s"],
  ], "ops", ""));
  p.push(timeseries("Batches by replica and result, agents", W(16, 18, 8, 8), [
    [`sum by (instance, result) (rate(flowlens_collector_batches_total{${A}}[$__rate_interval]))`, "{{instance}} {{result}}"],
    [`max(flowlens_collector_agents{${A}})`, "agents"],
  ], "short", "Every replica of a shard gets every batch."));
  return dashboard("flowlens-health", "flowlens / Agent and collector health", "Is flowlens itself seeing everything? Attachments, lost events, table fill, export, series.", p, variables(), ["health"]);
}

mkdirSync(outDir, { recursive: true });
for (const [name, d] of [
  ["flow-map", flowMapDashboard()],
  ["services", servicesDashboard()],
  ["slos", sloDashboard()],
  ["health", healthDashboard()],
]) {
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(d, null, 2) + "\n");
}
