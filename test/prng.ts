// Deterministic pseudo-random test data (xorshift32), shared by the
// decompression kernel tests so a seed names the same bytes everywhere.

/**
 * A xorshift32 generator of unsigned 32-bit numbers from `seed` (0 counts as 1).
 *
 * @example
 * ```ts
 * const r = prng(7);
 * r() & 0xff; // a byte
 * ```
 */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/**
 * `n` pseudo-random bytes from `seed` (incompressible data).
 *
 * @example
 * ```ts
 * randomBytes(16, 1).length; // 16
 * ```
 */
export function randomBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}
