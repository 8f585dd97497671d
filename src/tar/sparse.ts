/**
 * GNU sparse file maps: decoding of the old GNU (`S`) extension blocks, the
 * PAX 0.0/0.1 records and the PAX 1.0 in-data map, validation, and the
 * expander that turns stored sparse data back into the full file content.
 *
 * Formats:
 * - old GNU: typeflag `S`, up to 4 `{offset[12], numbytes[12]}` in the header
 *   (offset 386), `isextended` at 482, `realsize[12]` at 483; while isextended,
 *   a 512-byte block of 21 more pairs with its own `isextended` at 504.
 * - PAX 0.0: `GNU.sparse.size`, `GNU.sparse.numblocks`, then repeated
 *   `GNU.sparse.offset`/`GNU.sparse.numbytes` records.
 * - PAX 0.1: `GNU.sparse.map` = `off,size,off,size,...`.
 * - PAX 1.0: `GNU.sparse.major=1`, `minor=0`, `name`, `realsize`; the data
 *   starts with decimal lines `count\n(off\nsize\n)*` padded to 512 bytes.
 *
 * @module
 */
import { BLOCK, type SparseRegion } from "./header.ts";
import { HeaderError, parseNumeric } from "./header-decode.ts";

/**
 * Largest sparse map accepted (entries), to bound memory.
 *
 * @example
 * ```ts
 * if (regions.length > MAX_SPARSE_REGIONS) throw new Error("too many");
 * ```
 */
export const MAX_SPARSE_REGIONS = 1 << 17;

/**
 * Checks that regions are in order, do not overlap, and fit in `realSize`.
 *
 * @example
 * ```ts
 * validateSparse([{ offset: 0, size: 10 }, { offset: 100, size: 5 }], 200); // ok
 * ```
 */
export function validateSparse(regions: SparseRegion[], realSize: number): void {
  if (regions.length > MAX_SPARSE_REGIONS) throw new HeaderError("sparse map too large");
  let end = 0;
  for (const r of regions) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.size) || r.offset < 0 || r.size < 0) {
      throw new HeaderError("bad sparse map entry");
    }
    if (r.offset < end) throw new HeaderError("sparse map entries overlap or are out of order");
    end = r.offset + r.size;
    if (end > realSize) throw new HeaderError("sparse map entry beyond the file size");
  }
}

/**
 * Decodes the 21 pairs of a GNU sparse extension block; returns whether another block follows.
 *
 * @example
 * ```ts
 * const regions: SparseRegion[] = [];
 * const more = decodeGnuSparseExtension(block, 0, regions);
 * ```
 */
export function decodeGnuSparseExtension(b: Uint8Array, off: number, into: SparseRegion[]): boolean {
  for (let i = 0; i < 21; i++) {
    const o = off + i * 24;
    if (b[o] === 0) break;
    into.push({ offset: parseNumeric(b, o, 12, "sparse offset"), size: parseNumeric(b, o + 12, 12, "sparse size") });
    if (into.length > MAX_SPARSE_REGIONS) throw new HeaderError("sparse map too large");
  }
  return b[off + 504] !== 0;
}

/**
 * Parses the PAX 0.1 `GNU.sparse.map` value.
 *
 * @example
 * ```ts
 * parseSparseMap01("0,10,100,5"); // [{ offset: 0, size: 10 }, { offset: 100, size: 5 }]
 * ```
 */
export function parseSparseMap01(s: string): SparseRegion[] {
  if (s === "") return [];
  const nums = s.split(",").map((x) => {
    if (!/^[0-9]+$/.test(x)) throw new HeaderError("bad GNU.sparse.map");
    return Number(x);
  });
  if (nums.length % 2) throw new HeaderError("bad GNU.sparse.map");
  const out: SparseRegion[] = [];
  for (let i = 0; i < nums.length; i += 2) out.push({ offset: nums[i], size: nums[i + 1] });
  return out;
}

/**
 * Turns PAX 0.0 offset/numbytes pairs into regions.
 *
 * @example
 * ```ts
 * pairsToRegions([0, 10, 100, 5]); // [{ offset: 0, size: 10 }, { offset: 100, size: 5 }]
 * ```
 */
export function pairsToRegions(pairs: number[]): SparseRegion[] {
  if (pairs.length % 2) throw new HeaderError("bad GNU.sparse.offset/numbytes records");
  const out: SparseRegion[] = [];
  for (let i = 0; i < pairs.length; i += 2) out.push({ offset: pairs[i], size: pairs[i + 1] });
  return out;
}

/**
 * Incremental parser of the PAX 1.0 sparse map at the start of the entry data.
 * Feed bytes until `done`; `consumed` tells how many bytes of the data it used
 * (a multiple of 512).
 *
 * @example
 * ```ts
 * const m = new Sparse10MapReader();
 * m.feed(data, 0, data.length);
 * if (m.done) console.log(m.regions, m.consumed);
 * ```
 */
export class Sparse10MapReader {
  private text = "";
  private nums: number[] = [];
  private count = -1;
  /** Bytes consumed from the entry data so far. */
  consumed = 0;
  /** True once the whole map (and its padding) was read. */
  done = false;
  /** The regions, once done. */
  regions: SparseRegion[] = [];

  /** Consumes bytes from `b[off..end]`; returns how many were taken. */
  feed(b: Uint8Array, off: number, end: number): number {
    let i = off;
    while (i < end && !this.done) {
      if (this.count < 0 || this.nums.length < this.count * 2) {
        const c = b[i++];
        this.consumed++;
        if (c === 0x0a) {
          if (!/^[0-9]+$/.test(this.text)) throw new HeaderError("bad GNU sparse 1.0 map");
          const n = Number(this.text);
          this.text = "";
          if (this.count < 0) {
            if (n > MAX_SPARSE_REGIONS) throw new HeaderError("sparse map too large");
            this.count = n;
          } else this.nums.push(n);
        } else {
          this.text += String.fromCharCode(c);
          if (this.text.length > 20) throw new HeaderError("bad GNU sparse 1.0 map");
        }
        if (this.count >= 0 && this.nums.length === this.count * 2 && this.text === "") {
          for (let k = 0; k < this.nums.length; k += 2) this.regions.push({ offset: this.nums[k], size: this.nums[k + 1] });
          if (this.consumed % BLOCK === 0) this.done = true;
        }
      } else {
        // skip padding to the block boundary
        const pad = (BLOCK - (this.consumed % BLOCK)) % BLOCK;
        const take = Math.min(pad, end - i);
        i += take;
        this.consumed += take;
        if (this.consumed % BLOCK === 0) this.done = true;
      }
    }
    return i - off;
  }
}
