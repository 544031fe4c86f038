// Compiles one generated TypeScript module with `tsc --strict --noEmit` against the packages
// in tests/deploy/node_modules, and returns tsc's error lines ([] when it type-checks). Shared
// by the manifest check (validate.mjs) and the dashboard check (../grafana/typecheck.mjs).
import { writeFileSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export function typecheck(outDir, name, source) {
  mkdirSync(outDir, { recursive: true });
  const file = resolve(outDir, name);
  writeFileSync(file, source);
  writeFileSync(
    join(outDir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        skipLibCheck: true,
        typeRoots: [],
        baseUrl: here,
        paths: { "*": [join(here, "node_modules/*")] },
      },
      files: [file],
    }),
  );
  try {
    execFileSync(join(here, "node_modules/.bin/tsc"), ["-p", join(outDir, "tsconfig.json")], {
      stdio: "pipe",
    });
    return [];
  } catch (e) {
    const errors = e.stdout.toString().split("\n").filter((l) => l.includes("error TS"));
    return errors.length ? errors : [`tsc failed: ${e.message}`];
  }
}
