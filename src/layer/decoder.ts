/**
 * The decoder stage for a layer descriptor's media type: the media type is
 * mapped to a compression name (src/oci/media-type.ts; EMEDIATYPE for a type
 * that is not a layer, never silently skipped) and the stage built by
 * src/compress/ for that name.
 *
 * @module
 */
import { createDecoderFor } from "../compress/index.ts";
import { layerCompressionOf } from "../oci/media-type.ts";
import type { ByteSink } from "../stream/sink.ts";

/**
 * A decoder stage for a layer media type (gzip, zstd or none): push the
 * layer's bytes into the returned sink, the tar stream comes out in `sink`.
 *
 * @example
 * ```ts
 * const d = createDecoder("application/vnd.oci.image.layer.v1.tar+gzip", tarParser);
 * d.write(chunk); // ...
 * d.end();
 * ```
 */
export function createDecoder(mediaType: string, sink: ByteSink, what?: string): ByteSink {
  return createDecoderFor(layerCompressionOf(mediaType, what), sink, what);
}
