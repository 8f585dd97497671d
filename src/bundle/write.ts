/**
 * Writing both bundle manifests of a tree — umoci's mtree (`./mtree.ts`) and
 * ocigen's `ocigen.mtree.jsonl` (`./manifest.ts`) — from one `lstat` walk
 * ({@linkcode walkTree}, which gives each writer the order its format
 * documents), with one xattr read for both. Either file may be left out.
 * Each file is written to a temporary name and renamed into place; on an
 * error during the walk neither is, and no temporary file is left behind.
 *
 * @module
 */
import { encodeXattrs, entryFromStat } from "./scan.ts";
import { ManifestWriter } from "./manifest.ts";
import { type KnownDigest, MtreeWriter } from "./mtree.ts";
import { type TreeChild, walkTree } from "./walk.ts";
import { type Xattrs, xattrsSupported } from "./xattr.ts";

/** Options of {@linkcode writeBundleManifests}. */
export interface BundleManifestsOptions {
  /** Digest of the image manifest the tree was unpacked from. */
  manifestDigest: string;
  /** Write umoci's `sha256_<hex>.mtree` (default true). */
  umoci?: boolean;
  /** Write ocigen's `ocigen.mtree.jsonl` (default true). */
  ocigen?: boolean;
  /** What the mtree's `# tree:` comment shows (default: the rootfs path). */
  treeName?: string;
  /** The tree's xattrs, read once by the caller (see `treeXattrs`). */
  xattrs: Map<string, Xattrs>;
  /** Regular-file digests known without reading the files (umoci's mtree records sha256). */
  known?: KnownDigest;
}

/**
 * Writes the bundle manifests of `rootfs` into `bundleDir` in one walk.
 *
 * @example
 * ```ts
 * await writeBundleManifests("/tmp/bundle", "/tmp/bundle/rootfs", { manifestDigest: "sha256:ab…", xattrs: new Map() });
 * ```
 */
export async function writeBundleManifests(bundleDir: string, rootfs: string, opts: BundleManifestsOptions): Promise<void> {
  const mtree = opts.umoci === false
    ? null
    : new MtreeWriter(bundleDir, rootfs, opts.manifestDigest, { treeName: opts.treeName ?? rootfs, xattrs: opts.xattrs, known: opts.known });
  let manifest: ManifestWriter | null = null;
  try {
    if (opts.ocigen !== false) {
      // every recorded xattr came from getfattr, so "any recorded" implies "supported"
      manifest = new ManifestWriter(bundleDir, rootfs, { xattrs: xattrsSupported(), forManifest: opts.manifestDigest });
    }
    const m = manifest;
    const entry = m
      ? (c: TreeChild) => {
        const e = entryFromStat(c.rel, c.st, c.abs, c.link);
        const x = opts.xattrs.get(c.rel);
        if (x) e.xattrs = encodeXattrs(x);
        m.add(e);
      }
      : undefined;
    walkTree(rootfs, { dir: mtree ? (d, files) => mtree.dir(d, files) : undefined, up: mtree ? () => mtree.up() : undefined, entry });
    mtree?.finish();
  } catch (err) {
    mtree?.abort();
    manifest?.abort();
    throw err; // names its path already
  }
  await manifest?.finish();
}
