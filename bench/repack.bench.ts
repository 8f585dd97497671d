// Repack throughput: a generated rootfs (default 500 MB) with 1% of it
// changed (files modified, added, deleted), repacked by `ocigen repack` and by
// `umoci repack` from the SAME bundle (unpacked by umoci, plus ocigen's manifest).
// Prints the median wall time of each, the rootfs throughput and the ratio.
//
//   node --import tsx bench/repack.bench.ts [--mb 500] [--runs 3] [--json] [--keep]
//
// ocigen runs as `node dist/ocigen.mjs` when built (npm run build), else in
// process (start-up not counted). umoci is skipped when not installed.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Layout } from "../src/oci/layout.ts";
import { insertPath } from "../src/repack/insert.ts";
import { repackBundle } from "../src/repack/repack.ts";
import { unpackBundle } from "../src/layer/unpack.ts";
import { writeBundleManifest } from "../src/bundle/manifest.ts";
import { have } from "../src/util/which.ts";
import { commitEmptyImage } from "./empty-image.ts";
import { benchFlags } from "./flags.ts";

const root = path.join(fileURLToPath(new URL(".", import.meta.url)), "..");
const { opt, json, keep, say } = benchFlags();
const MB = opt("--mb", 500);
const RUNS = opt("--runs", 3);

// deterministic PRNG (xorshift32)
let seed = 0x9e3779b9;
const rnd = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 0x100000000;
};

// half-compressible content: random bytes and text-like runs
const POOL = Buffer.alloc(16 << 20);
for (let i = 0; i < POOL.length; i += 4) POOL.writeUInt32LE((rnd() * 0x100000000) >>> 0, i);
for (let i = 0; i < POOL.length; i += 8192) POOL.fill("lorem ipsum dolor sit amet ", i, i + 4096);
const content = (size: number) => {
  const off = Math.floor(rnd() * (POOL.length - size - 1));
  return POOL.subarray(off, off + size);
};

function genTree(dir: string, bytes: number): string[] {
  const files: string[] = [];
  let total = 0;
  let n = 0;
  while (total < bytes) {
    const r = rnd();
    const size = r < 0.7 ? 1024 + Math.floor(rnd() * 15 * 1024) : r < 0.95 ? 16384 + Math.floor(rnd() * 496 * 1024) : (512 << 10) + Math.floor(rnd() * (7 << 20));
    const rel = `usr/lib/d${n % 97}/s${(n >> 3) % 13}/f${n}.bin`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content(size));
    files.push(rel);
    total += size;
    n++;
  }
  return files;
}

function mutate(rootfs: string, files: string[], bytes: number): void {
  // ~1% of the bytes: rewrite some files, add some, delete some
  let changed = 0;
  let i = 0;
  seed = 12345;
  while (changed < bytes * 0.01) {
    const f = files[Math.floor(rnd() * files.length)];
    const p = path.join(rootfs, f);
    if (!fs.existsSync(p)) continue;
    const size = fs.statSync(p).size;
    fs.writeFileSync(p, content(size));
    changed += size;
    if (++i % 5 === 0) {
      fs.writeFileSync(path.join(rootfs, `${f}.new`), content(8192));
      changed += 8192;
    }
  }
  for (let k = 0; k < 20; k++) fs.rmSync(path.join(rootfs, files[(k * 7919) % files.length]), { force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "ocigen-repack-bench-"));
try {
  say(`generating a ${MB} MB rootfs in ${work} ...`);
  const src = path.join(work, "src");
  const files = genTree(src, MB << 20);
  const layout = await Layout.init(path.join(work, "layout"));
  await commitEmptyImage(layout, "empty");
  say("writing the base image (uncompressed layer) ...");
  await insertPath(layout, src, "/", { tag: "empty", newTag: "base", compression: "none" });
  fs.rmSync(src, { recursive: true, force: true });

  // ONE bundle for both tools: unpacked by umoci (so it has umoci's mtree), then
  // given ocigen's manifest too; the same 1% change is then repacked by each.
  const bundle = path.join(work, "bundle");
  const withUmoci = have("umoci");
  if (withUmoci) {
    say("umoci unpack + ocigen bundle manifest ...");
    const u = spawnSync("umoci", ["unpack", "--image", `${layout.dir}:base`, bundle], { stdio: ["ignore", "ignore", "pipe"] });
    if (u.status !== 0) throw new Error(`umoci unpack failed: ${u.stderr}`);
    const t0 = performance.now();
    await writeBundleManifest(bundle, path.join(bundle, "rootfs"));
    say(`  ocigen manifest of the bundle: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  } else {
    say("umoci not installed: ocigen unpack only");
    await unpackBundle(layout, await layout.resolve("base"), bundle);
  }
  mutate(path.join(bundle, "rootfs"), files, MB << 20);

  const dist = path.join(root, "dist/ocigen.mjs");
  const useDist = fs.existsSync(dist);
  const results: Record<string, number[]> = { ocigen: [], umoci: [] };
  for (let r = 0; r < RUNS; r++) {
    // alternate the tools so that neither always runs with a warmer page cache
    let t0 = performance.now();
    if (useDist) {
      const p = spawnSync(process.execPath, [dist, "repack", "--image", `${layout.dir}:o${r}`, bundle], { stdio: ["ignore", "ignore", "pipe"] });
      if (p.status !== 0) throw new Error(`ocigen repack failed: ${p.stderr}`);
    } else {
      await repackBundle(layout, bundle, { tag: `o${r}` });
    }
    results.ocigen.push((performance.now() - t0) / 1000);
    say(`ocigen repack run ${r + 1}: ${results.ocigen.at(-1)!.toFixed(2)} s`);
    if (!withUmoci) continue;
    // without --refresh-bundle neither tool changes the bundle: every run sees the same change
    t0 = performance.now();
    const p = spawnSync("umoci", ["repack", "--image", `${layout.dir}:u${r}`, bundle], { stdio: ["ignore", "ignore", "pipe"] });
    if (p.status !== 0) throw new Error(`umoci repack failed: ${p.stderr}`);
    results.umoci.push((performance.now() - t0) / 1000);
    say(`umoci repack run ${r + 1}: ${results.umoci.at(-1)!.toFixed(2)} s`);
  }
  const oLayer = (await layout.resolve("o0")).manifest.layers.at(-1)!;
  say(`ocigen layer: ${(oLayer.size / 1e6).toFixed(1)} MB compressed`);

  const o = median(results.ocigen);
  const u = results.umoci.length ? median(results.umoci) : undefined;
  const out = {
    rootfsMB: MB,
    changedPercent: 1,
    ocigen: { seconds: o, mbPerSecond: MB / o, mode: useDist ? "node dist/ocigen.mjs" : "in-process" },
    umoci: u === undefined ? null : { seconds: u, mbPerSecond: MB / u },
    speedup: u === undefined ? null : u / o,
  };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`repack of a ${MB} MB rootfs with 1% changed (median of ${RUNS}):`);
    console.log(`  ocigen repack  ${o.toFixed(2)} s  (${(MB / o).toFixed(0)} MB/s of rootfs, ${out.ocigen.mode})`);
    if (u !== undefined) {
      console.log(`  umoci repack   ${u.toFixed(2)} s  (${(MB / u).toFixed(0)} MB/s of rootfs)`);
      console.log(`  ocigen is ${(u / o).toFixed(1)}x faster`);
    }
  }
} finally {
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`kept ${work}`);
}
