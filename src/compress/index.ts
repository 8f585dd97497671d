/**
 * Decompression stages for layer media types: gzip, zstd or none, each a
 * synchronous {@linkcode ByteSink} that pushes decompressed bytes into the
 * next stage. The WebAssembly engineer may swap the kernels behind
 * {@linkcode createDecoder} without changing callers.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { createGunzip, type InflateMode } from "./inflate-worker.ts";
import { ZstdDecoder } from "./zstd.ts";

export { GzipDecoder, crc32 } from "./gzip.ts";
export { ZstdDecoder } from "./zstd.ts";

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
 * A compression of layer data.
 *
 * @example
 * ```ts
 * const c: Compression = layerCompression(desc.mediaType) ?? "none";
 * ```
 */
export type Compression = "gzip" | "zstd" | "none";

const LAYER_TYPES: Record<string, Compression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
};

/**
 * The compression of a layer media type, or `undefined` if it is not a layer type.
 *
 * @example
 * ```ts
 * layerCompression("application/vnd.oci.image.layer.v1.tar+gzip"); // "gzip"
 * layerCompression("text/plain"); // undefined
 * ```
 */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_TYPES[mediaType];
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

/**
 * A decoder stage for a layer media type (gzip, zstd or none). Unknown media
 * types are `EMEDIATYPE` errors, never silently skipped.
 *
 * @example
 * ```ts
 * const d = createDecoder("application/vnd.oci.image.layer.v1.tar+gzip", tarParser);
 * d.write(chunk); // ...
 * d.end();
 * ```
 */
export function createDecoder(mediaType: string, sink: ByteSink, what?: string): ByteSink {
  const c = layerCompression(mediaType);
  if (!c) throw new OcigenError("EMEDIATYPE", `Cannot unpack ${what ?? "layer"}: unsupported layer media type ${mediaType}`);
  return createDecoderFor(c, sink, what);
}
