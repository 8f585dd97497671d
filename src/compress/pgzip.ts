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
 *
 * Workers run the TypeScript module `worker/deflate-worker-main.ts`
 * (started by `worker/spawn.ts`, as the inflate worker is); they and the
 * calling thread deflate blocks with the same `deflateBlock`
 * (`deflate-block.ts`).
 *
 * @module
 */
import os from "node:os";
import type { Worker } from "node:worker_threads";
import { OcigenError } from "../errors.ts";
import { deflateBlock } from "./deflate-block.ts";
import type { DeflateReply, DeflateRequest } from "./worker/deflate-worker-main.ts";
import { spawnWorker } from "./worker/spawn.ts";

export { looksIncompressible } from "./deflate-block.ts";

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
}

const POLY = 0xedb88320;

/** a(x) * b(x) modulo the CRC polynomial (bit-reflected, as CRC-32 stores them). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) modulo the polynomial. */
const X2N: number[] = (() => {
  const t = [0x40000000]; // x^1
  for (let k = 1; k < 32; k++) t.push(multModP(t[k - 1], t[k - 1]));
  return t;
})();

/** x^(n * 2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * The CRC-32 of `A || B` from `crcA = crc32(A)`, `crcB = crc32(B)` and the
 * length of `B`, without the bytes: `crcA` is shifted by `lenB` bytes of zeros
 * (a multiplication by x^(8 lenB) modulo the polynomial) and XORed with `crcB`.
 *
 * @example
 * ```ts
 * const a = crc32(bytesA, 0), b = crc32(bytesB, 0);
 * crc32Combine(a, b, bytesB.length) === crc32(concat(bytesA, bytesB), 0); // true
 * ```
 */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  if (lenB <= 0) return crcA >>> 0;
  return (multModP(x2nModP(lenB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}

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
}

interface Task {
  seq: number;
  /** Dictionary, then input, up to `end`. */
  buf: ArrayBuffer;
  end: number;
  dict: number;
  final: boolean;
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
  /** Input buffers handed back by the workers, for reuse. */
  readonly spare: ArrayBuffer[] = [];
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

  private fail(why: string): void {
    if (!this.failure) this.failure = new OcigenError("EREPACK", `Cannot compress ${this.what} (gzip): ${why}`);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private onReply(w: Worker, m: DeflateReply): void {
    if (m.error !== undefined) return this.fail(m.error);
    this.results.set(m.seq, { out: m.out!, crc: m.crc!, len: m.len! });
    if (m.buf && this.spare.length < 4) this.spare.push(m.buf);
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
    w.postMessage(m, [t.buf]);
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
export async function* parallelGzip(source: AsyncIterable<Uint8Array>, opts: ParallelGzipOptions = {}): AsyncGenerator<Uint8Array> {
  const level = Math.max(0, Math.min(9, Math.round(opts.level ?? PGZIP_LEVEL)));
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
  let buf = new Uint8Array(DICT + block);
  let dict = 0;
  let fill = 0;

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
    const used = cur.subarray(0, dict + fill);
    if (!pool && !poolFailed && !(final && seq === 0)) {
      try {
        pool = new Pool(nWorkers, level, what);
      } catch {
        poolFailed = true; // no worker threads here: compress in this thread
      }
    }
    if (!final) {
      // the next block starts with the last 32 KiB of this one's input as its dictionary
      // (copied before this block's buffer is handed to a worker)
      const nd = Math.min(DICT, used.length);
      const spare = (pool as Pool | null)?.spare.pop();
      const next = spare && spare.byteLength === DICT + block ? new Uint8Array(spare) : new Uint8Array(DICT + block);
      next.set(used.subarray(used.length - nd), 0);
      buf = next;
      dict = nd;
      fill = 0;
    }
    if (pool) (pool as Pool).submit({ seq, buf: cur.buffer as ArrayBuffer, end: used.length, dict: curDict, final });
    else local.set(seq, deflateBlock(used, curDict, final, level));
  };

  // takes every finished block in order; with `wait`, blocks until block `upTo - 1` is out
  async function* drain(upTo: number, wait: boolean): AsyncGenerator<Uint8Array> {
    while (nextOut < upTo) {
      const p: Pool | null = pool;
      let r: Result | undefined = local.get(nextOut);
      if (r) local.delete(nextOut);
      else if (p) r = wait ? await p.wait(nextOut) : p.take(nextOut);
      if (!r) return;
      nextOut++;
      const out = account(r);
      if (out.length) yield out;
    }
  }

  try {
    yield gzipHeader(level);
    for await (const chunk of source) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(block - fill, chunk.length - off);
        buf.set(chunk.subarray(off, off + n), dict + fill);
        fill += n;
        off += n;
        if (fill === block) {
          submit(false);
          yield* drain(nextSeq, false);
          if (nextSeq - nextOut >= maxInFlight) yield* drain(nextSeq - maxInFlight + 1, true);
        }
      }
    }
    submit(true);
    yield* drain(nextSeq, true);
    yield gzipTrailer(crc, size);
  } finally {
    (pool as Pool | null)?.close();
  }
}
