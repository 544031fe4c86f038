// Type-checks every dashboard JSON against @grafana/schema's Dashboard type with tsc --strict
// (object literals may not carry unknown properties: a misspelled field fails), and checks the
// basics Grafana needs: unique panel ids and uids, a datasource on every query.
// usage: node tests/grafana/typecheck.mjs OUTDIR DASHBOARD.json...
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { typecheck } from "../deploy/tsc.mjs";

const [outDir, ...files] = process.argv.slice(2);
let problems = 0;
// JSON cannot name a TypeScript enum member: Json<T> accepts an enum's string values where
// the schema has the enum (ThresholdsMode.Absolute -> "absolute") and changes nothing else,
// so unknown properties and wrong types still fail.
let ts = `import type { Dashboard } from "@grafana/schema";
type Json<T> = T extends string
  ? string extends T ? T : \`\${T}\`
  : T extends (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;
`;
const uids = new Set();
files.forEach((f, i) => {
  const d = JSON.parse(readFileSync(f, "utf8"));
  if (uids.has(d.uid)) { console.error(`FAIL ${f}: uid ${d.uid} used twice`); problems++; }
  uids.add(d.uid);
  const ids = new Set();
  for (const p of d.panels ?? []) {
    if (ids.has(p.id)) { console.error(`FAIL ${f}: panel id ${p.id} used twice`); problems++; }
    ids.add(p.id);
    for (const t of p.targets ?? []) {
      if (!t.datasource || !t.expr) { console.error(`FAIL ${f}: panel "${p.title}" has a query without datasource or expr`); problems++; }
    }
  }
  ts += `// ${basename(f)}\nexport const d${i}: Json<Dashboard> = ${JSON.stringify(d, null, 1)};\n`;
});
const tsErrors = typecheck(outDir, "dashboards.ts", ts);
for (const l of tsErrors.slice(0, 20)) console.error(`FAIL type check: ${l}`);
problems += tsErrors.length;
console.log(`typecheck: ${files.length} dashboard(s); ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
