/**
 * Committing a new layer (or an empty one) on top of an image: new config
 * (diff_ids, history, created), new manifest, and the tag — blobs first, the
 * tag last (one atomic index.json update), so a failure leaves every tag as it
 * was.
 *
 * @module
 */
import type { Descriptor, History, ImageConfig, ImageManifest } from "../oci/types.ts";
import { MediaType } from "../oci/types.ts";
import type { Layout } from "../oci/layout.ts";
import type { WrittenLayer } from "./layer-writer.ts";

/** History fields given on the command line (`--history.*`). */
export interface HistoryOptions {
  created_by?: string;
  comment?: string;
  author?: string;
  /** RFC 3339 date; defaults to `sourceDateEpoch`, else now. */
  created?: string;
  /** Seconds since the epoch `created` defaults to (reproducible builds: `$SOURCE_DATE_EPOCH`). */
  sourceDateEpoch?: number;
  /** Add no history entry at all (umoci's `--no-history`). */
  none?: boolean;
}

/**
 * "Now" as RFC 3339, or `sde` (seconds, `$SOURCE_DATE_EPOCH` for
 * reproducible builds) when given.
 *
 * @example
 * ```ts
 * nowRfc3339(); // "2026-01-01T00:00:00.000Z"
 * nowRfc3339(0); // "1970-01-01T00:00:00Z"
 * ```
 */
export function nowRfc3339(sde?: number): string {
  const d = sde !== undefined ? new Date(sde * 1000) : new Date();
  return d.toISOString().replace(/\.000Z$/, "Z");
}

/** What {@linkcode commitLayer} builds on. */
export interface BaseImage {
  manifest: ImageManifest;
  config: ImageConfig;
}

/** Result of {@linkcode commitLayer}. */
export interface CommitResult {
  manifestDescriptor: Descriptor;
  configDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Every blob written by the commit (for cleanup on a later failure). */
  written: Descriptor[];
}

/**
 * Writes the new config and manifest for `layer` (or an `empty_layer` history
 * entry when `layer` is undefined) on top of `base`. Does not tag: call
 * `layout.setTag` (or {@linkcode commitAndTag}).
 *
 * @example
 * ```ts
 * const r = await commitLayer(layout, base, layer, { created_by: "ocigen repack" });
 * await layout.setTag("new", r.manifestDescriptor);
 * ```
 */
export async function commitLayer(
  layout: Layout,
  base: BaseImage,
  layer: WrittenLayer | undefined,
  history: HistoryOptions,
  mutate?: (config: ImageConfig, manifest: ImageManifest) => void,
): Promise<CommitResult> {
  const config: ImageConfig = structuredClone(base.config);
  const manifest: ImageManifest = structuredClone(base.manifest);
  const created = history.created ?? nowRfc3339(history.sourceDateEpoch);
  const h: History = { created };
  if (history.created_by !== undefined) h.created_by = history.created_by;
  if (history.author !== undefined) h.author = history.author;
  if (history.comment !== undefined) h.comment = history.comment;
  config.rootfs = { type: "layers", diff_ids: [...(config.rootfs?.diff_ids ?? [])] };
  if (layer) {
    config.rootfs.diff_ids.push(layer.diffId);
    manifest.layers = [...(manifest.layers ?? []), layer.descriptor];
  } else {
    h.empty_layer = true;
  }
  if (!history.none) config.history = [...(config.history ?? []), h];
  config.created = created;
  if (mutate) mutate(config, manifest);
  const configDescriptor = await layout.writeJSON(config, MediaType.Config);
  manifest.schemaVersion = 2;
  manifest.mediaType = MediaType.Manifest;
  manifest.config = { mediaType: MediaType.Config, digest: configDescriptor.digest, size: configDescriptor.size };
  const manifestDescriptor = await layout.writeJSON(manifest, MediaType.Manifest);
  const written = [configDescriptor, manifestDescriptor];
  if (layer) written.unshift(layer.descriptor);
  return {
    manifestDescriptor: { mediaType: MediaType.Manifest, digest: manifestDescriptor.digest, size: manifestDescriptor.size },
    configDescriptor,
    manifest,
    config,
    written,
  };
}
