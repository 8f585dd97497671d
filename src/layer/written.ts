/**
 * The sha256 of every regular file an unpack wrote, computed from the bytes as
 * they were written, so that the bundle manifests (umoci's mtree records a
 * `sha256digest` per file) need not read the tree again.
 *
 * Key: the file's inode (`dev`, `ino`) and its size when it was closed. A
 * lookup gives a digest only for an `lstat` result with the same device, inode
 * and size; anything else (not recorded, or recorded for other bytes) gives
 * `undefined` and the caller reads the file. Why that key is exact for a tree
 * the unpack engine alone wrote:
 * - every regular file is created with `O_EXCL` (a new inode), its content
 *   written only through that descriptor and never written again: a later
 *   layer that changes a name unlinks it and creates a new inode;
 * - a hard link adds a name to an inode whose content does not change, so
 *   every name of it shares the one record;
 * - an inode number freed when its last name goes may be given to a new file:
 *   that file is recorded too and its record replaces the stale one; a number
 *   reused by a directory, symlink or device is never looked up (only regular
 *   files are);
 * - the other regular files the engine makes (the empty placeholders of
 *   devices in rootless mode) are recorded as well, through
 *   {@linkcode WrittenDigests.recordEmpty};
 * - a file whose written length is not its final size (a sparse file whose
 *   data overran its declared size) is not recorded, nor one whose device or
 *   inode number is past 2^53 (not exact as a JavaScript number).
 *
 * @module
 */
import crypto, { createHash, type Hash } from "node:crypto";
import { noteHashObject } from "../digest/release.ts";
import { fstatKey, type TreeStat } from "../fs/stat.ts";

/** sha256 of no bytes. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ZEROS = new Uint8Array(64 << 10);
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: "hex") => string }).hash;

/**
 * {@linkcode WrittenDigests} as plain data for another thread: `n` slots in
 * one SharedArrayBuffer, per slot the inode number, device and size (-1: not
 * provably hashed) as three runs of `n` float64s, then `n` digests of 32
 * bytes. One bare SharedArrayBuffer on purpose: Deno's `worker_threads`
 * copies typed arrays in `workerData` element by element (a 14 MB snapshot of
 * 256k files as typed arrays took ~450 MiB there), a SharedArrayBuffer not.
 *
 * @example
 * ```ts
 * const s: WrittenSnapshot = written.snapshot();
 * ```
 */
export interface WrittenSnapshot {
  n: number;
  data: SharedArrayBuffer;
}

/** Bytes per slot of a {@linkcode WrittenSnapshot}. */
const SNAPSHOT_SLOT_BYTES = 3 * 8 + 32;

/**
 * Digests of the files an unpack wrote, by inode (see the module header).
 *
 * @example
 * ```ts
 * const written = new WrittenDigests();
 * const fh = new FileHash(bytes.length, false);
 * fh.data(bytes, bytes.length);
 * written.finish(fd, fh.end(bytes.length)!.hex, bytes.length);
 * written.lookup(fs.lstatSync(path, { bigint: true })); // "sha256:…"
 * ```
 */
export class WrittenDigests {
  // Compact on purpose: a 2 GB layer of 256k files kept one key string and
  // one object per file (~250 bytes each; peak RSS 150 -> 292 MiB on Node).
  // Now a slot per inode number: device and size in Float64Arrays, the
  // digest as 32 bytes, ~80 bytes a file with the Map's entry. A second
  // file with the same inode number on another device takes the slot over:
  // the first then looks unrecorded (read again), never wrongly recorded.
  readonly #slotOf = new Map<number, number>();
  #dev: Float64Array<ArrayBufferLike> = new Float64Array(1024);
  /** -1: the slot's inode holds bytes not provably hashed. */
  #size: Float64Array<ArrayBufferLike> = new Float64Array(1024);
  #sha: Uint8Array<ArrayBufferLike> = new Uint8Array(1024 * 32);
  #n = 0;

  /** Number of files recorded (distinct inodes). */
  get size(): number {
    return this.#n;
  }

  /**
   * Records `hex`, the sha256 of the `written` bytes that are the content of
   * the file open as `fd`; nothing is recorded when the file's size is not
   * `written` or the runtime reports no inode number.
   *
   * @example
   * ```ts
   * written.finish(fd, h.digest("hex"), 12);
   * ```
   */
  finish(fd: number, hex: string, written: number): void {
    this.#record(fstatKey(fd), written, hex);
  }

  /**
   * Records the just created empty regular file open as `fd`.
   *
   * @example
   * ```ts
   * written.recordEmpty(fd);
   * ```
   */
  recordEmpty(fd: number): void {
    this.#record(fstatKey(fd), 0, EMPTY_SHA256);
  }

  /**
   * As {@linkcode WrittenDigests.finish}, for a file whose `fstat` was taken
   * elsewhere (a worker finishing the file): its device, inode and size.
   *
   * @example
   * ```ts
   * written.recordStat({ dev: 2049, ino: 1234, size: 12 }, h.digest("hex"), 12);
   * ```
   */
  recordStat(st: { dev: number; ino: number; size: number }, hex: string, written: number): void {
    this.#record(st, written, hex);
  }

  #record(st: { dev: number; ino: number; size: number }, written: number, hex: string): void {
    // Numbers, not BigInts (a third cheaper): a device or inode number past
    // 2^53 (overlayfs can set high bits) is not exact as a number, so such a
    // file is not recorded at all.
    if (!Number.isSafeInteger(st.ino) || !Number.isSafeInteger(st.dev) || st.ino <= 0) return;
    let slot = this.#slotOf.get(st.ino);
    if (st.size !== written || !HEX64.test(hex)) {
      // not provably these bytes: make sure no older record for this inode survives
      if (slot !== undefined) this.#size[slot] = -1;
      return;
    }
    if (slot === undefined) {
      slot = this.#n++;
      if (slot === this.#size.length) this.#grow();
      this.#slotOf.set(st.ino, slot);
    }
    this.#dev[slot] = st.dev;
    this.#size[slot] = st.size;
    const o = slot * 32;
    for (let i = 0; i < 32; i++) this.#sha[o + i] = (HEX_VALUE[hex.charCodeAt(2 * i)] << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1)];
  }

  /**
   * The records as plain data (one SharedArrayBuffer), for another thread:
   * {@linkcode WrittenDigests.fromSnapshot} makes an equal record there.
   *
   * @example
   * ```ts
   * new Worker(url, { workerData: written.snapshot() });
   * ```
   */
  snapshot(): WrittenSnapshot {
    const n = this.#n;
    const data = new SharedArrayBuffer(n * SNAPSHOT_SLOT_BYTES);
    const ino = new Float64Array(data, 0, n);
    for (const [i, slot] of this.#slotOf) ino[slot] = i;
    new Float64Array(data, n * 8, n).set(this.#dev.subarray(0, n));
    new Float64Array(data, n * 16, n).set(this.#size.subarray(0, n));
    new Uint8Array(data, n * 24, n * 32).set(this.#sha.subarray(0, n * 32));
    return { n, data };
  }

  /**
   * A record equal to the one `s` was taken from.
   *
   * @example
   * ```ts
   * const written = WrittenDigests.fromSnapshot(workerData.written);
   * ```
   */
  static fromSnapshot(s: WrittenSnapshot): WrittenDigests {
    const w = new WrittenDigests();
    const n = s.n;
    if (!Number.isSafeInteger(n) || n < 0 || s.data.byteLength !== n * SNAPSHOT_SLOT_BYTES) throw new Error("written digests: inconsistent snapshot");
    // views of the shared snapshot, not copies (a 2.2 GB layer of 256k files:
    // 14 MB); a record added later grows into arrays of its own (#grow copies)
    w.#dev = new Float64Array(s.data, n * 8, n);
    w.#size = new Float64Array(s.data, n * 16, n);
    w.#sha = new Uint8Array(s.data, n * 24, n * 32);
    const ino = new Float64Array(s.data, 0, n);
    for (let slot = 0; slot < n; slot++) w.#slotOf.set(ino[slot], slot);
    w.#n = n;
    return w;
  }

  #grow(): void {
    const cap = this.#size.length * 2;
    const dev = new Float64Array(cap);
    dev.set(this.#dev);
    this.#dev = dev;
    const size = new Float64Array(cap);
    size.set(this.#size);
    this.#size = size;
    const sha = new Uint8Array(cap * 32);
    sha.set(this.#sha);
    this.#sha = sha;
  }

  /**
   * `sha256:<hex>` of the regular file `st` describes when this unpack wrote
   * it with exactly that size, else undefined (read the file).
   *
   * @example
   * ```ts
   * written.lookup(fs.lstatSync("/r/etc/passwd", { bigint: true }));
   * ```
   */
  lookup(st: TreeStat): string | undefined {
    if (!st.isFile() || !st.ino || st.ino > MAX_SAFE || st.dev > MAX_SAFE) return undefined;
    const slot = this.#slotOf.get(Number(st.ino));
    if (slot === undefined || this.#dev[slot] !== Number(st.dev) || this.#size[slot] < 0 || BigInt(this.#size[slot]) !== st.size) {
      return undefined;
    }
    let hex = "sha256:";
    for (let i = slot * 32, end = i + 32; i < end; i++) hex += HEX_BYTE[this.#sha[i]];
    return hex;
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const HEX64 = /^[0-9a-f]{64}$/;
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const HEX_VALUE = (() => {
  const t = new Uint8Array(128);
  for (let i = 0; i < 16; i++) t["0123456789abcdef".charCodeAt(i)] = i;
  return t;
})();

/**
 * The sha256 of one regular file as the applier writes it: data pieces in
 * order, holes of a sparse file as zeros, and a sparse file's zeros up to its
 * size at the end (its `ftruncate`). A file that comes in one piece is hashed
 * at once ({@linkcode WrittenDigests.digest}: no hash object).
 *
 * @example
 * ```ts
 * const fh = new FileHash(5, false);
 * fh.data(new TextEncoder().encode("hello"), 5);
 * fh.end(5); // { hex: "2cf24dba…", length: 5 }
 * ```
 */
export class FileHash {
  #hash: Hash | null = null;
  /** The digest of the only piece so far, hashed at once. */
  #whole: string | null = null;
  /** False once the pieces came in a way this cannot follow: nothing is recorded (the file is read later). */
  #ok = true;

  constructor(private readonly size: number, private readonly sparse: boolean) {}

  /** A data piece was written; `posAfter` is the file position past it. */
  data(chunk: Uint8Array, posAfter: number): void {
    if (this.#hash) this.#hash.update(chunk);
    else if (this.#whole !== null || posAfter !== chunk.length) this.#ok = false; // after a piece hashed at once (cannot happen)
    else if (!this.sparse && chunk.length === this.size) this.#whole = oneShotHex(chunk);
    else (this.#hash = newHash()).update(chunk);
  }

  /** `length` zero bytes (a hole). */
  zeros(length: number): void {
    if (this.#whole !== null) this.#ok = false;
    else zerosInto((this.#hash ??= newHash()), length);
  }

  /** The digest and length of the content, once `pos` bytes went by; null when not known. */
  end(pos: number): { hex: string; length: number } | null {
    if (this.sparse && pos < this.size) this.zeros(this.size - pos);
    if (!this.#ok) return null;
    const length = this.sparse ? Math.max(pos, this.size) : pos;
    const hex = this.#hash ? this.#hash.digest("hex") : this.#whole ?? (pos === 0 ? EMPTY_SHA256 : null);
    return hex === null ? null : { hex, length };
  }
}

function oneShotHex(bytes: Uint8Array): string {
  noteHashObject();
  return oneShot ? oneShot("sha256", bytes, "hex") : createHash("sha256").update(bytes).digest("hex");
}

/** A sha256 hash object for one file (counted: see digest/release.ts). */
function newHash(): Hash {
  noteHashObject();
  return createHash("sha256");
}

function zerosInto(h: Hash, length: number): void {
  while (length > 0) {
    const n = Math.min(length, ZEROS.length);
    h.update(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n));
    length -= n;
  }
}
