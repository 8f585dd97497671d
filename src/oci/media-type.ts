/**
 * What a media type means to ocigen, in one place: which media types are
 * image indexes and manifests, what kind of blob a descriptor names (for
 * messages), and the mapping between layer media types and compression names.
 *
 * The byte pipeline (src/compress/) knows only compression names
 * (`"gzip" | "zstd" | "none"`); code that holds a descriptor turns its media
 * type into a compression name here ({@linkcode layerCompression}, or
 * {@linkcode layerCompressionOf} for a clear EMEDIATYPE error), and a chosen
 * compression into the media type of the layer it writes
 * ({@linkcode layerMediaType}). Supporting a new layer compression means one
 * row in `LAYER_TYPES` here and one decoder/encoder in src/compress/.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { Compression } from "../compress/compression.ts";
import { MediaType } from "./types.ts";

/** Media types accepted for an image index (OCI and Docker manifest list). */
export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.Index, MediaType.DockerManifestList];
/** Media types accepted for an image manifest (OCI and Docker v2 schema 2). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.Manifest, MediaType.DockerManifest];

/**
 * True if `mt` is an image index media type (OCI or Docker manifest list).
 *
 * @example
 * ```ts
 * isIndexMediaType("application/vnd.oci.image.index.v1+json"); // true
 * ```
 */
export function isIndexMediaType(mt: string | undefined): boolean {
  return mt !== undefined && INDEX_MEDIA_TYPES.includes(mt);
}

/**
 * True if `mt` is an image manifest media type (OCI or Docker v2 schema 2).
 *
 * @example
 * ```ts
 * isManifestMediaType("application/vnd.oci.image.manifest.v1+json"); // true
 * ```
 */
export function isManifestMediaType(mt: string | undefined): boolean {
  return mt !== undefined && MANIFEST_MEDIA_TYPES.includes(mt);
}

/**
 * The kind of blob a media type names, for messages: `manifest`, `index`,
 * `config`, `layer` or `blob`.
 *
 * @example
 * ```ts
 * blobKind("application/vnd.oci.image.layer.v1.tar+gzip"); // "layer"
 * ```
 */
export function blobKind(mt: string): string {
  if (isManifestMediaType(mt)) return "manifest";
  if (isIndexMediaType(mt)) return "index";
  if (mt === MediaType.Config || mt === MediaType.DockerConfig) return "config";
  if (mt.includes(".layer.") || mt === MediaType.DockerLayerGzip) return "layer";
  return "blob";
}

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
  return Object.hasOwn(LAYER_TYPES, mediaType) ? LAYER_TYPES[mediaType] : undefined;
}

/**
 * The compression of a layer media type; EMEDIATYPE naming `what` (default
 * "layer") when it is not a layer media type ocigen can read.
 *
 * @example
 * ```ts
 * layerCompressionOf("application/vnd.oci.image.layer.v1.tar+zstd", "layer sha256:ab.."); // "zstd"
 * ```
 */
export function layerCompressionOf(mediaType: string, what?: string): Compression {
  const c = layerCompression(mediaType);
  if (!c) throw new OcigenError("EMEDIATYPE", `Cannot unpack ${what ?? "layer"}: unsupported layer media type ${mediaType}`);
  return c;
}

/**
 * The OCI layer media type of a compression.
 *
 * @example
 * ```ts
 * layerMediaType("gzip"); // "application/vnd.oci.image.layer.v1.tar+gzip"
 * ```
 */
export function layerMediaType(c: Compression): string {
  return c === "gzip" ? MediaType.LayerGzip : c === "zstd" ? MediaType.LayerZstd : MediaType.Layer;
}

/**
 * Resolves `auto` to the compression of the image's last layer (gzip when
 * it has none or an unknown one), as umoci does; `undefined` is gzip.
 *
 * @example
 * ```ts
 * resolveCompression("auto", [{ mediaType: MediaType.LayerZstd, digest: "…", size: 1 }]); // "zstd"
 * ```
 */
export function resolveCompression(c: Compression | "auto" | undefined, layers: { mediaType: string }[]): Compression {
  if (c && c !== "auto") return c;
  if (c === undefined) return "gzip";
  const mt = layers.length ? layers[layers.length - 1].mediaType : "";
  if (mt.endsWith("+zstd")) return "zstd";
  if (mt.endsWith(".tar")) return "none";
  return "gzip";
}
