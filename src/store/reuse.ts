/**
 * Reuse of lower layers: building a rootfs from the verified tree of another
 * image whose bottom layers are the same (same chain of diff_ids, see
 * ./chain.ts) plus the remaining layers, instead of applying every layer.
 *
 * A *source* is a tree with a chain record: a store entry (its
 * `ocigen-chain.json`), or a scratch tree bulk extraction built for several
 * images sharing bottom layers. Before a source is used, it is checked again:
 * its recorded chain must be this image's prefix, in the same owner mode, and
 * the tree must still match its recorded fingerprint after the copy (a
 * service writing into it, or gc removing it meanwhile, changes some ctime
 * or entry; no lock is taken on the source, so any number of images copy it
 * at once). A source that fails a check is dropped with a warning and every
 * layer is applied. The layer blobs the source stands for are still verified
 * (./verified.ts): reuse is an optimisation, never a trust shortcut.
 *
 * The tree is built in `.<name>.tmp-<pid>-<rand>/rootfs` beside the target
 * (0700 from its creation, removed on SIGINT/SIGTERM/SIGHUP by
 * src/fs/temp-tree.ts, and by the next build when its process is gone) and
 * renamed into place: the target appears complete or not at all.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import { applyLayers, removeTree, type UnpackOptions } from "../layer/unpack.ts";
import { runningAsRoot } from "../layer/apply.ts";
import { deadRunEntries, makeTempTree } from "../fs/temp-tree.ts";
import { CHAIN_FILE, chainIds, readChainRecord, readChainRecordFile, treeFingerprint } from "./chain.ts";
import { cloneTree, type CopyMode } from "./copy.ts";
import { storeDir, storeRootfs } from "./paths.ts";
import { verifyReusedLayers } from "./verified.ts";

/** A tree to start from: the bottom `depth` layers of an image, verified. */
export interface ReuseSource {
  /** Root of the source tree. */
  path: string;
  /** Number of bottom layers it holds. */
  depth: number;
  /** ChainID of those layers (checked again before use). */
  chain: string;
  /**
   * Its chain record file (./chain.ts), read just before the copy: chain and
   * fingerprint must match, else the source is not used.
   */
  record: string;
  /** What it is, for messages and the summary. */
  label: string;
}

/** Options of {@linkcode buildFromSource}. */
export interface BuildOptions {
  /** Passed to the unpack engine; `onLayer` gets 1-based indexes over all `depth` layers. */
  unpack?: UnpackOptions;
  /** How the source is copied (default "auto": GNU cp when present). */
  copyMode?: CopyMode;
  /** Receives a warning when the source cannot be used. */
  warnings?: string[];
}

/**
 * Whether trees are applied rootless (owners not applied) under `unpack`:
 * its `rootless`, else whether this process is not root.
 *
 * @example
 * ```ts
 * rootlessMode({}); // false when run as root
 * ```
 */
export function rootlessMode(unpack?: UnpackOptions): boolean {
  return unpack?.rootless ?? !runningAsRoot();
}

function isDir(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
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

/** Copies `source` into `tmp` after checking it (see the module docs); throws why it cannot be used. */
function copySource(source: ReuseSource, chain: string, tmp: string, rootless: boolean, copyMode: CopyMode | undefined): void {
  if (chain !== source.chain) throw new Error(`its chain ${shortDigest(source.chain)} is not a prefix of this image's`);
  const rec = readChainRecordFile(source.record);
  if (!rec) throw new Error("it has no chain record");
  if (rec.chain_ids.length !== source.depth || rec.chain_ids[source.depth - 1] !== chain) throw new Error("its recorded chain differs");
  if (rec.rootless !== rootless) throw new Error("it was applied in another owner mode");
  if (!isDir(source.path)) throw new Error("it is gone");
  cloneTree(source.path, tmp, copyMode);
  // Checked after the copy: any change to the source before now changed some ctime or entry.
  const now = treeFingerprint(source.path);
  if (now.fingerprint !== rec.tree.fingerprint) {
    throw new Error(`it changed since it was extracted (${now.entries} entries, ${rec.tree.entries} recorded)`);
  }
}

/**
 * Builds `target` (which must not exist) from `source` plus the layers of
 * `img` above `source.depth` — or from every one of its bottom `depth`
 * layers when there is no usable source — atomically (see the module docs).
 * Returns the number of layers applied. Throws EUNPACK when the manifest and
 * config disagree on the layer count, and the engine's errors.
 *
 * @example
 * ```ts
 * const applied = await buildFromSource(layout, img, source, img.manifest.layers.length, storeRootfs(dir, manifest));
 * ```
 */
export async function buildFromSource(
  layout: Layout,
  img: ResolvedImage,
  source: ReuseSource | undefined,
  depth: number,
  target: string,
  opts: BuildOptions = {},
): Promise<number> {
  const layers = img.manifest.layers.slice(0, depth);
  const diffIds = (img.config.rootfs?.diff_ids ?? []).slice(0, depth);
  if (layers.length !== depth || diffIds.length !== depth) {
    throw new OcigenError("EUNPACK", `Cannot unpack image ${shortDigest(img.manifestDescriptor.digest)}: ${img.manifest.layers.length} layers but ${img.config.rootfs?.diff_ids?.length ?? 0} diff_ids in the config`);
  }
  const usable = source !== undefined && source.depth > 0 && source.depth <= depth;
  // What a reused tree stands for is verified like a full unpack would (see ./verified.ts).
  if (usable) await verifyReusedLayers(layout, layers.slice(0, source.depth));
  cleanStaleTemps(target);
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
    if (usable) {
      try {
        copySource(source, chainIds(diffIds)[source.depth - 1], tmp, rootlessMode(opts.unpack), opts.copyMode);
        from = source.depth;
      } catch (e) {
        const warning = `could not start from ${source.label}: ${(e as Error).message}; unpacking every layer`;
        opts.warnings?.push(warning);
        log.warn(warning);
        removeTree(tmp);
        mk();
      }
    }
    const unpack = opts.unpack ?? {};
    await applyLayers(layout, layers.slice(from), diffIds.slice(from), tmp, {
      ...unpack,
      onLayer: (i, n, d) => unpack.onLayer?.(i + from, n + from, d),
    });
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

/**
 * The store rootfs of `manifest` as a source (its whole verified chain), or
 * null when it has no chain record, no layers, or was applied in another
 * owner mode.
 *
 * @example
 * ```ts
 * const src = storeSource("/var/lib/oci/extracts", manifest, false);
 * ```
 */
export function storeSource(extractsDir: string, manifest: string, rootless: boolean): ReuseSource | null {
  const rec = readChainRecord(extractsDir, manifest);
  const depth = rec?.chain_ids.length ?? 0;
  if (!rec || depth === 0 || rec.rootless !== rootless) return null;
  return {
    path: storeRootfs(extractsDir, manifest),
    depth,
    chain: rec.chain_ids[depth - 1],
    record: join(storeDir(extractsDir, manifest), CHAIN_FILE),
    label: `extract ${shortDigest(manifest)}`,
  };
}
