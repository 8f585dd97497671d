/**
 * Deflating one block of a parallel gzip stream (`pgzip.ts`), the work the
 * deflate workers (`worker/deflate-worker-main.ts`) and the calling thread
 * share: the WASM deflate kernel (`deflate-wasm.ts`) with the previous
 * block's tail as the history, stored instead of searched when the block
 * looks incompressible, and the CRC-32 of the block's input (node:zlib's, or
 * the WASM inflate kernel's where node:zlib has none) for the trailer.
 *
 * The kernel replaced node:zlib's deflate here: on the bench's 185 MB tree
 * (1 MiB blocks, one thread) its default level took 1.06-1.14 s for
 * 73.34 MB, against zlib level 3's 1.73-1.86 s for 75.60-75.86 MB; and it
 * writes the same bytes on Node and Deno, whose zlib builds differ.
 *
 * @module
 */
import zlib from "node:zlib";
import { wasmDeflateRaw } from "./deflate-wasm.ts";
import { wasmCrc32 } from "./inflate-wasm.ts";

type Crc = (data: Uint8Array, value: number) => number;
const nativeCrc = (zlib as unknown as { crc32?: Crc }).crc32;
const crc32: Crc = typeof nativeCrc === "function" ? (d, v) => nativeCrc(d, v) >>> 0 : (d, v) => wasmCrc32(d, v);

/**
 * True when a block looks incompressible (already compressed or random
 * data): eight 4 KiB samples spread over it all have an order-0 entropy
 * above 7.9 bits per byte. Such a block is stored (level 0) instead of
 * searched for matches that are not there; the search would store it anyway,
 * after costing about as much as compressing text.
 *
 * @example
 * ```ts
 * looksIncompressible(crypto.getRandomValues(new Uint8Array(1 << 20))); // true
 * ```
 */
export function looksIncompressible(b: Uint8Array): boolean {
  const S = 4096;
  const N = 8;
  if (b.length < S * N) return false;
  const hist = new Uint32Array(256);
  const step = Math.floor((b.length - S) / (N - 1));
  for (let k = 0; k < N; k++) {
    hist.fill(0);
    const at = k * step;
    for (let i = at; i < at + S; i++) hist[b[i]]++;
    let e = 0;
    for (let i = 0; i < 256; i++) {
      if (hist[i] !== 0) {
        const p = hist[i] / S;
        e -= p * Math.log2(p);
      }
    }
    if (e < 7.9) return false;
  }
  return true;
}

/**
 * The result of {@linkcode deflateBlock}: raw DEFLATE bytes (a fresh array,
 * or the start of the buffer the caller passed, so a worker can transfer its
 * whole buffer as it is), the
 * CRC-32 of the block's input and its length.
 *
 * @example
 * ```ts
 * const r: DeflatedBlock = deflateBlock(buf, 0, true, 3);
 * ```
 */
export interface DeflatedBlock {
  out: Uint8Array;
  crc: number;
  len: number;
}

/**
 * Deflates one block: `buf` holds `dict` dictionary bytes, then the block's
 * input; `final` ends the DEFLATE stream, otherwise the block ends with a sync
 * flush (byte-aligned, so blocks concatenate). `into` as in `wasmDeflateRaw`
 * (a recycled output buffer, and the least buffer size of a fresh one).
 *
 * @example
 * ```ts
 * const { out, crc, len } = deflateBlock(new TextEncoder().encode("hello"), 0, true, 3);
 * ```
 */
export function deflateBlock(
  buf: Uint8Array,
  dict: number,
  final: boolean,
  level: number,
  into?: { buffer?: ArrayBuffer; capacity?: number },
): DeflatedBlock {
  const input = buf.subarray(dict);
  const out = wasmDeflateRaw(buf, dict, final, looksIncompressible(input) ? 0 : level, into);
  return { out, crc: crc32(input, 0), len: input.length };
}

