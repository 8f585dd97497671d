/**
 * Content digests (sha256, sha512) as used by OCI descriptors.
 *
 * The fast path uses `node:crypto` (native, synchronous, available on Node
 * and Deno). {@linkcode createPortableDigester} is the portable path through
 * `hash-wasm` (WebAssembly), for hosts without `node:crypto`; both produce
 * identical digests (tested).
 *
 * Digest strings have the OCI form `<algorithm>:<lowercase hex>`.
 *
 * @module
 */
import { createHash } from "node:crypto";
// hash-wasm (~270 KB of JS and WebAssembly) is imported only by
// createPortableDigester, so that start-up never evaluates it.

/** The digest algorithms ocigen can compute. */
export type DigestAlgorithm = "sha256" | "sha512";

/** The algorithms ocigen can verify, in preference order. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ["sha256", "sha512"];

/** An incremental hasher producing an OCI digest string. */
export interface Digester {
  /** Feeds bytes; the chunk may be reused by the caller after the call. */
  update(b: Uint8Array): void;
  /** Finishes and returns `"<alg>:<hex>"`. Call once. */
  digest(): string;
}

/**
 * Returns true if ocigen can compute digests with `alg`.
 *
 * @example
 * ```ts
 * isSupportedAlgorithm("sha512"); // true
 * isSupportedAlgorithm("blake3"); // false
 * ```
 */
export function isSupportedAlgorithm(alg: string): alg is DigestAlgorithm {
  return alg === "sha256" || alg === "sha512";
}

/**
 * Creates an incremental digester (native `node:crypto`).
 *
 * @example
 * ```ts
 * const d = createDigester();
 * d.update(new TextEncoder().encode("abc"));
 * d.digest(); // "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 */
export function createDigester(alg: DigestAlgorithm = "sha256"): Digester {
  if (!isSupportedAlgorithm(alg)) throw new Error(`unsupported digest algorithm ${alg}`);
  const h = createHash(alg);
  return {
    update(b: Uint8Array) {
      h.update(b);
    },
    digest() {
      return `${alg}:${h.digest("hex")}`;
    },
  };
}

/**
 * Digest of a whole buffer.
 *
 * @example
 * ```ts
 * digestBytes(new Uint8Array(0)); // "sha256:e3b0c442...b855"
 * ```
 */
export function digestBytes(data: Uint8Array, alg: DigestAlgorithm = "sha256"): string {
  const d = createDigester(alg);
  d.update(data);
  return d.digest();
}

/**
 * Creates a digester backed by `hash-wasm` (WebAssembly): the portable path,
 * for runtimes without `node:crypto`. Asynchronous because the WebAssembly
 * module is instantiated on first use.
 *
 * @example
 * ```ts
 * const d = await createPortableDigester("sha256");
 * d.update(new Uint8Array([1, 2, 3]));
 * console.log(d.digest());
 * ```
 */
export async function createPortableDigester(alg: DigestAlgorithm = "sha256"): Promise<Digester> {
  if (!isSupportedAlgorithm(alg)) throw new Error(`unsupported digest algorithm ${alg}`);
  const { createSHA256, createSHA512 } = await import("hash-wasm");
  const h = alg === "sha256" ? await createSHA256() : await createSHA512();
  h.init();
  return {
    update(b: Uint8Array) {
      h.update(b);
    },
    digest() {
      return `${alg}:${h.digest("hex")}`;
    },
  };
}
