/**
 * zstd decompression on the WebAssembly zstd kernel (`wasm/zstd.ts`, written
 * from RFC 8878), as a synchronous {@linkcode ByteSink} stage.
 *
 * Input chunks are copied into the instance's input buffer before `write`
 * returns, so callers may reuse their buffers. Output chunks handed
 * downstream are views into the instance's memory, valid only during the
 * `write` call (the ByteSink contract). Memory is bounded by the largest
 * window a frame declares (the kernel's window buffer grows with the output up
 * to that window, then wraps), plus about 0.5 MiB of buffers and tables; a
 * frame declaring a window above `windowMax` is refused before any memory is
 * taken. Content checksums and declared content sizes are verified.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { wasmBase64 } from "../wasm/generated/zstd.ts";
import { hex32, instantiateKernel, MemoryView } from "../wasm/instance.ts";
import { KERNEL_DONE, KERNEL_NEED_INPUT, KernelStage, pumpKernel, type StreamKernel, type StreamKernelExports } from "../wasm/stream-kernel.ts";
import { describeWindowTooLarge, ZSTD_WINDOW_DEFAULT } from "./zstd-frame.ts";

interface ZstdExports extends StreamKernelExports {
  init(lo: number, hi: number): void;
  reset(lo: number, hi: number): void;
  frameCount(): number;
  memoryBytes(): number;
  xxh64(ptr: number, len: number): bigint;
}

const E_WINDOW = -5;
const E_TRUNC = -9;
/** Host error code: the kernel's input buffer is full and it still needs more (an internal fault). */
const E_STUCK = -19;

/**
 * The message for a kernel error code (with its two detail numbers).
 *
 * @example
 * ```ts
 * describeZstdError(-9, 0, 0); // "truncated stream (unexpected end of input)"
 * ```
 */
export function describeZstdError(code: number, a: number, b: number): string {
  switch (code) {
    case -1: return `not a zstd stream (bad magic number ${hex32(a)})`;
    case -2: return `trailing garbage after the last frame (bad magic number ${hex32(a)})`;
    case -3: return "bad frame header: reserved bit set";
    case -4: return `frame needs dictionary ${a >>> 0}, and dictionaries are not supported`;
    case -5: return describeWindowTooLarge(a, b);
    case -6: return "bad block type 3 (reserved)";
    case -7: return `block size ${a} larger than the frame's maximum ${b}`;
    case -8: return `content checksum mismatch (stored ${hex32(a)}, computed ${hex32(b)})`;
    case -9: return "truncated stream (unexpected end of input)";
    case -10: return "corrupt literals section";
    case -11: return "corrupt Huffman table";
    case -12: return "corrupt FSE table description";
    case -13: return "corrupt sequences section";
    case -14: return `match offset ${a} beyond the ${b} bytes of history`;
    case -15: return "block decompresses past its maximum size";
    case -16: return "repeat or treeless mode without a previous table";
    case -17: return `frame content size mismatch (declared ${a}, decoded ${b})`;
    case -18: return "cannot allocate the window buffer (out of memory)";
    default: return `internal decoder error ${code}`;
  }
}

/**
 * Options of {@linkcode WasmZstdDecoder}.
 *
 * @example
 * ```ts
 * const opts: WasmZstdOptions = { name: "layer sha256:ab..", windowMax: 256 * 1024 * 1024 };
 * ```
 */
export interface WasmZstdOptions {
  /** What is being decompressed, for error messages (e.g. "layer sha256:ab.."). */
  name?: string;
  /** Largest window a frame may declare, bytes (default 128 MiB). */
  windowMax?: number;
}

type Kernel = StreamKernel<ZstdExports>;
const pool: Kernel[] = [];
/** Instances whose memory grew past this are dropped, not pooled. */
const POOL_MAX_MEMORY = 64 * 1024 * 1024;

const split = (n: number): [number, number] => [n % 0x100000000, Math.floor(n / 0x100000000)];

function acquire(windowMax: number): Kernel {
  const [lo, hi] = split(windowMax);
  const k = pool.pop();
  if (k) {
    k.ex.reset(lo, hi);
    return k;
  }
  const ex = instantiateKernel("zstd", wasmBase64).exports as unknown as ZstdExports;
  ex.init(lo, hi);
  return { ex, mem: new MemoryView(ex.memory) };
}

function release(k: Kernel): void {
  if (pool.length < 2 && k.ex.memoryBytes() <= POOL_MAX_MEMORY) pool.push(k);
}

/**
 * Streaming zstd decoder on the WASM kernel: push compressed chunks,
 * decompressed chunks are pushed to `sink`. Concatenated frames and skippable
 * frames are accepted. Errors are `OcigenError("EDECOMPRESS")` naming what is
 * wrong and the compressed byte offset.
 *
 * @example
 * ```ts
 * import { CollectSink } from "../stream/sink.ts";
 * const out = new CollectSink();
 * const z = new WasmZstdDecoder(out, { name: "layer sha256:ab.." });
 * z.write(compressedBytes);
 * z.end();
 * out.bytes();
 * ```
 */
export class WasmZstdDecoder extends KernelStage<Kernel> {
  constructor(sink: ByteSink, opts: WasmZstdOptions = {}) {
    super(sink, opts.name ?? "zstd stream", acquire(opts.windowMax ?? ZSTD_WINDOW_DEFAULT));
  }

  end(): void {
    const k = this.kernel();
    if (this.seen === 0) {
      this.k = null;
      release(k);
      throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: empty stream (no compressed data)`);
    }
    this.pump(true);
    this.k = null;
    release(k);
    this.sink.end();
  }

  protected pump(final: boolean): void {
    const k = this.k!;
    const st = pumpKernel(k, this.input, final, this.emit);
    if (st === KERNEL_NEED_INPUT) {
      if (this.input.full(k)) this.fail(E_STUCK);
    } else if (st !== KERNEL_DONE) {
      this.fail(st);
    }
  }

  private fail(code: number): never {
    const k = this.k!;
    const at = this.input.offset(k);
    const msg = describeZstdError(code, k.ex.errorDetailA(), k.ex.errorDetailB());
    this.k = null; // the instance's state is unusable; drop it
    const where = code === E_WINDOW ? "" : code === E_TRUNC ? ` after compressed byte ${this.seen}` : ` near compressed byte ${at}`;
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg}${where}`);
  }
}

/**
 * XXH64 (seed 0) of `data` computed by the kernel (the content checksum's
 * hash; exposed for tests).
 *
 * @example
 * ```ts
 * wasmXxh64(new Uint8Array(0)).toString(16); // "ef46db3751d8e999"
 * ```
 */
export function wasmXxh64(data: Uint8Array): bigint {
  const k = acquire(ZSTD_WINDOW_DEFAULT);
  try {
    if (data.length > k.ex.inCapacity()) throw new RangeError("wasmXxh64: input larger than the kernel's input buffer");
    k.mem.u8.set(data, k.ex.inPtr());
    return BigInt.asUintN(64, k.ex.xxh64(k.ex.inPtr(), data.length));
  } finally {
    release(k);
  }
}
