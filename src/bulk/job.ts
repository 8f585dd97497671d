/**
 * One unit of bulk-extraction work, runnable in this process or in a worker
 * process (jobs and results are plain JSON):
 *
 * - an **image job** makes sure the store rootfs of one manifest exists and
 *   points the per-unit link of every tag naming that manifest at it, by
 *   calling the generator's {@linkcode extract} (same store, verification,
 *   atomic publish, locks and `current.json` as the units' `ExecStartPre=`),
 *   which asks the store to record the verified layer chain of what it
 *   extracts. When a *source* tree is given (the rootfs of an image whose
 *   verified chain is a prefix of this one's), the store builds the rootfs
 *   from a copy of it plus the remaining layers (src/store/reuse.ts).
 * - a **chain job** builds the tree of the bottom `depth` layers of an image
 *   into a scratch directory, to be the source of several images sharing
 *   those layers (no tagged image has exactly them).
 *
 * Only trees with a chain record (src/store/chain.ts) are ever a source.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import process from "node:process";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import type { ResolvedImage } from "../oci/layout.ts";
import type { GeneratorConfig } from "../generator/config.ts";
import { imagePlatform, settingsForTag } from "../generator/settings.ts";
import { extract, openNamedLayout } from "../generator/extract.ts";
import { unitUser } from "../generator/service.ts";
import type { UnpackOptions } from "../layer/unpack.ts";
import { chainIds, writeChainRecordFile } from "../store/chain.ts";
import type { CopyMode } from "../store/copy.ts";
import { buildFromSource, type ReuseSource, rootlessMode } from "../store/reuse.ts";

/** A tree to start from: the bottom `depth` layers of the job's image, verified (src/store/reuse.ts). */
export type JobSource = ReuseSource;

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
  /** Store lock wait limit in ms (the `lockTimeoutMs` setting; default 1 hour). */
  lockTimeoutMs?: number;
  /** How source trees are copied (the `copyMode` setting). */
  copyMode?: CopyMode;
}

function layerBytes(img: ResolvedImage): number {
  return img.manifest.layers.reduce((a, l) => a + (Number(l.size) || 0), 0);
}

/** `ctx.unpack` with its progress callbacks also feeding `hooks`. */
function withHooks(ctx: JobContext, hooks: JobHooks): UnpackOptions {
  return {
    ...ctx.unpack,
    onBytes: (n) => {
      ctx.unpack?.onBytes?.(n);
      hooks.bytes?.(n);
    },
    onLayer: (i, n, d) => {
      ctx.unpack?.onLayer?.(i, n, d);
      hooks.layer?.(i, n);
    },
  };
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
    const unpack = withHooks(ctx, countBytes);
    // A source planned for this manifest (the tag may have moved since the plan).
    const source = manifest === job.manifest ? job.source : undefined;
    const common = { config: cfg, unpack, lockTimeoutMs: ctx.lockTimeoutMs, copyMode: ctx.copyMode };

    // Link every tag (the first call also extracts when the store is missing).
    for (const ref of job.refs) {
      const rlayout = ref === primary ? layout : await openNamedLayout(cfg, ref.name);
      for (const tag of ref.tags) {
        const settings = settingsForTag(cfg, ref.name, tag);
        const bundle = settings.runtime !== "systemd";
        const r = await extract({ ...common, name: ref.name, tag, bundle, source, recordChain: true });
        res.warnings.push(...r.warnings);
        // the tag may have moved meanwhile
        const timg = r.manifest === manifest ? img : await rlayout.resolve(tag, imagePlatform(cfg, ref.name, tag));
        if (r.extracted) {
          res.status = r.reused ? "reused" : "extracted";
          res.applied = r.applied;
          if (r.reused) res.source = r.reused;
        }
        // The user check (and userdb records) of a unit generated after this extraction.
        const check = userCheck(timg, r.store, settings.user);
        if (check) await extract({ ...common, name: ref.name, tag, bundle, user: check });
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
    try {
      fs.mkdirSync(dirname(job.dir), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw wrapIo(e, "mkdir", dirname(job.dir));
    }
    const unpack = withHooks(ctx, {
      bytes: (n) => {
        res.unpacked += n;
        hooks.bytes?.(n);
      },
      layer: hooks.layer,
    });
    res.applied = await buildFromSource(layout, img, job.source, job.depth, job.dir, { unpack, copyMode: ctx.copyMode, warnings: res.warnings });
    if (res.applied < job.depth) {
      res.status = "reused";
      res.source = job.source?.label;
    }
    await writeChainRecordFile(`${job.dir}.json`, job.dir, res.manifest, (img.config.rootfs?.diff_ids ?? []).slice(0, job.depth), rootlessMode(ctx.unpack));
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

/** A job runner: in this process or a worker process. */
export interface JobRunner {
  run(job: Job, hooks: JobHooks): Promise<JobResult>;
  close(): Promise<void>;
}
