/**
 * The streaming interface the decompression kernels (`wasm/inflate.ts`,
 * `wasm/zstd.ts`) share, and the two steps every facade takes with it.
 *
 * A kernel owns an input buffer (`inPtr`, `inCapacity`) the host fills, and an
 * output buffer (`outPtr`, `outLength`) each `run(inLen, final)` call refills.
 * `inputConsumed` says how much of the input the last run used; `shiftInput`
 * moves the unconsumed tail to the front and returns its length. Output views
 * point into the instance's memory: valid until the next `run` call.
 * `run` returns {@linkcode KERNEL_NEED_INPUT}, {@linkcode KERNEL_OUTPUT} (call
 * again: the output buffer is recycled), {@linkcode KERNEL_DONE} or a negative
 * kernel-specific error code; {@linkcode pumpKernel} is that loop, written once
 * for every facade (in-thread decoders and the inflate worker).
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import type { MemoryView } from "./instance.ts";

/**
 * Exports every streaming decompression kernel has.
 *
 * @example
 * ```ts
 * const ex = instantiateKernel("zstd", wasmBase64).exports as unknown as StreamKernelExports;
 * ```
 */
export interface StreamKernelExports {
  memory: WebAssembly.Memory;
  inPtr(): number;
  inCapacity(): number;
  outPtr(): number;
  outLength(): number;
  inputConsumed(): number;
  shiftInput(inLen: number): number;
  run(inLen: number, final: number): number;
  errorDetailA(): number;
  errorDetailB(): number;
}

/**
 * A kernel instance with a view of its memory.
 *
 * @example
 * ```ts
 * const k: StreamKernel = { ex, mem: new MemoryView(ex.memory) };
 * ```
 */
export interface StreamKernel<E extends StreamKernelExports = StreamKernelExports> {
  ex: E;
  mem: MemoryView;
}

/**
 * Copies as much of `chunk` from `off` as fits after the `inLen` bytes already
 * in the kernel's input buffer; returns how many bytes were copied.
 *
 * @example
 * ```ts
 * let inLen = 0;
 * inLen += fillInput(k, inLen, chunk, 0);
 * ```
 */
function fillInput(k: StreamKernel, inLen: number, chunk: Uint8Array, off: number): number {
  const n = Math.min(chunk.length - off, k.ex.inCapacity() - inLen);
  k.mem.u8.set(chunk.subarray(off, off + n), k.ex.inPtr() + inLen);
  return n;
}

/**
 * The bytes the last `run` produced, as a view into the kernel's memory, or
 * `null` when it produced none.
 *
 * @example
 * ```ts
 * const out = kernelOutput(k);
 * if (out) sink.write(out);
 * ```
 */
function kernelOutput(k: StreamKernel): Uint8Array | null {
  const n = k.ex.outLength();
  if (n <= 0) return null;
  const p = k.ex.outPtr();
  return k.mem.u8.subarray(p, p + n);
}

/**
 * `run` status: the kernel consumed what it could and needs more input.
 *
 * @example
 * ```ts
 * if (pumpKernel(k, input, false, emit) === KERNEL_NEED_INPUT) return;
 * ```
 */
export const KERNEL_NEED_INPUT = 0;
/**
 * `run` status: the output buffer is full (handed over); call `run` again.
 *
 * @example
 * ```ts
 * if (k.ex.run(len, 0) === KERNEL_OUTPUT) emitAndRunAgain();
 * ```
 */
export const KERNEL_OUTPUT = 1;
/**
 * `run` status: the stream (or gzip member / zstd frames) is complete.
 *
 * @example
 * ```ts
 * if (pumpKernel(k, input, true, emit) === KERNEL_DONE) sink.end();
 * ```
 */
export const KERNEL_DONE = 2;

/**
 * The host side of a kernel's input buffer: how many bytes it holds
 * (`inLen`) and how many compressed bytes were shifted out before them
 * (`consumedBefore`), so errors can name a byte offset in the whole stream.
 *
 * @example
 * ```ts
 * const input = new KernelInput();
 * input.fill(k, chunk, 0);
 * input.offset(k); // compressed byte the kernel is at
 * ```
 */
export class KernelInput {
  /** Bytes buffered in the kernel's input buffer. */
  inLen = 0;
  /** Compressed bytes consumed and shifted out before the buffer's start. */
  consumedBefore = 0;

  /** Copies as much of `chunk` from `off` as fits; returns how many bytes were copied. */
  fill(k: StreamKernel, chunk: Uint8Array, off: number): number {
    const n = fillInput(k, this.inLen, chunk, off);
    this.inLen += n;
    return n;
  }

  /** Drops the consumed bytes, moving the unconsumed tail to the buffer's front. */
  shift(k: StreamKernel): void {
    const used = k.ex.inputConsumed();
    this.inLen = k.ex.shiftInput(this.inLen);
    this.consumedBefore += used;
  }

  /** True when the buffer is full of bytes the kernel cannot use yet (it is stuck). */
  full(k: StreamKernel): boolean {
    return this.inLen >= k.ex.inCapacity();
  }

  /** The compressed byte offset (in the whole stream) the kernel has reached. */
  offset(k: StreamKernel): number {
    return this.consumedBefore + k.ex.inputConsumed();
  }

  /** Forgets the buffered bytes (a new stream on the same instance). */
  clear(): void {
    this.inLen = 0;
    this.consumedBefore = 0;
  }
}

/**
 * Runs the kernel over its buffered input (`final`: no more will come),
 * handing every output chunk to `emit` (a view, valid during the call), until
 * it needs input, is done or fails. On {@linkcode KERNEL_NEED_INPUT} the
 * consumed input is already shifted out; on {@linkcode KERNEL_DONE} it is not
 * (the caller decides what the tail is). Returns the last `run` status:
 * `KERNEL_NEED_INPUT`, `KERNEL_DONE` or a negative error code.
 *
 * @example
 * ```ts
 * const st = pumpKernel(k, input, false, (out) => sink.write(out));
 * if (st < 0) throw new Error(`kernel error ${st}`);
 * ```
 */
export function pumpKernel(k: StreamKernel, input: KernelInput, final: boolean, emit: (out: Uint8Array) => void): number {
  for (;;) {
    const st = k.ex.run(input.inLen, final ? 1 : 0);
    const out = kernelOutput(k);
    if (out) emit(out);
    if (st === KERNEL_OUTPUT) continue;
    if (st === KERNEL_NEED_INPUT) input.shift(k);
    return st;
  }
}

/**
 * The write side every kernel-backed decoder stage shares: it holds the
 * kernel instance (null once ended or failed), copies written chunks into the
 * kernel's input buffer and pumps after each fill; output goes to `sink`. A
 * sink that throws leaves the stage unusable. Subclasses say what a pump
 * means for their format (`pump`) and whether more input is still taken
 * (`accepting`).
 *
 * @example
 * ```ts
 * class MyDecoder extends KernelStage<StreamKernel<MyExports>> {
 *   protected pump(final: boolean): void { pumpKernel(this.k!, this.input, final, this.emit); }
 * }
 * ```
 */
export abstract class KernelStage<K extends StreamKernel = StreamKernel> implements ByteSink {
  protected k: K | null;
  protected readonly input = new KernelInput();
  /** Compressed bytes written. */
  protected seen = 0;
  /** Hands one output view to the sink. */
  protected readonly emit = (out: Uint8Array): void => {
    try {
      this.sink.write(out);
    } catch (e) {
      this.k = null;
      throw e;
    }
  };

  protected constructor(protected readonly sink: ByteSink, protected readonly name: string, k: K) {
    this.k = k;
  }

  write(chunk: Uint8Array): void {
    const k = this.kernel();
    this.seen += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (!this.accepting()) return;
      off += this.input.fill(k, chunk, off);
      this.pump(false);
    }
  }

  abstract end(): void;

  /** Runs the kernel over what is buffered (`final`: no more input), failing on errors. */
  protected abstract pump(final: boolean): void;

  /** False when the rest of the input is to be ignored. */
  protected accepting(): boolean {
    return true;
  }

  /** The live kernel; a stage used after its end or an error is an EDECOMPRESS error. */
  protected kernel(): K {
    if (!this.k) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: write after end or after an error`);
    return this.k;
  }
}
