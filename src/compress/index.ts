/**
 * Decompression stages by compression name (gzip, zstd or none), each a
 * synchronous {@linkcode ByteSink} that pushes decompressed bytes into the
 * next stage. Layer media types are mapped to these names in
 * src/oci/media-type.ts. The WebAssembly engineer may swap the kernels behind
 * {@linkcode createDecoderFor} without changing callers.
 *
 * @module
 */
import type { ByteSink } from "../stream/sink.ts";
import type { Compression } from "./compression.ts";
import { createGunzip, type InflateMode } from "./inflate-worker.ts";
import { ZstdDecoder } from "./zstd.ts";

export { GzipDecoder, crc32 } from "./gzip.ts";
export { ZstdDecoder } from "./zstd.ts";
export type { Compression } from "./compression.ts";

/**
 * Options of {@linkcode createDecoderFor}.
 *
 * @example
 * ```ts
 * const o: DecoderOptions = { zstdWindowMax: 1024 * 1024 * 1024 };
 * ```
 */
export interface DecoderOptions {
  /** Largest window a zstd frame may declare, bytes (default 128 MiB, at most 2 GiB). */
  zstdWindowMax?: number;
  /** Which gzip decoder to use (default `auto`). */
  inflate?: InflateMode;
}

/**
 * A decoder stage for a compression: push compressed bytes into the returned
 * sink; decompressed bytes are pushed into `sink`. `end()` checks the stream
 * was complete (`EDECOMPRESS`) and ends `sink`. `sizeHint` (the compressed
 * size, e.g. the layer descriptor's size) lets large gzip streams inflate in a
 * worker thread. `opts.zstdWindowMax` bounds the window (memory) a zstd
 * stream may ask for.
 *
 * @example
 * ```ts
 * const out = new CollectSink();
 * const d = createDecoderFor("none", out);
 * d.write(new Uint8Array([1]));
 * d.end();
 * ```
 */
export function createDecoderFor(compression: Compression, sink: ByteSink, what?: string, sizeHint?: number, opts: DecoderOptions = {}): ByteSink {
  switch (compression) {
    case "gzip":
      // WebAssembly kernel (wasm/inflate.ts); in a worker thread for large layers (sizeHint = compressed size)
      return createGunzip(sink, what, sizeHint, opts.inflate);
    case "zstd":
      return new ZstdDecoder(sink, { name: what, windowMax: opts.zstdWindowMax });
    case "none":
      return sink;
  }
}
