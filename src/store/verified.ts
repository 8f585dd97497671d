/**
 * Reuse of an extracted lower tree is an optimisation, never a trust
 * shortcut. When bulk extraction starts an image from the tree of another
 * image whose bottom layers are the same (same chain of diff_ids), the layer
 * blobs of *this* image's layout for those layers are not inflated or
 * applied, but they are still verified (digest and size, hashing only), so
 * a corrupted or replaced blob fails the image exactly as a full unpack
 * would (EDIGEST/ESIZE/ENOBLOB naming the blob).
 *
 * Hashing is done once per blob file per process: a blob verified earlier
 * in this run is skipped while its file keeps the identity it had then
 * (device, inode, size, mtime, ctime, taken before the hash and checked
 * again after it). Rewriting or replacing a file changes its ctime or inode,
 * which no unprivileged call can set back, so a changed blob is always
 * hashed again.
 *
 * @module
 */
import * as fs from "node:fs";
import type { Layout } from "../oci/layout.ts";
import type { Descriptor } from "../oci/types.ts";

const verified = new Set<string>();

function identity(path: string): string | null {
  try {
    const st = fs.statSync(path, { bigint: true });
    return `${path}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return null;
  }
}

/**
 * Verifies the blobs of `layers` in `layout` (those a reused tree stands
 * for), skipping blob files verified earlier in this process and unchanged
 * since. Throws the layout's own verification error.
 *
 * @example
 * ```ts
 * await verifyReusedLayers(layout, img.manifest.layers.slice(0, source.depth));
 * ```
 */
export async function verifyReusedLayers(layout: Layout, layers: readonly Descriptor[]): Promise<void> {
  for (const d of layers) {
    if (d.data !== undefined) {
      await layout.verifyBlob(d); // embedded: cheap
      continue;
    }
    let path: string;
    try {
      path = layout.blobPath(d.digest);
    } catch {
      await layout.verifyBlob(d); // reports the bad descriptor
      continue;
    }
    const before = identity(path);
    if (before !== null && verified.has(before)) continue;
    await layout.verifyBlob(d);
    if (before !== null && identity(path) === before) verified.add(before);
  }
}
