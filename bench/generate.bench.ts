// The systemd generator's wall time over 200 generated layouts, against the
// runtime's bare start-up (`node -e 0`), which the generator can never beat:
// the ratio says how much of a boot-time run is ocigen's own work. A third
// case, `ocigen --version`, separates loading the bundle from generating.
// Median of N runs after a warm-up, run round-robin, spawn-to-exit.
//
//   node --import tsx bench/generate.bench.ts [--layouts 200] [--runs 15] [--json]
//
// Uses dist/ocigen.mjs (run `npm run build` first); with --fresh it bundles
// the current sources itself with esbuild (same flags as .ci/build.mjs).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (n: string, d: number) => (args.includes(n) ? Number(args[args.indexOf(n) + 1]) : d);
const nLayouts = opt("--layouts", 200);
const runs = opt("--runs", 15);
const json = args.includes("--json");
const node = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "node" : process.execPath;

const tmp = mkTemp("ocigen-genbench-");
try {
  let bundle = join(root, "dist/ocigen.mjs");
  if (args.includes("--fresh") || !fs.existsSync(bundle)) {
    bundle = join(tmp, "ocigen.mjs");
    const r = spawnSync(join(root, "node_modules/.bin/esbuild"), [
      "src/main.ts", "--bundle", "--platform=node", "--format=esm", "--target=node20", "--log-level=warning", `--outfile=${bundle}`,
      "--banner:js=import { createRequire as __ocigenCreateRequire } from 'node:module'; const require = __ocigenCreateRequire(import.meta.url);",
    ], { cwd: root, stdio: "inherit" });
    if (r.status !== 0) throw new Error("esbuild failed");
  }
  const layouts = join(tmp, "layouts");
  const layer = tarFiles([{ name: "bin/", dir: true }, { name: "bin/app", data: "#!/bin/sh\n", mode: 0o755 }]);
  for (let i = 0; i < nLayouts; i++) {
    const org = `org${i % 20}.example.com`;
    makeLayout(join(layouts, org, `app${i}`), [{
      tags: ["latest", `v${i}`],
      layers: [layer],
      config: { config: { Entrypoint: ["/bin/app"], Cmd: ["--serve", `port=${8000 + i}`], Env: ["PATH=/usr/bin:/bin", `ID=${i}`], User: "1000:1000", WorkingDir: "/srv" } } as never,
    }]);
  }
  const conf = join(tmp, "oci-generator.conf");
  fs.writeFileSync(conf, `[system]\nimagelayoutdir = ${layouts}\nextractsdir = ${join(tmp, "extracts")}\nocigen = /usr/local/bin/ocigen\n`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("NODE_")) env[k] = v;
  env.OCIGEN_KMSG = "0";

  const cases = [
    { name: "node -e 0", args: ["-e", "0"] },
    { name: "ocigen --version (bundle load only)", args: [bundle, "--version"] },
    { name: `ocigen generate (${nLayouts} layouts, ${2 * nLayouts} units + extract units)`, args: [bundle, "generate", "--config", conf, join(tmp, "out")] },
  ];
  const times: number[][] = cases.map(() => []);
  for (let r = -2; r < runs; r++) {
    cases.forEach((c, i) => {
      fs.rmSync(join(tmp, "out"), { recursive: true, force: true });
      const t = performance.now();
      const p = spawnSync(node, c.args, { stdio: ["ignore", "pipe", "pipe"], env });
      const ms = performance.now() - t;
      if (p.status !== 0) throw new Error(`${c.name}: exit ${p.status}: ${p.stderr}`);
      if (r >= 0) times[i].push(ms);
    });
  }
  const units = fs.readdirSync(join(tmp, "out")).filter((n) => n.endsWith(".service") && !n.startsWith("ocigen-extract@")).length;
  if (units !== 2 * nLayouts) throw new Error(`expected ${2 * nLayouts} units, got ${units}`);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const base = median(times[0]);
  const res = cases.map((c, i) => ({ name: c.name, medianMs: +median(times[i]).toFixed(1), minMs: +Math.min(...times[i]).toFixed(1), ratioToNode: +(median(times[i]) / base).toFixed(2) }));
  if (json) console.log(JSON.stringify({ layouts: nLayouts, units, runs, results: res }, null, 2));
  else {
    for (const r of res) console.log(`${r.name.padEnd(45)} median ${String(r.medianMs).padStart(7)} ms  min ${String(r.minMs).padStart(7)} ms  x${r.ratioToNode}`);
    console.log(`generator work beyond loading ocigen: ${(res[2].medianMs - res[1].medianMs).toFixed(1)} ms for ${units} units`);
  }
} finally {
  rmTemp(tmp);
}
