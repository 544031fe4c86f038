// Runs every query of every dashboard panel (and every template variable's query) against a
// real Prometheus and reports the ones that return nothing. Variables take their "All"
// value (.*), $__rate_interval a window the test's scrape interval fills.
// usage: node tests/grafana/queries.mjs PROMETHEUS_URL DASHBOARD.json...
//        (exit 1 if any query fails or is empty; prints one line per query)
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { substitute as sub, variableQuery, promQuery } from "../../grafana/render/promql.mjs";

const [url, ...files] = process.argv.slice(2);
const rateInterval = process.env.RATE_INTERVAL ?? "30s";
const substitute = (expr) => sub(expr, rateInterval);
const query = async (expr) => (await promQuery(url, expr)).result;

let problems = 0;
let count = 0;
for (const file of files) {
  const d = JSON.parse(readFileSync(file, "utf8"));
  const checks = [];
  for (const v of d.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const { expr, label } = variableQuery(substitute(q));
    checks.push({ where: `variable $${v.name}`, expr, label });
  }
  for (const p of d.panels ?? []) {
    for (const t of p.targets ?? []) {
      checks.push({ where: `panel "${p.title}" ${t.refId}`, expr: substitute(t.expr),
        offAws: (p.description ?? "").includes("Empty off AWS") });
    }
  }
  for (const c of checks) {
    count++;
    try {
      let res = await query(c.expr);
      if (c.label) res = res.filter((s) => s.metric[c.label]);
      if (res.length === 0 && c.offAws) {
        // A driver counter only EC2 instances have (the panel's description says so).
        console.log(`skip  ${basename(file)}: ${c.where}: empty off AWS (no ENA driver here)`);
      } else if (res.length === 0) {
        console.log(`EMPTY ${basename(file)}: ${c.where}: ${c.expr.slice(0, 160)}`);
        problems++;
      } else {
        console.log(`ok    ${basename(file)}: ${c.where}: ${res.length} series`);
      }
    } catch (e) {
      console.log(`ERROR ${basename(file)}: ${c.where}: ${e.message}: ${c.expr.slice(0, 160)}`);
      problems++;
    }
  }
}
console.log(`queries: ${count} run, ${problems} empty or failing`);
process.exit(problems ? 1 : 0);
