/**
 * The zstd decode suite of the benchmarks: ocigen's WebAssembly zstd decoder
 * (and the runtime's native zstd through ocigen's facade, where there is one)
 * against `zstd -dc` and fzstd (the previous decoder), on a small (1 MB), a
 * mid (16 MB) and a large (every layer tar of the bench image) input made with
 * `zstd -3` from the bench image's layer tars (cached beside the image).
 * MB/s are of decompressed bytes, best of N rounds that interleave the cases
 * (at least 5: a shared machine's load bursts hit every case alike); `zstd -dc` includes process
 * start, which dominates the small case, so the goal is judged on the large one.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { Decompress as FzstdDecompress } from "fzstd";
import { ZstdDecoder, type ZstdEngine } from "../src/compress/zstd.ts";
import { nativeZstdAvailable } from "../src/compress/zstd-native.ts";
import { have } from "../src/util/which.ts";
import type { BenchImage } from "./image.ts";
import { readChunks } from "./read-chunks.ts";

/**
 * One measured (or skipped) zstd case.
 *
 * @example
 * ```ts
 * const r: ZstdBenchRow = { input: "large", name: "zstd -dc", mbps: 1100 };
 * ```
 */
export interface ZstdBenchRow {
  input: string;
  name: string;
  mbps?: number;
  seconds?: number;
  /** ocigen WASM MB/s divided by this row's MB/s. */
  ocigenSpeedup?: number;
  skipped?: string;
}

const MB = 1e6;

function best(runs: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    b = Math.min(b, (performance.now() - t) / 1000);
  }
  return b;
}

/** Writes the three inputs (plain and `zstd -3`) once; returns [name, plain size, .zst path]. */
function inputs(img: BenchImage, dir: string): [string, number, string][] {
  const out: [string, number, string][] = [];
  const tars = img.layers.map((l) => l.tar);
  const total = tars.reduce((a, t) => a + fs.statSync(t).size, 0);
  for (const [name, size] of [["small", 1e6], ["mid", 16e6], ["large", total]] as const) {
    const n = Math.min(size, total);
    const plain = path.join(dir, `zstd-${name}.tar`);
    const z = `${plain}.zst`;
    if (!fs.existsSync(z) || fs.statSync(plain).size !== n) {
      const fd = fs.openSync(plain, "w");
      let left = n;
      for (const t of tars) {
        if (left <= 0) break;
        const b = fs.readFileSync(t);
        const part = b.subarray(0, Math.min(b.length, left));
        fs.writeSync(fd, part);
        left -= part.length;
      }
      fs.closeSync(fd);
      const r = spawnSync("zstd", ["-q", "-f", "-3", "-T1", plain, "-o", z]);
      if (r.status !== 0) throw new Error(`zstd -3 ${plain} failed: ${r.stderr}`);
    }
    out.push([name, n, z]);
  }
  return out;
}

/**
 * Runs the zstd decode suite (skipped with a row saying why when the `zstd`
 * command is missing).
 *
 * @example
 * ```ts
 * const rows = zstdSuite(img, 3, console.log);
 * ```
 */
export function zstdSuite(img: BenchImage, minRuns: number, log: (m: string) => void): ZstdBenchRow[] {
  const runs = Math.max(5, minRuns);
  if (!have("zstd")) {
    log("  zstd: skipped (zstd not installed)");
    return [{ input: "-", name: "zstd decode", skipped: "zstd not installed (needed to make the inputs)" }];
  }
  const rows: ZstdBenchRow[] = [];
  for (const [input, size, file] of inputs(img, path.dirname(img.layout))) {
    const check = (n: number, name: string) => {
      if (n !== size) throw new Error(`bench: ${name} produced ${n} bytes, expected ${size}`);
    };
    const ours = (engine: ZstdEngine) => () => {
      let n = 0;
      const d = new ZstdDecoder({ write: (c) => void (n += c.length), end() {} }, { engine });
      readChunks(file, 1 << 20, (c) => d.write(c));
      d.end();
      check(n, `ocigen ${engine}`);
    };
    const cases: [string, () => void, number][] = [["ocigen WASM zstd (stream)", ours("wasm"), runs]];
    if (nativeZstdAvailable()) cases.push(["ocigen on the runtime's zstd (node:zlib)", ours("native"), runs]);
    cases.push(["fzstd (previous decoder, input copied)", () => {
      let n = 0;
      const d = new FzstdDecompress((c) => void (n += c.length));
      readChunks(file, 1 << 20, (c) => d.push(c.slice()));
      d.push(new Uint8Array(0), true);
      check(n, "fzstd");
    }, Math.min(runs, 2)]);
    cases.push(["zstd -dc (native, includes process start)", () => {
      const r = spawnSync("sh", ["-c", `zstd -q -dc '${file}' >/dev/null`]);
      if (r.status !== 0) throw new Error(`zstd -dc ${file} failed`);
    }, runs]);
    // rounds interleave the cases, so a burst of load on a shared machine
    // does not fall on one case only; the best time of each case is kept
    const bestOf = cases.map(() => Infinity);
    const rounds = Math.max(...cases.map((c) => c[2]));
    for (let r = 0; r < rounds; r++) {
      cases.forEach(([, fn, n], i) => {
        if (r < n) bestOf[i] = Math.min(bestOf[i], best(1, fn));
      });
    }
    const group: ZstdBenchRow[] = cases.map(([name], i) => ({ input, name, seconds: bestOf[i], mbps: size / MB / bestOf[i] }));
    if (!nativeZstdAvailable()) group.splice(1, 0, { input, name: "ocigen on the runtime's zstd (node:zlib)", skipped: "no zstd in this runtime's node:zlib" });
    for (const g of group) if (g.mbps) log(`  zstd ${input} ${g.name}: ${g.mbps.toFixed(0)} MB/s`);
    const w = group[0].mbps!;
    for (const r of group) if (r.mbps) r.ocigenSpeedup = w / r.mbps;
    rows.push(...group);
  }
  return rows;
}
