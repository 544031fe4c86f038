// Checks the flow map as grafana/render/render.mjs drew it (result.json: what the Node Graph
// panel read from its frames, and the nodes, edges and rings drawn in the page) against
//  - the demo's traffic plan (scripts/demo.sh), for who calls whom: one node per workload,
//    named namespace/workload, an edge per caller -> callee in that direction, none back;
//  - the demo client's mix, for the error ring: web answers 1 in 24 requests 500, the api 1 in 22;
//  - PromQL written here, not the dashboard's: plain label selectors per pair at the same
//    evaluation time, for every node's and edge's stats, to the last digit the panel prints.
// usage: node tests/grafana/flowmap.mjs PROMETHEUS_URL RESULT.json TIME RATE_INTERVAL [EXTRA]
//        EXTRA: the demo's DEMO_EXTRA_WORKLOADS (svc-I in team-<I mod 5>, calling svc-(I+5))
import { readFileSync } from "node:fs";
import { promQuery } from "../../grafana/render/promql.mjs";

const [url, resultFile, time, rate, extraArg] = process.argv.slice(2);
const EXTRA = Number(extraArg ?? 0);
const result = JSON.parse(readFileSync(resultFile, "utf8"));
let fails = 0;
let oks = 0;
const ok = (m) => (oks++, console.log(`ok   ${m}`));
const bad = (m) => (fails++, console.log(`FAIL ${m}`));
const check = (cond, m) => (cond ? ok(m) : bad(m));

const dash = result.dashboards["flowlens-flow-map"];
const mapOf = (re) => {
  const id = Object.keys(dash.panels).find((k) => dash.panels[k].type === "nodeGraph" && re.test(dash.panels[k].title));
  const panel = dash.panels[id];
  if (!panel || panel.error || !panel.graph) {
    bad(`flow map ${re}: the panel failed: ${panel?.error}`);
    process.exit(1);
  }
  return { ...panel.graph, drawn: result.drawn.find((d) => d.uid === "flowlens-flow-map" && d.id === id) };
};
const workloadMap = mapOf(/workloads/);
const namespaceMap = mapOf(/^Namespaces/);
const { nodes, edges, drawn } = workloadMap;

// Readable as drawn, however many workloads: no two nodes or titles on top of each other,
// titles at least 8 px high on the page.
const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
for (const [what, map] of [["workloads", workloadMap], ["namespaces", namespaceMap]]) {
  const ns = map.drawn.nodes;
  let clash = null;
  for (let i = 0; i < ns.length && !clash; i++) {
    for (let j = i + 1; j < ns.length && !clash; j++) {
      if (overlap(ns[i].circle, ns[j].circle) || overlap(ns[i].label, ns[j].label) || overlap(ns[i].circle, ns[j].label) || overlap(ns[i].label, ns[j].circle)) clash = [ns[i].id, ns[j].id];
    }
  }
  // An edge drawn through a third node reads as two edges: none may.
  const through = [];
  for (const e of map.drawn.edges) {
    if (e.source === e.target) continue;
    for (const n of ns) {
      if (n.id === e.source || n.id === e.target) continue;
      const r = n.circle.w / 2;
      const [cx, cy] = [n.circle.x + r, n.circle.y + r];
      if (e.points.some(([x, y]) => Math.hypot(x - cx, y - cy) < r)) through.push(`${e.id} through ${n.id}`);
    }
  }
  check(through.length === 0, `${what} map: no edge drawn through another node${through.length ? `: ${through.slice(0, 3).join("; ")}` : ""}`);
  const small = Math.min(...ns.map((n) => n.label.h));
  check(!clash && small >= 8, `${what} map readable: ${ns.length} nodes, none on another${clash ? ` (${clash.join(" and ")} are)` : ""}, titles >= ${small.toFixed(1)} px high`);
}

// Who calls whom in the demo (scripts/demo.sh's traffic loop; its pods a = client, c = web).
const WORKLOADS = ["shop/client", "shop/web", "shop/api", "shop/db", "shop/cart", "kube-system/coredns", "world"];
const CALLS = [
  ["shop/client", "shop/web"], // the front page, /blob and /api/... through web
  ["shop/web", "shop/api"],
  ["shop/api", "shop/db"], // Redis
  ["shop/client", "shop/cart"], // gRPC
  ["shop/client", "kube-system/coredns"], // dig
  ["shop/client", "shop/api"], // a connection to a closed port
  ["shop/web", "world"], // the internet host
];
// The client's mix: 1 of web's 24 requests a round is answered 500 (by the api, passed on),
// 1 of the api's 22; cart answers gRPC statuses (no HTTP 5xx).
const FIVE_XX = { "shop/web": 1 / 24, "shop/api": 1 / 22, "shop/cart": 0 };

const TEAMS = ["team-a", "team-b", "team-c", "team-d", "team-e"];
const svc = (i) => `${TEAMS[i % 5]}/svc-${String(i).padStart(2, "0")}`;
for (let i = 1; i <= EXTRA; i++) {
  WORKLOADS.push(svc(i));
  if (i + 5 <= EXTRA) CALLS.push([svc(i), svc(i + 5)]);
  if (i % 5 === 0 && i + 1 <= EXTRA) CALLS.push([svc(i), svc(i + 1)]);
}
for (const w of WORKLOADS) {
  const found = nodes.filter((n) => n.id === w);
  const [ns, name] = w.includes("/") ? w.split("/") : ["", w];
  const shown = drawn?.nodes.find((n) => n.id === w);
  check(
    found.length === 1 && found[0].title === name && found[0].subTitle === ns && shown?.title === name,
    `node ${w}: one node, titled "${name}"${ns ? ` over namespace "${ns}"` : ""} (drawn: "${shown?.title ?? "-"}")`,
  );
}
check(new Set(nodes.map((n) => n.id)).size === nodes.length, `no workload twice among the ${nodes.length} nodes`);
for (const [s, t] of CALLS) {
  const e = edges.filter((x) => x.source === s && x.target === t);
  const line = drawn?.edges.find((x) => x.source === s && x.target === t);
  // Direction as drawn: the line ends (where its arrowhead is) at the callee's circle.
  const centre = (id) => ((c) => [c.x + c.w / 2, c.y + c.h / 2])(drawn.nodes.find((n) => n.id === id).circle);
  const dist = (p, c) => Math.hypot(p[0] - c[0], p[1] - c[1]);
  const ends = line && dist(line.points.at(-1), centre(t)) < dist(line.points.at(-1), centre(s)) && dist(line.points[0], centre(s)) < dist(line.points[0], centre(t));
  check(e.length === 1 && line?.arrow === "end" && ends, `edge ${s} -> ${t}: one, drawn from ${s} with its arrow at ${t}`);
  if (!CALLS.some(([a, b]) => a === t && b === s)) {
    check(!edges.some((x) => x.source === t && x.target === s), `no edge ${t} -> ${s} (callees do not call back)`);
  }
}

// Independent PromQL: the pair's own label selectors.
const sel = (side, w) => {
  const [ns, name] = w.includes("/") ? w.split("/") : ["", w];
  return `${side}_namespace="${ns}",${side}_workload="${name}"`;
};
const scalar = async (expr) => {
  const r = (await promQuery(url, expr, { time })).result;
  return r.length ? Number(r[0].value[1]) : null;
};
const same = (a, b) => (a === null || b === null ? a === b : Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)));
const text = (v, unit) => (v === null ? "" : `${v.toFixed(2)} ${unit}`);

for (const e of edges) {
  const pair = `${sel("source", e.source)},${sel("destination", e.target)}`;
  const bytes = await scalar(`sum(rate(flowlens_flow_bytes_total{reporter=~"client|node",${pair}}[${rate}]))`);
  const reqs = await scalar(`sum(rate(flowlens_http_requests_total{reporter="client",${pair}}[${rate}]))`);
  const p99 = await scalar(`histogram_quantile(0.99, sum by (le) (rate(flowlens_http_request_duration_seconds_bucket{reporter="client",${pair}}[${rate}])))`);
  const kB = bytes === null ? null : bytes / 1000;
  check(
    same(e.mainStatValue, kB) && e.mainStat === text(kB, "kB/s") && same(e.secondaryStatValue, reqs) && e.secondaryStat === text(reqs, "req/s"),
    `edge ${e.id}: "${e.mainStat}" "${e.secondaryStat}" = PromQL ${kB} kB/s, ${reqs} req/s`,
  );
  const d = e.details["p99 latency"] ?? null;
  check(same(Number.isNaN(d) ? null : d, p99 === null || Number.isNaN(p99) ? null : p99), `edge ${e.id}: p99 ${d} s = PromQL ${p99}`);
}
for (const n of nodes) {
  const recv = await scalar(`sum(rate(flowlens_flow_bytes_total{reporter=~"client|node",${sel("destination", n.id)}}[${rate}]))`);
  const sent = await scalar(`sum(rate(flowlens_flow_bytes_total{reporter=~"client|node",${sel("source", n.id)}}[${rate}]))`);
  const reqs = await scalar(`sum(rate(flowlens_http_requests_total{reporter="client",${sel("destination", n.id)}}[${rate}]))`);
  const errs = await scalar(`sum(rate(flowlens_http_requests_total{reporter="client",status_class="5xx",${sel("destination", n.id)}}[${rate}]))`);
  const kB = (recv ?? sent) === null ? null : (recv ?? sent) / 1000;
  check(
    same(n.mainStatValue, kB) && n.mainStat === text(kB, "kB/s") && same(n.secondaryStatValue, reqs) && n.secondaryStat === text(reqs, "req/s"),
    `node ${n.id}: "${n.mainStat}" "${n.secondaryStat}" = PromQL ${kB} kB/s ${recv === null ? "sent" : "received"}, ${reqs} req/s`,
  );
  const share = reqs ? (errs ?? 0) / reqs : 0;
  const arc = Object.fromEntries(n.arcs.map((a) => [a.field, a.value]));
  check(
    same(arc.arc__errors, share) && same(arc.arc__ok, reqs ? 1 - share : 0),
    `node ${n.id}: ring 5xx ${arc.arc__errors?.toFixed(4)}, rest ${arc.arc__ok?.toFixed(4)} = PromQL ${share.toFixed(4)}${reqs ? "" : " (no HTTP: grey)"}`,
  );
  const rings = drawn?.nodes.find((x) => x.id === n.id)?.rings ?? [];
  const want = !reqs ? ["none"] : share === 0 ? ["arc__ok"] : ["arc__errors", "arc__ok"];
  check(JSON.stringify([...rings].sort()) === JSON.stringify(want), `node ${n.id}: drawn ring ${rings.join("+")}`);
}
for (const [w, mix] of Object.entries(FIVE_XX)) {
  const n = nodes.find((x) => x.id === w);
  const v = n?.arcs.find((a) => a.field === "arc__errors")?.value;
  check(v !== undefined && Math.abs(v - mix) <= 0.02, `${w}: red share of the ring ${v?.toFixed(4)} = the client's mix ${mix.toFixed(4)} +- 0.02`);
}
// The namespace map: a node per namespace with traffic, edges between them, stats = PromQL.
const namespaces = new Set();
for (const side of ["source", "destination"]) {
  for (const r of (await promQuery(url, `count by (${side}_namespace) (flowlens_flow_bytes_total{${side}_namespace!=""})`, { time })).result) {
    namespaces.add(r.metric[`${side}_namespace`]);
  }
}
const nsSel = (side, id) => (namespaces.has(id) ? `${side}_namespace="${id}"` : `${side}_namespace="",${side}_workload="${id}"`);
for (const want of ["shop", "kube-system", "world"]) {
  const n = namespaceMap.nodes.filter((x) => x.id === want);
  check(n.length === 1 && n[0].title === want, `namespace map: one node "${want}"`);
}
for (const [s, t] of [["shop", "kube-system"], ["shop", "world"], ["shop", "shop"]]) {
  check(namespaceMap.edges.some((e) => e.source === s && e.target === t), `namespace map: edge ${s} -> ${t}`);
}
for (const e of namespaceMap.edges) {
  const pair = `${nsSel("source", e.source)},${nsSel("destination", e.target)}`;
  const bytes = await scalar(`sum(rate(flowlens_flow_bytes_total{reporter=~"client|node",${pair}}[${rate}]))`);
  const reqs = await scalar(`sum(rate(flowlens_http_requests_total{reporter="client",${pair}}[${rate}]))`);
  const kB = bytes === null ? null : bytes / 1000;
  check(same(e.mainStatValue, kB) && same(e.secondaryStatValue, reqs), `namespace map: edge ${e.id}: "${e.mainStat}" "${e.secondaryStat}" = PromQL ${kB} kB/s, ${reqs} req/s`);
}
console.log(`flow map: ${oks} ok, ${fails} failed`);
process.exit(fails ? 1 : 0);
