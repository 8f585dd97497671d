/**
 * `ocigen bench --image L:T` / `--layout-dir DIR`: how fast layer application
 * is on the user's own images and filesystem. Each stage is measured by
 * running it alone over the same layers (page cache warm after the first
 * read), each later stage adding one step to the one before:
 *
 * 1. read + verify: read every layer blob, sha256 + size check;
 * 2. + inflate: … and decompress (gzip/zstd) to nowhere;
 * 3. + diff_id: … and sha256 the uncompressed stream;
 * 4. + tar parse: … and parse the tar headers (entries discarded);
 * 5. + fs writes: the full apply into a fresh directory under `--target-dir`;
 *
 * then end to end (`unpackRootfs`: the same plus the atomic publish), and in
 * the same run `umoci raw unpack` and `tar -x` per layer (no whiteouts) when
 * installed. A stage's own cost is the difference to the stage before.
 * Before each run that writes, the previous tree is removed and `sync` run
 * (untimed), so one run's write-back is not charged to the next; the writes
 * a run leaves dirty are not waited for (as after a real unpack).
 *
 * @module
 */
import * as fs from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { OcigenError, shortDigest } from "../errors.ts";
import { Layout, type ResolvedImage } from "../oci/layout.ts";
import { parseImageRef } from "../oci/refname.ts";
import type { Descriptor } from "../oci/types.ts";
import { createDigester } from "../digest/index.ts";
import { createDecoderFor } from "../compress/index.ts";
import { layerCompression } from "../oci/media-type.ts";
import { TarParser } from "../tar/parser.ts";
import type { ByteSink } from "../stream/sink.ts";
import { applyLayers, removeTree, unpackRootfs } from "../layer/unpack.ts";
import { discoverLayouts } from "../generator/discover.ts";
import { isDeno } from "../install/self.ts";
import { have } from "../util/which.ts";

/** Options of {@linkcode benchImages}. */
export interface ImageBenchOptions {
  /** `LAYOUT[:TAG]` references. */
  images?: string[];
  /** A tree of layouts: every distinct manifest of every tag. */
  layoutDir?: string;
  /** Where trees are written (default $TMPDIR). A fresh directory is made and removed inside it. */
  targetDir?: string;
  /** Runs per stage, best kept (default 2). */
  runs?: number;
  /** Skip umoci and tar. */
  noTools?: boolean;
  /** Where to look for umoci and tar (the settings' `path`; default the FHS directories). */
  path?: string;
  /** Progress lines. */
  log?: (m: string) => void;
}

/** One measured stage or tool. */
export interface StageRow {
  name: string;
  seconds?: number;
  /** MB of uncompressed layer data per second. */
  mbps?: number;
  /** Seconds this stage adds to the one before. */
  own?: number;
  /** How many times faster ocigen's end to end is. */
  ocigenSpeedup?: number;
  skipped?: string;
}

/** The result for one image. */
export interface ImageBench {
  image: string;
  manifest: string;
  layers: number;
  compressedMB: number;
  /** Uncompressed (tar) MB. */
  sizeMB: number;
  entries: number;
  stages: StageRow[];
  tools: StageRow[];
}

/** Everything {@linkcode benchImages} measured. */
export interface ImageBenchResult {
  runtime: string;
  cpus: number;
  target: string;
  /** File system type of the target (`stat -f`), if known. */
  fsType?: string;
  images: ImageBench[];
  /** Sums over all images (when more than one). */
  total?: ImageBench;
}

const MB = 1e6;
const NULL: ByteSink = { write() {}, end() {} };

async function best(runs: number, fn: () => Promise<unknown>, before?: () => void): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    before?.();
    const t = performance.now();
    await fn();
    b = Math.min(b, (performance.now() - t) / 1000);
  }
  return b;
}

function compression(d: Descriptor) {
  const c = layerCompression(d.mediaType);
  if (!c) throw new OcigenError("EMEDIATYPE", `Cannot bench layer ${shortDigest(d.digest)}: unsupported layer media type ${d.mediaType}`);
  return c;
}

/** Pipes every layer through `make(layer, index)`'s sink chain. */
async function eachLayer(layout: Layout, img: ResolvedImage, make: (d: Descriptor, i: number) => ByteSink): Promise<void> {
  const layers = img.manifest.layers;
  for (let i = 0; i < layers.length; i++) await layout.pipeBlob(layers[i], make(layers[i], i));
}

async function benchOne(layout: Layout, img: ResolvedImage, label: string, layoutDir: string, work: string, o: ImageBenchOptions): Promise<ImageBench> {
  const runs = o.runs ?? 2;
  const log = o.log ?? (() => {});
  const diffIds = img.config.rootfs?.diff_ids ?? [];
  let size = 0;
  let entries = 0;
  // Sizes and entry count (also warms the page cache).
  await eachLayer(layout, img, (d) => {
    const parser = new TarParser({ entry() { entries++; }, data() {}, entryEnd() {}, end() {} });
    return createDecoderFor(compression(d), { write(c) { size += c.length; parser.write(c); }, end() { parser.end(); } });
  });
  const rate = (s: number) => size / MB / s;
  const stages: StageRow[] = [];
  const add = (name: string, seconds: number) => {
    const prev = stages.length ? stages[stages.length - 1].seconds! : 0;
    stages.push({ name, seconds, mbps: rate(seconds), own: Math.max(0, seconds - prev) });
    log(`  ${label}: ${name}: ${seconds.toFixed(3)} s`);
  };
  add("read + verify (sha256, size)", await best(runs, () => eachLayer(layout, img, () => NULL)));
  add("+ inflate", await best(runs, () => eachLayer(layout, img, (d) => createDecoderFor(compression(d), NULL))));
  add("+ diff_id sha256", await best(runs, () => eachLayer(layout, img, (d, i) => {
    const h = createDigester("sha256");
    return createDecoderFor(compression(d), {
      write: (c) => h.update(c),
      end: () => {
        if (h.digest() !== diffIds[i]) throw new OcigenError("EDIFFID", `Cannot bench layer ${shortDigest(d.digest)}: diff_id mismatch`);
      },
    });
  })));
  add("+ tar parse", await best(runs, () => eachLayer(layout, img, (d) => {
    const h = createDigester("sha256");
    const parser = new TarParser({ entry() {}, data() {}, entryEnd() {}, end() {} });
    return createDecoderFor(compression(d), { write(c) { h.update(c); parser.write(c); }, end() { h.digest(); parser.end(); } });
  })));
  const dest = join(work, "apply");
  // Before every run that writes: remove the previous tree and flush dirty pages, so that
  // write-back of one run is not charged to the next.
  const clean = () => {
    removeTree(dest);
    spawnSync("sync", [], { stdio: "ignore" });
  };
  add("+ fs writes (full apply)", await best(runs, async () => {
    await applyLayers(layout, img.manifest.layers, diffIds, dest);
  }, () => {
    clean();
    fs.mkdirSync(dest);
  }));
  clean();
  const e2e = await best(runs, () => unpackRootfs(layout, img, dest), clean);
  clean();
  stages.push({ name: "end to end (unpackRootfs: + atomic publish)", seconds: e2e, mbps: rate(e2e) });
  log(`  ${label}: end to end: ${e2e.toFixed(3)} s`);

  const tools: StageRow[] = [];
  if (!o.noTools) {
    const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const tool = (name: string, need: string[], cmd: () => string, mk: boolean) => {
      const missing = need.find((t) => !have(t, o.path));
      if (missing) {
        tools.push({ name, skipped: `${missing} not installed` });
        return;
      }
      try {
        const s = bestSync(runs, () => {
          clean();
          if (mk) fs.mkdirSync(dest);
        }, () => {
          const r = spawnSync("sh", ["-c", cmd()], { stdio: ["ignore", "ignore", "pipe"] });
          if (r.status !== 0) throw new Error(String(r.stderr).trim().split("\n").slice(-2).join(" | ") || `exit ${r.status}`);
        });
        tools.push({ name, seconds: s, mbps: rate(s), ocigenSpeedup: s / e2e });
        log(`  ${label}: ${name}: ${s.toFixed(3)} s`);
      } catch (e) {
        tools.push({ name, skipped: `failed: ${(e as Error).message.slice(0, 200)}` });
      } finally {
        clean();
      }
    };
    tool("umoci raw unpack", ["umoci"], () => `umoci raw unpack --image ${shq(`${layoutDir}:${img.tag}`)} ${shq(dest)}`, false);
    const flags = (d: Descriptor) => ({ gzip: "-xzf", zstd: "--zstd -xf", none: "-xf" })[compression(d)];
    const needZstd = img.manifest.layers.some((d) => compression(d) === "zstd");
    tool("tar -x per layer (no whiteouts)", needZstd ? ["tar", "zstd"] : ["tar"], () =>
      img.manifest.layers.map((d) => `tar ${flags(d)} ${shq(layout.blobPath(d.digest))} -C ${shq(dest)}`).join(" && "), true);
  }
  return {
    image: label,
    manifest: img.manifestDescriptor.digest,
    layers: img.manifest.layers.length,
    compressedMB: img.manifest.layers.reduce((a, l) => a + l.size, 0) / MB,
    sizeMB: size / MB,
    entries,
    stages,
    tools,
  };
}

function bestSync(runs: number, before: () => void, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    before();
    const t = performance.now();
    fn();
    b = Math.min(b, (performance.now() - t) / 1000);
  }
  return b;
}

/**
 * Benchmarks layer application on the given images (see the module docs).
 *
 * @example
 * ```ts
 * const r = await benchImages({ images: ["/var/lib/oci/layouts/busybox:latest"], targetDir: "/var/tmp" });
 * console.log(formatImageBench(r));
 * ```
 */
export async function benchImages(o: ImageBenchOptions): Promise<ImageBenchResult> {
  const targets: Array<{ dir: string; tag: string; label: string }> = [];
  for (const ref of o.images ?? []) {
    const { dir, tag } = parseImageRef(ref);
    targets.push({ dir, tag, label: `${dir}:${tag}` });
  }
  if (o.layoutDir) {
    const disc = await discoverLayouts(o.layoutDir);
    for (const e of disc.errors) o.log?.(`skipped: ${e}`);
    for (const { name, dir } of disc.layouts) {
      const l = await Layout.open(dir);
      for (const tag of await l.listTags()) targets.push({ dir, tag, label: `${name}:${tag}` });
    }
  }
  if (targets.length === 0) throw new OcigenError("ENOTAG", "bench: no image (give --image LAYOUT:TAG or --layout-dir DIR with tagged layouts)");
  const target = resolve(o.targetDir ?? os.tmpdir());
  let work: string;
  try {
    work = fs.mkdtempSync(join(target, "ocigen-bench-image-"));
  } catch (e) {
    throw new OcigenError("EIO", `bench: cannot create a directory in --target-dir ${target}: ${(e as Error).message}`);
  }
  const fsType = spawnSync("stat", ["-f", "-c", "%T", work], { encoding: "utf8" }).stdout?.trim() || undefined;
  const images: ImageBench[] = [];
  const seen = new Set<string>();
  try {
    for (const t of targets) {
      const layout = await Layout.open(t.dir);
      const img = await layout.resolve(t.tag);
      if (seen.has(img.manifestDescriptor.digest)) continue; // same manifest as an earlier tag
      seen.add(img.manifestDescriptor.digest);
      o.log?.(`${t.label} (${img.manifest.layers.length} layers):`);
      images.push(await benchOne(layout, img, t.label, t.dir, work, o));
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const runtime = isDeno() ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}` : `node ${process.version}`;
  const res: ImageBenchResult = { runtime, cpus: os.cpus().length, target, fsType, images };
  if (images.length > 1) res.total = sumImages(images);
  return res;
}

function sumImages(images: ImageBench[]): ImageBench {
  const sumRows = (pick: (i: ImageBench) => StageRow[]) =>
    pick(images[0]).map((r, k) => {
      const rows = images.map((i) => pick(i)[k]);
      if (rows.some((x) => x.seconds === undefined)) return { name: r.name, skipped: rows.find((x) => x.skipped)?.skipped ?? "not measured" };
      const seconds = rows.reduce((a, x) => a + x.seconds!, 0);
      return { name: r.name, seconds, own: r.own === undefined ? undefined : rows.reduce((a, x) => a + (x.own ?? 0), 0) } as StageRow;
    });
  const size = images.reduce((a, i) => a + i.sizeMB, 0);
  const stages = sumRows((i) => i.stages).map((r) => ({ ...r, mbps: r.seconds ? size / r.seconds : undefined }));
  const e2e = stages[stages.length - 1].seconds!;
  const tools = sumRows((i) => i.tools).map((r) => ({ ...r, mbps: r.seconds ? size / r.seconds : undefined, ocigenSpeedup: r.seconds ? r.seconds / e2e : undefined }));
  return {
    image: `all ${images.length} images`, manifest: "", layers: images.reduce((a, i) => a + i.layers, 0),
    compressedMB: images.reduce((a, i) => a + i.compressedMB, 0), sizeMB: size, entries: images.reduce((a, i) => a + i.entries, 0), stages, tools,
  };
}

/**
 * The text `ocigen bench --image` prints.
 *
 * @example
 * ```ts
 * console.log(formatImageBench(await benchImages({ images: ["/l:latest"] })));
 * ```
 */
export function formatImageBench(r: ImageBenchResult): string {
  const out: string[] = [];
  out.push(`ocigen bench --image — ${r.runtime}, ${r.cpus} CPUs; writing to ${r.target}${r.fsType ? ` (${r.fsType})` : ""}`);
  const one = (i: ImageBench) => {
    out.push("");
    out.push(`${i.image}: ${i.layers} layers, ${i.entries} entries, ${i.sizeMB.toFixed(1)} MB tar, ${i.compressedMB.toFixed(1)} MB compressed`);
    out.push(`  ${"stage (each run alone, adding one step)".padEnd(46)} ${"seconds".padStart(8)} ${"MB/s".padStart(7)} ${"own s".padStart(7)}`);
    for (const s of i.stages) {
      out.push(`  ${s.name.padEnd(46)} ${s.seconds!.toFixed(3).padStart(8)} ${(s.mbps ? s.mbps.toFixed(0) : "").padStart(7)} ${(s.own !== undefined ? s.own.toFixed(3) : "").padStart(7)}`);
    }
    for (const t of i.tools) {
      if (t.skipped) out.push(`  ${t.name.padEnd(46)} skipped: ${t.skipped}`);
      else {
        const x = t.ocigenSpeedup!;
        const cmp = x >= 1 ? `ocigen end to end is ${x.toFixed(2)}x faster` : `ocigen end to end is ${(1 / x).toFixed(2)}x slower`;
        out.push(`  ${t.name.padEnd(46)} ${t.seconds!.toFixed(3).padStart(8)} ${t.mbps!.toFixed(0).padStart(7)}  (${cmp})`);
      }
    }
  };
  for (const i of r.images) one(i);
  if (r.total) one(r.total);
  out.push("");
  out.push("MB/s: uncompressed layer data per second; own s: what the stage adds to the one above; best of the runs, page cache warm.");
  return out.join("\n");
}
