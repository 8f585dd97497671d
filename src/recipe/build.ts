/**
 * `ocigen build SPEC.yaml`: builds every target of a genoci spec
 * ({@linkcode parseBuildSpec}) as one new layer on its base, tagged `TAG`,
 * and `TAG-YYYY-MM-DD_N` when the result differs from what `TAG` named
 * before.
 *
 * Unchanged targets are not rebuilt: the digest of a target's inputs (base
 * manifest, spec, the host files it copies, installs and expands; see
 * `./inputs.ts`) is recorded on the manifest it commits, and a target whose
 * `TAG` names a manifest with the same inputs digest is skipped (status
 * `unchanged`: nothing unpacked, run or written, no tag added). Targets are
 * visited in dependency order, so an unchanged base keeps its manifest and
 * what is built on it is unchanged too, unless its own inputs changed.
 * `force` builds every target anyway.
 *
 * Per target: the base image is unpacked into a temporary rootfs, the tree
 * is scanned (the snapshot), the steps run in their fixed order, the rootfs is
 * diffed against the snapshot and the difference written as a layer (nothing
 * changed: an `empty_layer` history entry only). Both tags are set in one
 * `index.json` update. A failed target changes no tag, and the blobs it wrote
 * that nothing references are deleted, so the layout is left as it was; the
 * build stops there. The order (and unknown bases, cycles) is resolved before
 * any work.
 *
 * @module
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { OcigenError } from "../errors.ts";
import { deadRunEntries, makeTempTree, removeTempTree, runTreePid } from "../fs/temp-tree.ts";
import { log } from "../log.ts";
import type { Descriptor, ImageConfig, ImageManifest } from "../oci/types.ts";
import { MediaType, REF_NAME } from "../oci/types.ts";
import { Layout } from "../oci/layout.ts";
import { hostPlatform } from "../oci/platform.ts";
import { reachableBlobs } from "../oci/gc.ts";
import { diffTree } from "../bundle/diff.ts";
import { type BundleEntry, scanTree, settleTimestamps } from "../bundle/scan.ts";
import { xattrsSupported } from "../bundle/xattr.ts";
import type { Compression } from "../compress/compression.ts";
import { resolveCompression } from "../oci/media-type.ts";
import type { GzipMode } from "../compress/encode.ts";
import { writeLayer } from "../repack/layer-writer.ts";
import { commitLayer } from "../repack/commit.ts";
import { changesToItems } from "../repack/repack.ts";
import { type BuildSpec, type BuildTarget, readBuildSpec } from "./spec.ts";
import { resolveBuildOrder } from "./order.ts";
import { buildInputsDigest, INPUTS_ANNOTATION } from "./inputs.ts";
import { copyIntoRoot } from "./copy.ts";
import { expandTarball, installPackage } from "./extract.ts";
import { type IsolationChoice, runInRootfs } from "./sandbox.ts";
import { unpackImageTo } from "./apply.ts";

/** Options of {@linkcode runBuild}. */
export interface BuildOptions {
  /** Layout directory (created when missing). */
  layout: string;
  /** Directory relative host paths of the spec are taken from (default: cwd). */
  baseDir?: string;
  /** Name of the spec in messages. */
  file?: string;
  /** Layer compression (default gzip; `auto`: that of the base's last layer). */
  compression?: Compression | "auto";
  /** The date of the dated tags (default: now, UTC). */
  now?: Date;
  /** Where temporary rootfs directories go (default: os.tmpdir()). */
  tmpDir?: string;
  /** Called before each target is built (`index` 0-based, in build order), and with `index === total` at the end. */
  onTarget?: (name: string, index: number, total: number) => void;
  /** Build targets whose inputs are unchanged too (default: skip them). */
  force?: boolean;
  /** Isolation of `run` scripts (default `auto`: probed; the command line passes `$OCIGEN_ISOLATION`). */
  isolation?: IsolationChoice;
  /** The environment `pre`/`post` hooks start from (default: none but ROOTFS, OCIGEN_ROOTFS, OCIGEN_TARGET; the command line passes its own). */
  hookEnv?: Readonly<Record<string, string>>;
  /** Clamp mtimes and date the history entries (seconds; the command line passes `$SOURCE_DATE_EPOCH`). */
  sourceDateEpoch?: number;
  /** gzip writer (default `parallel`). */
  gzip?: GzipMode;
}

/** One target of a build run. */
export interface BuiltTarget {
  name: string;
  /**
   * `built`: a new manifest was committed and TAG moved to it; `unchanged`:
   * TAG already names a manifest built from the same inputs (nothing done).
   */
  status: "built" | "unchanged";
  /** Tags naming the result that this run set: `[TAG, TAG-YYYY-MM-DD_N]`, `[TAG]` when the result is what TAG named before, `[]` when unchanged. */
  tags: string[];
  /** The dated tag added, when one was. */
  dated?: string;
  manifestDescriptor: Descriptor;
  /** The inputs digest recorded on the manifest. */
  inputs: string;
  /** The new layer, or undefined when the steps changed nothing (or the target was unchanged). */
  layer?: Descriptor;
}

/**
 * `YYYY-MM-DD` (UTC) of a date.
 *
 * @example
 * ```ts
 * dayStamp(new Date("2024-03-05T23:00:00Z")); // "2024-03-05"
 * ```
 */
export function dayStamp(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * The next dated tag `NAME-YYYY-MM-DD_N` given the existing tags.
 *
 * @example
 * ```ts
 * nextDatedTag("web", "2024-03-05", ["web-2024-03-05_1"]); // "web-2024-03-05_2"
 * ```
 */
export function nextDatedTag(name: string, day: string, tags: Iterable<string>): string {
  const prefix = `${name}-${day}_`;
  let max = 0;
  for (const t of tags) {
    if (!t.startsWith(prefix)) continue;
    const n = t.slice(prefix.length);
    if (/^[1-9][0-9]*$/.test(n)) max = Math.max(max, Number(n));
  }
  return `${prefix}${max + 1}`;
}

function mergeEnv(env: string[] | undefined, add: Record<string, string>): string[] {
  const out = [...(env ?? [])];
  for (const [k, v] of Object.entries(add)) {
    const i = out.findIndex((e) => e === k || e.startsWith(k + "="));
    if (i >= 0) out[i] = `${k}=${v}`;
    else out.push(`${k}=${v}`);
  }
  return out;
}

/**
 * Names script `i` of `n` of a target's step in messages that `Cannot build
 * target T: ` prefixes (so never the target again): `the run script`, `the
 * pre hook 2 of 3`.
 */
function scriptName(kind: string, i: number, n: number): string {
  return n > 1 ? `the ${kind} ${i + 1} of ${n}` : `the ${kind}`;
}

/** Runs a host hook (`pre`/`post`) with `/bin/sh -c`, `env` plus ROOTFS and OCIGEN_TARGET in its environment; `what` names it. */
async function runHook(script: string, rootfs: string, target: string, what: string, cwd: string, env: Readonly<Record<string, string>> = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", script], {
      cwd,
      env: { ...env, ROOTFS: rootfs, OCIGEN_ROOTFS: rootfs, OCIGEN_TARGET: target },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d) => process.stderr.write(d));
    child.stderr!.on("data", (d) => process.stderr.write(d));
    child.on("error", (e) => reject(new OcigenError("EBUILD", `Cannot run ${what}: ${e.message}`)));
    child.on("close", (code, sig) => {
      if (code === 0) resolve();
      else reject(new OcigenError("EBUILD", `${what} failed (${sig ? `signal ${sig}` : `exit ${code}`})`));
    });
  });
}

/**
 * When not running as root the base's owners could not be applied: entries
 * whose owner did not change get their recorded owner back, and what belongs
 * to the building user becomes root's (as in a rootless bundle).
 */
function rootlessOwners(
  snapshot: BundleEntry[],
  recorded: Map<string, { uid: number; gid: number }>,
): ((name: string, e: BundleEntry) => { uid: number; gid: number } | undefined) | undefined {
  const me = typeof process.getuid === "function" ? process.getuid() : 0;
  if (me === 0) return undefined;
  const before = new Map(snapshot.map((e) => [e.path, e]));
  return (name, e) => {
    const o = before.get(name);
    const r = recorded.get(name);
    if (o && o.uid === e.uid && o.gid === e.gid) return r ?? (e.uid === me ? { uid: 0, gid: 0 } : undefined);
    return e.uid === me ? { uid: 0, gid: 0 } : undefined;
  };
}

/** Deletes blobs of `written` that nothing in the layout references. */
async function dropUnreferenced(layout: Layout, written: Descriptor[]): Promise<void> {
  if (written.length === 0) return;
  await layout.withLock(async () => {
    const live = await reachableBlobs(layout, false);
    for (const d of written) {
      if (live.has(d.digest)) continue;
      try {
        fs.unlinkSync(layout.blobPath(d.digest));
      } catch { /* already gone */ }
    }
  });
}

/** Removes build scratch trees (`ocigen-build-*.tmp-<pid>-<hex>`) of builds whose process is gone. */
function sweepDeadScratch(dir: string): void {
  for (const p of deadRunEntries(dir, (n) => (n.startsWith("ocigen-build-") ? runTreePid(n) : null))) removeTempTree(p);
}

/** The inputs digest of `t` now, and the manifest `t.name` names when it was built from exactly these. */
async function unchangedTarget(layout: Layout, t: BuildTarget, opts: BuildOptions): Promise<{ inputs: string; current?: Descriptor }> {
  const baseDir = opts.baseDir ?? process.cwd();
  let base: string;
  if (t.base === "empty") {
    const p = hostPlatform();
    base = `empty ${p.os}/${p.architecture}`;
  } else base = (await layout.resolve(t.base)).manifestDescriptor.digest;
  const inputs = buildInputsDigest(t, base, baseDir, String(opts.compression ?? "gzip"));
  if (opts.force || !(await layout.listTags()).includes(t.name)) return { inputs };
  try {
    const cur = await layout.resolve(t.name);
    if (cur.manifest.annotations?.[INPUTS_ANNOTATION] === inputs) return { inputs, current: cur.manifestDescriptor };
  } catch (e) {
    log.debug(`build ${t.name}: the current tag does not resolve (${(e as Error).message}); building`);
  }
  return { inputs };
}

async function buildTarget(layout: Layout, t: BuildTarget, opts: BuildOptions, written: Descriptor[]): Promise<BuiltTarget> {
  const baseDir = opts.baseDir ?? process.cwd();
  const { inputs, current } = await unchangedTarget(layout, t, opts);
  if (current) {
    log.info(`build ${t.name}: unchanged (inputs ${inputs})`);
    return { name: t.name, status: "unchanged", tags: [], manifestDescriptor: current, inputs };
  }
  log.info(`build ${t.name}: base ${t.base}`);
  // 0700 before anything goes in; removed on SIGINT/SIGTERM/SIGHUP too, and by a later
  // build when a SIGKILL left it (its name carries the pid)
  const tmpDir = opts.tmpDir ?? os.tmpdir();
  sweepDeadScratch(tmpDir);
  const work = path.join(tmpDir, `ocigen-build-${t.name.replace(/[^A-Za-z0-9._-]/g, "_")}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  makeTempTree(work);
  const rootfs = path.join(work, "rootfs");
  try {
    fs.mkdirSync(rootfs, { mode: 0o755 });
    let manifest: ImageManifest;
    let config: ImageConfig;
    let recorded = new Map<string, { uid: number; gid: number }>();
    if (t.base === "empty") {
      const p = hostPlatform();
      config = { architecture: p.architecture, os: p.os, config: {}, rootfs: { type: "layers", diff_ids: [] }, history: [] };
      manifest = { schemaVersion: 2, mediaType: MediaType.Manifest, config: { mediaType: MediaType.Config, digest: "", size: 0 }, layers: [] };
    } else {
      const img = await layout.resolve(t.base);
      manifest = img.manifest;
      config = img.config;
      recorded = (await unpackImageTo(layout, img, rootfs)).owners;
    }
    const snapshot = scanTree(rootfs);
    await settleTimestamps(snapshot);
    for (const [i, h] of t.pre.entries()) await runHook(h, rootfs, t.name, scriptName("pre hook", i, t.pre.length), baseDir, opts.hookEnv);
    for (const c of t.copy) copyIntoRoot(rootfs, c.src, c.dest, baseDir);
    for (const p of t.install) await installPackage(path.resolve(baseDir, p), rootfs);
    for (const x of t.expand) await expandTarball(path.resolve(baseDir, x), rootfs);
    for (const [i, r] of t.run.entries()) await runInRootfs(rootfs, r, scriptName("run script", i, t.run.length), opts.isolation);
    for (const [i, h] of t.post.entries()) await runHook(h, rootfs, t.name, scriptName("post hook", i, t.post.length), baseDir, opts.hookEnv);

    const now = scanTree(rootfs);
    const changes = diffTree(snapshot, now, { rootfs, compareXattrs: xattrsSupported(), what: `target ${t.name}` });
    log.info(`build ${t.name}: ${changes.length} change(s)`);
    const steps = ["pre", "copy", "install", "expand", "run", "post"].filter((k) => (t[k as keyof BuildTarget] as unknown[]).length > 0);
    return await layout.withLock(async () => {
      let layer;
      if (changes.length > 0) {
        layer = await writeLayer(layout, changesToItems(changes, rootfs, now), resolveCompression(opts.compression, manifest.layers), {
          mapOwner: rootlessOwners(snapshot, recorded),
          task: `build ${t.name}`,
          sourceDateEpoch: opts.sourceDateEpoch,
          gzip: opts.gzip,
        });
        written.push(layer.descriptor);
      }
      const r = await commitLayer(
        layout,
        { manifest, config },
        layer,
        {
          created_by: `ocigen build ${opts.file ?? "spec"} ${t.name}`,
          comment: steps.length ? `steps: ${steps.join(", ")}` : undefined,
          sourceDateEpoch: opts.sourceDateEpoch,
        },
        (cfg, man) => {
          cfg.config ??= {};
          if (t.entrypoint) {
            cfg.config.Entrypoint = t.entrypoint;
            if (!t.cmd) delete cfg.config.Cmd;
          }
          if (t.cmd) cfg.config.Cmd = t.cmd;
          if (Object.keys(t.env).length) cfg.config.Env = mergeEnv(cfg.config.Env, t.env);
          if (Object.keys(t.labels).length) {
            cfg.config.Labels = { ...cfg.config.Labels, ...t.labels };
            man.annotations = { ...man.annotations, ...t.labels };
          }
          man.annotations = { ...man.annotations, [INPUTS_ANNOTATION]: inputs };
        },
      );
      written.push(...r.written);
      const day = dayStamp(opts.now ?? new Date());
      let dated: string | undefined;
      await layout.updateIndex((idx) => {
        const md = r.manifestDescriptor;
        const tags = idx.manifests.map((d) => d.annotations?.[REF_NAME]).filter((x): x is string => Boolean(x));
        // a dated tag only for a result that differs from what TAG named before
        const before = idx.manifests.find((d) => d.annotations?.[REF_NAME] === t.name);
        dated = before?.digest === md.digest ? undefined : nextDatedTag(t.name, day, tags);
        const keep = idx.manifests.filter((d) => {
          const n = d.annotations?.[REF_NAME];
          return n !== t.name && (dated === undefined || n !== dated);
        });
        if (dated !== undefined) keep.push({ ...md, annotations: { [REF_NAME]: dated } });
        keep.push({ ...md, annotations: { [REF_NAME]: t.name } });
        return { ...idx, manifests: keep };
      });
      written.length = 0; // committed: nothing to clean up
      return {
        name: t.name, status: "built", tags: dated ? [t.name, dated] : [t.name], ...(dated ? { dated } : {}),
        manifestDescriptor: r.manifestDescriptor, inputs, layer: layer?.descriptor,
      };
    });
  } finally {
    removeTempTree(work);
  }
}

/**
 * Builds every target of `spec` into `opts.layout`, in dependency order.
 * Stops at the first failing target (which changes nothing) and rethrows.
 *
 * @example
 * ```ts
 * const built = await runBuild(readBuildSpec("cirros.yaml"), { layout: "oci", baseDir: "." });
 * built.map((b) => b.tags); // [["cirros", "cirros-2024-03-05_1"], ...]; [] for a target whose inputs are unchanged
 * ```
 */
export async function runBuild(spec: BuildSpec, opts: BuildOptions): Promise<BuiltTarget[]> {
  let layout: Layout;
  // a layout directory this build creates is removed again when no target could be built
  let created: "dir" | "content" | null = null;
  if (fs.existsSync(path.join(opts.layout, "oci-layout"))) layout = await Layout.open(opts.layout);
  else {
    // validate the whole spec against an empty tag set before creating anything
    resolveBuildOrder(spec.targets, [], opts.file);
    if (!fs.existsSync(opts.layout)) created = "dir";
    else if (fs.statSync(opts.layout).isDirectory() && fs.readdirSync(opts.layout).length === 0) created = "content";
    layout = await Layout.init(opts.layout);
  }
  const order = resolveBuildOrder(spec.targets, await layout.listTags(), opts.file);
  const built: BuiltTarget[] = [];
  for (const [i, t] of order.entries()) {
    opts.onTarget?.(t.name, i, order.length);
    const written: Descriptor[] = [];
    try {
      built.push(await buildTarget(layout, t, opts, written));
    } catch (e) {
      try {
        await dropUnreferenced(layout, written);
      } catch (e2) {
        log.warn(`build ${t.name}: could not remove unreferenced blobs: ${(e2 as Error).message}`);
      }
      if (created !== null && built.length === 0) {
        try {
          // what init wrote (the directory itself may have existed, empty)
          for (const n of fs.readdirSync(layout.dir)) fs.rmSync(path.join(layout.dir, n), { recursive: true, force: true });
          if (created === "dir") fs.rmdirSync(layout.dir);
        } catch { /* leave it */ }
      }
      if (e instanceof OcigenError) throw new OcigenError(e.code, `Cannot build target ${t.name}: ${e.message}`, { cause: e });
      throw e;
    }
  }
  opts.onTarget?.("", order.length, order.length);
  return built;
}

/**
 * Reads `file` and builds it (relative paths taken from the spec's directory).
 *
 * @example
 * ```ts
 * await buildFile("cirros.yaml", { layout: "oci" });
 * ```
 */
export async function buildFile(file: string, opts: Omit<BuildOptions, "file" | "baseDir"> & { baseDir?: string }): Promise<BuiltTarget[]> {
  const spec = readBuildSpec(file);
  return await runBuild(spec, { ...opts, file, baseDir: opts.baseDir ?? path.dirname(path.resolve(file)) });
}
