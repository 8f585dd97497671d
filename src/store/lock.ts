/**
 * Locking a store entry: work on one manifest's rootfs (extracting it,
 * building it from a reused tree, removing it) is serialized by the lock file
 * `EXTRACTS/.store/<alg>/<hex>.lock` (see ./paths.ts), taken with the generic
 * lock primitive of src/fs/lock.ts (owner line, stale-lock breaking, jittered
 * waits). Two units starting at once therefore extract an image once and
 * both succeed; gc takes the lock without waiting and keeps an entry it
 * cannot lock (it is in use).
 *
 * An extraction may take long (gigabytes of layers), so a waiter waits up to
 * {@linkcode STORE_LOCK_TIMEOUT_MS} unless the caller passes the configured
 * lock timeout (the `lockTimeoutMs` setting, handed down from src/cli).
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { shortDigest, wrapIo } from "../errors.ts";
import { acquireLock, type LockHandle } from "../fs/lock.ts";
import { STORE_MODE, storeDir } from "./paths.ts";

/** How long a store-entry lock is waited for by default: one hour. */
export const STORE_LOCK_TIMEOUT_MS = 3_600_000;

/** What a lock is taken for (named in the lock's error message). */
export type LockPurpose = "extract" | "gc";

/**
 * The lock file of the store entry of manifest `digest`.
 *
 * @example
 * ```ts
 * entryLockPath("/x", "sha256:" + "a".repeat(64)); // "/x/.store/sha256/aaaa….lock"
 * ```
 */
export function entryLockPath(extractsDir: string, digest: string): string {
  return `${storeDir(extractsDir, digest)}.lock`;
}

/**
 * Takes the lock of the store entry of `digest`, creating the entry's parent
 * (`.store/<alg>`, mode 0700, shared by every entry and never removed) when
 * missing. Waits up to `timeoutMs` (default {@linkcode STORE_LOCK_TIMEOUT_MS};
 * 0: one try). Throws ELOCK on timeout, EIO naming the path at fault.
 *
 * @example
 * ```ts
 * const lock = await lockEntry("/var/lib/oci/extracts", manifest, "extract");
 * try { /* build the rootfs *\/ } finally { lock.release(); }
 * ```
 */
export async function lockEntry(extractsDir: string, digest: string, purpose: LockPurpose, timeoutMs = STORE_LOCK_TIMEOUT_MS): Promise<LockHandle> {
  const parent = dirname(storeDir(extractsDir, digest));
  try {
    fs.mkdirSync(parent, { recursive: true, mode: STORE_MODE });
  } catch (e) {
    throw wrapIo(e, "mkdir", parent);
  }
  return await acquireLock(entryLockPath(extractsDir, digest), `${purpose} of ${shortDigest(digest)}`, timeoutMs);
}
