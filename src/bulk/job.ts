/**
 * One unit of bulk-extraction work, runnable in this process or in a worker
 * process (jobs and results are plain JSON):
 *
 * - an **image job** makes sure the store rootfs of one manifest exists and
 *   points the per-unit link of every tag naming that manifest at it, by
 *   calling the generator's {@linkcode extract} (same store, verification,
 *   atomic publish, locks and `current.json` as the units' `ExecStartPre=`).
 *   When a *source* tree is given (the rootfs of an image whose verified
 *   chain is a prefix of this one's), the store rootfs is built instead as a
 *   copy of the source plus the remaining layers, under the same store lock
 *   and published by the same kind of rename; `extract` then finds it current.
 * - a **chain job** builds the tree of the bottom `depth` layers of an image
 *   into a scratch directory, to be the source of several images sharing
 *   those layers (no tagged image has exactly them).
 *
 * Every tree built here records the diff_ids the engine verified
 * ({@linkcode writeChainRecord}); only such records make a tree a source.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { acquireLock } from "../fs/lock.ts";
import { log } from "../log.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { imagePlatform, settingsForTag } from "../generator/settings.ts";
import { extract, openNamedLayout } from "../generator/extract.ts";
import { storeDir, storeRootfs } from "../store/paths.ts";
import { unitUser } from "../generator/service.ts";
import { applyLayers, removeTree, type UnpackOptions } from "../layer/unpack.ts";
import { runningAsRoot } from "../layer/apply.ts";
import { CHAIN_FILE, chainIds, readChainRecord, readChainRecordFile, treeFingerprint, writeChainRecord, writeChainRecordFile } from "./chain.ts";
import { cloneTree } from "./copy.ts";
import { verifyReusedLayers } from "./verified.ts";
import { deadRunEntries, makeTempTree } from "../fs/temp-tree.ts";

/** A tree to start from: the bottom `depth` layers of the job's image, verified. */
export interface JobSource {
  /** Root of the source tree. */
  path: string;
  /** Number of bottom layers it holds. */
  depth: number;
  /** ChainID of those layers (checked again before use). */
  chain: string;
  /**
   * Its chain record file (chain.ts), read just before the copy: chain and
   * fingerprint must match, else the source is not used.
   */
  record: string;
  /** What it is, for messages and the summary. */
  label: string;
}

/** An image job (see the module docs). */
export interface ImageJob {
  kind: "image";
  id: number;
  /**
   * The layouts (names relative to imagelayoutdir) and their tags naming
   * `manifest`; the first tag of the first is extracted, every one is linked.
   */
  refs: Array<{ name: string; tags: string[] }>;
  manifest: string;
  source?: JobSource;
}

/** A chain job (see the module docs). */
export interface ChainJob {
  kind: "chain";
  id: number;
  name: string;
  tag: string;
  manifest: string;
  depth: number;
  chain: string;
  /** Directory to create (must not exist). */
  dir: string;
  source?: JobSource;
}

/** Any job. */
export type Job = ImageJob | ChainJob;

/** What a job did. */
export interface JobResult {
  id: number;
  /** "extracted": unpacked from the layers; "reused": started from a source tree; "current": nothing to do; "failed". */
  status: "extracted" | "reused" | "current" | "failed";
  /** Layers of the image and layers actually applied. */
  layers: number;
  applied: number;
  /** Compressed bytes of the image's layers. */
  bytes: number;
  /** Uncompressed bytes applied. */
  unpacked: number;
  seconds: number;
  /** The manifest the first tag pointed at when the job ran (may differ from the plan if a tag moved). */
  manifest?: string;
  /** Label of the source tree used. */
  source?: string;
  error?: string;
  /** Non-fatal problems (a source that could not be used, …). */
  warnings: string[];
  /** The process that ran the job. */
  pid?: number;
}

/** Progress callbacks of a running job. */
export interface JobHooks {
  /** Uncompressed bytes applied since the last call. */
  bytes?: (n: number) => void;
  /** Layer `index` (1-based) of `count` started. */
  layer?: (index: number, count: number) => void;
}

/** Settings shared by every job of a run. */
export interface JobContext {
  config: GeneratorConfig;
  /** Passed to the unpack engine (as by `extract`). */
  unpack?: UnpackOptions;
}

function isDir(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function layerBytes(img: ResolvedImage): number {
  return img.manifest.layers.reduce((a, l) => a + (Number(l.size) || 0), 0);
}

/** Removes temporary trees beside `target` left by processes that are gone (named as `unpackRootfs` names them). */
function cleanStaleTemps(target: string): void {
  const dir = dirname(target);
  const prefix = `.${target.slice(dir.length + 1)}.tmp-`;
  const pidOf = (n: string) => {
    const m = n.startsWith(prefix) ? /^(\d+)-[0-9a-f]{8}$/.exec(n.slice(prefix.length)) : null;
    return m ? Number(m[1]) : null;
  };
  for (const p of deadRunEntries(dir, pidOf)) {
    try {
      removeTree(p);
    } catch { /* not fatal */ }
  }
}

/** The name `unpackRootfs` gives its temporary trees, so its stale-temp cleanup also covers ours. */
function tempBeside(target: string): string {
  return join(dirname(target), `.${target.slice(dirname(target).length + 1)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Builds `target` (which must not exist) from `source` plus the layers of
 * `img` above `source.depth`, atomically (temp dir beside it, rename).
 * Returns the number of layers applied. Throws if the source cannot be used
 * (the caller falls back to a full unpack).
 */
async function buildFromSource(
  layout: Layout,
  img: ResolvedImage,
  source: JobSource | undefined,
  depth: number,
  target: string,
  ctx: JobContext,
  hooks: JobHooks,
  warnings: string[],
): Promise<number> {
  const layers = img.manifest.layers.slice(0, depth);
  const diffIds = (img.config.rootfs?.diff_ids ?? []).slice(0, depth);
  if (layers.length !== depth || diffIds.length !== depth) {
    throw new OcigenError("EUNPACK", `Cannot unpack image ${shortDigest(img.manifestDescriptor.digest)}: ${img.manifest.layers.length} layers but ${img.config.rootfs?.diff_ids?.length ?? 0} diff_ids in the config`);
  }
  // What a reused tree stands for is verified like a full unpack would (see ./verified.ts).
  if (source && source.depth > 0 && source.depth <= depth) await verifyReusedLayers(layout, layers.slice(0, source.depth));
  cleanStaleTemps(target);
  // Built in OUTER/rootfs: OUTER is 0700 from its creation and removed on SIGINT/SIGTERM/SIGHUP (src/fs/temp-tree.ts).
  const outer = tempBeside(target);
  let tree: ReturnType<typeof makeTempTree>;
  try {
    tree = makeTempTree(outer);
  } catch (e) {
    throw wrapIo(e, "mkdir", outer);
  }
  const tmp = join(outer, "rootfs");
  const mk = () => {
    try {
      fs.mkdirSync(tmp, 0o755);
      fs.chmodSync(tmp, 0o755);
    } catch (e) {
      throw wrapIo(e, "mkdir", tmp);
    }
  };
  try {
    mk();
    let from = 0;
    if (source && source.depth > 0 && source.depth <= depth) {
      const chain = chainIds(diffIds)[source.depth - 1];
      try {
        if (chain !== source.chain) throw new Error(`its chain ${shortDigest(source.chain)} is not a prefix of this image's`);
        const rec = readChainRecordFile(source.record);
        if (!rec) throw new Error("it has no chain record");
        if (rec.chain_ids.length !== source.depth || rec.chain_ids[source.depth - 1] !== chain) throw new Error("its recorded chain differs");
        if (rec.rootless !== (ctx.unpack?.rootless ?? !runningAsRoot())) throw new Error("it was applied in another owner mode");
        if (!isDir(source.path)) throw new Error("it is gone");
        cloneTree(source.path, tmp);
        // Checked after the copy: any change to the source before now (a service writing into it,
        // gc removing it meanwhile) changed some ctime or entry. No lock is taken on the source, so
        // any number of images copy it at once; a source gc removes mid-copy just fails the check.
        const now = treeFingerprint(source.path);
        if (now.fingerprint !== rec.tree.fingerprint) {
          throw new Error(`it changed since it was extracted (${now.entries} entries, ${rec.tree.entries} recorded)`);
        }
        from = source.depth;
      } catch (e) {
        warnings.push(`could not start from ${source.label}: ${(e as Error).message}; unpacking every layer`);
        log.warn(warnings[warnings.length - 1]);
        removeTree(tmp);
        mk();
      }
    }
    const opts: UnpackOptions = {
      ...ctx.unpack,
      onBytes: (n) => {
        ctx.unpack?.onBytes?.(n);
        hooks.bytes?.(n);
      },
      onLayer: (i, n, d) => {
        ctx.unpack?.onLayer?.(i + from, n + from, d);
        hooks.layer?.(i + from, n + from);
      },
    };
    await applyLayers(layout, layers.slice(from), diffIds.slice(from), tmp, opts);
    try {
      fs.renameSync(tmp, target);
    } catch (e) {
      throw wrapIo(e, "rename into place", target);
    }
    try {
      fs.rmdirSync(outer);
    } catch { /* a stale-temp sweep removes it */ }
    tree.release();
    return depth - from;
  } catch (e) {
    try {
      removeTree(outer);
      tree.release();
    } catch { /* ignore */ }
    throw e;
  }
}

/** The `--user` check a generated unit passes, computed from the extracted rootfs (undefined: none). */
function userCheck(img: ResolvedImage, rootfs: string, settingsUser?: string): string | undefined {
  const spec = settingsUser ?? img.config.config?.User;
  try {
    return unitUser(typeof spec === "string" ? spec : undefined, rootfs)?.check;
  } catch {
    return undefined; // the generator reports a bad user for the unit; extract then has nothing to check
  }
}

function lockTimeout(): number {
  const env = Number(process.env.OCIGEN_LOCK_TIMEOUT);
  return Number.isFinite(env) && env > 0 ? env * 1000 : 3600_000;
}

/**
 * Runs an image job (see the module docs). Never throws: failures are in the result.
 *
 * @example
 * ```ts
 * const r = await runImageJob({ kind: "image", id: 0, name: "busybox", tags: ["latest"], manifest }, { config });
 * ```
 */
export async function runImageJob(job: ImageJob, ctx: JobContext, hooks: JobHooks = {}): Promise<JobResult> {
  const t0 = performance.now();
  const cfg = ctx.config;
  const res: JobResult = { id: job.id, status: "current", layers: 0, applied: 0, bytes: 0, unpacked: 0, seconds: 0, warnings: [] };
  const countBytes: JobHooks = {
    bytes: (n) => {
      res.unpacked += n;
      hooks.bytes?.(n);
    },
    layer: hooks.layer,
  };
  try {
    const primary = job.refs[0];
    const layout = await openNamedLayout(cfg, primary.name);
    const img = await layout.resolve(primary.tags[0], imagePlatform(cfg, primary.name, primary.tags[0]));
    const manifest = img.manifestDescriptor.digest;
    res.manifest = manifest;
    res.layers = img.manifest.layers.length;
    res.bytes = layerBytes(img);
    const store = storeRootfs(cfg.extractsDir, manifest);
    const unpack: UnpackOptions = {
      ...ctx.unpack,
      onBytes: (n) => {
        ctx.unpack?.onBytes?.(n);
        countBytes.bytes!(n);
      },
      onLayer: (i, n, d) => {
        ctx.unpack?.onLayer?.(i, n, d);
        hooks.layer?.(i, n);
      },
    };
    const rootless = ctx.unpack?.rootless ?? !runningAsRoot();
    const diffIds = img.config.rootfs?.diff_ids ?? [];

    if (!isDir(store) && job.source && manifest === job.manifest) {
      // Start from the source tree, under the store lock `extract` uses.
      const sdir = storeDir(cfg.extractsDir, manifest);
      try {
        fs.mkdirSync(sdir, { recursive: true });
      } catch (e) {
        throw wrapIo(e, "mkdir", sdir);
      }
      const lock = await acquireLock(`${sdir}.lock`, `extract of ${shortDigest(manifest)}`, lockTimeout());
      try {
        if (!isDir(store)) {
          res.applied = await buildFromSource(layout, img, job.source, res.layers, store, ctx, countBytes, res.warnings);
          res.status = res.applied < res.layers ? "reused" : "extracted";
          if (res.status === "reused") res.source = job.source.label;
          await writeChainRecord(cfg.extractsDir, manifest, diffIds, rootless);
        }
      } finally {
        lock.release();
      }
    }

    // Link every tag (the first call also extracts when the store is missing).
    for (const ref of job.refs) {
      const rlayout = ref === primary ? layout : await openNamedLayout(cfg, ref.name);
      for (const tag of ref.tags) {
        const settings = settingsForTag(cfg, ref.name, tag);
        const bundle = settings.runtime !== "systemd";
        const r = await extract({ config: cfg, name: ref.name, tag, bundle, unpack });
        // the tag may have moved meanwhile
        const timg = r.manifest === manifest ? img : await rlayout.resolve(tag, imagePlatform(cfg, ref.name, tag));
        if (r.extracted) {
          res.status = "extracted";
          res.applied = timg.manifest.layers.length;
          // The engine verified this manifest's config diff_ids before publishing: record them.
          try {
            if (timg.manifestDescriptor.digest !== r.manifest) throw new Error("the tag moved again");
            await writeChainRecord(cfg.extractsDir, r.manifest, timg.config.rootfs?.diff_ids ?? [], rootless);
          } catch (e) {
            res.warnings.push(`could not record the verified chain of ${shortDigest(r.manifest)}: ${(e as Error).message}`);
          }
        }
        // The user check (and userdb records) of a unit generated after this extraction.
        const check = userCheck(timg, r.store, settings.user);
        if (check) await extract({ config: cfg, name: ref.name, tag, bundle, user: check, unpack });
      }
    }
  } catch (e) {
    res.status = "failed";
    res.error = (e as Error)?.message ?? String(e);
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

/**
 * Runs a chain job (see the module docs). Never throws: failures are in the result.
 *
 * @example
 * ```ts
 * const r = await runChainJob({ kind: "chain", id: 9, name: "app", tag: "v1", manifest, depth: 1, chain, dir: "/x/.store/.bulk-1/c0" }, { config });
 * ```
 */
export async function runChainJob(job: ChainJob, ctx: JobContext, hooks: JobHooks = {}): Promise<JobResult> {
  const t0 = performance.now();
  const res: JobResult = { id: job.id, status: "extracted", layers: job.depth, applied: 0, bytes: 0, unpacked: 0, seconds: 0, warnings: [] };
  try {
    const layout = await openNamedLayout(ctx.config, job.name);
    const img = await layout.resolve(job.tag, imagePlatform(ctx.config, job.name, job.tag));
    res.manifest = img.manifestDescriptor.digest;
    const got = chainIds(img.config.rootfs?.diff_ids ?? [])[job.depth - 1];
    if (got !== job.chain) throw new OcigenError("EUNPACK", `${job.name}:${job.tag} moved: its bottom ${job.depth} layers are no longer chain ${shortDigest(job.chain)}`);
    res.bytes = img.manifest.layers.slice(0, job.depth).reduce((a, l) => a + (Number(l.size) || 0), 0);
    fs.mkdirSync(dirname(job.dir), { recursive: true, mode: 0o700 });
    res.applied = await buildFromSource(layout, img, job.source, job.depth, job.dir, ctx, {
      bytes: (n) => {
        res.unpacked += n;
        hooks.bytes?.(n);
      },
      layer: hooks.layer,
    }, res.warnings);
    if (res.applied < job.depth) {
      res.status = "reused";
      res.source = job.source?.label;
    }
    await writeChainRecordFile(`${job.dir}.json`, job.dir, res.manifest, (img.config.rootfs?.diff_ids ?? []).slice(0, job.depth), ctx.unpack?.rootless ?? !runningAsRoot());
  } catch (e) {
    res.status = "failed";
    res.error = (e as Error)?.message ?? String(e);
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

/**
 * Runs any job.
 *
 * @example
 * ```ts
 * const r = await runJob(job, { config });
 * ```
 */
export async function runJob(job: Job, ctx: JobContext, hooks: JobHooks = {}): Promise<JobResult> {
  const r = await (job.kind === "image" ? runImageJob(job, ctx, hooks) : runChainJob(job, ctx, hooks));
  r.pid = process.pid;
  return r;
}

/**
 * The store rootfs of `manifest` as a source (its whole verified chain), or
 * null when it has no chain record, no layers, or was applied in another
 * owner mode.
 *
 * @example
 * ```ts
 * const src = storeSource(cfg, manifest, false);
 * ```
 */
export function storeSource(cfg: GeneratorConfig, manifest: string, rootless: boolean): JobSource | null {
  const rec = readChainRecord(cfg.extractsDir, manifest);
  const depth = rec?.chain_ids.length ?? 0;
  if (!rec || depth === 0 || rec.rootless !== rootless) return null;
  return {
    path: storeRootfs(cfg.extractsDir, manifest),
    depth,
    chain: rec.chain_ids[depth - 1],
    record: join(storeDir(cfg.extractsDir, manifest), CHAIN_FILE),
    label: `extract ${shortDigest(manifest)}`,
  };
}

/** A job runner: in this process or a worker process. */
export interface JobRunner {
  run(job: Job, hooks: JobHooks): Promise<JobResult>;
  close(): Promise<void>;
}
