// Runs the whole test suite under Node (node --test, TypeScript via tsx) and
// under Deno (deno test, Deno from the `deno` npm package); exits non-zero if
// either fails; a full run also type-checks with tsc. `--node` / `--deno` run
// one runtime only; further arguments select test files (default: every
// test/**/*.test.ts).
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const args = process.argv.slice(2);
const onlyNode = args.includes("--node");
const onlyDeno = args.includes("--deno");
let files = args.filter((a) => !a.startsWith("--"));
if (files.length === 0) files = find("test").sort();

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.ts")) out.push(relative(".", p));
  }
  return out;
}

let failed = false;
// The full run type-checks first: neither tsx nor `deno test --no-check` does.
if (!onlyNode && !onlyDeno && args.filter((a) => !a.startsWith("--")).length === 0) {
  console.log("\n# tsc -p tsconfig.json (strict type check)");
  const r = spawnSync(process.execPath, [join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { stdio: "inherit" });
  if (r.status !== 0) { failed = true; console.log("# tsc: FAILED"); }
}
if (!onlyDeno) {
  console.log(`\n# node ${process.version}: node --test (${files.length} files)`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files], { stdio: "inherit" });
  if (r.status !== 0) { failed = true; console.log("# node: FAILED"); }
}
if (!onlyNode) {
  console.log(`\n# deno: deno test (${files.length} files)`);
  const r = spawnSync(join("node_modules", ".bin", "deno"), ["test", "--allow-all", "--no-check", ...files], { stdio: "inherit" });
  if (r.status !== 0) { failed = true; console.log("# deno: FAILED"); }
}
process.exit(failed ? 1 : 0);
