/**
 * The writer lock of a layout (`LAYOUT/.ocigen.lock`, see src/fs/lock.ts) as
 * `Layout.withLock` uses it:
 * - callers in this process queue behind each other first (they would share
 *   the lock file's pid), then take the lock file against other processes;
 * - the lock is re-entrant within the async context that holds it (code run
 *   by the locked function may call `withLock` again without deadlocking);
 * - blobs written while it is held are recorded in `created`; if the locked
 *   function throws, those that did not exist before are removed, so a failed
 *   operation leaves the layout as it was.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import * as fs from "node:fs";
import { join } from "node:path";
import { acquireLock } from "../fs/lock.ts";

/** Name of the writer lock file in the layout root. */
export const LOCK_FILE = ".ocigen.lock";
/** The locks the current async context holds (for re-entrancy). */
const held = new AsyncLocalStorage<Set<WriterLock>>();

/**
 * The writer lock of one layout view.
 *
 * @example
 * ```ts
 * const lock = new WriterLock("/l");
 * await lock.run(async () => { ... });
 * ```
 */
export class WriterLock {
  readonly #dir: string;
  #queue: Promise<void> = Promise.resolve();
  /** Blob files created under the lock (null when it is not held): removed again if the locked operation fails. */
  created: string[] | null = null;

  /**
   * @example
   * ```ts
   * new WriterLock("/var/lib/oci/layouts/web");
   * ```
   */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Runs `fn` holding the lock (see the module header). ELOCK on timeout,
   * EIO when the layout is not writable.
   *
   * @example
   * ```ts
   * await lock.run(async () => await writeIndex());
   * ```
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const outer = held.getStore();
    if (outer?.has(this)) return await fn(); // re-entrant: this async context holds the lock
    // Serialise callers within this process first (they share the lock file's pid).
    const prev = this.#queue;
    let done!: () => void;
    this.#queue = new Promise<void>((r) => (done = r));
    await prev;
    try {
      const lock = await acquireLock(join(this.#dir, LOCK_FILE), `layout ${this.#dir}`);
      this.created = [];
      try {
        return await held.run(new Set([...(outer ?? []), this]), fn);
      } catch (e) {
        // Leave the layout as it was: drop the blobs this operation added.
        for (const p of this.created) {
          try {
            fs.unlinkSync(p);
          } catch { /* gone */ }
        }
        throw e;
      } finally {
        this.created = null;
        lock.release();
      }
    } finally {
      done();
    }
  }
}
