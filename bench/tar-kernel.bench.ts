/**
 * Micro benchmark of tar parsing: the WebAssembly kernel (`TarKernelParser`)
 * against the TypeScript reference (`TarParser`) on in-memory archives fed in
 * 256 KiB chunks (the inflate kernel's output size), best of N runs; and the
 * share of whiteout planning in applying a layer of 50k whiteouts, to decide
 * whether planning needs WebAssembly too. Times are CPU time of the process
 * (user + system), which a busy shared machine disturbs far less than wall time.
 *
 * Archives (deterministic):
 * - `small`: 200k entries of 0-200 bytes in 2k directories + 20 files of 4 MiB;
 * - `pax`: 50k entries that each carry a PAX header (fractional mtime, an xattr);
 * - `big`: 64 files of 4 MiB (content throughput, the kernel skips content).
 *
 * Whiteouts: a lower layer of 50k empty files in 500 directories is applied to
 * a root on tmpfs, then a layer of 50k `.wh.` entries removing all of them;
 * "planning" is the pure computation the applier does per whiteout entry
 * (`planEntry` of layer/plan.ts and the written-names lookup), timed on the
 * same entries without the filesystem.
 *
 * With `--apply A.tar B.tar ...` those layer tars are also applied in order
 * to a root on tmpfs (LayerApplier, as unpack does, without inflate) both ways.
 *
 * `node --import tsx bench/tar-kernel.bench.ts [--runs 5] [--json] [--apply L1.tar ...]`,
 * `deno run -A bench/tar-kernel.bench.ts [same]`.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { ApplyState, LayerApplier } from "../src/layer/apply.ts";
import { LayerWrites, planEntry } from "../src/layer/plan.ts";
import type { TarEntryHeader } from "../src/tar/header.ts";
import { TarKernelParser } from "../src/tar/kernel.ts";
import { type TarHandler, TarParser } from "../src/tar/parser.ts";
import { CollectSink } from "../src/stream/sink.ts";
import { TarWriter, type TarWriterEntry } from "../src/tar/writer.ts";

const CHUNK = 256 * 1024;

function build(entries: Iterable<TarWriterEntry>): Uint8Array {
  const out = new CollectSink();
  const w = new TarWriter(out);
  for (const e of entries) w.add(e);
  w.end();
  return out.bytes();
}

function* smallTree(): Iterable<TarWriterEntry> {
  const payload = new Uint8Array(200).fill(0x61);
  const big = new Uint8Array(4 << 20).fill(7);
  for (let d = 0; d < 2000; d++) yield { name: `usr/share/d${d}/`, type: "dir" };
  for (let i = 0; i < 200000; i++) {
    yield { name: `usr/share/d${i % 2000}/file-${i}.txt`, data: payload.subarray(0, i % 201), mtime: 1700000000 };
    if (i % 10000 === 0) yield { name: `usr/lib/big-${i}.so`, data: big };
  }
}

function* paxTree(): Iterable<TarWriterEntry> {
  for (let i = 0; i < 50000; i++) {
    yield { name: `p/d${i % 100}/f${i}`, data: "x", mtime: 1700000000.25, xattrs: { "user.k": "v" } };
  }
}

function* bigTree(): Iterable<TarWriterEntry> {
  const big = new Uint8Array(4 << 20).fill(9);
  for (let i = 0; i < 64; i++) yield { name: `big/${i}`, data: big };
}

type Make = (h: TarHandler) => { write(c: Uint8Array): void; end(): void };

/** CPU time of this process so far, ms (user + system; steadier than wall time on a shared machine). */
function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

function parseOnce(make: Make, tar: Uint8Array): { ms: number; entries: number } {
  let entries = 0;
  let bytes = 0;
  const h: TarHandler = {
    entry: () => {
      entries++;
    },
    data: (c) => {
      bytes += c.length;
    },
    entryEnd() {},
    end() {},
  };
  const t0 = cpuMs();
  const p = make(h);
  for (let o = 0; o < tar.length; o += CHUNK) p.write(tar.subarray(o, o + CHUNK));
  p.end();
  const ms = cpuMs() - t0;
  if (bytes < 0) throw new Error("unreachable");
  return { ms, entries };
}

function best(runs: number, fn: () => { ms: number; entries: number }): { ms: number; entries: number } {
  let b = fn();
  for (let i = 1; i < runs; i++) {
    const r = fn();
    if (r.ms < b.ms) b = r;
  }
  return b;
}

/**
 * The applier's per-whiteout computation without the filesystem: the real
 * `planEntry` (path cleaning, classification, target) and the layer's
 * written-names lookup (`LayerWrites.covers`) for the target.
 */
function planWhiteouts(headers: TarEntryHeader[], writes: LayerWrites): number {
  let hits = 0;
  for (const h of headers) {
    const plan = planEntry(h, "layer bench");
    if (plan.kind !== "whiteout") continue;
    const dirRel = plan.dir.join("/");
    if (writes.covers(dirRel === "" ? plan.name : dirRel + "/" + plan.name)) hits++;
  }
  return hits;
}

function applyTar(root: string, tar: Uint8Array, kernel = false): number {
  const state = new ApplyState(root);
  const t0 = cpuMs();
  const applier = new LayerApplier(state, "layer bench");
  const p = kernel ? new TarKernelParser(applier) : new TarParser(applier);
  for (let o = 0; o < tar.length; o += CHUNK) p.write(tar.subarray(o, o + CHUNK));
  p.end();
  return cpuMs() - t0;
}

/**
 * Applies the layer tars `files` in order to a fresh root on tmpfs, with the
 * reference parser then with the kernel, interleaved; best CPU ms of each.
 */
function applyBoth(files: string[], runs: number): { ts: number; wasm: number } {
  const tars = files.map((f) => new Uint8Array(fs.readFileSync(f)));
  const tmpBase = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const best = { ts: Infinity, wasm: Infinity };
  for (let r = 0; r < runs; r++) {
    for (const kernel of [false, true]) {
      const root = fs.mkdtempSync(path.join(tmpBase, "ocigen-tk-apply-"));
      try {
        let ms = 0;
        for (const t of tars) ms += applyTar(root, t, kernel);
        const k = kernel ? "wasm" : "ts";
        best[k] = Math.min(best[k], ms);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    }
  }
  return best;
}

/** Runs the benchmark; returns the figures. `applyTars`: layer tars to also apply both ways. */
export function runTarKernelBench(runs: number, applyTars: string[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  if (applyTars.length) {
    const a = applyBoth(applyTars, runs);
    out["apply.ts.ms"] = +a.ts.toFixed(0);
    out["apply.wasm.ms"] = +a.wasm.toFixed(0);
    out["apply.speedup"] = +(a.ts / a.wasm).toFixed(2);
  }
  const sets: Array<[string, Uint8Array]> = [["small", build(smallTree())], ["pax", build(paxTree())], ["big", build(bigTree())]];
  for (const [name, tar] of sets) {
    // interleaved rounds, best of each (the machine is shared: noise hits both alike)
    let ts = parseOnce((h) => new TarParser(h), tar);
    let wasm = parseOnce((h) => new TarKernelParser(h), tar);
    for (let r = 1; r < runs; r++) {
      const a = parseOnce((h) => new TarParser(h), tar);
      if (a.ms < ts.ms) ts = a;
      const b = parseOnce((h) => new TarKernelParser(h), tar);
      if (b.ms < wasm.ms) wasm = b;
    }
    const mb = tar.length / 1e6;
    out[`${name}.MB`] = +mb.toFixed(1);
    out[`${name}.entries`] = ts.entries;
    out[`${name}.ts.MBps`] = +(mb / (ts.ms / 1000)).toFixed(0);
    out[`${name}.wasm.MBps`] = +(mb / (wasm.ms / 1000)).toFixed(0);
    out[`${name}.ts.kEntriesps`] = +(ts.entries / ts.ms).toFixed(0);
    out[`${name}.wasm.kEntriesps`] = +(wasm.entries / wasm.ms).toFixed(0);
    out[`${name}.ts.ms`] = +ts.ms.toFixed(1);
    out[`${name}.wasm.ms`] = +wasm.ms.toFixed(1);
    out[`${name}.speedup`] = +(ts.ms / wasm.ms).toFixed(2);
  }

  // fixed cost: a parser on the kernel (instance + memory) against the reference, on an empty archive
  const empty = new Uint8Array(1024);
  let instK = Infinity;
  let instT = Infinity;
  for (let r = 0; r < Math.max(runs, 20); r++) {
    instT = Math.min(instT, parseOnce((h) => new TarParser(h), empty).ms);
    instK = Math.min(instK, parseOnce((h) => new TarKernelParser(h), empty).ms);
  }
  out["empty.ts.ms"] = +instT.toFixed(3);
  out["empty.wasm.ms"] = +instK.toFixed(3);

  // whiteouts
  const N = 50000;
  const lower = build((function* () {
    for (let d = 0; d < 500; d++) yield { name: `w/d${d}/`, type: "dir" } as TarWriterEntry;
    for (let i = 0; i < N; i++) yield { name: `w/d${i % 500}/f${i}`, data: "" } as TarWriterEntry;
  })());
  const upper = build((function* () {
    for (let i = 0; i < N; i++) yield { name: `w/d${i % 500}/.wh.f${i}`, data: "" } as TarWriterEntry;
  })());
  const headers: TarEntryHeader[] = [];
  const hp = new TarParser({ entry: (h) => headers.push(h), data() {}, entryEnd() {}, end() {} });
  hp.write(upper);
  hp.end();
  const tmpBase = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  let total = Infinity;
  for (let r = 0; r < Math.min(runs, 3); r++) {
    const root = fs.mkdtempSync(path.join(tmpBase, "ocigen-wh-"));
    try {
      applyTar(root, lower);
      total = Math.min(total, applyTar(root, upper));
      if (fs.readdirSync(path.join(root, "w/d0")).length !== 0) throw new Error("whiteouts not applied");
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  const parseOnly = best(runs, () => parseOnce((h) => new TarParser(h), upper)).ms;
  const writes = new LayerWrites();
  writes.mark("w/other");
  let plan = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = cpuMs();
    planWhiteouts(headers, writes);
    plan = Math.min(plan, cpuMs() - t0);
  }
  out["whiteouts"] = N;
  out["whiteouts.applyMs"] = +total.toFixed(1);
  out["whiteouts.parseMs"] = +parseOnly.toFixed(1);
  out["whiteouts.planMs"] = +plan.toFixed(1);
  out["whiteouts.planSharePct"] = +((100 * plan) / total).toFixed(1);
  return out;
}

const isMain = typeof process !== "undefined" && process.argv[1] && /tar-kernel\.bench\.ts$/.test(process.argv[1]);
const denoMain = (import.meta as unknown as { main?: boolean }).main === true;
if (isMain || denoMain) {
  const args = typeof process !== "undefined" ? process.argv.slice(2) : [];
  const ri = args.indexOf("--runs");
  const runs = ri >= 0 ? Number(args[ri + 1]) : 5;
  const ai = args.indexOf("--apply");
  const res = runTarKernelBench(runs, ai >= 0 ? args.slice(ai + 1).filter((a) => a.endsWith(".tar")) : []);
  if (args.includes("--json")) console.log(JSON.stringify(res));
  else for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(26)} ${v}`);
}
