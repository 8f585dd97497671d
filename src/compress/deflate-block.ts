/**
 * Deflating one block of a parallel gzip stream (`pgzip.ts`), the work the
 * deflate workers (`worker/deflate-worker-main.ts`) and the calling thread
 * share: node:zlib's raw deflate with the previous block's tail as the
 * dictionary, stored instead of searched when the block looks incompressible,
 * and the CRC-32 of the block's input (node:zlib's, or the WASM kernel's where
 * node:zlib has none) for the trailer.
 *
 * @module
 */
import zlib from "node:zlib";
import { wasmCrc32 } from "./inflate-wasm.ts";

type Crc = (data: Uint8Array, value: number) => number;
const nativeCrc = (zlib as unknown as { crc32?: Crc }).crc32;
const crc32: Crc = typeof nativeCrc === "function" ? (d, v) => nativeCrc(d, v) >>> 0 : (d, v) => wasmCrc32(d, v);

/** zlib's memLevel 9: a bigger hash table, a little faster and smaller than the default 8. */
const MEM_LEVEL = 9;

/**
 * True when a block looks incompressible (already compressed or random
 * data): eight 4 KiB samples spread over it all have an order-0 entropy
 * above 7.9 bits per byte. Such a block is stored (level 0) instead of
 * searched for matches that are not there; zlib would store it anyway, and
 * the search costs about as much as compressing text.
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
 * The result of {@linkcode deflateBlock}: raw DEFLATE bytes, the CRC-32 of
 * the block's input and its length.
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
 * flush (byte-aligned, so blocks concatenate).
 *
 * @example
 * ```ts
 * const { out, crc, len } = deflateBlock(new TextEncoder().encode("hello"), 0, true, 3);
 * ```
 */
export function deflateBlock(buf: Uint8Array, dict: number, final: boolean, level: number): DeflatedBlock {
  const input = buf.subarray(dict);
  const out = zlib.deflateRawSync(input, {
    level: looksIncompressible(input) ? 0 : level,
    memLevel: MEM_LEVEL,
    ...(dict > 0 ? { dictionary: buf.subarray(0, dict) } : {}),
    finishFlush: final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
  return { out: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), crc: crc32(input, 0), len: input.length };
}

