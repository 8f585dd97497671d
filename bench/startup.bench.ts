// Start-up time of ocigen: the single binary (dist/ocigen --version) against
// the bundle under node (node dist/ocigen.mjs --version), the bare runtime
// (node -e 0) and, when available, Deno from the sources. Median of N runs
// after warm-up, run round-robin; wall time of spawn-to-exit, and ratios to
// `node -e 0`.
//
//   node --import tsx bench/startup.bench.ts [--runs 30] [--json]
//   (needs `npm run build` and `npm run build:binary`; missing ones are skipped)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const args = process.argv.slice(2);
const runsArg = args.indexOf("--runs");
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 30;
const json = args.includes("--json");
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const node = isDeno ? "node" : process.execPath;
const deno = join(root, "node_modules/.bin/deno");

interface Case { name: string; cmd: string; args: string[]; needs?: string }
const cases: Case[] = [
  { name: "node -e 0", cmd: node, args: ["-e", "0"] },
  { name: "dist/ocigen --version", cmd: join(root, "dist/ocigen"), args: ["--version"], needs: join(root, "dist/ocigen") },
  { name: "node dist/ocigen.mjs --version", cmd: node, args: [join(root, "dist/ocigen.mjs"), "--version"], needs: join(root, "dist/ocigen.mjs") },
  {
    name: "deno run src/main.ts --version", cmd: deno,
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-run", "--allow-sys", join(root, "src/main.ts"), "--version"],
    needs: deno,
  },
];

const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("NODE_")) env[k] = v;

function once(c: Case): number {
  const t = performance.now();
  const r = spawnSync(c.cmd, c.args, { stdio: ["ignore", "pipe", "pipe"], env });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${c.name}: exit ${r.status}: ${r.stderr}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const results: { name: string; medianMs: number; minMs: number; maxMs: number; runs: number; ratioToNode?: number }[] = [];
const live: Case[] = [];
for (const c of cases) {
  if (c.needs && !existsSync(c.needs)) {
    if (!json) console.error(`skip ${c.name}: ${c.needs} missing`);
    continue;
  }
  try {
    for (let i = 0; i < 3; i++) once(c); // warm the page cache (and Deno's module cache)
    live.push(c);
  } catch (e) {
    console.error(`skip ${c.name}: ${String((e as Error).message).split("\n")[0]}`);
  }
}
// Round-robin, so that load from elsewhere on the machine hits every case alike.
const load0 = os.loadavg()[0];
const samples = new Map<Case, number[]>(live.map((c) => [c, []]));
for (let i = 0; i < runs; i++) for (const c of live) samples.get(c)!.push(once(c));
const load = { start: +load0.toFixed(2), end: +os.loadavg()[0].toFixed(2), cpus: os.cpus().length };
for (const [c, xs] of samples) {
  results.push({ name: c.name, medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), runs });
}
const base = results.find((r) => r.name === "node -e 0")!.medianMs;
for (const r of results) r.ratioToNode = r.medianMs / base;

if (json) {
  console.log(JSON.stringify({ runner: isDeno ? "deno" : `node ${process.version}`, runs, load, results }, null, 2));
} else {
  const runner = isDeno ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno} (spawn overhead is higher; prefer node)` : `node ${process.version}`;
  console.log(`start-up, median of ${runs} runs (spawn to exit), measured from ${runner}; load average ${load.start} -> ${load.end} on ${load.cpus} CPUs`);
  console.log("case".padEnd(34) + "median ms".padStart(10) + "min".padStart(8) + "max".padStart(8) + "  x node -e 0");
  for (const r of results) {
    console.log(r.name.padEnd(34) + r.medianMs.toFixed(1).padStart(10) + r.minMs.toFixed(1).padStart(8) + r.maxMs.toFixed(1).padStart(8) + `  ${r.ratioToNode!.toFixed(2)}`);
  }
  const b = results.find((r) => r.name.startsWith("dist/ocigen"));
  const m = results.find((r) => r.name.startsWith("node dist"));
  if (b && m) console.log(`binary / bundle: ${(b.medianMs / m.medianMs).toFixed(2)}`);
}
