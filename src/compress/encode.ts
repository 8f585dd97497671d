/**
 * Layer compressors (the write side): `gzip`, `zstd` and `none`, as async
 * byte-stream transforms with backpressure, so memory stays bounded whatever
 * the layer size.
 *
 * - gzip: parallel gzip ({@linkcode parallelGzip}: blocks deflated by the
 *   WASM deflate kernel on worker threads, one gzip member), level 3 by
 *   default (about umoci's ratio). Output is deterministic: the gzip header
 *   carries mtime 0, no name, OS 3 (Unix), block boundaries depend only on
 *   the input, and the kernel is ours, so Node and Deno deflate a stream to
 *   the same bytes.
 *   `gzip: "portable"` (the command line's `OCIGEN_GZIP=portable`) still
 *   selects fflate's pure-JS deflate (single-threaded, much slower), whose
 *   bytes earlier ocigen releases wrote. diff_ids never depend on the
 *   compressor.
 * - zstd: `node:zlib` zstd when the runtime has it, else the `zstd` command
 *   (`zstd -q -c -3 -T1`, single-threaded so output is deterministic); a clear
 *   error when neither exists.
 * - none: the bytes unchanged.
 *
 * @module
 */
import { Gzip } from "fflate";
import { OcigenError } from "../errors.ts";
import { zstdCompressStream } from "./encode-zstd.ts";
import type { Compression } from "./compression.ts";
import { parallelGzip } from "./pgzip.ts";

export type { Compression };

/**
 * Parses a `--compress` value.
 *
 * @example
 * ```ts
 * parseCompression("zstd"); // "zstd" ("auto" is resolved per image by resolveCompression, src/oci/media-type.ts)
 * ```
 */
export function parseCompression(s: string | undefined): Compression | "auto" {
  const v = (s ?? "gzip").toLowerCase();
  if (v === "gzip" || v === "zstd" || v === "none" || v === "auto") return v;
  throw new OcigenError("EINVALID", `Cannot use compression ${s}: expected gzip, zstd, none or auto`);
}

/** The gzip writer: parallel WASM deflate, or fflate's single-threaded one. */
export type GzipMode = "parallel" | "portable";

/** Options of {@linkcode encodeStream}. */
export interface EncodeOptions {
  /** Compression level (default: the compressor's). */
  level?: number;
  /** gzip writer (default `parallel`). */
  gzip?: GzipMode;
}

/**
 * Compresses an async byte stream.
 *
 * @example
 * ```ts
 * const gz = encodeStream("gzip", tarChunks());
 * await layout.writeBlob(gz, layerMediaType("gzip")); // layerMediaType: src/oci/media-type.ts
 * ```
 */
export function encodeStream(c: Compression, source: AsyncIterable<Uint8Array>, opts: EncodeOptions = {}): AsyncIterable<Uint8Array> {
  const { level } = opts;
  if (c === "none") return source;
  if (c === "gzip") {
    if (opts.gzip === "portable") return portableGzip(source, level ?? 6);
    return parallelGzip(source, { level });
  }
  return zstdCompressStream(source, level);
}

/**
 * gzip with fflate (pure JS): the same bytes on every runtime and machine.
 *
 * @example
 * ```ts
 * for await (const c of portableGzip(chunks(), 6)) out.push(c);
 * ```
 */
export async function* portableGzip(source: AsyncIterable<Uint8Array>, level = 6): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const g = new Gzip({ level: Math.max(0, Math.min(9, level)) as 6, mtime: 0 }, (d) => out.push(d));
  for await (const c of source) {
    g.push(c, false);
    while (out.length) yield out.shift()!;
  }
  g.push(new Uint8Array(0), true);
  while (out.length) yield out.shift()!;
}
