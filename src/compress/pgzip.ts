/**
 * Parallel gzip (the write side), as pigz and Go's pgzip do it: the input is
 * cut into fixed-size blocks, each block is deflated independently on a
 * worker thread with the previous 32 KiB of input as its dictionary, and
 * the results are concatenated in order into ONE gzip member.
 *
 * - Every block but the last is raw DEFLATE ended with a sync flush (an empty
 *   stored block: byte-aligned, not final); the last block (possibly empty)
 *   ends with a final block. Concatenated, they are one valid DEFLATE
 *   stream, so any gzip reader (gzip, Go's compress/gzip in umoci and
 *   skopeo, ocigen's own inflate) reads the result.
 * - The header is the one ocigen always wrote (mtime 0, no name, OS 3); the
 *   trailer carries the CRC-32 of the whole input, combined from the
 *   per-block CRCs ({@linkcode crc32Combine}), and its size mod 2^32.
 * - Block boundaries depend only on the input length, never on timing or
 *   the number of workers, and blocks are deflated by our own kernel: the
 *   same input and level give the same bytes on Node and Deno.
 * - Streaming and bounded: at most a few blocks per worker are in flight;
 *   the source is not read further until the oldest block's output is
 *   taken. Output order is input order. A worker failure, a source error or
 *   an abandoned iteration terminates the workers; errors propagate.
 * - An input that fits in one block, or a runtime that cannot start worker
 *   threads, is compressed in the calling thread (same bytes).
 * - {@linkcode parallelGzipFiles} takes file contents as
 *   {@linkcode FileSpan}s (`file-span.ts`) which the worker deflating a
 *   block reads itself, so the calling thread only plans the stream. A block
 *   whose dictionary region covers a span is read there twice (its own
 *   worker and the next block's); before a block is emitted its dictionary
 *   is compared with the previous block's input as actually read, and on a
 *   difference (a file changed between the two reads) the block is deflated
 *   again in the calling thread with the right dictionary, so the stream
 *   always inflates to the bytes that were hashed.
 *
 * Workers run the TypeScript module `worker/deflate-worker-main.ts`
 * (started by `worker/spawn.ts`, as the inflate worker is); they and the
 * calling thread deflate blocks with the same `deflateBlock`
 * (`deflate-block.ts`).
 *
 * @module
 */
import os from "node:os";
import { Buffer } from "node:buffer";
import type { Worker } from "node:worker_threads";
import { type ErrorCode, OcigenError } from "../errors.ts";
import { deflateBlock } from "./deflate-block.ts";
import { crc32Combine } from "./crc32-combine.ts";
import { type FileSpan, fillHoles, type Hole } from "./file-span.ts";
import type { DeflateReply, DeflateRequest } from "./worker/deflate-worker-main.ts";
import { spawnWorker } from "./worker/spawn.ts";

export { looksIncompressible } from "./deflate-block.ts";
export type { FileSpan } from "./file-span.ts";
export { crc32Combine } from "./crc32-combine.ts";

/** DEFLATE window: the dictionary each block gets from the one before. */
const DICT = 32 * 1024;

/** Default block size (bytes of input per block). */
export const PGZIP_BLOCK = 1 << 20;

/**
 * Default level: the deflate kernel's level 3 (greedy, the two newest
 * positions per hash) gives layers within 2% of the size Go's pgzip (umoci)
 * writes at its default level (73.34 against 72.47 MB on the bench's 185 MB
 * tree), at about 60% of the CPU time of zlib's level 3 and 40% of zlib's
 * default level 6.
 */
export const PGZIP_LEVEL = 3;

/** Options of {@linkcode parallelGzip}. */
export interface ParallelGzipOptions {
  /** Level 0-9: 0 stores, 1-9 search longer (default {@linkcode PGZIP_LEVEL}; see `wasm/deflate.ts`). */
  level?: number;
  /** Input bytes per block (default 1 MiB, at least 64 KiB). */
  blockSize?: number;
  /** Worker threads (default: the number of CPUs, at most 8); 0 compresses in the calling thread. */
  workers?: number;
  /** What is being compressed, for error messages (default "layer"). */
  what?: string;
  /**
   * Reuse output buffers: a chunk this generator yields may be overwritten
   * once the consumer asks for the next one (true for a consumer that writes
   * each chunk out before it pulls the next, as `writeBlob` does). Saves a
   * fresh buffer, and its page faults, per block.
   */
  recycle?: boolean;
}

/**
 * Options of {@linkcode parallelGzipFiles}.
 *
 * @example
 * ```ts
 * const o: ParallelGzipFilesOptions = { onInput: (b) => hasher.update(b), recycle: true };
 * ```
 */
export interface ParallelGzipFilesOptions extends ParallelGzipOptions {
  /** Called with the uncompressed input, in order, once each block is read (e.g. to hash it). */
  onInput?: (bytes: Uint8Array) => void;
  /** Called when a block's dictionary had changed since the block before it was read, and the block was deflated again here. */
  onRedo?: (seq: number) => void;
}

/**
 * A piece of {@linkcode parallelGzipFiles}'s input: bytes, or a range of a
 * file that the compressing thread reads.
 *
 * @example
 * ```ts
 * const pieces: GzipPiece[] = [header, { path: "/t/a", name: "a", pos: 0, len: 3, size: 3, ino: 0 }, padding];
 * ```
 */
export type GzipPiece = Uint8Array | FileSpan;

function gzipHeader(level: number): Uint8Array {
  // magic, CM=8, FLG=0, MTIME=0, XFL (2: best, 4: fastest), OS=3 (Unix)
  return new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level >= 9 ? 2 : level <= 1 ? 4 : 0, 3]);
}

function gzipTrailer(crc: number, size: number): Uint8Array {
  const t = new Uint8Array(8);
  const dv = new DataView(t.buffer);
  dv.setUint32(0, crc >>> 0, true);
  dv.setUint32(4, size % 0x100000000, true);
  return t;
}


interface Result {
  out: Uint8Array;
  crc: number;
  len: number;
  /** The block's buffer (dictionary, then input as read, up to `end`), handed back. */
  buf?: ArrayBuffer;
}

interface Task {
  seq: number;
  /** Dictionary, then input, up to `end`. */
  buf: ArrayBuffer;
  end: number;
  dict: number;
  final: boolean;
  /** File ranges of `buf` the worker reads before deflating (dictionary included). */
  holes?: Hole[];
  /** A recycled output buffer, and the size of a fresh one ({@linkcode ParallelGzipOptions.recycle}). */
  recycle?: { out?: ArrayBuffer; capacity: number };
}

/** The default worker count: the CPUs this process may use, at most 8. */
function defaultWorkers(): number {
  const n = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, n || 1));
}

/** A pool of compression workers for one stream. */
class Pool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Task[] = [];
  private readonly results = new Map<number, Result>();
  private waiter: (() => void) | null = null;
  failure: Error | null = null;

  constructor(n: number, private readonly level: number, private readonly what: string) {
    for (let i = 0; i < n; i++) {
      const w = spawnWorker("deflate", null);
      w.unref();
      w.on("message", (m: DeflateReply) => this.onReply(w, m));
      w.on("error", (e: Error) => this.fail(`worker failed: ${e.message}`));
      w.on("exit", (code: number) => {
        if (!this.closed) this.fail(`worker exited (${code})`);
      });
      this.all.push(w);
      this.idle.push(w);
    }
  }

  private closed = false;

  private fail(why: string, code?: string): void {
    if (!this.failure) {
      // an OcigenError raised in the worker (a file it read) keeps its code and message
      this.failure = code ? new OcigenError(code as ErrorCode, why) : new OcigenError("EREPACK", `Cannot compress ${this.what} (gzip): ${why}`);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private onReply(w: Worker, m: DeflateReply): void {
    if (m.error !== undefined) return this.fail(m.error, m.code);
    this.results.set(m.seq, { out: m.out!, crc: m.crc!, len: m.len!, buf: m.buf });
    const next = this.queue.shift();
    if (next) this.post(w, next);
    else {
      w.unref();
      this.idle.push(w);
    }
    this.wake();
  }

  private post(w: Worker, t: Task): void {
    // a busy worker keeps the process alive (its result is awaited); an idle one does not
    w.ref();
    const m: DeflateRequest = { ...t, level: this.level };
    w.postMessage(m, t.recycle?.out ? [t.buf, t.recycle.out] : [t.buf]);
  }

  submit(t: Task): void {
    const w = this.idle.pop();
    if (w) this.post(w, t);
    else this.queue.push(t);
  }

  /** The result of block `seq` if it is done (removed from the pool). */
  take(seq: number): Result | undefined {
    if (this.failure) throw this.failure;
    const r = this.results.get(seq);
    if (r) this.results.delete(seq);
    return r;
  }

  /** Waits until block `seq` is done (or a worker failed). */
  async wait(seq: number): Promise<Result> {
    for (;;) {
      const r = this.take(seq);
      if (r) return r;
      await new Promise<void>((res) => (this.waiter = res));
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.all) void w.terminate();
  }
}

/**
 * Compresses an async byte stream into one gzip member, deflating blocks in
 * parallel on worker threads (see the module docs).
 *
 * @example
 * ```ts
 * const gz = parallelGzip(tarChunks(), { level: 3 });
 * await layout.writeBlob(gz, MediaType.LayerGzip);
 * ```
 */
export function parallelGzip(source: AsyncIterable<Uint8Array>, opts: ParallelGzipOptions = {}): AsyncGenerator<Uint8Array> {
  return gzipBlocks(source, opts);
}

/**
 * Compresses a stream given as batches of {@linkcode GzipPiece}s: bytes,
 * and file ranges that the workers read themselves (see the module docs).
 * `onInput` sees every input byte, in order, as read.
 *
 * @example
 * ```ts
 * const h = createDigester();
 * const gz = parallelGzipFiles(tarPieces(items), { onInput: (b) => h.update(b) });
 * await layout.writeBlob(gz, MediaType.LayerGzip);
 * ```
 */
export function parallelGzipFiles(source: AsyncIterable<GzipPiece[]>, opts: ParallelGzipFilesOptions = {}): AsyncGenerator<Uint8Array> {
  return gzipBlocks(source, opts, { onInput: opts.onInput ?? (() => {}), onRedo: opts.onRedo });
}

/**
 * The same blocks as {@linkcode parallelGzipFiles}, not compressed: the
 * workers only read the file spans, and the stream's own bytes come out, in
 * order (an uncompressed layer). `level` does not apply; with `recycle`, a
 * yielded chunk's buffer is reused once the next one is asked for.
 *
 * @example
 * ```ts
 * const h = createDigester();
 * const tar = parallelReadFiles(tarPieces(items), { onInput: (b) => h.update(b), recycle: true });
 * await layout.writeBlob(tar, MediaType.Layer, "sha256", { digest: () => h.digest() });
 * ```
 */
export function parallelReadFiles(source: AsyncIterable<GzipPiece[]>, opts: ParallelGzipFilesOptions = {}): AsyncGenerator<Uint8Array> {
  return gzipBlocks(source, opts, { onInput: opts.onInput ?? (() => {}), raw: true });
}

/**
 * The block engine of the entry points. `onInput` is given exactly when the
 * source has file spans; `raw` (uncompressed) blocks have no dictionary and
 * are emitted as read, without the gzip header and trailer.
 */
async function* gzipBlocks(
  source: AsyncIterable<Uint8Array | GzipPiece[]>,
  opts: ParallelGzipOptions,
  spans: { onInput?: (bytes: Uint8Array) => void; onRedo?: (seq: number) => void; raw?: boolean } = {},
): AsyncGenerator<Uint8Array> {
  const { onInput, onRedo } = spans;
  const raw = spans.raw === true;
  // the history a block carries from the one before (none when nothing is compressed)
  const history = raw ? 0 : DICT;
  // the workers' level; -1: read only
  const level = raw ? -1 : Math.max(0, Math.min(9, Math.round(opts.level ?? PGZIP_LEVEL)));
  const block = Math.max(64 * 1024, Math.floor(opts.blockSize ?? PGZIP_BLOCK));
  const nWorkers = Math.max(0, Math.floor(opts.workers ?? defaultWorkers()));
  const what = opts.what ?? "layer";
  const maxInFlight = Math.max(2, nWorkers * 3);
  let pool: Pool | null = null;
  let poolFailed = nWorkers === 0;
  let crc = 0;
  let size = 0;
  let nextSeq = 0; // next block to submit
  let nextOut = 0; // next block to emit
  // the block being filled: `dict` bytes of dictionary, then up to `block` input bytes
  let buf = new Uint8Array(history + block);
  let dict = 0;
  let fill = 0;
  // file ranges of `buf` still to read (dictionary region included)
  let holes: Hole[] = [];
  // the last DICT bytes of the previous emitted block's input, as read (file spans only)
  let prevTail = new Uint8Array(0);
  // buffers handed back, for reuse: block inputs, and outputs the consumer is done with (recycle)
  const spare: ArrayBuffer[] = [];
  const outSpare: ArrayBuffer[] = [];
  const keep = maxInFlight + 2;
  // a fresh output buffer's size when recycling: a block's worst case (stored) fits
  const outCapacity = block + 64 * 1024;
  const info = new Map<number, { dict: number; end: number; final: boolean }>();

  const account = (r: Result): Uint8Array => {
    crc = crc32Combine(crc, r.crc, r.len);
    size += r.len;
    return r.out;
  };
  const local = new Map<number, Result>();

  const submit = (final: boolean): void => {
    const seq = nextSeq++;
    const cur = buf;
    const curDict = dict;
    const curHoles = holes;
    const used = cur.subarray(0, dict + fill);
    if (!pool && !poolFailed && !(final && seq === 0)) {
      try {
        pool = new Pool(nWorkers, level, what);
      } catch {
        poolFailed = true; // no worker threads here: compress in this thread
      }
    }
    // in this thread, the block's files are read now, so the next dictionary is copied complete
    if (!pool && curHoles.length) fillHoles(cur, curHoles);
    holes = [];
    if (!final) {
      // the next block starts with the last 32 KiB of this one's input as its dictionary
      // (copied before this block's buffer is handed to a worker; file ranges in it are read
      // again by the next block's worker)
      const nd = Math.min(history, used.length);
      const from = used.length - nd;
      const s = spare.pop();
      const next = s && s.byteLength === history + block ? new Uint8Array(s) : new Uint8Array(history + block);
      next.set(used.subarray(from), 0);
      if (pool) {
        for (const h of curHoles) {
          const a = Math.max(h.at, from);
          const b = h.at + h.len;
          if (b > a) holes.push({ ...h, pos: h.pos + (a - h.at), len: b - a, at: a - from });
        }
      }
      buf = next;
      dict = nd;
      fill = 0;
    }
    if (onInput) info.set(seq, { dict: curDict, end: used.length, final });
    const recycle = opts.recycle && !raw ? { out: outSpare.pop(), capacity: outCapacity } : undefined;
    if (pool) {
      const t: Task = { seq, buf: cur.buffer as ArrayBuffer, end: used.length, dict: curDict, final };
      if (curHoles.length) t.holes = curHoles;
      if (recycle) t.recycle = recycle;
      (pool as Pool).submit(t);
    } else if (raw) local.set(seq, { out: NOTHING, crc: 0, len: used.length, buf: cur.buffer as ArrayBuffer });
    else local.set(seq, { ...deflateBlock(used, curDict, final, level, recycle && { buffer: recycle.out, capacity: recycle.capacity }), buf: cur.buffer as ArrayBuffer });
  };

  // a block's input as read: its dictionary checked against the previous block, then handed to onInput
  const checked = (seq: number, r: Result): Result => {
    const at = info.get(seq)!;
    info.delete(seq);
    const input = new Uint8Array(r.buf!, 0, at.end);
    let res = r;
    if (at.dict > 0 && !sameBytes(input.subarray(0, at.dict), prevTail)) {
      // a file changed between the two reads of this dictionary: deflate again with the bytes the
      // previous block really carried, so that the stream inflates to what was hashed
      input.set(prevTail, 0);
      onRedo?.(seq);
      res = { ...deflateBlock(input, at.dict, at.final, level, opts.recycle ? { buffer: r.out.buffer as ArrayBuffer, capacity: outCapacity } : undefined), buf: r.buf };
    }
    onInput!(input.subarray(at.dict));
    if (history > 0) prevTail = input.slice(at.end - Math.min(history, at.end), at.end);
    return res;
  };

  // takes every finished block in order; with `wait`, blocks until block `upTo - 1` is out
  async function* drain(upTo: number, wait: boolean): AsyncGenerator<Uint8Array> {
    while (nextOut < upTo) {
      const p: Pool | null = pool;
      let r: Result | undefined = local.get(nextOut);
      if (r) local.delete(nextOut);
      else if (p) r = wait ? await p.wait(nextOut) : p.take(nextOut);
      if (!r) return;
      const end = info.get(nextOut)?.end ?? 0;
      if (onInput) r = checked(nextOut, r);
      nextOut++;
      if (raw) {
        // the block is its own output; its buffer is reused once the consumer is done with it
        if (end > 0) yield new Uint8Array(r.buf!, 0, end);
        if (opts.recycle && spare.length < keep) spare.push(r.buf!);
        continue;
      }
      if (r.buf && spare.length < keep) spare.push(r.buf);
      const out = account(r);
      if (out.length) yield out;
      // the consumer asked for the next chunk: it is done with this one
      if (opts.recycle && outSpare.length < keep && out.buffer.byteLength >= outCapacity) outSpare.push(out.buffer as ArrayBuffer);
    }
  }

  // after each full block: emit what is done, and wait while too many blocks are in flight
  async function* afterBlock(): AsyncGenerator<Uint8Array> {
    submit(false);
    yield* drain(nextSeq, false);
    if (nextSeq - nextOut >= maxInFlight) yield* drain(nextSeq - maxInFlight + 1, true);
  }

  try {
    if (!raw) yield gzipHeader(level);
    for await (const chunk of source) {
      const pieces: GzipPiece[] = chunk instanceof Uint8Array ? [chunk] : chunk;
      for (const p of pieces) {
        if (p instanceof Uint8Array) {
          let off = 0;
          while (off < p.length) {
            const n = Math.min(block - fill, p.length - off);
            buf.set(n === p.length ? p : p.subarray(off, off + n), dict + fill);
            fill += n;
            off += n;
            if (fill === block) yield* afterBlock();
          }
        } else {
          if (!onInput) throw new TypeError("parallelGzip: file spans need parallelGzipFiles");
          let done = 0;
          while (done < p.len) {
            const n = Math.min(block - fill, p.len - done);
            holes.push({ ...p, pos: p.pos + done, len: n, at: dict + fill });
            fill += n;
            done += n;
            if (fill === block) yield* afterBlock();
          }
        }
      }
    }
    submit(true);
    yield* drain(nextSeq, true);
    if (!raw) yield gzipTrailer(crc, size);
  } finally {
    (pool as Pool | null)?.close();
  }
}

const NOTHING = new Uint8Array(0);

/** Whether two byte ranges are equal. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
