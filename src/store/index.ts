/**
 * The extracts store as one object: where a manifest's rootfs lives, its
 * lock, extract-if-missing, reuse of lower layers, gc of unused trees and the
 * store's permissions. The generator (`ocigen extract`, gc-extracts),
 * `extract --all`, `ocigen update`'s prefetch and `status` go through it.
 *
 * Files of this folder, by concern:
 * - paths.ts: the on-disk layout and its 0700 permissions (start here);
 * - lock.ts: the per-entry lock;
 * - extract.ts: extract-if-missing (and the unit's link);
 * - chain.ts, reuse.ts, verified.ts, copy.ts: chain records, starting a
 *   rootfs from a verified lower tree, and copying trees;
 * - gc.ts: removing entries nobody uses.
 *
 * Settings come in as {@linkcode StoreOptions} (built in src/cli from flags,
 * config file and environment); nothing here reads the environment. Only
 * paths.ts is loaded with this module (the generator, at every boot, asks
 * only where rootfs live); the rest is loaded when first used.
 *
 * @module
 */
import type { LockHandle } from "../fs/lock.ts";
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import type { UnpackOptions } from "../layer/unpack.ts";
import type { ChainRecord } from "./chain.ts";
import type { CopyMode } from "./copy.ts";
import type { ExtractIfMissingOptions, ExtractIfMissingResult } from "./extract.ts";
import type { GcEntriesOptions, GcEntriesResult } from "./gc.ts";
import type { LockPurpose } from "./lock.ts";
import { ensureStore, isCurrent, STORE_MODE, storeDigestOf, storeDigests, storeDir, storeRootfs, unitDir, unitRootfs } from "./paths.ts";
import type { ReuseSource } from "./reuse.ts";

/** Settings of a store (see the module docs). */
export interface StoreOptions {
  /** How long to wait for an entry's lock, ms (default one hour, `STORE_LOCK_TIMEOUT_MS` of ./lock.ts). */
  lockTimeoutMs?: number;
  /** How reused trees are copied (default "auto": GNU cp when present). */
  copyMode?: CopyMode;
  /** Passed to the unpack engine. */
  unpack?: UnpackOptions;
}

/** The store of one extracts directory (see {@linkcode openStore}). */
export interface Store {
  /** The extracts directory. */
  readonly root: string;
  /** Mode of `.store` and of every per-unit directory (0700). */
  readonly mode: number;
  /** Creates `.store` (0700) if missing and closes it again if opened; returns its path. */
  ensure(): string;
  /** Where the rootfs of `manifest` lives (whether or not it is extracted). */
  rootfsOf(manifest: string): string;
  /** The store entry of `manifest` (its rootfs and chain record). */
  entryOf(manifest: string): string;
  /** The per-unit directory (and runc/crun bundle) of unit base `base`. */
  unitDirOf(base: string): string;
  /** The rootfs link of unit base `base`. */
  unitRootfsOf(base: string): string;
  /** True when the rootfs of `manifest` is extracted. */
  has(manifest: string): boolean;
  /** True when {@linkcode Store.extractIfMissing} would do nothing. */
  isCurrent(manifest: string, link?: string): boolean;
  /** The manifests with an entry. */
  digests(): string[];
  /** The manifest whose rootfs `path` is, else null. */
  digestOf(path: string): string | null;
  /** Takes the entry's lock (gc: without waiting). */
  lock(manifest: string, purpose: LockPurpose): Promise<LockHandle>;
  /** Extract-if-missing (./extract.ts); the store's settings are the defaults of `opts`. */
  extractIfMissing(layout: Layout, img: ResolvedImage, opts: ExtractIfMissingOptions): Promise<ExtractIfMissingResult>;
  /** The verified chain records of the entries (what reuse may start from). */
  chainRecords(): Promise<ChainRecord[]>;
  /** The entry of `manifest` as a reuse source, or null (./reuse.ts). */
  reuseSource(manifest: string, rootless: boolean): Promise<ReuseSource | null>;
  /** Removes the entries of manifests not in `inUse` (./gc.ts). */
  gc(inUse: ReadonlySet<string>, opts?: GcEntriesOptions): Promise<GcEntriesResult>;
}

/**
 * Opens the store of `root` (the configured `extractsdir`). Nothing is
 * created until something is extracted (or {@linkcode Store.ensure}).
 *
 * @example
 * ```ts
 * const store = openStore("/var/lib/oci/extracts", { lockTimeoutMs: 600_000 });
 * const r = await store.extractIfMissing(layout, img, { where: "busybox:latest", link: "busybox.ref.latest" });
 * console.log(store.has(img.manifestDescriptor.digest), r.rootfs);
 * ```
 */
export function openStore(root: string, opts: StoreOptions = {}): Store {
  const lockTimeoutMs = opts.lockTimeoutMs; // undefined: ./lock.ts's default
  return {
    root,
    mode: STORE_MODE,
    ensure: () => ensureStore(root),
    rootfsOf: (m) => storeRootfs(root, m),
    entryOf: (m) => storeDir(root, m),
    unitDirOf: (b) => unitDir(root, b),
    unitRootfsOf: (b) => unitRootfs(root, b),
    has: (m) => isCurrent(root, m),
    isCurrent: (m, link) => isCurrent(root, m, link),
    digests: () => storeDigests(root),
    digestOf: (p) => storeDigestOf(root, p),
    lock: async (m, purpose) => (await import("./lock.ts")).lockEntry(root, m, purpose, purpose === "gc" ? 0 : lockTimeoutMs),
    extractIfMissing: async (layout, img, o) =>
      (await import("./extract.ts")).extractIfMissing(root, layout, img, {
        ...o,
        lockTimeoutMs: o.lockTimeoutMs ?? lockTimeoutMs,
        copyMode: o.copyMode ?? opts.copyMode,
        unpack: o.unpack ?? opts.unpack,
      }),
    chainRecords: async () => (await import("./chain.ts")).scanChainRecords(root),
    reuseSource: async (m, rootless) => (await import("./reuse.ts")).storeSource(root, m, rootless),
    gc: async (inUse, o) => (await import("./gc.ts")).gcEntries(root, inUse, o),
  };
}

export { STORE_MODE };
export type { ChainRecord, CopyMode, ExtractIfMissingOptions, ExtractIfMissingResult, GcEntriesOptions, GcEntriesResult, LockPurpose, ReuseSource };
