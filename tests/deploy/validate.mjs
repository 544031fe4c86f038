// Checks rendered Kubernetes manifests offline, two ways:
//  1. every object against its JSON schema (npm kubernetes-models and
//     @kubernetes-models/prometheus-operator: wrong types, missing required fields, bad enums);
//  2. every object as a typed TypeScript literal compiled with `tsc --strict`: object literals
//     may not carry properties their type lacks, so a misspelled field fails here.
// Also writes each PrometheusRule's spec as a plain rule file for `promtool check rules`.
//
// usage: node validate.mjs OUTDIR FILE.yaml...   (exit 1 on any problem)
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { typecheck } from "./tsc.mjs";
const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error("usage: node validate.mjs OUTDIR FILE.yaml...");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com")
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  return `kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`;
}

let problems = 0;
const typed = [];
const seen = new Map();
let rules = 0;
for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`FAIL ${file}: YAML: ${doc.errors[0].message}`);
      problems++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const id = `${file}: ${obj.kind}/${obj.metadata?.namespace ?? "-"}/${obj.metadata?.name}`;
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
      console.error(`FAIL ${id}: apiVersion, kind and metadata.name are required`);
      problems++;
      continue;
    }
    const key = `${file} ${obj.apiVersion} ${obj.kind} ${obj.metadata.namespace ?? ""} ${obj.metadata.name}`;
    if (seen.has(key)) {
      console.error(`FAIL ${id}: also defined in ${seen.get(key)}`);
      problems++;
    }
    seen.set(key, file);
    const mod = modulePath(obj.apiVersion, obj.kind);
    let Model;
    try {
      Model = (await import(mod))[obj.kind];
    } catch {
      console.error(`FAIL ${id}: no schema for ${obj.apiVersion} ${obj.kind} (${mod})`);
      problems++;
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      console.error(`FAIL ${id}: schema: ${e.message.split("\n").slice(0, 4).join("; ")}`);
      problems++;
    }
    typed.push({ mod, kind: obj.kind, obj, id });
    if (obj.kind === "PrometheusRule") {
      writeFileSync(join(outDir, `rules-${rules++}.yaml`), JSON.stringify(obj.spec, null, 1));
    }
  }
}

// The type check: one module with a typed constant per object.
const imports = new Map();
let ts = "";
typed.forEach((t, i) => {
  const alias = `I${t.kind}_${[...imports.keys()].length}`;
  if (!imports.has(t.mod)) imports.set(t.mod, alias);
  ts += `// ${t.id}\nexport const o${i}: ${imports.get(t.mod)} = ${JSON.stringify(t.obj, null, 1)};\n`;
});
let header = "";
for (const [mod, alias] of imports) {
  const kind = mod.split("/").pop();
  header += `import type { I${kind} as ${alias} } from "${mod}";\n`;
}
const tsErrors = typecheck(outDir, "objects.ts", header + ts);
for (const l of tsErrors.slice(0, 20)) console.error(`FAIL type check: ${l}`);
problems += tsErrors.length;
console.log(
  `validate: ${typed.length} objects from ${files.length} file(s), ${rules} PrometheusRule(s); ${problems} problem(s)`,
);
process.exit(problems ? 1 : 0);
