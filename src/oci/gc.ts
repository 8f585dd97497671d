/**
 * Garbage collection of a layout: mark every blob reachable from
 * `index.json` (nested indexes, manifests, configs, layers, subjects) and
 * the pre-1.0 `refs/`, verify each kept blob (digest and size), then delete
 * unreferenced blobs and abandoned temporary files. Runs under the layout
 * lock; nothing is deleted unless every reachable blob verified.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import { isStaleTemp, TEMP_PREFIX } from "../fs/atomic.ts";
import { isValidDigest } from "./digest.ts";
import type { Layout } from "./layout.ts";
import { isIndexMediaType, isManifestMediaType } from "./media-type.ts";
import type { Descriptor } from "./types.ts";

/** What {@linkcode gcLayout} did. */
export interface GcResult {
  /** Digests of the blobs kept (reachable), sorted. */
  kept: string[];
  /** Digests of the blobs removed, sorted. */
  removed: string[];
  /** Temporary files removed (names). */
  tempRemoved: string[];
}

/**
 * The digests reachable from the layout's roots, each verified. Blobs with
 * `urls` (non-distributable layers) may be absent.
 *
 * @example
 * ```ts
 * const live = await reachableBlobs(layout);
 * ```
 */
export async function reachableBlobs(
  layout: Layout,
  verify = true,
  onVerified?: (d: Descriptor) => void,
): Promise<Map<string, Descriptor>> {
  const live = new Map<string, Descriptor>();
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (live.has(d.digest)) return;
    if (depth > 16) throw new OcigenError("EJSON", `${layout.dir}: descriptors nested too deeply at ${shortDigest(d.digest)}`);
    live.set(d.digest, d);
    if (isIndexMediaType(d.mediaType)) {
      const idx = await layout.readIndexBlob(d);
      for (const c of idx.manifests) await visit(c, depth + 1);
      if (idx.subject) await visitOptional(idx.subject);
    } else if (isManifestMediaType(d.mediaType)) {
      const m = await layout.readManifest(d);
      await visit(m.config, depth + 1);
      for (const l of m.layers) await visit(l, depth + 1);
      if (m.subject) await visitOptional(m.subject);
    } else if (verify && d.data === undefined) {
      try {
        await layout.verifyBlob(d);
        onVerified?.(d);
      } catch (e) {
        if (!(d.urls?.length && e instanceof OcigenError && e.code === "ENOBLOB")) throw e;
      }
    }
  };
  // A subject is kept when present, but may legitimately be missing.
  const visitOptional = async (d: Descriptor): Promise<void> => {
    if (fs.existsSync(layout.blobPath(d.digest))) await visit(d, 0);
  };
  for (const d of (await layout.readIndex()).manifests) await visit(d, 0);
  for (const d of (await layout.legacyRefs()).values()) await visit(d, 0);
  return live;
}

/**
 * Deletes every blob not reachable from the layout's roots (after verifying
 * the reachable ones) and stale `.ocigen-tmp.*` files.
 *
 * @example
 * ```ts
 * const r = await gcLayout(await Layout.open("/l"));
 * console.log(`removed ${r.removed.length} blobs`);
 * ```
 */
export async function gcLayout(layout: Layout, opts: { onVerified?: (d: Descriptor) => void } = {}): Promise<GcResult> {
  return await layout.withLock(async () => {
    const live = await reachableBlobs(layout, true, opts.onVerified);
    const res: GcResult = { kept: [...live.keys()].sort(), removed: [], tempRemoved: [] };
    const rm = (p: string) => {
      try {
        fs.unlinkSync(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw wrapIo(e, "remove", p);
      }
    };
    const sweepTemps = (dir: string) => {
      for (const n of fs.readdirSync(dir)) {
        if (!n.startsWith(TEMP_PREFIX)) continue;
        const p = join(dir, n);
        const st = fs.lstatSync(p);
        if (st.isFile() && isStaleTemp(n, st.mtimeMs)) {
          rm(p);
          res.tempRemoved.push(n);
        }
      }
    };
    sweepTemps(layout.dir);
    const blobs = join(layout.dir, "blobs");
    let algs: string[] = [];
    try {
      // never through a symlink: a hostile layout could point blobs/ or blobs/<alg> at a host directory
      if (fs.lstatSync(blobs).isDirectory()) algs = fs.readdirSync(blobs);
      else log.warn(`gc: ${blobs} is not a directory (symlink?): no blob removed`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw wrapIo(e, "read directory", blobs);
    }
    for (const alg of algs) {
      const dir = join(blobs, alg);
      if (!fs.lstatSync(dir).isDirectory()) continue;
      sweepTemps(dir);
      for (const n of fs.readdirSync(dir)) {
        const digest = `${alg}:${n}`;
        if (!isValidDigest(digest) || live.has(digest)) continue;
        rm(join(dir, n));
        res.removed.push(digest);
        log.info(`gc: removed blob ${digest}`);
      }
    }
    res.removed.sort();
    return res;
  });
}
