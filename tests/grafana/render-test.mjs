// The renderer's own rules, on hand-made Prometheus answers (no lab): each case is a panel
// Grafana would draw in a known way, and the check is what Grafana does with it:
//  - a Node Graph whose stats were renamed with "organize" (display names only) has no stats
//    and no rings: the bug the demo's flow map had (the panel reads field names);
//  - the same frames named by calculateField aliases and titled by labels: stats printed
//    value.toFixed(2) + " " + the options' unit, arcs and titles in place;
//  - an edge to a node that is not in the nodes frame fails the panel, as Grafana's does;
//  - a transformation id Grafana does not have, an override property it does not know: errors;
//  - a time series holding NaN is drawn (NaN as gaps), its finite values counted.
// usage: node tests/grafana/render-test.mjs OUTDIR   (needs grafana/render/tools.sh, chromium)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
mkdirSync(out, { recursive: true });
const table = (refId) => ({ refId, expr: "x", instant: true, range: false, format: "table", legendFormat: "" });
const vec = (rows) => ({ resultType: "vector", result: rows.map(([metric, v]) => ({ metric, value: [1000, String(v)] })) });
const nodesAnswers = {
  nodes: vec([[{ id: "shop/web", title: "web", subtitle: "shop" }, 1.5], [{ id: "shop/api", title: "api", subtitle: "shop" }, 2.25]]),
  nodes_errors: vec([[{ id: "shop/web" }, 0.25], [{ id: "shop/api" }, 0]]),
  edges: vec([[{ id: "shop/web -> shop/api", source: "shop/web", target: "shop/api" }, 0.5]]),
};
const W = { x: 0, y: 0, w: 12, h: 10 };
const joins = [
  { id: "joinByField", filter: { id: "byRefId", options: "/^nodes/" }, options: { byField: "id", mode: "outer" } },
  { id: "joinByField", filter: { id: "byRefId", options: "/^edges/" }, options: { byField: "id", mode: "outer" } },
];
const alias = (refId, field) => ({
  id: "calculateField",
  filter: { id: "byRefId", options: `/^${refId}$/` },
  options: { mode: "binary", alias: field, binary: { left: { matcher: { id: "byName", options: `Value #${refId}` } }, operator: "*", right: { fixed: "1" } }, replaceFields: false },
});
const graphPanel = (id, title, transformations) => ({
  id,
  type: "nodeGraph",
  title,
  gridPos: W,
  targets: Object.keys(nodesAnswers).map(table),
  transformations,
  fieldConfig: { defaults: {}, overrides: [{ matcher: { id: "byName", options: "arc__errors" }, properties: [{ id: "color", value: { mode: "fixed", fixedColor: "red" } }] }] },
  options: { nodes: { mainStatUnit: "kB/s" }, edges: { mainStatUnit: "kB/s" } },
});
const panels = [
  graphPanel(1, "renamed by organize", [...joins, { id: "organize", options: { renameByName: { "Value #nodes": "mainstat", "Value #nodes_errors": "arc__errors", "Value #edges": "mainstat" } } }]),
  graphPanel(2, "named by calculateField", [alias("nodes", "mainstat"), alias("nodes_errors", "arc__errors"), alias("edges", "mainstat"), ...joins]),
  { ...graphPanel(3, "edge to a missing node", [alias("nodes", "mainstat"), alias("edges", "mainstat"), ...joins]), targets: ["nodes", "edges"].map(table) },
  { id: 4, type: "timeseries", title: "unknown transformation", gridPos: W, targets: [{ refId: "A", expr: "x", legendFormat: "{{job}}" }], transformations: [{ id: "nope", options: {} }], fieldConfig: { defaults: {}, overrides: [] } },
  { id: 5, type: "timeseries", title: "unknown override property", gridPos: W, targets: [{ refId: "A", expr: "x", legendFormat: "{{job}}" }], fieldConfig: { defaults: {}, overrides: [{ matcher: { id: "byName", options: "a" }, properties: [{ id: "colour", value: "red" }] }] } },
  { id: 6, type: "timeseries", title: "NaN as gaps", gridPos: W, targets: [{ refId: "A", expr: "x", legendFormat: "{{job}}" }], fieldConfig: { defaults: { unit: "s" }, overrides: [] }, options: { legend: { showLegend: true, displayMode: "list", placement: "bottom", calcs: [] } } },
];
const series = { resultType: "matrix", result: [{ metric: { job: "a" }, values: [[1000, "1"], [1010, "NaN"], [1020, "2"], [1030, "3"]] }] };
const answers = { t: { 1: nodesAnswers, 2: nodesAnswers, 3: { nodes: vec([[{ id: "shop/web", title: "web" }, 1]]), edges: nodesAnswers.edges }, 4: { A: series }, 5: { A: series }, 6: { A: series } } };
const snapshot = { dashboards: [{ uid: "t", title: "renderer rules", panels }], answers, from: 990, to: 1040, stepMs: 10000, note: "tests/grafana/render-test.mjs" };
writeFileSync(join(out, "in.json"), JSON.stringify(snapshot));
try {
  execFileSync("node", ["grafana/render/render.mjs", "--snapshot", join(out, "in.json"), "--out", out], { stdio: "pipe" });
} catch {
  // Exit 1: panels failed, as some here must. The result says which.
}
const r = JSON.parse(readFileSync(join(out, "result.json"), "utf8")).dashboards.t.panels;
let fails = 0;
const check = (cond, m) => {
  console.log(`${cond ? "ok  " : "FAIL"} ${m}`);
  if (!cond) fails++;
};
const g1 = r[1].graph;
check(g1?.nodes.length === 2 && g1.nodes.every((n) => n.mainStat === "" && n.arcs.length === 0) && g1.edges.every((e) => e.mainStat === ""), "renamed by organize: nodes and edges without stats or rings (display names are not field names)");
const g2 = r[2].graph;
const web = g2?.nodes.find((n) => n.id === "shop/web");
check(web?.mainStat === "1.50 kB/s" && web.title === "web" && web.subTitle === "shop", `named by calculateField: web reads "${web?.mainStat}", titled "${web?.title}" over "${web?.subTitle}"`);
check(web?.arcs.length === 1 && web.arcs[0].value === 0.25 && web.arcs[0].color === "red", "named by calculateField: web's ring 25% red");
check(g2?.edges[0]?.mainStat === "0.50 kB/s" && g2.edges[0].source === "shop/web", `named by calculateField: edge web -> api reads "${g2?.edges[0]?.mainStat}"`);
check(/is not a node/.test(r[3].error ?? ""), `edge to a missing node: the panel fails ("${r[3].error}")`);
check(/not one of @grafana\/data's standard transformers/.test(r[4].error ?? ""), `unknown transformation: "${r[4].error}"`);
check(/colour/.test(r[5].error ?? ""), `unknown override property: "${r[5].error}"`);
check(!r[6].error && r[6].values === 3, `NaN as gaps: drawn, ${r[6].values} finite values of 4`);
console.log(`render rules: ${fails} failure(s)`);
process.exit(fails ? 1 : 0);
