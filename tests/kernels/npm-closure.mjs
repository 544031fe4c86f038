// node npm-closure.mjs DIR PACKAGE: prints, relative to DIR, the directory of PACKAGE in DIR's
// node_modules and of every package it depends on (dependencies and optionalDependencies,
// resolved from each package's own directory as Node resolves them), one per line.
import { createRequire } from "node:module";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const [root, start] = process.argv.slice(2);
if (!root || !start) {
  console.error("usage: npm-closure.mjs DIR PACKAGE");
  process.exit(2);
}
// A package's directory as seen from FROM: Node's resolution of NAME/package.json, or, for a
// package whose "exports" hide its package.json, the nearest node_modules/NAME upwards.
function packageDir(from, name) {
  try {
    return dirname(createRequire(join(from, "package.json")).resolve(`${name}/package.json`));
  } catch {
    for (let d = from; ; d = dirname(d)) {
      const c = join(d, "node_modules", name);
      if (existsSync(join(c, "package.json"))) return c;
      if (dirname(d) === d) return null;
    }
  }
}
const seen = new Set();
const missing = [];
function walk(dir) {
  dir = realpathSync(dir);
  if (seen.has(dir)) return;
  seen.add(dir);
  const pj = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const [n, optional] of [
    ...Object.keys(pj.dependencies ?? {}).map((n) => [n, false]),
    ...Object.keys(pj.optionalDependencies ?? {}).map((n) => [n, true]),
  ]) {
    const d = packageDir(dir, n);
    if (d) walk(d);
    else if (!optional) missing.push(`${n} (needed by ${relative(root, dir)})`);
  }
}
const first = packageDir(root, start);
if (!first) {
  console.error(`npm-closure.mjs: ${start} is not installed in ${root}/node_modules`);
  process.exit(1);
}
walk(first);
if (missing.length) {
  console.error(`npm-closure.mjs: not installed: ${missing.join(", ")}`);
  process.exit(1);
}
for (const d of seen) console.log(relative(root, d));
