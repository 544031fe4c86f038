// Renders flowlens's Grafana dashboards without a Grafana server: asks a real Prometheus every
// panel's queries (as Grafana would: instant or range, the dashboard's time range), writes
// OUT/dashboards.html (self-contained: Grafana's libraries bundled, the answers embedded; opens
// in any browser, offline) and, with Chromium, draws it headless and writes OUT/<uid>.png per
// dashboard and OUT/result.json (what every panel showed: rows, stats, the flow map's nodes and
// edges, or its error).
//
// usage: node grafana/render/render.mjs --prom URL --out DIR [--rate-interval 30s]
//          [--time UNIX] [--range SECONDS] [--no-browser] DASHBOARD.json...
//        node grafana/render/render.mjs --snapshot OUT/snapshot.json --out DIR   (draw saved answers again)
// Exit 1 when a panel fails or shows no data (panels whose description says "Empty off AWS"
// may be empty), 2 on usage or Prometheus errors. RENDER_DEBUG=1: React's development build
// (full error messages), not minified.
import { readFileSync, writeFileSync, mkdirSync, existsSync, statSync, readdirSync, rmSync, renameSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { substitute, promQuery } from "./promql.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = { rate: "30s", browser: true, files: [] };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--prom") opt.prom = args[++i];
  else if (a === "--out") opt.out = args[++i];
  else if (a === "--rate-interval") opt.rate = args[++i];
  else if (a === "--time") opt.time = Number(args[++i]);
  else if (a === "--range") opt.range = Number(args[++i]);
  else if (a === "--no-browser") opt.browser = false;
  else if (a === "--snapshot") opt.snapshot = args[++i];
  else if (a === "--bundle") opt.bundleOnly = true;
  else opt.files.push(a);
}
if (!opt.bundleOnly && (!opt.out || !(opt.snapshot || (opt.prom && opt.files.length)))) {
  console.error("usage: render.mjs --prom URL --out DIR [--rate-interval 30s] [--time UNIX] [--range SECONDS] [--no-browser] DASHBOARD.json...\n       render.mjs --bundle (build the page's bundle only)");
  process.exit(2);
}
if (opt.out) mkdirSync(opt.out, { recursive: true });

// Grafana's packages from their CommonJS builds: their ESM builds import CommonJS packages'
// default exports the Node way (module.exports), which a bundler honours and React then rejects
// ("Element type is invalid"). All of them, so that one copy of each is bundled.
const grafanaCommonJS = {
  name: "grafana-commonjs",
  setup(build) {
    build.onResolve({ filter: /^@grafana\/[a-z0-9-]+(\/[a-z]+)?$/ }, (a) => {
      const [, pkg, sub] = /^(@grafana\/[a-z0-9-]+)(\/[a-z]+)?$/.exec(a.path);
      const dir = join(here, "node_modules", pkg);
      if (!existsSync(join(dir, "package.json"))) return undefined;
      const entry = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).exports?.[sub ? `.${sub}` : "."];
      return entry?.require ? { path: join(dir, entry.require) } : undefined;
    });
  },
};

// The bundle: Grafana's libraries and src/*, rebuilt when a source is newer.
async function bundle() {
  const outFile = join(here, ".out", process.env.RENDER_DEBUG ? "app.debug.js" : "app.js");
  const sources = readdirSync(join(here, "src")).map((f) => join(here, "src", f));
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs), statSync(join(here, "package-lock.json")).mtimeMs);
  if (!existsSync(outFile) || statSync(outFile).mtimeMs < newest) {
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [join(here, "src", "app.jsx")],
      bundle: true,
      minify: !process.env.RENDER_DEBUG,
      format: "iife",
      target: "chrome120",
      // Written under another name, then renamed: a renderer started meanwhile never reads
      // half a bundle.
      outfile: `${outFile}.${process.pid}.tmp`,
      jsx: "automatic",
      loader: { ".svg": "text", ".woff": "empty", ".woff2": "empty", ".png": "empty", ".ttf": "empty", ".css": "empty" },
      alias: { "@grafana/runtime": join(here, "src", "runtime-shim.js") },
      plugins: [grafanaCommonJS],
      define: { "process.env.NODE_ENV": process.env.RENDER_DEBUG ? '"development"' : '"production"', global: "globalThis" },
      logLevel: "error",
      legalComments: "none",
    });
    renameSync(`${outFile}.${process.pid}.tmp`, outFile);
  }
  return readFileSync(outFile, "utf8");
}
if (opt.bundleOnly) {
  // Only the bundle: make demo and the suite build it ahead, while the lab comes up.
  await bundle();
  process.exit(0);
}

function parseRange(from) {
  const m = /^now-(\d+)([smhd])$/.exec(from ?? "");
  if (!m) return 3600;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
}

async function ask() {
  const dashboards = opt.files.map((f) => JSON.parse(readFileSync(f, "utf8")));
  const to = opt.time ?? Math.floor(Date.now() / 1000);
  const range = opt.range ?? Math.max(...dashboards.map((d) => parseRange(d.time?.from)));
  const from = to - range;
  const step = Math.max(5, Math.ceil(range / 360));
  const answers = {};
  const queries = [];
  for (const d of dashboards) {
    answers[d.uid] = {};
    for (const p of d.panels) {
      if (!p.targets) continue;
      answers[d.uid][p.id] = {};
      for (const t of p.targets) {
        const expr = substitute(t.expr, opt.rate);
        const instant = t.instant && !t.range;
        queries.push(async () => {
          answers[d.uid][p.id][t.refId] = await promQuery(opt.prom, expr, instant ? { time: to } : { start: from, end: to, step });
        });
      }
    }
  }
  try {
    // Four at a time: the demo's Prometheus is behind a forwarder with a short backlog.
    const next = async () => {
      for (let q; (q = queries.shift()); ) await q();
    };
    await Promise.all([next(), next(), next(), next()]);
  } catch (e) {
    console.error(`render: Prometheus at ${opt.prom}: ${e.message}`);
    process.exit(2);
  }
  const snapshot = {
    dashboards,
    answers,
    from,
    to,
    stepMs: step * 1000,
    note: `flowlens dashboards drawn with Grafana's libraries (no Grafana server) from ${opt.prom} at ${new Date(to * 1000).toISOString()}, last ${range / 60} min; $__rate_interval = ${opt.rate}.`,
  };
  return snapshot;
}
const snapshot = opt.snapshot ? JSON.parse(readFileSync(opt.snapshot, "utf8")) : await ask();
const { dashboards } = snapshot;
const queryCount = Object.values(snapshot.answers).reduce((n, d) => n + Object.values(d).reduce((m, p) => m + Object.keys(p).length, 0), 0);
writeFileSync(join(opt.out, "snapshot.json"), JSON.stringify(snapshot));
const js = await bundle();
const safe = (s) => s.replace(/<\/(script)/gi, "<\\/$1");
const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>flowlens dashboards</title>
<style>${readFileSync(join(here, "node_modules/uplot/dist/uPlot.min.css"), "utf8")}</style></head>
<body><div id="root"></div>
<script>window.flowlensSnapshot = ${safe(JSON.stringify(snapshot))};</script>
<script>${safe(js)}</script>
</body></html>
`;
const page = resolve(opt.out, "dashboards.html");
writeFileSync(page, html);
console.log(`render: ${page} (${(html.length / 1e6).toFixed(1)} MB, ${queryCount} queries)`);
if (!opt.browser) process.exit(0);

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(chromium)) {
  console.error(`render: no browser at ${chromium} (Debian: apt-get install chromium); the HTML page is written`);
  process.exit(2);
}
const puppeteer = (await import("puppeteer-core")).default;
const profile = join(opt.out, ".chromium-profile");
// RENDER_TIMEOUT_S: how long Chromium's start, loading, drawing and each screenshot may take
// (default 120 s; an emulated machine, such as make debian12's guest, needs more).
const timeoutMs = 1000 * (Number(process.env.RENDER_TIMEOUT_S) || 120);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  timeout: timeoutMs,
  protocolTimeout: Math.max(180000, timeoutMs),
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
  ],
});
const problems = [];
try {
  const tab = await browser.newPage();
  const pageErrors = [];
  tab.on("pageerror", (e) => pageErrors.push(String(e.message ?? e)));
  tab.on("console", (m) => {
    // Grafana's global styles name its web fonts (not shipped: the page falls back to system fonts).
    if (m.type() === "error" && !/\/fonts\//.test(m.location()?.url ?? "")) pageErrors.push(m.text());
  });
  tab.setDefaultTimeout(timeoutMs);
  tab.setDefaultNavigationTimeout(timeoutMs);
  await tab.setViewport({ width: 1640, height: 1000, deviceScaleFactor: 2 });
  await tab.goto(`file://${page}`, { waitUntil: "load" });
  await tab.waitForFunction(() => window.flowlensResult, { timeout: timeoutMs });
  const result = await tab.evaluate(() => window.flowlensResult);
  // Errors a panel threw while drawing surface in its body.
  const drawn = await tab.evaluate(() =>
    Array.from(document.querySelectorAll(".fl-panel")).map((p) => ({
      uid: p.closest(".fl-dashboard").dataset.uid,
      id: p.dataset.panelId,
      title: p.dataset.panelTitle,
      error: p.querySelector(".fl-error")?.textContent ?? null,
      nodata: !!p.querySelector(".fl-nodata"),
      canvas: p.querySelectorAll("canvas").length,
      nodes: Array.from(p.querySelectorAll("g[data-node-id]")).map((g) => ({
        id: g.dataset.nodeId,
        title: g.querySelector("text[data-title]")?.textContent ?? "",
        // Where it landed on the page (CSS pixels), to check the map stays readable.
        circle: ((r) => ({ x: r.x, y: r.y, w: r.width, h: r.height }))(g.querySelector("circle").getBoundingClientRect()),
        label: ((r) => ({ x: r.x, y: r.y, w: r.width, h: r.height }))(g.querySelector("text[data-title]").getBoundingClientRect()),
        rings: Array.from(g.querySelectorAll("[data-ring]")).map((r) => r.dataset.ring),
      })),
      edges: Array.from(p.querySelectorAll("g[data-edge-id]")).map((g) => ({
        id: g.dataset.edgeId,
        source: g.dataset.source,
        target: g.dataset.target,
        arrow: g.querySelector("line, path")?.getAttribute("marker-end") ? "end" : "none",
        // Points along the drawn line (page CSS pixels), to check it crosses no other node.
        points: ((el) => {
          const ctm = el.getScreenCTM();
          const len = el.getTotalLength();
          return Array.from({ length: 25 }, (_, k) => {
            const q = new DOMPoint(el.getPointAtLength((len * k) / 24).x, el.getPointAtLength((len * k) / 24).y).matrixTransform(ctm);
            return [Math.round(q.x * 10) / 10, Math.round(q.y * 10) / 10];
          });
        })(g.querySelector("path, line")),
      })),
    })),
  );
  result.drawn = drawn;
  result.pageErrors = pageErrors;
  for (const d of dashboards) {
    const el = await tab.$(`#dash-${d.uid}`);
    const png = join(opt.out, `${d.uid}.png`);
    await el.screenshot({ path: png });
    console.log(`render: ${png}`);
    // And each panel on its own, at twice the pixels, to read it closely.
    mkdirSync(join(opt.out, "panels"), { recursive: true });
    for (const p of await el.$$(".fl-panel")) {
      const id = await p.evaluate((x) => x.dataset.panelId);
      await p.screenshot({ path: join(opt.out, "panels", `${d.uid}-${id}.png`) });
    }
  }
  writeFileSync(join(opt.out, "result.json"), JSON.stringify(result, null, 1));
  for (const d of dashboards) {
    for (const p of d.panels) {
      if (p.type === "row") continue;
      const r = result.dashboards[d.uid].panels[p.id];
      const offAws = (p.description ?? "").includes("Empty off AWS");
      const what = `${d.uid}: "${p.title}" (${p.type})`;
      if (r.error) problems.push(`${what}: ${r.error}`);
      else if (!r.values && offAws) console.log(`skip  ${what}: empty off AWS (no ENA driver here)`);
      else if (!r.values) problems.push(`${what}: no data`);
      else console.log(`ok    ${what}: ${r.frames} frame(s), ${r.rows} row(s), ${r.values} value(s)`);
    }
  }
  for (const e of pageErrors) problems.push(`page: ${e}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
for (const p of problems) console.log(`FAIL  ${p}`);
console.log(`render: ${problems.length} problem(s); ${join(opt.out, "result.json")}`);
process.exit(problems.length ? 1 : 0);
