/**
 * The name of a layer compression, the only thing src/compress/ knows about
 * a layer's format. Which OCI media type goes with which name is decided in
 * src/oci/media-type.ts, never here.
 *
 * @module
 */

/**
 * A compression of layer data: `gzip`, `zstd` or `none` (plain tar).
 *
 * @example
 * ```ts
 * const c: Compression = "zstd";
 * ```
 */
export type Compression = "gzip" | "zstd" | "none";
