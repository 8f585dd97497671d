/**
 * Extract-if-missing: makes sure the store holds the rootfs of one manifest
 * (`EXTRACTS/.store/<alg>/<hex>/rootfs`) and, optionally, points a unit's
 * `rootfs` link at it — what the companion units' `ocigen extract`,
 * `extract --all` and `ocigen update`'s prefetch all do.
 *
 * Under the entry's lock (./lock.ts), when the rootfs is missing: the image's
 * layer count is checked against its config, the entry directory is created
 * (0700), and the rootfs is built by the unpack engine (every layer verified,
 * built beside its place and renamed into it) — or, given a reuse source,
 * copied from that tree plus the remaining layers (./reuse.ts). With
 * `recordChain` the verified diff_ids are recorded beside it (./chain.ts), so
 * later runs may start other images from it. With `link`, the unit directory
 * is created and its `rootfs` symlink replaced atomically, under the same
 * lock. Directories this call created are removed again (if still empty)
 * when it fails: a failed first extract (a full disk) leaves no empty entry.
 *
 * @module
 */
import * as fs from "node:fs";
import { relative } from "node:path";
import { shortDigest, wrapIo } from "../errors.ts";
import { replaceEntry } from "../fs/atomic.ts";
import { log } from "../log.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import { checkLayerCount } from "../oci/validate.ts";
// The unpack engine (decompressors, tar, WASM) is imported only when something
// is extracted: `ocigen extract` runs before every unit start and is usually a no-op.
import type { UnpackOptions } from "../layer/unpack.ts";
import type { CopyMode } from "./copy.ts";
import { lockEntry, STORE_LOCK_TIMEOUT_MS } from "./lock.ts";
import { ensureStore, STORE_MODE, storeDir, storeRootfs, unitDir, unitRootfs } from "./paths.ts";
import type { ReuseSource } from "./reuse.ts";

/** Options of {@linkcode extractIfMissing}. */
export interface ExtractIfMissingOptions {
  /** The image as people name it (`layout:tag`), for messages. */
  where: string;
  /** The layout directory and tag, for the layer-count error (`DIR:TAG`). */
  imageName?: string;
  /** Passed to the unpack engine. */
  unpack?: UnpackOptions;
  /** Lock wait limit in ms (default {@linkcode STORE_LOCK_TIMEOUT_MS}). */
  lockTimeoutMs?: number;
  /** Also point `EXTRACTS/<link>/rootfs` at the rootfs (a unit base name). */
  link?: string;
  /** Start from this verified tree of an image this one extends (./reuse.ts). */
  source?: ReuseSource;
  /** How a source tree is copied (default "auto"). */
  copyMode?: CopyMode;
  /** Record the verified chain of a rootfs this call builds (./chain.ts). */
  recordChain?: boolean;
  /** Appended to the "extracting" log line (e.g. " before the restart"). */
  note?: string;
}

/** What {@linkcode extractIfMissing} did. */
export interface ExtractIfMissingResult {
  /** The store rootfs of the manifest. */
  rootfs: string;
  /** True if this call built the rootfs. */
  extracted: boolean;
  /** Layers applied (fewer than the image has when started from a source). */
  applied: number;
  /** The source's label, when the rootfs was started from one. */
  reused?: string;
  /** True if this call changed the unit's link. */
  linked: boolean;
  /** Non-fatal problems (a source that could not be used, a chain record not written). */
  warnings: string[];
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}

/** Replaces the symlink at `link` by one to `target`, atomically. */
function relink(link: string, target: string): void {
  try {
    replaceEntry(link, (tmp) => fs.symlinkSync(target, tmp));
  } catch (e) {
    throw wrapIo(e, "replace symlink", link);
  }
}

/**
 * Makes sure the store holds the rootfs of `img` (and, with `link`, that the
 * unit's link points at it); see the module docs.
 *
 * @example
 * ```ts
 * const r = await extractIfMissing("/var/lib/oci/extracts", layout, img, { where: "busybox:latest", link: "busybox.ref.latest" });
 * console.log(r.rootfs, r.extracted ? "(extracted)" : "");
 * ```
 */
export async function extractIfMissing(extractsDir: string, layout: Layout, img: ResolvedImage, opts: ExtractIfMissingOptions): Promise<ExtractIfMissingResult> {
  const manifest = img.manifestDescriptor.digest;
  const store = storeRootfs(extractsDir, manifest);
  const result: ExtractIfMissingResult = { rootfs: store, extracted: false, applied: 0, linked: false, warnings: [] };
  ensureStore(extractsDir);
  const sdir = storeDir(extractsDir, manifest);
  const made: string[] = [];
  const mkdir = (dir: string) => {
    try {
      if (!lstatOrNull(dir)) {
        fs.mkdirSync(dir, { recursive: true, mode: STORE_MODE });
        made.push(dir);
      }
    } catch (e) {
      throw wrapIo(e, "mkdir", dir);
    }
  };
  const lock = await lockEntry(extractsDir, manifest, "extract", opts.lockTimeoutMs ?? STORE_LOCK_TIMEOUT_MS);
  try {
    if (!lstatOrNull(store)?.isDirectory()) {
      log.info(`${opts.where}: extracting ${shortDigest(manifest)} into ${store}${opts.note ?? ""}`);
      checkLayerCount(img, opts.imageName ?? opts.where);
      mkdir(sdir);
      const layers = img.manifest.layers.length;
      if (opts.source) {
        const { buildFromSource } = await import("./reuse.ts");
        result.applied = await buildFromSource(layout, img, opts.source, layers, store, { unpack: opts.unpack, copyMode: opts.copyMode, warnings: result.warnings });
        if (result.applied < layers) result.reused = opts.source.label;
      } else {
        const { unpackRootfs } = await import("../layer/unpack.ts");
        await unpackRootfs(layout, img, store, opts.unpack ?? {});
        result.applied = layers;
      }
      result.extracted = true;
      if (opts.recordChain) {
        // The engine verified this manifest's config diff_ids before publishing: record them.
        try {
          const { writeChainRecord } = await import("./chain.ts");
          const { rootlessMode } = await import("./reuse.ts");
          await writeChainRecord(extractsDir, manifest, img.config.rootfs?.diff_ids ?? [], rootlessMode(opts.unpack));
        } catch (e) {
          result.warnings.push(`could not record the verified chain of ${shortDigest(manifest)}: ${(e as Error).message}`);
        }
      }
    }
    if (opts.link !== undefined) {
      const udir = unitDir(extractsDir, opts.link);
      const link = unitRootfs(extractsDir, opts.link);
      const target = relative(udir, store);
      mkdir(udir);
      if (readlinkOrNull(link) !== target) {
        relink(link, target);
        result.linked = true;
      }
    }
  } catch (e) {
    // Deepest first; rmdir removes a directory only while it is empty (never what another run put there).
    for (const dir of made.reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch { /* not empty (in use), or gone */ }
    }
    throw e;
  } finally {
    lock.release();
  }
  return result;
}
