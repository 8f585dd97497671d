/**
 * Freeing the native state of hash objects made one per file.
 *
 * On Deno every `node:crypto` Hash (and every one-shot `crypto.hash`) keeps
 * its state in a native object that the garbage collector owns (Oilpan), and
 * only a full collection frees those: the young-generation collections that a
 * thread hashing file after file otherwise runs leave them all resident. The
 * inflate worker of a 2.2 GB layer of 256k files made one per file and
 * collected in full once: ~60 MiB resident more than on Node, where the native
 * state goes with its JavaScript object in any collection.
 *
 * {@linkcode noteHashObject} is called once per such object; every
 * {@linkcode HASH_OBJECTS_PER_GC} objects it runs a full collection of the
 * calling thread's heap (a few ms on the worker's ~10 MiB heap), when the
 * runtime exposes `gc`. The Deno launcher flags expose it (`--expose-gc` in
 * `DENO_V8_FLAGS`, src/install/self.ts, which the installed wrapper, the units
 * and the benchmarks pass); Node is not started with it and needs none: this
 * is then one counter increment. The objects stay bounded by the interval
 * (~230 bytes each on Deno 2.9: ~4 MiB).
 *
 * @module
 */

/** Hash objects between two full collections (when the runtime exposes `gc`). */
export const HASH_OBJECTS_PER_GC = 16384;

const gc = (globalThis as { gc?: () => void }).gc;
let made = 0;

/**
 * Notes one hash object made for one file (or one small input); runs a full
 * garbage collection every {@linkcode HASH_OBJECTS_PER_GC} calls when the
 * runtime exposes `gc` (see the module header). Returns whether it collected.
 *
 * @example
 * ```ts
 * const h = createHash("sha256");
 * noteHashObject();
 * ```
 */
export function noteHashObject(): boolean {
  if (!gc || ++made < HASH_OBJECTS_PER_GC) return false;
  made = 0;
  gc();
  return true;
}
