// The systemd generator's wall time over 200 generated layouts, against the
// runtime's bare start-up (`node -e 0`; `deno run` of an empty file for
// Deno), which the generator can never beat: the ratio says how much of a
// boot-time run is ocigen's own work. For each way of running ocigen (the
// generator's own bundle dist/ocigen-generator.mjs, which the installed
// generator link runs, and the main bundle under node; the sources under
// Deno; the single binary) a `--version` case separates loading ocigen from
// generating. Median and best (min) of N runs after a warm-up, run
// round-robin (so load from elsewhere hits every case alike), spawn-to-exit;
// ratios of medians and of bests; the load average is printed, since a busy
// machine inflates every figure.
//
//   node --import tsx bench/generate.bench.ts [--layouts 200] [--runs 15] [--json]
//        [--fresh] [--no-deno] [--no-binary] [--out DIR]
//
// Runners: dist/ocigen-generator.mjs and dist/ocigen.mjs under node (run
// `npm run build` first; with --fresh the current sources are bundled with
// esbuild, same flags as .ci/build.mjs); `deno run src/main.ts` when node_modules/.bin/deno exists;
// dist/ocigen (`npm run build:binary`) when it exists. Units are written to
// a tmpfs (/dev/shm) when there is one, as systemd's generator directories
// (/run/systemd/generator*) are tmpfs; a disk under write load elsewhere
// would otherwise dominate the figures. --out chooses another parent.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { makeLayout, mkTemp, rmTemp, tarFiles } from "../fixtures/layout.ts";
import { DENO_V8_FLAGS } from "../src/install/self.ts";

/**
 * The naive floor: what any generator must at least do, with no checks. It
 * walks the layout directory (`readdirSync`), reads `oci-layout`,
 * `index.json` and, per tag, the manifest and config (`readFileSync` and
 * `JSON.parse`; no lstat, no digest, no validation, no settings or pins),
 * and writes two files per tag (`writeFileSync`, no temporary name) as long
 * as the generator's own units: copies of one generated service and one
 * extract unit, told apart by a comment line. The gap between it and the
 * generator is ocigen's own cost; the gap between it and `node -e 0` is the
 * reading and writing no generator avoids.
 *
 *   node floor.mjs LAYOUTS SERVICE_SAMPLE EXTRACT_SAMPLE OUT
 */
const FLOOR = `import fs from "node:fs";
const [root, serviceSample, extractSample, out] = process.argv.slice(2);
const service = fs.readFileSync(serviceSample, "utf8");
const extract = fs.readFileSync(extractSample, "utf8");
fs.mkdirSync(out, { recursive: true });
let n = 0;
const walk = (dir) => {
  const names = fs.readdirSync(dir);
  if (!names.includes("oci-layout")) {
    for (const d of names) walk(dir + "/" + d);
    return;
  }
  JSON.parse(fs.readFileSync(dir + "/oci-layout", "utf8"));
  const index = JSON.parse(fs.readFileSync(dir + "/index.json", "utf8"));
  for (const m of index.manifests) {
    const manifest = JSON.parse(fs.readFileSync(dir + "/blobs/sha256/" + m.digest.slice(7), "utf8"));
    JSON.parse(fs.readFileSync(dir + "/blobs/sha256/" + manifest.config.digest.slice(7), "utf8"));
    n++;
    fs.writeFileSync(out + "/ocigen-extract@u" + n + ".service", extract.slice(0, -2) + "#" + n + "\\n");
    fs.writeFileSync(out + "/u" + n + ".service", service.slice(0, -2) + "#" + n + "\\n");
  }
};
walk(root);
`;

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (n: string, d: number) => (args.includes(n) ? Number(args[args.indexOf(n) + 1]) : d);
const nLayouts = opt("--layouts", 200);
const runs = opt("--runs", 15);
const json = args.includes("--json");
const node = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "node" : process.execPath;
const deno = join(root, "node_modules/.bin/deno");
const binary = join(root, "dist/ocigen");

const tmp = mkTemp("ocigen-genbench-");
const outParent = args.includes("--out")
  ? args[args.indexOf("--out") + 1]
  : fs.existsSync("/dev/shm") && fs.statSync("/dev/shm").isDirectory()
  ? "/dev/shm"
  : tmp;
const outRoot = fs.mkdtempSync(join(outParent, "ocigen-genbench-out-"));
try {
  let bundle = join(root, "dist/ocigen.mjs");
  if (args.includes("--fresh") || !fs.existsSync(bundle)) {
    bundle = join(tmp, "ocigen.mjs");
    for (const [src, out] of [["src/main.ts", bundle], ["src/ocigen-generator.ts", join(tmp, "ocigen-generator.mjs")]]) {
      const r = spawnSync(join(root, "node_modules/.bin/esbuild"), [
        src, "--bundle", "--platform=node", "--format=esm", "--target=node20", "--log-level=warning", `--outfile=${out}`,
        "--log-override:unsupported-dynamic-import=silent",
        "--banner:js=import { createRequire as __ocigenCreateRequire } from 'node:module'; const require = __ocigenCreateRequire(import.meta.url);",
      ], { cwd: root, stdio: "inherit" });
      if (r.status !== 0) throw new Error("esbuild failed");
    }
  }
  const genBundle = join(bundle, "..", "ocigen-generator.mjs");
  const empty = join(tmp, "empty.js");
  fs.writeFileSync(empty, "");
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

  // The naive floor (see FLOOR): one generator run gives the unit texts it copies.
  const refOut = join(outRoot, "reference");
  const ref = spawnSync(node, [genBundle, "--config", conf, refOut], { stdio: ["ignore", "pipe", "pipe"], env });
  if (ref.status !== 0) throw new Error(`reference generator run: exit ${ref.status}: ${ref.stderr}`);
  const refNames = fs.readdirSync(refOut).sort();
  const sample = (extract: boolean) => join(refOut, refNames.find((n) => n.endsWith(".service") && n.startsWith("ocigen-extract@") === extract)!);
  const floorScript = join(tmp, "floor.mjs");
  fs.writeFileSync(floorScript, FLOOR);

  interface Case { runner: string; name: string; cmd: string; args: string[]; out?: string; base?: string }
  const cases: Case[] = [];
  const runner = (rname: string, cmd: string, pre: string[], baseName: string, verb = ["generate"]) => {
    const out = join(outRoot, rname.replace(/\W+/g, "-"));
    if (verb.length) cases.push({ runner: rname, name: `${rname}: --version (load only)`, cmd, args: [...pre, "--version"], base: baseName });
    cases.push({
      runner: rname, name: `${rname}: generate (${nLayouts} layouts, ${2 * nLayouts} units)`, cmd,
      args: [...pre, ...verb, "--config", conf, out], out, base: baseName,
    });
  };
  cases.push({ runner: "node", name: "node -e 0", cmd: node, args: ["-e", "0"] });
  const floorOut = join(outRoot, "floor");
  cases.push({
    runner: "floor", name: `naive floor (${nLayouts} layouts, ${2 * nLayouts} units)`, cmd: node,
    args: [floorScript, layouts, sample(false), sample(true), floorOut], out: floorOut, base: "node -e 0",
  });
  // what the installed generator link runs (the wrapper execs it): generation only
  if (fs.existsSync(genBundle)) runner("node generator bundle", node, [genBundle], "node -e 0", []);
  else if (!json) console.error(`skip generator bundle: ${genBundle} missing (npm run build)`);
  runner("node bundle", node, [bundle], "node -e 0");
  if (!args.includes("--no-binary") && fs.existsSync(binary)) runner("binary", binary, [], "node -e 0");
  else if (!json) console.error(`skip binary: ${binary} missing (npm run build:binary)`);
  if (!args.includes("--no-deno") && fs.existsSync(deno)) {
    cases.push({ runner: "deno", name: "deno run empty.js", cmd: deno, args: ["run", "-A", empty] });
    // -A: Deno wants all permissions for paths under /dev (the tmpfs /dev/shm).
    runner("deno src generator", deno, ["run", ...DENO_V8_FLAGS, "-A", join(root, "src/ocigen-generator.ts")], "deno run empty.js", []);
    runner("deno src", deno, ["run", ...DENO_V8_FLAGS, "-A", join(root, "src/main.ts")], "deno run empty.js");
  } else if (!json) console.error(`skip deno: ${deno} missing`);

  const times: number[][] = cases.map(() => []);
  const load0 = os.loadavg()[0];
  for (let r = -2; r < runs; r++) {
    cases.forEach((c, i) => {
      if (c.out) fs.rmSync(c.out, { recursive: true, force: true });
      const t = performance.now();
      const p = spawnSync(c.cmd, c.args, { stdio: ["ignore", "pipe", "pipe"], env });
      const ms = performance.now() - t;
      if (p.status !== 0) throw new Error(`${c.name}: exit ${p.status}: ${p.stderr}`);
      if (r >= 0) times[i].push(ms);
    });
  }
  const load1 = os.loadavg()[0];
  for (const c of [...cases, { name: "reference", out: refOut }]) {
    if (!c.out) continue;
    const units = fs.readdirSync(c.out).filter((n) => n.endsWith(".service") && !n.startsWith("ocigen-extract@")).length;
    if (units !== 2 * nLayouts) throw new Error(`${c.name}: expected ${2 * nLayouts} units, got ${units}`);
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const floorName = cases.find((c) => c.runner === "floor")!.name;
  const med = new Map(cases.map((c, i) => [c.name, median(times[i])]));
  const best = new Map(cases.map((c, i) => [c.name, Math.min(...times[i])]));
  const res = cases.map((c, i) => ({
    runner: c.runner,
    name: c.name,
    medianMs: +median(times[i]).toFixed(1),
    minMs: +Math.min(...times[i]).toFixed(1),
    ratioToBare: +(median(times[i]) / med.get(c.base ?? c.name)!).toFixed(2),
    bestRatioToBare: +(Math.min(...times[i]) / best.get(c.base ?? c.name)!).toFixed(2),
    bare: c.base ?? c.name,
    ...(c.out && c.runner !== "floor" ? { ratioToFloor: +(median(times[i]) / med.get(floorName)!).toFixed(2) } : {}),
  }));
  const load = { start: +load0.toFixed(2), end: +load1.toFixed(2), cpus: os.cpus().length };
  if (json) console.log(JSON.stringify({ layouts: nLayouts, units: 2 * nLayouts, runs, load, out: outParent, results: res }, null, 2));
  else {
    console.log(`generate over ${nLayouts} layouts, median of ${runs} runs; load average ${load.start} -> ${load.end} on ${load.cpus} CPUs; units written under ${outParent}`);
    for (const r of res) {
      const floor = r.ratioToFloor === undefined ? "" : `, x${r.ratioToFloor} the naive floor`;
      console.log(`${r.name.padEnd(58)} median ${String(r.medianMs).padStart(7)} ms  min ${String(r.minMs).padStart(7)} ms  x${r.ratioToBare} (best x${r.bestRatioToBare}) ${r.bare}${floor}`);
    }
    for (const rn of new Set(cases.filter((c) => c.out).map((c) => c.runner))) {
      const v = res.find((r) => r.runner === rn && r.name.includes("--version"));
      const g = res.find((r) => r.runner === rn && r.name.includes("generate"))!;
      if (v) console.log(`${rn}: generator work beyond loading ocigen: ${(g.medianMs - v.medianMs).toFixed(1)} ms for ${2 * nLayouts} units`);
    }
  }
} finally {
  rmTemp(tmp);
  fs.rmSync(outRoot, { recursive: true, force: true });
}
