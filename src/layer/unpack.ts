/**
 * Unpacking images: applying verified layers to a directory, atomically
 * publishing a rootfs, and writing umoci-compatible runtime bundles.
 *
 * Over 500 lines: a 60-line contract (the pipeline, atomicity, the bundle
 * files, every deliberate difference from umoci) heads the per-layer
 * pipeline and the two ways of publishing its result, which share one
 * temporary-directory and cleanup path (`inTemp`); the publishing half
 * (`inTemp`, `unpackRootfs`, `unpackBundle`) is the next file to split off.
 *
 * Pipeline per layer (synchronous push stages):
 * blob bytes -> digest+size verification (layout.pipeBlob) -> decoder
 * (gzip/zstd/none) -> [diff_id hasher | tar parser -> layer applier].
 * gzip layers of at least `FILE_WORKER_MIN_BYTES` (compress/; on a machine
 * with a second core) run the first stages in a worker thread instead
 * (`FileGunzip`: the worker reads the blob, hashes it, checks its size,
 * inflates, hashes the output for the diff_id), so this thread only parses
 * tar and writes files; the next layer's job starts while the current one is
 * applied (one layer of lookahead, at most a 16 MiB ring ahead;
 * `lookahead: false` turns that off, `inflate: "wasm"` keeps
 * everything in this thread). Digests are compared after the layer was
 * applied, before anything is published, exactly as on the in-thread path.
 *
 * Atomicity: {@linkcode unpackRootfs} and {@linkcode unpackBundle} build in a
 * temporary directory `.<name>.tmp-<pid>-<rand>` beside the target and rename
 * it into place only after every layer's digest, size and diff_id verified; on
 * error the temporary directory is removed and the target is untouched. A
 * `kill -9` leaves at most the temporary directory, which the next unpack
 * into the same parent removes (its pid is gone); SIGINT/SIGTERM/SIGHUP
 * remove it before the process exits. The temporary directory is 0700 from
 * its creation: a bundle stays 0700 (as umoci's), a rootfs is built in
 * `TMP/rootfs` and only that is renamed into place, so no other user can
 * reach the image's setuid binaries or device nodes while they are written.
 *
 * Bundle files: `rootfs/`, `config.json` (runtime-spec, see
 * {@linkcode convertConfig}), `umoci.json` (umoci's format, version "2":
 * `{"umoci_version":"2","from_descriptor_path":{"descriptor_walk":[manifest]},
 * "map_options":{"uid_mappings":…,"gid_mappings":…,"rootless":…},"whiteout_mode":0}`),
 * the bundle manifests (both from one walk of the tree, `bundle/write.ts`;
 * the sha256 of each file that umoci's mtree records is computed while the
 * file is written — in the worker for worker layers — and looked up by
 * inode, `written.ts`, so the tree is not read again), and in rootless mode
 * the owners from the layers that
 * could not be applied as `user.rootlesscontainers` xattrs (as umoci), or,
 * for symlinks (which cannot carry `user.*` xattrs) and on filesystems
 * without user xattrs, in `ocigen.owners.json` (`{"path":[uid,gid],…}`).
 *
 * Deliberate differences from umoci 0.4.7 (everything else is checked equal by
 * test/unpack-umoci.test.ts):
 * - `.wh.`, `.wh..`, `.wh...` are `EWHITEOUT` errors before anything is
 *   touched (umoci deletes the directory holding them, or its parent, then fails);
 * - aufs metadata (`.wh..wh.plnk/…`, `.wh..wh.aufs`) is skipped, as Docker does
 *   (umoci materialises it as files);
 * - typeflag `7` (contiguous file) is a regular file, as POSIX says (umoci
 *   fails: unknown typeflag);
 * - a hard link to itself is a no-op (umoci fails: link: no such file);
 * - zstd layers are supported (umoci 0.4.7 refuses the media type);
 * - rootless: directories keep u+rwx so their owner can read, repack and
 *   remove the tree, and symlink owners are kept in `ocigen.owners.json`;
 * - config.json: absent fields give no annotation (umoci writes Go zero
 *   values: `""`, `0001-01-01T00:00:00Z`); hostname `ocigen-default`;
 * - beside umoci's `sha256_<digest>.mtree` the bundle also has ocigen's
 *   faster `ocigen.mtree.jsonl` (see `UnpackOptions.bundleManifests`);
 * - the tree is built beside the target and renamed into place after all
 *   verification, and flushed (`sync -f`; nothing to flush on tmpfs or
 *   ramfs) first (umoci unpacks in place);
 *   a bundle's flush runs in the background while its manifests are made
 *   (they only read the tree), then the files beside the rootfs are fsynced.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import { deadRunEntries, makeTempTree, runTreePid } from "../fs/temp-tree.ts";
import { createDigester, isSupportedAlgorithm } from "../digest/index.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import type { Descriptor } from "../oci/types.ts";
import { REF_NAME } from "../oci/types.ts";
import { createDecoderFor } from "../compress/index.ts";
import { layerCompression } from "../oci/media-type.ts";
import { BlobReadError, type FileGunzip, fileWorkerWanted, startFileGunzip } from "../compress/inflate-worker.ts";
import { validateDescriptor } from "../oci/digest.ts";
import { TarParser } from "../tar/parser.ts";
import { TarKernelParser } from "../tar/kernel.ts";
import type { ByteSink } from "../stream/sink.ts";
import { type ApplyOptions, ApplyState, LayerApplier } from "./apply.ts";
import { RootResolver } from "../rootfs/resolve.ts";
import { convertConfig } from "./convert.ts";
import { writeBundleManifests } from "../bundle/write.ts";
import { MTREE_WORKER_MIN_FILES, startMtreeWorker } from "./mtree-worker.ts";
import { encodeRootlessOwner, ROOTLESS_XATTR } from "../bundle/rootlesscontainers.ts";
import { haveSetfattr, setXattrs, type XattrSet } from "./special.ts";
import { treeXattrs } from "../bundle/manifest.ts";
import { readRootXattrsAsync } from "../bundle/xattr.ts";
import { formatIdMap } from "./idmap.ts";
import { fsyncDir } from "../fs/atomic.ts";
import { spawn, spawnSync } from "node:child_process";

/**
 * Options of the unpack functions.
 *
 * @example
 * ```ts
 * await unpackBundle(layout, image, "/tmp/b", { rootless: true, uidMap: [parseIdMap("0:1000:1")] });
 * ```
 */
export interface UnpackOptions extends ApplyOptions {
  /** Called before each layer (1-based index). */
  onLayer?: (index: number, count: number, layer: Descriptor) => void;
  /** unpackRootfs: replace an existing target directory (two renames; the old tree is removed after). */
  replace?: boolean;
  /**
   * Flush the new tree to disk (`sync -f`, i.e. syncfs) before renaming it into
   * place and fsync the parent after, so a power loss cannot publish a tree
   * whose files are not on disk (default true).
   */
  durable?: boolean;
  /**
   * Which change manifests `unpackBundle` writes: umoci's
   * `sha256_<hex>.mtree` (read by `umoci repack` and `gomtree`), ocigen's
   * `ocigen.mtree.jsonl` (lets `ocigen repack` skip unchanged files without
   * reading them), or both (default).
   */
  bundleManifests?: "both" | "umoci" | "ocigen";
  /**
   * `unpackRootfs` in rootless mode: record the owners that could not be
   * applied in `user.rootlesscontainers` xattrs, as `unpackBundle` always
   * does (`umoci raw unpack --rootless`). Default false.
   */
  rootlessOwnerXattrs?: boolean;
  /**
   * Start the next layer's worker job while applying this one (default
   * true; false for measurements: the command line passes the settings'
   * `lookahead`, `OCIGEN_LOOKAHEAD=0`).
   */
  lookahead?: boolean;
  /**
   * `unpackBundle` with both manifests: from how many written files on umoci's
   * mtree is made by its own walk in a worker thread, beside this thread's
   * walk for ocigen's (default {@linkcode MTREE_WORKER_MIN_FILES}; `Infinity`:
   * one walk serves both).
   */
  mtreeWorkerMinFiles?: number;
}

/**
 * Rootless: writes each owner that could not be applied as a
 * `user.rootlesscontainers` xattr (see `../bundle/rootlesscontainers.ts`).
 * Returns the owners that could not be recorded that way: those of
 * symlinks (Linux allows no `user.*` xattr on them), or all of them when
 * `setfattr` is missing or the filesystem refuses user xattrs.
 */
function recordRootlessOwners(rootfs: string, owners: ReadonlyMap<string, { uid: number; gid: number }>): Map<string, { uid: number; gid: number }> {
  const left = new Map<string, { uid: number; gid: number }>();
  const sets: XattrSet[] = [];
  for (const [rel, o] of owners) {
    const value = encodeRootlessOwner(o.uid, o.gid);
    if (!value) continue;
    const st = fs.lstatSync(rel === "" || rel === "." ? rootfs : path.join(rootfs, rel), { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) left.set(rel, o);
    else sets.push({ rel: rel === "" ? "." : rel, name: ROOTLESS_XATTR, value });
  }
  if (sets.length === 0) return left;
  const errors = haveSetfattr() ? setXattrs(rootfs, sets) : ["setfattr (package attr) not installed"];
  if (errors.length > 0) {
    log.warn(`cannot record rootless owners as ${ROOTLESS_XATTR} xattrs (${errors[0]}): recording them in ${OWNERS_FILE}`);
    return new Map(owners);
  }
  return left;
}

/** `statfs` types of filesystems without backing store (tmpfs, ramfs): syncing one flushes nothing. */
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);

/** True when `dir` is on a filesystem held in memory (no process is started to flush it). */
function inMemoryFs(dir: string): boolean {
  try {
    return typeof fs.statfsSync === "function" && MEMORY_FS.has(Number(fs.statfsSync(dir).type));
  } catch {
    return false; // unknown: flush
  }
}

/**
 * Flushes the filesystem holding `dir` (syncfs through coreutils `sync -f`;
 * plain `sync` as a fallback). Nothing to do (and no process started) on a
 * filesystem held in memory.
 */
function flushTree(dir: string): void {
  if (inMemoryFs(dir)) return;
  let r = spawnSync("sync", ["-f", dir], { stdio: "ignore" });
  if (r.error || r.status !== 0) r = spawnSync("sync", [], { stdio: "ignore" });
  if (r.error) log.debug(`could not run sync: ${r.error.message}`);
}

/**
 * {@linkcode flushTree} in the background: the returned promise settles
 * (never rejects) once the filesystem holding `dir` is flushed, so that work
 * that only reads the tree (the bundle manifests) overlaps the disk writes.
 * Settled at once on a filesystem held in memory.
 */
function startFlush(dir: string): Promise<void> {
  if (inMemoryFs(dir)) return Promise.resolve();
  const run = (args: string[]) =>
    new Promise<boolean>((resolve) => {
      const child = spawn("sync", args, { stdio: "ignore" });
      child.once("error", (e) => {
        log.debug(`could not run sync: ${e.message}`);
        resolve(false);
      });
      child.once("close", (code) => resolve(code === 0));
    });
  return run(["-f", dir]).then(async (ok) => {
    if (!ok) await run([]);
  });
}

/** fsyncs the regular files directly in `dir`, then `dir` itself (what a bundle writes beside its flushed rootfs). */
function fsyncTopFiles(dir: string): void {
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!d.isFile()) continue;
    const p = path.join(dir, d.name);
    let fd: number | undefined;
    try {
      fd = fs.openSync(p, "r");
      fs.fsyncSync(fd);
    } catch (e) {
      throw wrapIo(e, "fsync", p);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  fsyncDir(dir);
}

/**
 * Name of the rootless owner record in a bundle.
 *
 * @example
 * ```ts
 * JSON.parse(fs.readFileSync(path.join(bundle, OWNERS_FILE), "utf8")); // { "etc/x": [5, 6] }
 * ```
 */
export const OWNERS_FILE = "ocigen.owners.json";

function checkedDigester(digest: string, what: string) {
  if (typeof digest !== "string") throw new OcigenError("EDIFFID", `Cannot unpack ${what}: the config has no diff_id for it`);
  const alg = digest.slice(0, Math.max(0, digest.indexOf(":")));
  if (!isSupportedAlgorithm(alg)) throw new OcigenError("EDIFFID", `Cannot unpack ${what}: unsupported diff_id ${digest}`);
  return createDigester(alg);
}

/**
 * Starts reading + verifying + inflating a gzip layer in a worker thread
 * (blob sha256, size, diff_id sha256 all computed there), or returns null when
 * the layer must go through the in-thread pipeline (not gzip, embedded data,
 * not sha256, small, no spare core or no workers, an invalid descriptor —
 * whose error the in-thread path reports).
 */
function startLayerJob(layout: Layout, desc: Descriptor, diffId: string, state: ApplyState): FileGunzip | null {
  if (!desc || typeof desc !== "object" || layerCompression(desc.mediaType) !== "gzip" || desc.data !== undefined) return null;
  if (!fileWorkerWanted(desc.size, state.opts.inflate)) return null;
  if (typeof desc.digest !== "string" || !desc.digest.startsWith("sha256:")) return null;
  if (typeof diffId !== "string" || !diffId.startsWith("sha256:")) return null;
  try {
    validateDescriptor(desc, "layer");
  } catch {
    return null;
  }
  let file: string;
  try {
    file = layout.checkedBlobPath(desc); // regular, inside the layout, right size; else the in-thread path reports it
  } catch {
    return null;
  }
  return startFileGunzip(file, {
    name: `layer ${shortDigest(desc.digest)}`,
    size: desc.size,
    mode: state.opts.inflate,
    tarRecords: state.opts.tarKernel ?? true, // the worker parses the tar stream on the WASM kernel
    entryDigests: state.written !== null, // and hashes the files' content, off this thread
  });
}

/** Reports a failed layer stream: the blob's own verification error first (missing, size, digest), else `e`. */
async function layerFailure(layout: Layout, desc: Descriptor, what: string, e: unknown): Promise<never> {
  if (e instanceof OcigenError && (e.code === "EDIGEST" || e.code === "ESIZE" || e.code === "ENOBLOB") && !(e instanceof BlobReadError)) throw e;
  // A broken stream from a blob that does not verify: report the blob.
  try {
    await layout.verifyBlob(desc);
  } catch (v) {
    if (v instanceof OcigenError && (v.code === "EDIGEST" || v.code === "ESIZE" || v.code === "ENOBLOB")) throw v;
    if (e instanceof BlobReadError) throw v;
  }
  if (e instanceof OcigenError) throw e;
  throw new OcigenError("EUNPACK", `Cannot unpack ${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** The tar reader of one layer: the WebAssembly kernel when the options ask for it, else the TypeScript parser. */
function layerTarReader(state: ApplyState, what: string): TarParser | TarKernelParser {
  const applier = new LayerApplier(state, what);
  return state.opts.tarKernel ?? true ? new TarKernelParser(applier, { context: what }) : new TarParser(applier, { context: what });
}

/** The worker-thread path of {@linkcode applyLayer}: the job already reads, verifies and inflates the blob. */
async function applyLayerJob(layout: Layout, desc: Descriptor, diffId: string, state: ApplyState, job: FileGunzip): Promise<void> {
  const what = `layer ${shortDigest(desc.digest)}`;
  const onProgress = state.opts.onProgress;
  const progress = onProgress ? (n: number) => onProgress(n, 0) : undefined;
  try {
    if (state.opts.tarKernel ?? true) job.pumpEntries(new LayerApplier(state, what, job.entryDigests, job.finishesFiles ? job : undefined), progress);
    else job.pump(layerTarReader(state, what), progress);
  } catch (e) {
    job.destroy();
    await layerFailure(layout, desc, what, e);
  }
  if (job.inputDigest() !== desc.digest) {
    await layout.verifyBlob(desc); // throws the layout's own EDIGEST message
    throw new OcigenError("EDIGEST", `Cannot unpack ${what}: blob content hashes to ${shortDigest(String(job.inputDigest()))}`);
  }
  const got = job.outputDigest();
  if (got !== diffId) {
    throw new OcigenError(
      "EDIFFID",
      `Cannot unpack ${what}: diff_id mismatch: uncompressed content hashes to ${shortDigest(String(got))}, the config says ${shortDigest(diffId)}`,
    );
  }
}

/**
 * Applies one layer blob to the state's root, verifying digest, size and diff_id.
 * Large gzip layers are read, verified and inflated in a worker thread (see
 * `FILE_WORKER_MIN_BYTES` in compress/); `job` is such a job already started
 * for this layer (by {@linkcode applyLayers}, one layer ahead), `null` to use
 * this thread, `undefined` to decide here.
 *
 * @example
 * ```ts
 * await applyLayer(layout, image.manifest.layers[0], image.config.rootfs.diff_ids[0], new ApplyState("/tmp/r"));
 * ```
 */
export async function applyLayer(layout: Layout, desc: Descriptor, diffId: string, state: ApplyState, job?: FileGunzip | null): Promise<void> {
  if (job === undefined) job = startLayerJob(layout, desc, diffId, state);
  if (job) return await applyLayerJob(layout, desc, diffId, state, job);
  const what = `layer ${shortDigest(String(desc?.digest))}`;
  const compression = layerCompression(desc.mediaType);
  if (!compression) throw new OcigenError("EMEDIATYPE", `Cannot unpack ${what}: unsupported layer media type ${desc.mediaType}`);
  const diff = checkedDigester(diffId, what);
  const parser = layerTarReader(state, what);
  const tee: ByteSink = {
    write(c) {
      diff.update(c);
      parser.write(c);
    },
    end() {
      parser.end();
    },
  };
  const decoder = createDecoderFor(compression, tee, what, undefined, { zstdWindowMax: state.opts.zstdWindowMax, inflate: state.opts.inflate });
  const onProgress = state.opts.onProgress;
  const input: ByteSink = onProgress
    ? {
      write(c) {
        onProgress(c.length, 0);
        decoder.write(c);
      },
      end() {
        decoder.end();
      },
    }
    : decoder;
  try {
    await layout.pipeBlob(desc, input);
  } catch (e) {
    await layerFailure(layout, desc, what, e);
  }
  const got = diff.digest();
  if (got !== diffId) {
    throw new OcigenError(
      "EDIFFID",
      `Cannot unpack ${what}: diff_id mismatch: uncompressed content hashes to ${shortDigest(got)}, the config says ${shortDigest(diffId)}`,
    );
  }
}

/**
 * Applies layers in order to an existing directory (not atomic: use
 * {@linkcode unpackRootfs} to publish a tree). Returns the apply state
 * (rootless owner records).
 *
 * @example
 * ```ts
 * const img = await layout.resolve("latest");
 * await applyLayers(layout, img.manifest.layers, img.config.rootfs.diff_ids, "/tmp/rootfs", {});
 * ```
 */
export async function applyLayers(
  layout: Layout,
  layers: Descriptor[],
  diffIds: string[],
  rootfs: string,
  opts: UnpackOptions = {},
): Promise<ApplyState> {
  if (layers.length !== diffIds.length) {
    throw new OcigenError("EUNPACK", `Cannot unpack image: ${layers.length} layers but ${diffIds.length} diff_ids in the config`);
  }
  const root = path.resolve(rootfs);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (e) {
    throw wrapIo(e, "open root", root);
  }
  if (!st.isDirectory()) throw new OcigenError("EUNPACK", `Cannot unpack to ${root}: not a directory`);
  const state = new ApplyState(root, opts);
  // Pipelined: the next layer's worker job starts while this one is applied
  // (it inflates up to its bounded ring ahead, then waits).
  let next: FileGunzip | null = startLayerJob(layout, layers[0], diffIds[0], state);
  const lookahead = opts.lookahead ?? true;
  try {
    for (let i = 0; i < layers.length; i++) {
      const cur = i === 0 || lookahead ? next : startLayerJob(layout, layers[i], diffIds[i], state);
      next = null;
      if (i + 1 < layers.length && lookahead) next = startLayerJob(layout, layers[i + 1], diffIds[i + 1], state);
      opts.onLayer?.(i + 1, layers.length, layers[i]);
      log.debug(`applying layer ${i + 1}/${layers.length} ${shortDigest(layers[i].digest)}${cur ? " (worker)" : ""}`);
      try {
        await applyLayer(layout, layers[i], diffIds[i], state, cur);
      } finally {
        cur?.destroy();
      }
    }
  } finally {
    next?.destroy();
  }
  restoreFixedDirs(state);
  return state;
}

/** Rootless: gives directories made accessible while writing their modes back (deepest first). */
function restoreFixedDirs(state: ApplyState): void {
  const list = [...state.fixedDirs.entries()].sort((a, b) => b[0].split("/").length - a[0].split("/").length);
  const r = new RootResolver(state.root);
  for (const [rel, mode] of list) {
    const comps = rel.split("/");
    const parent = r.resolveDir(comps.slice(0, -1), false);
    if (!parent || parent.rel !== comps.slice(0, -1).join("/")) continue;
    try {
      const abs = r.abs(rel);
      if (fs.lstatSync(abs).isDirectory()) fs.chmodSync(abs, mode);
    } catch {
      // gone: nothing to restore
    }
  }
  state.fixedDirs.clear();
}

/**
 * Removes a tree we created, making directories writable as needed (rootless). Never follows symlinks.
 *
 * @example
 * ```ts
 * removeTree("/tmp/.rootfs.tmp-123-abcd0123");
 * ```
 */
export function removeTree(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    fs.unlinkSync(p);
    return;
  }
  try {
    fs.rmSync(p, { recursive: true, force: true });
    return;
  } catch {
    // permissions (rootless): walk and fix
  }
  const walk = (d: string) => {
    try {
      fs.chmodSync(d, 0o700);
    } catch { /* ignore */ }
    for (const n of fs.readdirSync(d)) {
      const c = path.join(d, n);
      const s = fs.lstatSync(c);
      if (s.isDirectory()) walk(c);
      else fs.unlinkSync(c);
    }
    fs.rmdirSync(d);
  };
  walk(p);
}

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Removes the temporary trees that runs killed without a chance to clean up
 * (SIGKILL, a crash) left in `target`'s directory: any `.<name>.tmp-<pid>-<hex>`
 * whose process is gone, whatever target it was for.
 */
function cleanStaleTemps(target: string): void {
  for (const p of deadRunEntries(path.dirname(target), (n) => (n.startsWith(".") ? runTreePid(n) : null))) {
    try {
      removeTree(p);
      log.debug(`removed stale ${path.basename(p)}`);
    } catch {
      // not ours to worry about
    }
  }
}

function exists(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Builds in a temporary directory beside `target`, created 0700 before
 * anything goes in (see src/fs/temp-tree.ts) and removed on failure or
 * SIGINT/SIGTERM/SIGHUP. With `inner` the tree is built in `TMP/rootfs`
 * (0755, like any rootfs) inside the closed TMP and only that directory is
 * published; otherwise TMP itself (a bundle, which stays 0700) is.
 * `durable`: "flush" flushes the built tree before publishing it and fsyncs
 * the parent after; "flushed" only the latter (`build` made its tree
 * durable itself); "none" neither.
 */
async function inTemp<T>(
  target: string,
  inner: boolean,
  durable: "flush" | "flushed" | "none",
  build: (tmp: string) => Promise<T>,
  publish: (tmp: string) => void,
): Promise<T> {
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (e) {
    throw wrapIo(e, "mkdir", path.dirname(target));
  }
  cleanStaleTemps(target);
  const tmp = tempName(target);
  let tree: ReturnType<typeof makeTempTree>;
  const dir = inner ? path.join(tmp, "rootfs") : tmp;
  try {
    tree = makeTempTree(tmp);
  } catch (e) {
    throw wrapIo(e, "mkdir", tmp);
  }
  try {
    if (inner) {
      try {
        fs.mkdirSync(dir, 0o755);
        fs.chmodSync(dir, 0o755);
      } catch (e) {
        throw wrapIo(e, "mkdir", dir);
      }
    }
    const r = await build(dir);
    if (durable === "flush") flushTree(dir);
    publish(dir);
    if (inner) {
      try {
        fs.rmdirSync(tmp);
      } catch (e2) {
        log.warn(`could not remove ${tmp}: ${(e2 as Error).message}`);
      }
    }
    tree.release();
    if (durable !== "none") fsyncDir(path.dirname(target));
    return r;
  } catch (e) {
    try {
      removeTree(tmp);
      tree.release();
    } catch (e2) {
      log.warn(`could not remove ${tmp}: ${(e2 as Error).message}`);
    }
    throw e;
  }
}

/**
 * Unpacks an image's layers into `target`, atomically: built beside it and
 * renamed into place only when every layer verified. `target` must not exist
 * (unless `opts.replace`).
 *
 * @example
 * ```ts
 * const layout = await Layout.open("/l");
 * await unpackRootfs(layout, await layout.resolve("latest"), "/tmp/rootfs");
 * ```
 */
export async function unpackRootfs(layout: Layout, image: ResolvedImage, target: string, opts: UnpackOptions = {}): Promise<ApplyState> {
  const abs = path.resolve(target);
  const old = exists(abs);
  if (old && !opts.replace) throw new OcigenError("EUNPACK", `Cannot unpack to ${target}: it already exists`);
  return await inTemp(
    abs,
    true,
    opts.durable ?? true ? "flush" : "none",
    async (tmp) => {
      const state = await applyLayers(layout, image.manifest.layers, image.config.rootfs?.diff_ids ?? [], tmp, opts);
      if (state.rootless && opts.rootlessOwnerXattrs) recordRootlessOwners(tmp, state.owners);
      return state;
    },
    (tmp) => {
      try {
        if (exists(abs)) {
          const trash = tempName(abs);
          fs.renameSync(abs, trash);
          fs.renameSync(tmp, abs);
          removeTree(trash);
        } else fs.renameSync(tmp, abs);
      } catch (e) {
        throw wrapIo(e, "rename into place", abs);
      }
    },
  );
}

/**
 * umoci's `umoci.json` content for a bundle.
 *
 * @example
 * ```ts
 * fs.writeFileSync("umoci.json", JSON.stringify(bundleMeta(image, {}, false)));
 * ```
 */
export function bundleMeta(image: ResolvedImage, opts: UnpackOptions, rootless: boolean): Record<string, unknown> {
  const from: Descriptor = { ...image.manifestDescriptor };
  from.annotations = { ...(from.annotations ?? {}), [REF_NAME]: image.tag };
  const maps = (m?: UnpackOptions["uidMap"]) => (m && m.length ? m.map((x) => ({ ...x })) : null);
  return {
    umoci_version: "2",
    from_descriptor_path: { descriptor_walk: [from] },
    map_options: { uid_mappings: maps(opts.uidMap), gid_mappings: maps(opts.gidMap), rootless },
    whiteout_mode: 0,
  };
}

function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  try {
    fs.writeFileSync(file, text, { mode });
  } catch (e) {
    throw wrapIo(e, "write", file);
  }
}

/**
 * Writes a runtime bundle (`rootfs/`, `config.json`, `umoci.json`, bundle
 * manifest) at `bundle`, atomically. `bundle` may exist only as an empty
 * directory.
 *
 * @example
 * ```ts
 * const layout = await Layout.open("/l");
 * await unpackBundle(layout, await layout.resolve("latest"), "/tmp/bundle");
 * ```
 */
export async function unpackBundle(layout: Layout, image: ResolvedImage, bundle: string, opts: UnpackOptions = {}): Promise<ApplyState> {
  const abs = path.resolve(bundle);
  const old = exists(abs);
  if (old) {
    if (!old.isDirectory() || fs.readdirSync(abs).length > 0) {
      throw new OcigenError("EUNPACK", `Cannot unpack to ${bundle}: it exists and is not an empty directory`);
    }
  }
  const durable = opts.durable ?? true;
  return await inTemp(
    abs,
    false,
    durable ? "flushed" : "none",
    async (tmp) => {
      const rootfs = path.join(tmp, "rootfs");
      fs.mkdirSync(rootfs, 0o755);
      fs.chmodSync(rootfs, 0o755);
      // what the kernel attached to the new root (see treeXattrs), read while the layers are applied
      const rootProbe = readRootXattrsAsync(rootfs);
      const which = opts.bundleManifests ?? "both";
      // umoci's mtree records every file's sha256: computed while the files are written
      const state = await applyLayers(layout, image.manifest.layers, image.config.rootfs?.diff_ids ?? [], rootfs, {
        ...opts,
        recordDigests: which !== "ocigen",
      });
      const spec = convertConfig(image.config, {
        rootfs,
        rootless: state.rootless,
        uidMappings: opts.uidMap,
        gidMappings: opts.gidMap,
      });
      writeFileAtomic(path.join(tmp, "config.json"), JSON.stringify(spec, null, "\t") + "\n");
      writeFileAtomic(path.join(tmp, "umoci.json"), JSON.stringify(bundleMeta(image, opts, state.rootless)) + "\n");
      const left = state.rootless ? recordRootlessOwners(rootfs, state.owners) : new Map();
      if (left.size) {
        const o: Record<string, [number, number]> = {};
        for (const [k, v] of [...left.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) o[k] = [v.uid, v.gid];
        writeFileAtomic(path.join(tmp, OWNERS_FILE), JSON.stringify(o) + "\n");
      }
      // the tree and the files above are complete: flush them to disk while the
      // manifests (which only read the tree) are made, then fsync what those wrote
      const flushing = durable ? startFlush(tmp) : undefined;
      try {
        // one walk and one xattr read serve both manifests; no xattr set by the engine: no getfattr pass over the tree
        const xattrs = treeXattrs(rootfs, !state.anyXattrs && !(state.rootless && state.owners.size > 0), await rootProbe);
        const written = state.written;
        const treeName = path.join(bundle, "rootfs");
        const manifestDigest = image.manifestDescriptor.digest;
        // a large tree: umoci's mtree from its own walk on another core (see mtree-worker.ts)
        const mtreeDone = which === "both" && written && written.size >= (opts.mtreeWorkerMinFiles ?? MTREE_WORKER_MIN_FILES)
          ? startMtreeWorker({ bundleDir: tmp, rootfs, manifestDigest, treeName, xattrs }, written)
          : null;
        if (mtreeDone) log.debug(`${treeName}: umoci's mtree from its own walk in a worker thread`);
        try {
          await writeBundleManifests(tmp, rootfs, {
            manifestDigest,
            umoci: which !== "ocigen" && mtreeDone === null,
            ocigen: which !== "umoci",
            treeName,
            xattrs,
            known: written ? (st) => written.lookup(st) : undefined,
          });
        } catch (e) {
          await mtreeDone?.catch(() => {}); // nothing may write into the bundle once it is removed
          throw e;
        }
        await mtreeDone;
      } finally {
        await flushing;
      }
      if (durable) fsyncTopFiles(tmp);
      return state;
    },
    (tmp) => {
      try {
        fs.renameSync(tmp, abs); // replaces an empty directory
      } catch (e) {
        throw wrapIo(e, "rename into place", abs);
      }
    },
  );
}

/**
 * Formats id maps for messages/umoci.json (`container:host:size`).
 *
 * @example
 * ```ts
 * describeMaps({ uidMap: [parseIdMap("0:1000:1")] }); // "uid-map=0:1000:1 gid-map=-"
 * ```
 */
export function describeMaps(opts: UnpackOptions): string {
  const u = (opts.uidMap ?? []).map(formatIdMap).join(",");
  const g = (opts.gidMap ?? []).map(formatIdMap).join(",");
  return `uid-map=${u || "-"} gid-map=${g || "-"}`;
}
