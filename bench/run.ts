/**
 * The benchmark suite behind `ocigen bench` and `bench/main.ts`: on a
 * generated image (see `image.ts`), in the same run,
 *  - gzip inflate: the WASM kernel vs node:zlib (stream and sync),
 *    DecompressionStream, fflate, the previous JS decoder, and the native
 *    `gzip -dc`, `pigz -dc`, `libdeflate-gunzip` when installed;
 *  - sha256: node:crypto vs hash-wasm vs ocigen's digester vs `sha256sum`;
 *  - zstd decode: ocigen's WASM decoder vs `zstd -dc` and fzstd (`zstd.ts`);
 *  - whole unpack to tmpfs: `ocigen unpack` vs `umoci unpack` vs `tar -xzf`
 *    per layer vs `pigz -dc | tar -x` (and `tar -xf` of the plain tars, the
 *    file-creation floor).
 * Figures are MB/s of uncompressed output (best of N runs) and ratios; peak
 * RSS of child processes comes from `/usr/bin/time` when installed. Benchmarks
 * are not tests: nothing here asserts timings.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import zlib from "node:zlib";
import crypto from "node:crypto";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as fflate from "fflate";
import { createSHA256 } from "hash-wasm";
import { WasmGunzip } from "../src/compress/inflate-wasm.ts";
import { GzipDecoder } from "../src/compress/gzip.ts";
import { createDigester } from "../src/digest/index.ts";
import { DENO_V8_FLAGS, isDeno, isSea, selfCommand } from "../src/install/self.ts";
import { type BenchImage, generateBenchImage } from "./image.ts";
import { have } from "../src/util/which.ts";
import { readChunks } from "./read-chunks.ts";
import { zstdSuite, type ZstdBenchRow } from "./zstd.ts";

/**
 * Options of {@linkcode runBench}.
 *
 * @example
 * ```ts
 * const o: BenchOptions = { scaleMB: 48, runs: 2 };
 * ```
 */
export interface BenchOptions {
  /** Uncompressed image size in MB (default 48; `--full` uses 400). */
  scaleMB?: number;
  /** Runs per measurement; the best is kept (default 3). */
  runs?: number;
  /** Work directory for the generated image (default: $TMPDIR/ocigen-bench-<scale>). */
  dir?: string;
  /** Where unpack benchmarks extract (default /dev/shm when present). */
  target?: string;
  /** Skip the whole-unpack benchmarks. */
  noUnpack?: boolean;
  /** Also run the single-layer memory test with a layer of this many MB (e.g. 2048). */
  hugeMB?: number;
  /** Progress lines (stderr). */
  log?: (msg: string) => void;
}

/**
 * One measured (or skipped) case.
 *
 * @example
 * ```ts
 * const r: BenchRow = { name: "gzip -dc", skipped: "gzip not installed" };
 * ```
 */
export interface BenchRow {
  name: string;
  /** MB/s of the reference byte count (uncompressed for inflate/unpack). */
  mbps?: number;
  seconds?: number;
  /** Peak RSS in MiB (child processes via /usr/bin/time; in-process: the process high-water mark so far). */
  rssMiB?: number;
  /** How many times faster ocigen's case is than this one. */
  ocigenSpeedup?: number;
  skipped?: string;
  note?: string;
}

/**
 * A goal and whether this run met it.
 *
 * @example
 * ```ts
 * const g: BenchGoal = { goal: "x >= 1.0x y", value: 1.2, met: true };
 * ```
 */
export interface BenchGoal {
  goal: string;
  value?: number;
  met?: boolean;
  note?: string;
}

/**
 * Everything a run measured.
 *
 * @example
 * ```ts
 * const r: BenchResult = await runBench();
 * ```
 */
export interface BenchResult {
  runtime: string;
  host: { cpus: number; model: string };
  image: { layers: number; sizeMB: number; compressedMB: number; entries: number; layout: string };
  inflate: BenchRow[];
  /** zstd decode on small/mid/large inputs (see zstd.ts). */
  zstd: ZstdBenchRow[];
  sha256: BenchRow[];
  unpack: BenchRow[];
  /** Single huge layer: unpack time and peak RSS (when `hugeMB` was given). */
  huge?: { sizeMB: number; compressedMB: number; rows: BenchRow[] };
  goals: BenchGoal[];
}

const MB = 1e6;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

function rssMiB(): number {
  // resourceUsage().maxRSS is KiB on Node and Deno
  return process.resourceUsage().maxRSS / 1024;
}

/** Runs `fn` `runs` times, returns the best wall time in seconds. */
async function best(runs: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    b = Math.min(b, (performance.now() - t) / 1000);
  }
  return b;
}

/**
 * Runs a shell command under /usr/bin/time when present; returns wall
 * seconds and peak RSS (MiB). Throws when the command fails.
 *
 * @example
 * ```ts
 * const { seconds, rssMiB } = timeShell("tar -xzf l.tar.gz -C /tmp/x");
 * ```
 */
export function timeShell(cmd: string, env?: Record<string, string>): { seconds: number; rssMiB?: number } {
  const timed = fs.existsSync("/usr/bin/time");
  const rssFile = path.join(os.tmpdir(), `ocigen-bench-rss-${process.pid}`);
  const argv = timed ? ["/usr/bin/time", "-f", "%M", "-o", rssFile, "sh", "-c", cmd] : ["sh", "-c", cmd];
  const t = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${String(r.stderr).trim().split("\n").slice(-3).join(" | ")}`);
  let rss: number | undefined;
  if (timed) {
    try {
      rss = Number(fs.readFileSync(rssFile, "utf8").trim().split("\n").pop()) / 1024;
      fs.rmSync(rssFile, { force: true });
    } catch {
      // no figure
    }
  }
  return { seconds, rssMiB: rss };
}

/**
 * Quotes `s` for `sh -c`.
 *
 * @example
 * ```ts
 * sh("it's"); // 'it'\''s'
 * ```
 */
export const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The command that starts ocigen (this process's CLI, or the sources in a dev run).
 *
 * @example
 * ```ts
 * spawnSync(ocigenCommand()[0], [...ocigenCommand().slice(1), "--version"]);
 * ```
 */
export function ocigenCommand(): string[] {
  const script = process.argv[1] ?? "";
  if (isSea() || /ocigen(\.m?js)?$/.test(path.basename(script)) || process.env.OCIGEN_SELF) return selfCommand(process.env.OCIGEN_SELF);
  if (isDeno()) return [process.execPath, "run", ...DENO_V8_FLAGS, "-A", path.join(root, "src/main.ts")];
  return nodeBundleCommand(process.execPath);
}

/**
 * ocigen's bundle under Node (`node` is the Node binary to use): the built
 * bundle when it is newer than every source file, else a fresh bundle of the
 * sources (esbuild, as `npm run build` does), else the sources via tsx.
 *
 * @example
 * ```ts
 * const [node, ...args] = nodeBundleCommand("node"); // ["node", ".../dist/ocigen.mjs"]
 * ```
 */
export function nodeBundleCommand(node: string): string[] {
  const main = path.join(root, "src/main.ts");
  const dist = path.join(root, "dist/ocigen.mjs");
  if (!fs.existsSync(path.join(root, "src"))) return [node, dist];
  if (fs.existsSync(dist) && fs.statSync(dist).mtimeMs > newest(path.join(root, "src"))) return [node, dist];
  const esbuild = path.join(root, "node_modules/.bin/esbuild");
  if (fs.existsSync(esbuild)) {
    const out = path.join(os.tmpdir(), `ocigen-bench-cli-${process.pid}.mjs`);
    const r = spawnSync(esbuild, [
      main, "--bundle", "--platform=node", "--format=esm", "--target=node20", "--log-level=error", `--outfile=${out}`,
      "--banner:js=import { createRequire as __ocigenCreateRequire } from 'node:module'; const require = __ocigenCreateRequire(import.meta.url);",
    ], { stdio: "ignore" });
    if (r.status === 0) {
      process.once("exit", () => fs.rmSync(out, { force: true }));
      return [node, out];
    }
  }
  return [node, "--import", "tsx", main];
}

// ---------------------------------------------------------------- suites

async function inflateSuite(img: BenchImage, runs: number, log: (m: string) => void): Promise<BenchRow[]> {
  const blobs = img.layers.map((l) => l.blob);
  const total = img.size;
  const rows: BenchRow[] = [];
  const add = (name: string, seconds: number, rss?: number, note?: string) => {
    rows.push({ name, seconds, mbps: total / MB / seconds, rssMiB: rss, note });
    log(`  inflate ${name}: ${(total / MB / seconds).toFixed(0)} MB/s`);
  };
  const check = (n: number, name: string) => {
    if (n !== total) throw new Error(`bench: ${name} produced ${n} bytes, expected ${total}`);
  };
  const CH = 1 << 20;

  // in-process, lowest memory first (the RSS column is the running high-water mark)
  const wasm = await best(runs, () => {
    let n = 0;
    for (const b of blobs) {
      const g = new WasmGunzip({ write: (c) => void (n += c.length), end() {} });
      readChunks(b, CH, (c) => g.write(c));
      g.end();
    }
    check(n, "wasm");
  });
  add("ocigen WASM inflate (stream)", wasm, rssMiB());

  const prev = await best(Math.min(runs, 2), () => {
    let n = 0;
    for (const b of blobs) {
      const g = new GzipDecoder({ write: (c) => void (n += c.length), end() {} });
      readChunks(b, CH, (c) => g.write(c));
      g.end();
    }
    check(n, "GzipDecoder");
  });
  add("fflate Inflate + JS framing (previous decoder)", prev, rssMiB());

  const ff = await best(Math.min(runs, 2), () => {
    let n = 0;
    for (const b of blobs) {
      const g = new fflate.Gunzip((c) => void (n += c.length));
      readChunks(b, CH, (c) => g.push(c.slice()));
      g.push(new Uint8Array(0), true);
    }
    check(n, "fflate");
  });
  add("fflate Gunzip (stream)", ff, rssMiB());

  const zs = await best(runs, async () => {
    let n = 0;
    for (const b of blobs) {
      await new Promise<void>((resolve, reject) => {
        const g = zlib.createGunzip();
        g.on("data", (c: Uint8Array) => void (n += c.length));
        g.on("end", resolve);
        g.on("error", reject);
        const rs = fs.createReadStream(b, { highWaterMark: CH });
        rs.on("error", reject);
        rs.pipe(g);
      });
    }
    check(n, "zlib stream");
  });
  add("node:zlib createGunzip (stream)", zs, rssMiB());

  if (typeof DecompressionStream === "function") {
    const ds = await best(runs, async () => {
      let n = 0;
      for (const b of blobs) {
        const s = new Blob([fs.readFileSync(b)]).stream().pipeThrough(new DecompressionStream("gzip"));
        const reader = s.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          n += value.length;
        }
      }
      check(n, "DecompressionStream");
    });
    add("DecompressionStream (web stream)", ds, rssMiB());
  } else rows.push({ name: "DecompressionStream (web stream)", skipped: "not available in this runtime" });

  const zsync = await best(runs, () => {
    let n = 0;
    for (const b of blobs) n += zlib.gunzipSync(fs.readFileSync(b)).length;
    check(n, "zlib sync");
  });
  add("node:zlib gunzipSync (whole buffer)", zsync, rssMiB());

  const list = blobs.map(sh).join(" ");
  for (const [name, tool, cmd] of [
    ["gzip -dc", "gzip", `gzip -dc ${list} >/dev/null`],
    ["pigz -dc", "pigz", `pigz -dc ${list} >/dev/null`],
    ["libdeflate-gunzip -c", "libdeflate-gunzip", blobs.map((b) => `libdeflate-gunzip -c ${sh(b)}`).join(" && ") + " >/dev/null"],
  ] as const) {
    if (!have(tool)) {
      rows.push({ name, skipped: `${tool} not installed` });
      log(`  inflate ${name}: skipped (${tool} not installed)`);
      continue;
    }
    let b = Infinity;
    let rss: number | undefined;
    for (let i = 0; i < runs; i++) {
      const r = timeShell(cmd);
      if (r.seconds < b) {
        b = r.seconds;
        rss = r.rssMiB;
      }
    }
    add(name, b, rss, "native, includes process start");
  }
  const w = rows[0].mbps!;
  for (const r of rows) if (r.mbps) r.ocigenSpeedup = w / r.mbps;
  return rows;
}

async function shaSuite(img: BenchImage, runs: number, log: (m: string) => void): Promise<BenchRow[]> {
  const files = img.layers.map((l) => l.tar);
  const total = img.size;
  const rows: BenchRow[] = [];
  const add = (name: string, seconds: number, rss?: number, note?: string) => {
    rows.push({ name, seconds, mbps: total / MB / seconds, rssMiB: rss, note });
    log(`  sha256 ${name}: ${(total / MB / seconds).toFixed(0)} MB/s`);
  };
  const want = img.layers.map((l) => l.diffId);
  const CH = 1 << 20;
  add("ocigen digester (createDigester)", await best(runs, () => {
    files.forEach((f, i) => {
      const d = createDigester("sha256");
      readChunks(f, CH, (c) => d.update(c));
      if (d.digest() !== want[i]) throw new Error("bench: digest mismatch");
    });
  }), rssMiB());
  add("node:crypto createHash", await best(runs, () => {
    files.forEach((f, i) => {
      const h = crypto.createHash("sha256");
      readChunks(f, CH, (c) => h.update(c));
      if (`sha256:${h.digest("hex")}` !== want[i]) throw new Error("bench: digest mismatch");
    });
  }), rssMiB());
  const hw = await createSHA256();
  add("hash-wasm (WASM)", await best(runs, () => {
    files.forEach((f, i) => {
      hw.init();
      readChunks(f, CH, (c) => hw.update(c));
      if (`sha256:${hw.digest("hex")}` !== want[i]) throw new Error("bench: digest mismatch");
    });
  }), rssMiB());
  if (have("sha256sum")) {
    let b = Infinity, rss: number | undefined;
    for (let i = 0; i < runs; i++) {
      const r = timeShell(`sha256sum ${files.map(sh).join(" ")}`);
      if (r.seconds < b) { b = r.seconds; rss = r.rssMiB; }
    }
    add("sha256sum", b, rss, "native, includes process start");
  } else rows.push({ name: "sha256sum", skipped: "sha256sum not installed" });
  const w = rows[0].mbps!;
  for (const r of rows) if (r.mbps) r.ocigenSpeedup = w / r.mbps;
  return rows;
}

async function unpackSuite(img: BenchImage, runs: number, target: string, log: (m: string) => void, only?: string[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const total = img.size;
  const work = fs.mkdtempSync(path.join(target, "ocigen-bench-"));
  const dest = path.join(work, "out");
  const clean = () => fs.rmSync(dest, { recursive: true, force: true });
  const ocigen = ocigenCommand();
  const layoutRef = `${img.layout}:${img.tag}`;
  const ocigenUnpack = () => `${ocigen.map(sh).join(" ")} unpack --image ${sh(layoutRef)} ${sh(dest)}`;
  const cases: { name: string; tool?: string; cmd: () => string; pre?: () => void; note?: string; env?: Record<string, string> }[] = [
    { name: "ocigen unpack", cmd: ocigenUnpack, note: `run as: ${ocigen.map((s) => path.basename(s)).join(" ")}`, env: { OCIGEN_INFLATE: "" } },
    { name: "ocigen unpack, no next-layer lookahead", cmd: ocigenUnpack, env: { OCIGEN_INFLATE: "", OCIGEN_LOOKAHEAD: "0" } },
    { name: "ocigen unpack, inflate + hashes in this thread", cmd: ocigenUnpack, env: { OCIGEN_INFLATE: "wasm" } },
    { name: "ocigen unpack, previous JS inflate (fflate)", cmd: ocigenUnpack, env: { OCIGEN_INFLATE: "js" } },
    { name: "umoci unpack", tool: "umoci", cmd: () => `umoci unpack --image ${sh(layoutRef)} ${sh(dest)}` },
    {
      name: "tar -xzf (per layer, no whiteouts)", tool: "tar", pre: () => fs.mkdirSync(dest),
      cmd: () => img.layers.map((l) => `tar -xzf ${sh(l.blob)} -C ${sh(dest)}`).join(" && "),
    },
    {
      name: "pigz -dc | tar -x (per layer)", tool: "pigz", pre: () => fs.mkdirSync(dest),
      cmd: () => img.layers.map((l) => `pigz -dc ${sh(l.blob)} | tar -x -C ${sh(dest)}`).join(" && "),
    },
    {
      name: "tar -xf of the plain tars (file creation floor)", tool: "tar", pre: () => fs.mkdirSync(dest),
      cmd: () => img.layers.map((l) => `tar -xf ${sh(l.tar)} -C ${sh(dest)}`).join(" && "),
    },
  ];
  try {
    for (const c of cases) {
      if (only && !only.includes(c.name)) continue;
      if (c.tool && !have(c.tool)) {
        rows.push({ name: c.name, skipped: `${c.tool} not installed` });
        log(`  unpack ${c.name}: skipped (${c.tool} not installed)`);
        continue;
      }
      let b = Infinity, rss: number | undefined;
      try {
        for (let i = 0; i < runs; i++) {
          clean();
          c.pre?.();
          const r = timeShell(c.cmd(), c.env);
          if (r.seconds < b) { b = r.seconds; rss = r.rssMiB; }
        }
      } catch (e) {
        rows.push({ name: c.name, skipped: `failed: ${(e as Error).message.slice(0, 300)}` });
        log(`  unpack ${c.name}: FAILED ${(e as Error).message.slice(0, 300)}`);
        continue;
      } finally {
        clean();
      }
      rows.push({ name: c.name, seconds: b, mbps: total / MB / b, rssMiB: rss, note: c.note });
      log(`  unpack ${c.name}: ${b.toFixed(2)} s`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const o = rows[0].mbps;
  if (o) for (const r of rows) if (r.mbps && r !== rows[0]) r.ocigenSpeedup = o / r.mbps;
  return rows;
}

/**
 * Generates the bench image (cached) and runs every suite.
 *
 * @example
 * ```ts
 * const res = await runBench({ scaleMB: 48, runs: 2 });
 * console.log(formatBench(res));
 * ```
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const scaleMB = opts.scaleMB ?? 48;
  const runs = opts.runs ?? 3;
  const log = opts.log ?? (() => {});
  const dir = opts.dir ?? path.join(os.tmpdir(), `ocigen-bench-${scaleMB}`);
  log(`generating (or reusing) the bench image in ${dir}`);
  const img = await generateBenchImage({ dir, scaleMB, log });
  const target = opts.target ?? (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir());
  const runtime = isDeno()
    ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
    : `node ${process.version}`;
  // sha256 first: it streams, so the in-process RSS high-water marks of the
  // inflate rows (whole-buffer cases last) stay meaningful
  log("sha256:");
  const sha256 = await shaSuite(img, runs, log);
  log("inflate:");
  const inflate = await inflateSuite(img, runs, log);
  log("zstd:");
  const zstd = zstdSuite(img, runs, log);
  let unpack: BenchRow[] = [];
  if (!opts.noUnpack) {
    log(`unpack to ${target}:`);
    unpack = await unpackSuite(img, Math.max(1, Math.min(runs, 3)), target, log);
  }
  let huge: BenchResult["huge"];
  if (opts.hugeMB) {
    const hdir = path.join(path.dirname(dir), `ocigen-bench-single-${opts.hugeMB}`);
    log(`single-layer memory test: generating (or reusing) a ${opts.hugeMB} MB layer in ${hdir}`);
    const himg = await generateBenchImage({ dir: hdir, scaleMB: opts.hugeMB, shape: "single", level: 1, log });
    log(`unpack of the single ${(himg.size / MB).toFixed(0)} MB layer to ${target}:`);
    const rows = await unpackSuite(himg, 1, target, log, ["ocigen unpack", "tar -xzf (per layer, no whiteouts)"]);
    huge = { sizeMB: himg.size / MB, compressedMB: himg.compressedSize / MB, rows };
  }
  const find = (rows: BenchRow[], prefix: string) => rows.find((r) => r.name.startsWith(prefix) && r.mbps);
  const goals: BenchGoal[] = [];
  const ratioGoal = (goal: string, a: BenchRow | undefined, b: BenchRow | undefined, min: number, what: string) => {
    if (!a || !b) goals.push({ goal, note: `not measured (${what} missing)` });
    else {
      const v = a.mbps! / b.mbps!;
      goals.push({ goal, value: v, met: v >= min });
    }
  };
  const w = find(inflate, "ocigen WASM");
  ratioGoal("WASM inflate >= 1.0x node:zlib stream", w, find(inflate, "node:zlib createGunzip"), 1.0, "zlib stream");
  ratioGoal("WASM inflate >= 0.8x libdeflate-gunzip", w, find(inflate, "libdeflate"), 0.8, "libdeflate-gunzip");
  const zl = (name: string) => zstd.find((r) => r.input === "large" && r.name.startsWith(name) && r.mbps) as BenchRow | undefined;
  ratioGoal("zstd decode (WASM) >= 0.5x zstd -dc (large input)", zl("ocigen WASM"), zl("zstd -dc"), 0.5, "zstd");
  const ou = find(unpack, "ocigen unpack");
  ratioGoal("ocigen unpack >= 3x faster than umoci unpack", ou, find(unpack, "umoci"), 3, "umoci or ocigen unpack");
  ratioGoal("ocigen unpack >= 1.5x faster than tar -xzf", ou, find(unpack, "tar -xzf"), 1.5, "tar or ocigen unpack");
  const hu = huge ? find(huge.rows, "ocigen unpack") : undefined;
  if (huge && hu?.rssMiB) {
    goals.push({ goal: `peak RSS < 256 MiB unpacking a single ${(huge.sizeMB / 1000).toFixed(1)} GB layer`, value: hu.rssMiB, met: hu.rssMiB < 256 });
  } else if (huge) goals.push({ goal: "peak RSS < 256 MiB for a single large layer", note: "not measured (ocigen unpack failed or /usr/bin/time missing)" });
  if (ou?.rssMiB) {
    goals.push({
      goal: "ocigen unpack peak RSS < 256 MiB", value: ou.rssMiB, met: ou.rssMiB < 256,
      note: `on this image (largest layer ${(Math.max(...img.layers.map((l) => l.size)) / MB).toFixed(0)} MB); memory is bounded by design, not by layer size`,
    });
  }
  return {
    runtime,
    host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?" },
    image: {
      layers: img.layers.length, sizeMB: img.size / MB, compressedMB: img.compressedSize / MB,
      entries: img.layers.reduce((a, l) => a + l.entries, 0), layout: img.layout,
    },
    inflate, zstd, sha256, unpack, huge, goals,
  };
}

/**
 * Renders a result as the plain-text table `ocigen bench` prints.
 *
 * @example
 * ```ts
 * console.log(formatBench(await runBench()));
 * ```
 */
export function formatBench(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`ocigen bench — ${r.runtime}, ${r.host.cpus} CPUs (${r.host.model})`);
  lines.push(
    `image: ${r.image.layers} gzip layers, ${r.image.entries} entries, ${r.image.sizeMB.toFixed(1)} MB tar, ` +
      `${r.image.compressedMB.toFixed(1)} MB compressed (${(r.image.sizeMB / r.image.compressedMB).toFixed(2)}x)`,
  );
  const table = (title: string, unit: string, rows: BenchRow[], showTime: boolean) => {
    if (!rows.length) return;
    lines.push("");
    lines.push(`${title.padEnd(50)} ${unit.padStart(8)} ${showTime ? "seconds".padStart(8) : ""} ${"ocigen is".padStart(10)} ${"peak RSS".padStart(9)}`);
    for (const row of rows) {
      if (row.skipped) {
        lines.push(`  ${row.name.padEnd(48)} skipped: ${row.skipped}`);
        continue;
      }
      lines.push(
        `  ${row.name.padEnd(48)} ${row.mbps!.toFixed(0).padStart(8)} ${showTime ? row.seconds!.toFixed(2).padStart(8) : ""} ` +
          `${(row.ocigenSpeedup ? row.ocigenSpeedup.toFixed(2) + "x" : "").padStart(10)} ${(row.rssMiB ? row.rssMiB.toFixed(0) + " MiB" : "").padStart(9)}`,
      );
      if (row.note && !row.note.startsWith("native")) lines.push(`    (${row.note})`);
    }
  };
  table("gzip inflate (MB/s of tar output)", "MB/s", r.inflate, true);
  table("zstd decode (MB/s of output; small/mid/large input)", "MB/s", r.zstd.map((z) => ({ ...z, name: `${z.input}: ${z.name}` })), true);
  table("sha256 of the layer tars", "MB/s", r.sha256, true);
  table("whole unpack to tmpfs (MB/s of tar)", "MB/s", r.unpack, true);
  if (r.huge) {
    table(`single ${r.huge.sizeMB.toFixed(0)} MB layer (${r.huge.compressedMB.toFixed(0)} MB gzip -1)`, "MB/s", r.huge.rows, true);
  }
  lines.push("");
  lines.push("goals:");
  for (const g of r.goals) {
    const v = g.value === undefined ? "" : g.goal.includes("RSS") ? `${g.value.toFixed(0)} MiB` : `${g.value.toFixed(2)}x`;
    lines.push(`  [${g.met === undefined ? " ? " : g.met ? "met" : "NOT"}] ${g.goal}${v ? `: ${v}` : ""}${g.note ? ` (${g.note})` : ""}`);
  }
  lines.push("(in-process RSS is the process high-water mark after that case; \"ocigen is\" = how many times faster ocigen's case is)");
  return lines.join("\n");
}
