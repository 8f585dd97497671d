/**
 * The streaming interface the decompression kernels (`wasm/inflate.ts`,
 * `wasm/zstd.ts`) share, and the two steps every facade takes with it.
 *
 * A kernel owns an input buffer (`inPtr`, `inCapacity`) the host fills, and an
 * output buffer (`outPtr`, `outLength`) each `run(inLen, final)` call refills.
 * `inputConsumed` says how much of the input the last run used; `shiftInput`
 * moves the unconsumed tail to the front and returns its length. Output views
 * point into the instance's memory: valid until the next `run` call.
 *
 * @module
 */
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
export function fillInput(k: StreamKernel, inLen: number, chunk: Uint8Array, off: number): number {
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
export function kernelOutput(k: StreamKernel): Uint8Array | null {
  const n = k.ex.outLength();
  if (n <= 0) return null;
  const p = k.ex.outPtr();
  return k.mem.u8.subarray(p, p + n);
}
