/**
 * Combining CRC-32s: the CRC of two byte strings one after the other, from
 * their CRCs and the second one's length, without the bytes (as zlib's
 * `crc32_combine`). Parallel gzip (`pgzip.ts`) computes each block's CRC on
 * the worker that deflates it and combines them, in order, for the gzip
 * trailer.
 *
 * @module
 */

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
