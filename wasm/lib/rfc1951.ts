// The constant tables of DEFLATE (RFC 1951), shared by the decoder kernel
// (wasm/inflate.ts) and the encoder kernel (wasm/deflate.ts).
//
// This is a library module: .ci/build.mjs compiles only wasm/<name>.ts, so
// nothing here becomes a module of its own; each kernel that imports it gets
// its own copy of the data below in its own linear memory.
//
// Each kernel lays its tables out as its hot loop wants them (the decoder
// keeps a code's extra bits 64 bytes after its base, in the region its decode
// tables index; the encoder keeps them apart), so the fill functions take
// both addresses:
//
//   length codes (3.2.5): 29 codes, symbols 257-285, for match lengths 3-258.
//     Code c < 8 has no extra bits, code c < 28 has (c >> 2) - 1, and code 28
//     is the single length 258, with none.
//   distance codes (3.2.5): 30 codes, for distances 1-32768. Code c < 4 has
//     no extra bits, code c has (c >> 1) - 1.
//   fixed code (3.2.6): literal/length symbols 0-143 take 8 bits, 144-255 9,
//     256-279 7, 280-287 8; every distance symbol 0-31 takes 5.
//   code length code (3.2.7): the order in which a dynamic block's header
//     lists the 3-bit lengths of its 19 codes, and the extra bits of its
//     repeat codes 16-18.

/** Number of length codes (symbols 257-285). */
export const LENGTH_CODES: u32 = 29;
/** Number of distance codes in use (of 32 in the fixed code). */
export const DISTANCE_CODES: u32 = 30;

/** The code length code order: 19 bytes. */
export const PRECODE_ORDER: usize = memory.data<u8>([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

/** Extra bits of length code `c` (0-28). */
// @ts-ignore: decorator
@inline export function lengthExtra(c: u32): u32 {
  return c < 8 || c == 28 ? 0 : (c >> 2) - 1;
}

/** Extra bits of distance code `c` (0-29). */
// @ts-ignore: decorator
@inline export function distanceExtra(c: u32): u32 {
  return c < 4 ? 0 : (c >> 1) - 1;
}

/**
 * Extra bits of code length code `s` (0-18): 16 (repeat the previous length
 * 3-6 times) has 2, 17 (3-10 zeros) 3, 18 (11-138 zeros) 7; the lengths 0-15
 * have none.
 */
// @ts-ignore: decorator
@inline export function precodeExtra(s: u32): u32 {
  return s < 16 ? 0 : s == 16 ? 2 : s == 17 ? 3 : 7;
}

/**
 * Writes the base length of each length code as a u16 at `bases + 2c`, and
 * its extra bits as a u8 at `extras + c`, for c in 0-28.
 */
export function fillLengthCodes(bases: usize, extras: usize): void {
  let base: u32 = 3;
  for (let c: u32 = 0; c < 28; c++) {
    const extra = lengthExtra(c);
    store<u16>(bases + (<usize>c << 1), <u16>base);
    store<u8>(extras + <usize>c, <u8>extra);
    base += 1 << extra;
  }
  // 284 with all extra bits set would be 258 too; 285 says it in no bits
  store<u16>(bases + (28 << 1), 258);
  store<u8>(extras + 28, 0);
}

/**
 * Writes the base distance of each distance code as a u16 at `bases + 2c`,
 * and its extra bits as a u8 at `extras + c`, for c in 0-29.
 */
export function fillDistanceCodes(bases: usize, extras: usize): void {
  let base: u32 = 1;
  for (let c: u32 = 0; c < DISTANCE_CODES; c++) {
    const extra = distanceExtra(c);
    store<u16>(bases + (<usize>c << 1), <u16>base);
    store<u8>(extras + <usize>c, <u8>extra);
    base += 1 << extra;
  }
}

/** Writes the fixed code's 288 literal/length code lengths, one u8 each, at `dst`. */
export function fillFixedLitLengths(dst: usize): void {
  memory.fill(dst, 8, 144);
  memory.fill(dst + 144, 9, 112);
  memory.fill(dst + 256, 7, 24);
  memory.fill(dst + 280, 8, 8);
}

/** Writes the fixed code's 32 distance code lengths (5 bits each), one u8 each, at `dst`. */
export function fillFixedDistLengths(dst: usize): void {
  memory.fill(dst, 5, 32);
}
