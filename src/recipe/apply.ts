/**
 * Glue to the unpack engine for `build`: apply a tar stream (an `expand`
 * tarball, a `.deb` payload) or the layers of a base image to a rootfs with
 * the engine's safe applier ({@linkcode LayerApplier}: every path resolved
 * inside the root, as for image layers).
 *
 * @module
 */
import type { Layout, ResolvedImage } from "../oci/layout.ts";
import { TarParser } from "../tar/parser.ts";
import { ApplyState, LayerApplier } from "../layer/apply.ts";
import { applyLayers } from "../layer/unpack.ts";
import { checkLayerCount } from "../oci/validate.ts";

/**
 * Applies a plain tar stream to `rootfs` (as one layer; `.wh.` entries act as whiteouts).
 *
 * @example
 * ```ts
 * await applyTarStreamTo(tarballStream("base.tar.gz", "expand"), "/tmp/rootfs", "expand base.tar.gz");
 * ```
 */
export async function applyTarStreamTo(tar: AsyncIterable<Uint8Array>, rootfs: string, what: string): Promise<void> {
  const parser = new TarParser(new LayerApplier(new ApplyState(rootfs), what));
  for await (const c of tar) parser.write(c instanceof Uint8Array ? c : new Uint8Array(c));
  parser.end();
}

/**
 * Extracts every layer of `image` into the existing directory `rootfs`
 * (the unpack engine's {@linkcode applyLayers}: digests, sizes and diff_ids
 * verified). Returns the apply state (when not root: the owners that could
 * not be applied, by path).
 *
 * @example
 * ```ts
 * await unpackImageTo(layout, await layout.resolve("base"), "/tmp/rootfs");
 * ```
 */
export async function unpackImageTo(layout: Layout, image: ResolvedImage, rootfs: string): Promise<ApplyState> {
  checkLayerCount(image, `${layout.dir}:${image.tag}`);
  return await applyLayers(layout, image.manifest.layers, image.config.rootfs?.diff_ids ?? [], rootfs, {});
}
