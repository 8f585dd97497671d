/**
 * Raw DEFLATE compression of one block on the WebAssembly deflate kernel
 * (`wasm/deflate.ts`): hash-chain match finding and per-block Huffman codes,
 * written by our own code, so the same input and level give the same bytes
 * on every runtime and machine.
 *
 * One kernel instance per thread, reused: its memory grows to the largest
 * block it was given (input + worst-case output + ~0.5 MiB of tables).
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import { wasmBase64 } from "../wasm/generated/deflate.ts";
import { instantiateKernel, MemoryView } from "../wasm/instance.ts";

/**
 * Exports of the deflate kernel (`wasm/deflate.ts`).
 *
 * @example
 * ```ts
 * const ex = instantiateKernel("deflate", wasmBase64).exports as unknown as DeflateExports;
 * ```
 */
export interface DeflateExports {
  memory: WebAssembly.Memory;
  init(): void;
  reserve(n: number): number;
  outPtr(): number;
  deflate(dict: number, n: number, final: boolean, level: number): number;
}

let kernel: { ex: DeflateExports; mem: MemoryView } | null = null;

/**
 * Compresses `buf.subarray(dict)` to raw DEFLATE at `level` (0 stores, 1-9
 * search more and more; clamped), with `buf.subarray(0, dict)` (at most the
 * last 32 KiB of it) as the history matches may reach into. `final` ends the
 * DEFLATE stream; otherwise the output ends with a sync flush (an empty
 * stored block, byte-aligned), so that blocks compressed this way
 * concatenate into one stream. The result is a fresh array, or a view of
 * the start of `into` when that buffer is large enough (a caller's recycled
 * output buffer); a fresh one gets at least `capacity` bytes of buffer, so
 * that it can be recycled for later blocks.
 *
 * @example
 * ```ts
 * import zlib from "node:zlib";
 * const text = new TextEncoder().encode("hello hello hello hello");
 * const raw = wasmDeflateRaw(text, 0, true, 3);
 * zlib.inflateRawSync(raw).toString(); // "hello hello hello hello"
 * ```
 */
export function wasmDeflateRaw(
  buf: Uint8Array,
  dict: number,
  final: boolean,
  level: number,
  into?: { buffer?: ArrayBuffer; capacity?: number },
): Uint8Array {
  if (!kernel) {
    const ex = instantiateKernel("deflate", wasmBase64).exports as unknown as DeflateExports;
    ex.init();
    kernel = { ex, mem: new MemoryView(ex.memory) };
  }
  const { ex, mem } = kernel;
  const d = Math.max(0, Math.min(dict, buf.length));
  const ptr = ex.reserve(buf.length);
  if (ptr === 0) throw new OcigenError("EREPACK", `Cannot compress a ${buf.length}-byte block: the deflate kernel could not grow its memory`);
  mem.u8.set(buf, ptr);
  const n = ex.deflate(d, buf.length, final, Math.max(0, Math.min(9, Math.round(level))));
  const at = ex.outPtr();
  if (!into) return mem.u8.slice(at, at + n);
  const b = into.buffer && into.buffer.byteLength >= n ? into.buffer : new ArrayBuffer(Math.max(n, into.capacity ?? 0));
  const out = new Uint8Array(b, 0, n);
  out.set(mem.u8.subarray(at, at + n));
  return out;
}
