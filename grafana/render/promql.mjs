// Grafana's template variables in a dashboard query, as tests and the renderer run it against
// Prometheus without Grafana: every variable takes its "All" value (.*), $__rate_interval a
// window the scrape interval fills.
export function substitute(expr, rateInterval = "30s") {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__interval", "5s")
    .replaceAll("$__range", "5m")
    .replace(/\$\{?(cluster|namespace|workload|slo)\}?/g, ".*");
}

// label_values(EXPR, LABEL) is Grafana's, not PromQL: the same question as a query.
export function variableQuery(q) {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/s.exec(q.trim());
  if (!m) return { expr: q, label: null };
  return { expr: `count by (${m[2]}) (${m[1]})`, label: m[2] };
}

// GET /api/v1/query or /api/v1/query_range; the answer's data ({resultType, result}).
export async function promQuery(url, expr, params = {}) {
  const path = params.start !== undefined ? "query_range" : "query";
  const qs = new URLSearchParams({ query: expr, ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) });
  const r = await fetch(`${url}/api/v1/${path}?${qs}`);
  const body = await r.json();
  if (body.status !== "success") throw new Error(body.error ?? `HTTP ${r.status}`);
  return body.data;
}
