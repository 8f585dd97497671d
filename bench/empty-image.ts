/**
 * The empty starting image the repack and commit benchmarks build on: a
 * manifest with no layers, committed through ocigen's own commit path.
 *
 * @module
 */
import type { Layout } from "../src/oci/layout.ts";
import { MediaType } from "../src/oci/types.ts";
import { commitLayer } from "../src/repack/commit.ts";

/**
 * Commits an image with no layers (amd64/linux, history "bench") to `layout`
 * and tags it `tag`.
 *
 * @example
 * ```ts
 * await commitEmptyImage(await Layout.init(dir), "empty");
 * ```
 */
export async function commitEmptyImage(layout: Layout, tag: string): Promise<void> {
  const empty = await commitLayer(
    layout,
    {
      manifest: { schemaVersion: 2, config: { mediaType: MediaType.Config, digest: "", size: 0 }, layers: [] },
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
    },
    undefined,
    { created_by: "bench" },
  );
  await layout.setTag(tag, empty.manifestDescriptor);
}
