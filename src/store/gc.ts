/**
 * Garbage collection of the store: removes the entries
 * (`EXTRACTS/.store/<alg>/<hex>`, with their rootfs and chain record) of
 * manifests nobody uses, and per-unit directories.
 *
 * Which manifests are in use is the caller's policy (the generator's
 * gc-extracts: current tags, units kept, roots of running services; see
 * src/generator/gc.ts); this module only removes safely: an entry is removed
 * under its lock taken without waiting, so an entry being extracted or
 * removed by another process is kept (and reported at info level), and a
 * removal that fails is returned as an error naming the path.
 *
 * @module
 */
import { wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import type { LockHandle } from "../fs/lock.ts";
import { lockEntry } from "./lock.ts";
import { storeDigests, storeDir } from "./paths.ts";

/** Options of {@linkcode gcEntries}. */
export interface GcEntriesOptions {
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
}

/** What {@linkcode gcEntries} and {@linkcode removeUnitDir} did. */
export interface GcEntriesResult {
  /** Removed (or, dry-run, removable) paths. */
  removed: string[];
  /** Removals that failed, each naming the path. */
  errors: string[];
}

/**
 * Removes the store entry of every manifest not in `inUse` (see the module docs).
 *
 * @example
 * ```ts
 * const { removed, errors } = await gcEntries("/var/lib/oci/extracts", new Set([runningManifest]));
 * ```
 */
export async function gcEntries(extractsDir: string, inUse: ReadonlySet<string>, opts: GcEntriesOptions = {}): Promise<GcEntriesResult> {
  const removed: string[] = [];
  const errors: string[] = [];
  const digests = storeDigests(extractsDir).filter((d) => !inUse.has(d));
  if (digests.length === 0) return { removed, errors };
  const { removeTree } = await import("../layer/unpack.ts");
  for (const digest of digests) {
    const sdir = storeDir(extractsDir, digest);
    if (opts.dryRun) {
      removed.push(sdir);
      continue;
    }
    let lock: LockHandle;
    try {
      lock = await lockEntry(extractsDir, digest, "gc", 0);
    } catch (e) {
      log.info(`${sdir}: in use, kept (${(e as Error).message})`);
      continue;
    }
    removed.push(sdir);
    try {
      removeTree(sdir);
    } catch (e) {
      errors.push(wrapIo(e, "remove", sdir).message);
    } finally {
      lock.release();
    }
  }
  return { removed, errors };
}

/**
 * Removes the per-unit directory `udir` (its link, `current.json` and bundle
 * config); never the store entry it links to. With `dryRun` only reports it.
 *
 * @example
 * ```ts
 * await removeUnitDir("/var/lib/oci/extracts/gone.ref.v1", {}, result);
 * ```
 */
export async function removeUnitDir(udir: string, opts: GcEntriesOptions, into: GcEntriesResult): Promise<void> {
  into.removed.push(udir);
  if (opts.dryRun) return;
  const { removeTree } = await import("../layer/unpack.ts");
  try {
    removeTree(udir);
  } catch (e) {
    into.errors.push(wrapIo(e, "remove", udir).message);
  }
}
