/**
 * gzip / raw DEFLATE decompression on the WebAssembly inflate kernel
 * (`wasm/inflate.ts`), as a synchronous {@linkcode ByteSink} stage.
 *
 * Memory is bounded whatever the stream length: one instance holds a 128 KiB
 * input buffer, a 32 KiB window + 256 KiB output buffer and its tables (about
 * 0.5 MiB in all). Output chunks handed downstream are views into the
 * instance's memory, valid only during the `write` call (the ByteSink
 * contract); a sink that keeps bytes must copy them.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { type ByteSink, CollectSink } from "../stream/sink.ts";
import { wasmBase64 } from "../wasm/generated/inflate.ts";
import { hex32, instantiateKernel, MemoryView } from "../wasm/instance.ts";
import { KERNEL_DONE, KERNEL_NEED_INPUT, KernelStage, pumpKernel, type StreamKernel, type StreamKernelExports } from "../wasm/stream-kernel.ts";

/**
 * Exports of the inflate kernel (`wasm/inflate.ts`).
 *
 * @example
 * ```ts
 * const ex = instantiateKernel("inflate", wasmBase64).exports as unknown as InflateExports;
 * ```
 */
export interface InflateExports extends StreamKernelExports {
  init(mode: number): void;
  reset(): void;
  crc32(c: number, ptr: number, len: number): number;
}

/**
 * Kernel error code: the stream ended in the middle (unexpected end of input).
 *
 * @example
 * ```ts
 * describeInflateError(INFLATE_TRUNCATED, 0, 0); // "truncated stream (unexpected end of input)"
 * ```
 */
export const INFLATE_TRUNCATED = -13;
/** Host error code: the kernel's input buffer is full and it still needs more (an internal fault). */
const INFLATE_STUCK = -18;

/**
 * The message for a kernel error code (with its two detail numbers).
 *
 * @example
 * ```ts
 * describeInflateError(-13, 0, 0); // "truncated stream (unexpected end of input)"
 * ```
 */
export function describeInflateError(code: number, a: number, b: number): string {
  switch (code) {
    case -1: return "bad gzip header: not a gzip stream (wrong magic bytes)";
    case -2: return `bad gzip header: unknown compression method ${a}`;
    case -3: return `bad gzip header: reserved flag bits set (flags ${hex32(a)})`;
    case -4: return `bad gzip header: header CRC mismatch (stored ${a}, computed ${b})`;
    case -5: return "bad block type 3 (reserved)";
    case -6: return `bad stored block: length ${a} does not match its complement ${b}`;
    case -7: return "bad Huffman code lengths (over-subscribed or incomplete code)";
    case -8: return "invalid literal/length symbol";
    case -9: return "invalid distance symbol";
    case -10: return `distance too far back (${a} bytes, only ${b} available)`;
    case -11: return `CRC32 mismatch (stored ${hex32(a)}, computed ${hex32(b)})`;
    case -12: return `ISIZE mismatch (stored ${a >>> 0}, decompressed ${b >>> 0} mod 2^32)`;
    case -13: return "truncated stream (unexpected end of input)";
    case -14: return "trailing garbage after the last gzip member";
    case -15: return `too many length or distance codes (${a}, ${b})`;
    case -16: return "bad code length repeat (nothing to repeat or past the end)";
    case -17: return "dynamic block without an end-of-block code";
    default: return `internal decoder error ${code}`;
  }
}

/**
 * Options of {@linkcode WasmGunzip}.
 *
 * @example
 * ```ts
 * const opts: WasmInflateOptions = { name: "layer sha256:ab.." };
 * ```
 */
export interface WasmInflateOptions {
  /** Raw DEFLATE instead of gzip framing. */
  raw?: boolean;
  /** What is being decompressed, for error messages (e.g. "layer sha256:ab.."). */
  name?: string;
}

/** A pooled kernel instance (instances are reused after a stream ends). */
interface Kernel extends StreamKernel<InflateExports> {
  mode: number;
}
const pool: Kernel[] = [];

function acquire(mode: number): Kernel {
  for (let i = 0; i < pool.length; i++) {
    if (pool[i].mode === mode) {
      const k = pool.splice(i, 1)[0];
      k.ex.reset();
      return k;
    }
  }
  const inst = instantiateKernel("inflate", wasmBase64);
  const ex = inst.exports as unknown as InflateExports;
  ex.init(mode);
  return { ex, mem: new MemoryView(ex.memory), mode };
}

function release(k: Kernel): void {
  if (pool.length < 4) pool.push(k);
}

/**
 * Streaming gzip (multi-member) or raw DEFLATE decoder: push compressed
 * chunks, decompressed chunks are pushed to `sink`. CRC32 and ISIZE of every
 * gzip member are verified. Errors are `OcigenError("EDECOMPRESS")` naming what
 * is wrong and the compressed byte offset.
 *
 * @example
 * ```ts
 * import { CollectSink } from "../stream/sink.ts";
 * const out = new CollectSink();
 * const gz = new WasmGunzip(out, { name: "layer sha256:ab.." });
 * gz.write(compressedBytes);
 * gz.end();
 * out.bytes();
 * ```
 */
export class WasmGunzip extends KernelStage<Kernel> {
  private done = false;
  private readonly mode: number;

  constructor(sink: ByteSink, opts: WasmInflateOptions = {}) {
    const mode = opts.raw ? 1 : 0;
    super(sink, opts.name ?? (opts.raw ? "deflate stream" : "gzip stream"), acquire(mode));
    this.mode = mode;
  }

  end(): void {
    const k = this.kernel();
    try {
      if (!this.done) this.pump(true);
    } finally {
      this.k = null;
      release(k);
    }
    this.sink.end();
  }

  protected override accepting(): boolean {
    if (this.done) {
      if (this.mode === 1) return false; // raw: bytes after the final block are ignored
      this.done = false; // gzip: run() will judge what follows (new member, padding, garbage)
    }
    return true;
  }

  protected pump(final: boolean): void {
    const k = this.k!;
    const st = pumpKernel(k, this.input, final, this.emit);
    if (st === KERNEL_NEED_INPUT) {
      if (final) this.fail(INFLATE_TRUNCATED);
      if (this.input.full(k)) this.fail(INFLATE_STUCK);
    } else if (st === KERNEL_DONE) {
      this.done = true;
      if (this.mode === 0) this.input.shift(k); // keep any unconsumed tail: it may be another member
    } else {
      this.fail(st);
    }
  }

  private fail(code: number): never {
    const k = this.k!;
    const at = this.input.offset(k);
    const msg = code === INFLATE_TRUNCATED && this.seen === 0 ? "empty stream (no compressed data)" : describeInflateError(code, k.ex.errorDetailA(), k.ex.errorDetailB());
    this.k = null; // the instance's state is unusable; drop it
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg} near compressed byte ${at}`);
  }
}

/**
 * Decompresses a whole gzip (or raw DEFLATE) buffer on the WASM kernel.
 *
 * @example
 * ```ts
 * const text = new TextDecoder().decode(wasmGunzipSync(gz));
 * ```
 */
export function wasmGunzipSync(data: Uint8Array, opts: WasmInflateOptions = {}): Uint8Array {
  const out = new CollectSink();
  const g = new WasmGunzip(out, opts);
  g.write(data);
  g.end();
  return out.bytes();
}

let crcKernel: Kernel | null = null;

/**
 * CRC32 (the gzip/zip polynomial) of `data`, continuing from `crc` (0 to start),
 * computed by the kernel's slice-by-8 routine.
 *
 * @example
 * ```ts
 * wasmCrc32(new TextEncoder().encode("123456789")).toString(16); // "cbf43926"
 * ```
 */
export function wasmCrc32(data: Uint8Array, crc = 0): number {
  if (!crcKernel) crcKernel = acquire(1);
  const k = crcKernel;
  const base = k.ex.inPtr();
  const cap = k.ex.inCapacity();
  let c = crc >>> 0;
  for (let o = 0; o < data.length; o += cap) {
    const part = data.subarray(o, Math.min(data.length, o + cap));
    k.mem.u8.set(part, base);
    c = k.ex.crc32(c, base, part.length) >>> 0;
  }
  return c;
}
