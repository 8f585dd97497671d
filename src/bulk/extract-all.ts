/**
 * `ocigen extract --all`: every tag of every layout under imagelayoutdir
 * extracted into extractsdir exactly as the generated units' `extract` does
 * (it is called for every tag), so a later service start is a no-op.
 *
 * 1. Plan: discover the layouts, resolve every tag the generator makes a
 *    unit of (the per-image settings' tag selection, so `build`'s dated tags
 *    are skipped by default; each tag on its settings' `Platform=`, else the
 *    host's), group tags by manifest
 *    digest (one job per manifest, across layouts: the store is content
 *    addressed, so a manifest is extracted once however many tags name it).
 * 2. Reuse (option, see {@linkcode BulkOptions.reuse}): for each manifest
 *    still to extract, find the longest verified layer chain it extends — a
 *    store entry with a chain record, another image of this run, or, when
 *    several images share bottom layers that no image has alone, a scratch
 *    tree of those layers built once for them (`EXTRACTS/.store/.bulk-<pid>-<rand>/`,
 *    removed at the end; leftovers of a killed run are removed by the next).
 * 3. Run the jobs on a pool of `jobs` workers (worker processes for real
 *    parallelism, or this process), images with a source after it. A failed
 *    job fails its images only; images that were to start from it unpack
 *    every layer instead.
 * 4. Report: progress on a TTY (images done/total, bytes, rate, running
 *    images with their layer), then a summary table or JSON.
 *
 * Memory is bounded whatever `jobs`: each worker applies one image at a time
 * through the streaming engine; the plan holds only manifests and configs.
 *
 * @module
 */
import os from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { shortDigest, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import { Layout } from "../oci/layout.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { discoverLayouts } from "../generator/discover.ts";
import { imagePlatform, settingsForLayout } from "../generator/settings.ts";
import { selectTags } from "../generator/tags.ts";
import { checkImagePlatform } from "../oci/platform.ts";
import { type ChainRecord, openStore, type Store } from "../store/index.ts";
import { removeTree, type UnpackOptions } from "../layer/unpack.ts";
import { deadRunEntries, makeTempTree } from "../fs/temp-tree.ts";
import { progress as progressApi } from "../progress.ts";
import { CHAIN_FILE, chainIds, commonPrefix } from "../store/chain.ts";
import { type CopyMode, haveGnuCp, haveXattrTools } from "../store/copy.ts";
import { rootlessMode, storeSource } from "../store/reuse.ts";
import { type ChainJob, type ImageJob, type Job, type JobResult, type JobRunner, type JobSource, runJob } from "./job.ts";

/** How jobs run. */
export type BulkMode = "process" | "inline";

/** Options of {@linkcode extractAll}. */
export interface BulkOptions {
  config: GeneratorConfig;
  /** Parallel jobs (default {@linkcode defaultJobs}: the number of CPUs). */
  jobs?: number;
  /**
   * Start images from verified trees of images they extend (default true;
   * see bench/bulk.bench.ts for the measurement).
   */
  reuse?: boolean;
  /**
   * "process": up to `jobs` worker processes (default when jobs > 1; started
   * only when at least two images need extracting); "inline": this process.
   */
  mode?: BulkMode;
  /** Config file the worker processes load (`--config`). */
  configPath?: string;
  /** Passed to the unpack engine. */
  unpack?: UnpackOptions;
  /** Draw progress (default: when stderr is a TTY and not --quiet). */
  progress?: boolean;
  /** Store lock wait limit in ms (the `lockTimeoutMs` setting; default 1 hour). */
  lockTimeoutMs?: number;
  /** How source trees are copied (the `copyMode` setting; default "auto"). */
  copyMode?: CopyMode;
  /**
   * The command generated units run ocigen with (the `self` setting,
   * `$OCIGEN_SELF`): worker processes are started with it when set, else as
   * this process was started (bulk/workers.ts).
   */
  self?: string;
}

/** One row of the summary: an image (a manifest and the tags naming it). */
export interface BulkImage {
  /** `layout:tag[,tag…]` (several layouts joined by a space). */
  image: string;
  manifest?: string;
  layers: number;
  /** Layers applied (the rest came from the source tree). */
  applied: number;
  /** Compressed MB of the image's layers. */
  mb: number;
  /** Uncompressed MB applied. */
  unpackedMB: number;
  seconds: number;
  /** MB applied (uncompressed) per second of the image's wall time. */
  mbps: number;
  status: "extracted" | "reused" | "current" | "failed";
  /** What it was started from (status "reused"). */
  source?: string;
  error?: string;
  /** The process that extracted it. */
  pid?: number;
  /** Non-fatal problems (a source tree that could not be used, …). */
  warnings?: string[];
}

/** What {@linkcode extractAll} did. */
export interface BulkResult {
  images: BulkImage[];
  /** Scratch trees of shared layers built for reuse. */
  shared: BulkImage[];
  failed: string[];
  seconds: number;
  jobs: number;
  mode: BulkMode;
  reuse: boolean;
  /** Problems found while discovering layouts (their images are in `failed` when known). */
  errors: string[];
}

/** An image of the plan. */
interface Planned {
  job: ImageJob;
  label: string;
  chain: string[];
  /** Compressed sizes of the layers. */
  sizes: number[];
  stored: boolean;
  /** Index of the job this one starts from (another image or a chain job). */
  dep?: number;
}

const MB = 1e6;

/** What every job of a run gets of the bulk options. */
function jobContext(opts: BulkOptions) {
  return { config: opts.config, unpack: opts.unpack, lockTimeoutMs: opts.lockTimeoutMs, copyMode: opts.copyMode };
}

function inlineRunner(opts: BulkOptions): JobRunner {
  return {
    run: (job, hooks) => runJob(job, jobContext(opts), hooks),
    close: async () => {},
  };
}

/**
 * The default parallelism: the number of CPUs. Each job is one worker
 * process applying one image at a time through the streaming engine, so
 * memory is bounded by jobs x (runtime + fixed buffers), about 100 MiB each
 * (bench/bulk.bench.ts prints the peak), never by image or layer sizes.
 *
 * @example
 * ```ts
 * defaultJobs(); // 2 on a 2-CPU machine
 * ```
 */
export function defaultJobs(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

function cleanStaleBulkDirs(store: Store): void {
  const root = store.ensure();
  const pidOf = (n: string) => {
    const m = /^\.bulk-(\d+)-[0-9a-f]+$/.exec(n);
    return m ? Number(m[1]) : null;
  };
  for (const p of deadRunEntries(root, pidOf)) {
    try {
      removeTree(p);
      log.debug(`removed stale ${p}`);
    } catch { /* not fatal */ }
  }
}

/**
 * Discovers and resolves every tag; returns one job per manifest and the
 * failures met (as `label: message`).
 */
async function plan(cfg: GeneratorConfig, store: Store): Promise<{ planned: Planned[]; failures: BulkImage[]; errors: string[] }> {
  const disc = await discoverLayouts(cfg.imageLayoutDir);
  const errors = [...disc.errors];
  const failures: BulkImage[] = [];
  const byManifest = new Map<string, Planned>();
  const fail = (image: string, error: string) => failures.push({ image, layers: 0, applied: 0, mb: 0, unpackedMB: 0, seconds: 0, mbps: 0, status: "failed", error });
  for (const { name, dir } of disc.layouts) {
    let layout: Layout;
    let tags: string[];
    try {
      layout = await Layout.open(dir);
      // the tags the generator makes units of (settings files, dated tags excluded), on the settings' platform
      tags = selectTags(await layout.listTags(), settingsForLayout(cfg, name)).selected;
    } catch (e) {
      fail(name, (e as Error).message);
      continue;
    }
    for (const tag of tags) {
      try {
        const platform = imagePlatform(cfg, name, tag);
        const img = await layout.resolve(tag, platform);
        checkImagePlatform(img.config, platform, `${name}:${tag}`);
        const digest = img.manifestDescriptor.digest;
        let p = byManifest.get(digest);
        if (!p) {
          const diffIds = img.config.rootfs?.diff_ids ?? [];
          p = {
            job: { kind: "image", id: 0, refs: [], manifest: digest },
            label: "",
            chain: diffIds.length === img.manifest.layers.length ? chainIds(diffIds) : [],
            stored: store.has(digest),
            sizes: img.manifest.layers.map((l) => Number(l.size) || 0),
          };
          byManifest.set(digest, p);
        }
        let ref = p.job.refs.find((r) => r.name === name);
        if (!ref) p.job.refs.push(ref = { name, tags: [] });
        ref.tags.push(tag);
      } catch (e) {
        fail(`${name}:${tag}`, (e as Error).message);
      }
    }
  }
  const planned = [...byManifest.values()];
  planned.forEach((p, i) => {
    p.job.id = i;
    p.label = p.job.refs.map((r) => `${r.name}:${r.tags.join(",")}`).join(" ");
  });
  return { planned, failures, errors };
}

/**
 * Chooses a source for every image still to extract (see the module docs);
 * returns the chain jobs to build first.
 */
function planReuse(planned: Planned[], store: Store, records: readonly ChainRecord[], rootless: boolean, bulkDir: string, firstId: number): ChainJob[] {
  const byChain = new Map<string, string>(); // full chain id -> manifest with a usable record
  for (const r of records) {
    if (r.rootless === rootless && r.chain_ids.length > 0) byChain.set(r.chain_ids[r.chain_ids.length - 1], r.manifest);
  }
  const todo = planned.filter((p) => !p.stored && p.chain.length > 0).sort((a, b) => a.chain.length - b.chain.length || a.job.id - b.job.id);
  const chainJobs = new Map<string, ChainJob>();
  const recordSource = (chain: string[], max: number): JobSource | undefined => {
    for (let d = Math.min(max, chain.length); d >= 1; d--) {
      const m = byChain.get(chain[d - 1]);
      if (m) {
        const s = storeSource(store.root, m, rootless);
        if (s && s.depth === d) return s;
      }
    }
    return undefined;
  };
  todo.forEach((J, ji) => {
    let best = 0;
    let src = recordSource(J.chain, J.chain.length);
    if (src) best = src.depth;
    // An image of this run whose whole chain is a prefix of J's (planned before J).
    for (let ki = 0; ki < ji; ki++) {
      const K = todo[ki];
      const d = K.chain.length;
      if (d > best && K.chain[d - 1] === J.chain[d - 1]) {
        best = d;
        J.dep = K.job.id;
        src = {
          path: store.rootfsOf(K.job.manifest), depth: d, chain: K.chain[d - 1], label: K.label,
          record: join(store.entryOf(K.job.manifest), CHAIN_FILE),
        };
      }
    }
    // Bottom layers J shares with another image, which neither has alone.
    let p = 0;
    let with_: Planned | undefined;
    for (const K of todo) {
      if (K === J) continue;
      const c = commonPrefix(J.chain, K.chain);
      if (c > p && c < J.chain.length && c < K.chain.length) {
        p = c;
        with_ = K;
      }
    }
    if (with_ && p > best) {
      const key = J.chain[p - 1];
      let cj = chainJobs.get(key);
      if (!cj) {
        const ref = J.job.refs[0];
        cj = {
          kind: "chain", id: firstId + chainJobs.size, name: ref.name, tag: ref.tags[0], manifest: J.job.manifest,
          depth: p, chain: key, dir: join(bulkDir, `chain-${chainJobs.size}`), source: recordSource(J.chain, p - 1),
        };
        chainJobs.set(key, cj);
      }
      best = p;
      J.dep = cj.id;
      src = { path: cj.dir, depth: p, chain: key, label: `shared ${p}-layer base ${shortDigest(key)}`, record: `${cj.dir}.json` };
    }
    if (src) J.job.source = src;
  });
  return [...chainJobs.values()];
}

/**
 * Extracts every tag of every layout (see the module docs). Never throws for
 * a failed image: see `failed`.
 *
 * @example
 * ```ts
 * const r = await extractAll({ config: loadGeneratorConfig(), jobs: 4 });
 * if (r.failed.length) console.error("failed:", r.failed.join(", "));
 * ```
 */
export async function extractAll(opts: BulkOptions): Promise<BulkResult> {
  const t0 = performance.now();
  const cfg = opts.config;
  const jobs = Math.max(1, Math.floor(opts.jobs ?? defaultJobs()));
  const mode: BulkMode = opts.mode ?? (jobs > 1 ? "process" : "inline");
  const reuse = opts.reuse ?? true;
  const rootless = rootlessMode(opts.unpack);
  const store = openStore(cfg.extractsDir, { lockTimeoutMs: opts.lockTimeoutMs, copyMode: opts.copyMode, unpack: opts.unpack });
  cleanStaleBulkDirs(store);

  const { planned, failures, errors } = await plan(cfg, store);
  const bulkDir = join(store.ensure(), `.bulk-${process.pid}-${randomBytes(4).toString("hex")}`);
  const canCopy = haveGnuCp() || haveXattrTools();
  if (reuse && !canCopy) log.info("neither GNU cp nor getfattr/setfattr found: every image is unpacked from its layers (trees cannot be copied with their xattrs)");
  const chainJobs = reuse && canCopy ? planReuse(planned, store, await store.chainRecords(), rootless, bulkDir, planned.length) : [];
  // Order: chain jobs, then images by chain length (sources before their users), current ones first.
  const order: Job[] = [
    ...planned.filter((p) => p.stored).map((p) => p.job),
    ...chainJobs,
    ...planned.filter((p) => !p.stored).sort((a, b) => a.chain.length - b.chain.length || a.job.id - b.job.id).map((p) => p.job),
  ];
  const depOf = new Map<number, number>();
  for (const p of planned) if (p.dep !== undefined) depOf.set(p.job.id, p.dep);
  const labels = new Map<number, string>(planned.map((p) => [p.job.id, p.label]));
  for (const c of chainJobs) labels.set(c.id, `(shared ${c.depth}-layer base)`);

  // ETA: the compressed bytes still to apply times the inflation ratio seen so far (2.5 until known).
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const todoBytes = new Map<number, number>();
  for (const p of planned) if (!p.stored) todoBytes.set(p.job.id, sum(p.sizes.slice(p.job.source?.depth ?? 0)));
  for (const c of chainJobs) todoBytes.set(c.id, sum(planned[planned.findIndex((p) => p.job.manifest === c.manifest)]?.sizes.slice(c.source?.depth ?? 0, c.depth) ?? []));
  let seenIn = 0, seenOut = 0, doneOut = 0;
  const estimate = () => {
    const ratio = seenIn > 0 ? seenOut / seenIn : 2.5;
    let left = 0;
    for (const [id, b] of todoBytes) if (!results.has(id)) left += b * ratio;
    return Math.round(doneOut + left);
  };
  const bar = progressApi.start("extract --all", { items: planned.length, enabled: opts.progress });
  const running = new Map<number, string>();
  const showRunning = () => bar.update({ note: [...running.values()].join(", ") });
  const results = new Map<number, JobResult>();
  const done = new Map<number, Promise<JobResult>>();
  // Jobs with nothing to extract run here; the others on worker processes (started on first need).
  const inline = inlineRunner(opts);
  const heavy = order.length - planned.filter((p) => p.stored).length;
  let procRunner: Promise<JobRunner> | undefined;
  const runnerFor = (job: Job): Promise<JobRunner> => {
    const stored = job.kind === "image" && planned[job.id]?.stored;
    if (stored || mode !== "process" || heavy < 2) return Promise.resolve(inline);
    procRunner ??= import("./workers.ts").then((w) => w.processRunner(Math.min(jobs, heavy), opts));
    return procRunner;
  };
  let next = 0;
  const slot = async () => {
    while (next < order.length) {
      const job = order[next++];
      const p = (async () => {
        const dep = depOf.get(job.id);
        if (dep !== undefined && job.kind === "image") {
          const d = await waitFor(dep);
          if (d.status === "failed") {
            log.info(`${labels.get(job.id)}: ${labels.get(dep)} failed; unpacking every layer`);
            job.source = undefined;
          }
        }
        const label = labels.get(job.id) ?? "";
        running.set(job.id, label);
        bar.update({ total: estimate() });
        showRunning();
        const r = await (await runnerFor(job)).run(job, {
          bytes: (n) => bar.add(n),
          layer: (i, n) => {
            running.set(job.id, `${label} ${i}/${n}`);
            showRunning();
          },
        });
        running.delete(job.id);
        if (job.kind === "image") bar.itemDone();
        showRunning();
        results.set(job.id, r);
        if (todoBytes.has(job.id) && r.status !== "failed") {
          seenIn += todoBytes.get(job.id)!;
          seenOut += r.unpacked;
        }
        doneOut += r.unpacked;
        bar.update({ total: estimate() });
        return r;
      })();
      done.set(job.id, p);
      await p;
    }
  };
  const waitFor = async (id: number): Promise<JobResult> => {
    for (;;) {
      const p = done.get(id);
      if (p) return await p;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  // scratch trees of shared layers: closed to other users, removed on SIGINT/SIGTERM/SIGHUP too
  let releaseBulk = () => {};
  if (chainJobs.length > 0) {
    try {
      releaseBulk = makeTempTree(bulkDir).release;
    } catch (e) {
      throw wrapIo(e, "mkdir", bulkDir);
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, order.length)) }, slot));
  } finally {
    bar.done();
    if (procRunner) await (await procRunner).close();
    try {
      removeTree(bulkDir);
      releaseBulk();
    } catch (e) {
      log.warn(`could not remove ${bulkDir}: ${(e as Error).message}`);
    }
  }

  const row = (label: string, r: JobResult): BulkImage => ({
    image: label, manifest: r.manifest, layers: r.layers, applied: r.applied,
    mb: r.bytes / MB, unpackedMB: r.unpacked / MB, seconds: r.seconds,
    mbps: r.seconds > 0 ? r.unpacked / MB / r.seconds : 0, status: r.status, source: r.source, error: r.error, pid: r.pid,
    ...(r.warnings.length ? { warnings: r.warnings } : {}),
  });
  const images = planned.map((p) => row(p.label, results.get(p.job.id)!)).concat(failures);
  const shared = chainJobs.map((c) => row(labels.get(c.id)!, results.get(c.id)!));
  for (const s of shared) if (s.status === "failed") log.warn(`shared base not built: ${s.error}`);
  return {
    images,
    shared,
    failed: images.filter((i) => i.status === "failed").map((i) => i.image),
    seconds: (performance.now() - t0) / 1000,
    jobs,
    mode: procRunner ? "process" : "inline",
    reuse,
    errors,
  };
}

/**
 * The summary table `extract --all` prints.
 *
 * @example
 * ```ts
 * console.log(formatBulk(await extractAll({ config })));
 * ```
 */
export function formatBulk(r: BulkResult): string {
  const rows = [...r.images, ...r.shared];
  const head = ["image", "layers", "MB", "seconds", "MB/s", "result", "error"]; // MB: uncompressed, applied
  const cells = rows.map((i) => [
    i.image,
    i.applied !== i.layers && i.status !== "current" && i.status !== "failed" ? `${i.applied}/${i.layers}` : String(i.layers),
    i.status === "current" || i.status === "failed" ? "-" : i.unpackedMB.toFixed(1),
    i.seconds.toFixed(2),
    i.status === "current" || i.status === "failed" ? "-" : i.mbps.toFixed(0),
    i.status === "reused" ? `reused (${i.source})` : i.status,
    i.error ?? "",
  ]);
  const w = head.map((h, c) => Math.max(h.length, ...cells.map((x) => (c === 6 ? 0 : x[c].length))));
  const fmt = (x: string[]) => x.map((v, c) => (c === 6 ? v : c >= 1 && c <= 4 ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ").trimEnd();
  const out = [fmt(head), ...cells.map(fmt)];
  // layers: applied/total when the rest came from a source tree; MB: uncompressed MB applied.
  const n = (s: BulkImage["status"]) => r.images.filter((i) => i.status === s).length;
  const totalMB = rows.filter((i) => i.status === "extracted" || i.status === "reused").reduce((a, i) => a + i.unpackedMB, 0);
  out.push("");
  out.push(
    `${r.images.length} images: ${n("extracted")} extracted, ${n("reused")} reused, ${n("current")} current, ${n("failed")} failed; ` +
      `${totalMB.toFixed(1)} MB of layers applied in ${r.seconds.toFixed(2)} s (${r.jobs} ${r.mode === "process" ? "worker processes" : "in-process jobs"}, reuse ${r.reuse ? "on" : "off"})`,
  );
  return out.join("\n");
}
