/**
 * `ocigen repack`: one new layer holding what changed in `BUNDLE/rootfs`
 * since unpack, then a new config, manifest and tag.
 *
 * Change detection is the bundle manifest diff ({@linkcode diffTree}): one
 * `lstat` per entry, files read only when new or changed. Volumes of the
 * image config are masked (not diffed) unless `maskVolumes: false`, as in umoci.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import type { Descriptor, ImageConfig, ImageManifest } from "../oci/types.ts";
import type { Layout } from "../oci/layout.ts";
import { type Change, diffTree, statCandidates } from "../bundle/diff.ts";
import { hasBundleManifest, readBundleManifest, writeBundleManifest } from "../bundle/manifest.ts";
import { readUmociMtree, umociMtreeName, writeUmociMtree } from "../bundle/mtree.ts";
import { ROOTLESS_XATTR, takeRootlessOwner } from "../bundle/rootlesscontainers.ts";
import { type BundleEntry, comparePaths, loadXattrs, scanTree } from "../bundle/scan.ts";
import { xattrsSupported } from "../bundle/xattr.ts";
import type { Compression } from "../compress/compression.ts";
import { resolveCompression } from "../oci/media-type.ts";
import type { GzipMode } from "../compress/encode.ts";
import { type LayerItem, type LayerWriteOptions, type WrittenLayer, writeLayer } from "./layer-writer.ts";
import { type HistoryOptions, commitLayer } from "./commit.ts";
import { bundleSource, readBundleMeta, reverseIdMap, writeBundleMeta } from "./bundle-meta.ts";
import { OWNERS_FILE } from "../layer/unpack.ts";

/**
 * Normalises an in-image path (`/var/lib/x/`, `./a//b`) to the root-relative
 * form used by manifests (`var/lib/x`); `"."` for the root.
 *
 * @example
 * ```ts
 * normalizeImagePath("/var//lib/"); // "var/lib"
 * ```
 */
export function normalizeImagePath(p: string): string {
  const n = path.posix.normalize("/" + p).replace(/^\/+/, "").replace(/\/+$/, "");
  return n === "" ? "." : n;
}

/**
 * A mask predicate: true for each of `paths` and everything below them.
 *
 * @example
 * ```ts
 * const m = makeMask(["/data"]);
 * m("data/x"); // true
 * m("database"); // false
 * ```
 */
export function makeMask(paths: string[]): (p: string) => boolean {
  const set = new Set(paths.map(normalizeImagePath).filter((p) => p !== "."));
  if (set.size === 0) return () => false;
  return (p: string) => {
    if (set.has(p)) return true;
    let i = p.indexOf("/");
    while (i > 0) {
      if (set.has(p.slice(0, i))) return true;
      i = p.indexOf("/", i + 1);
    }
    return false;
  };
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i);
}

/**
 * Turns sorted changes into layer items: whiteouts for deletions (named
 * `dir/.wh.NAME`), hard links for the second and later members of an inode
 * group.
 *
 * @example
 * ```ts
 * const items = changesToItems(changes, "/b/rootfs", scanEntries);
 * ```
 */
export function changesToItems(changes: Change[], rootfs: string, now: Map<string, BundleEntry> | BundleEntry[]): LayerItem[] {
  const nowMap = Array.isArray(now) ? new Map(now.map((e) => [e.path, e])) : now;
  const items: LayerItem[] = [];
  const firstOfInode = new Map<bigint, string>();
  for (const c of changes) {
    if (c.kind === "delete") {
      const dir = parentOf(c.path);
      const base = c.path.slice(c.path.lastIndexOf("/") + 1);
      const pe = nowMap.get(dir);
      const mtime = pe ? Number(pe.mtimeNs / 1_000_000_000n) : 0;
      items.push({ kind: "whiteout", name: dir === "." ? `.wh.${base}` : `${dir}/.wh.${base}`, mtime });
      continue;
    }
    const e = c.entry;
    const item: LayerItem = { kind: "entry", name: c.path, abs: c.path === "." ? rootfs : path.join(rootfs, c.path), entry: e };
    if (e.type !== "dir" && e.nlink > 1) {
      const first = firstOfInode.get(e.ino);
      if (first !== undefined) item.hardlinkTo = first;
      else firstOfInode.set(e.ino, c.path);
    }
    items.push(item);
  }
  // entries keep their (sorted) order; whiteouts move to their own name's place
  items.sort((a, b) => comparePaths(a.name, b.name));
  return items;
}

/**
 * In a rootless bundle the image's owners could not be applied; unpack
 * recorded them in `BUNDLE/ocigen.owners.json` (`{"path": [uid, gid]}`).
 * An entry whose owner was not changed since unpack gets its recorded
 * owner back; a rootless entry without a record (new file) becomes root's.
 *
 * @example
 * ```ts
 * const f = recordedOwners("/b", manifestEntries, true);
 * f?.("etc/shadow", entry); // { uid: 0, gid: 42 }
 * ```
 */
export function recordedOwners(
  bundle: string,
  old: BundleEntry[],
  rootless: boolean,
): ((name: string, e: BundleEntry) => { uid: number; gid: number } | undefined) | undefined {
  let rec: Record<string, [number, number]> = {};
  try {
    rec = JSON.parse(fs.readFileSync(path.join(bundle, OWNERS_FILE), "utf8"));
  } catch {
    if (!rootless) return undefined;
  }
  const owners = new Map<string, [number, number]>();
  for (const [k, v] of Object.entries(rec)) owners.set(normalizeImagePath(k), v);
  const oldMap = new Map(old.map((e) => [e.path, e]));
  const me = typeof process.getuid === "function" ? process.getuid() : -1;
  const myGid = typeof process.getgid === "function" ? process.getgid() : -1;
  return (name, e) => {
    const o = oldMap.get(name);
    const r = owners.get(name);
    if (r && o && o.uid === e.uid && o.gid === e.gid) return { uid: r[0], gid: r[1] };
    if (rootless && e.uid === me) return { uid: 0, gid: e.gid === myGid ? 0 : e.gid };
    return undefined;
  };
}

/**
 * Takes the `user.rootlesscontainers` xattr off the entries to emit: in a
 * rootless bundle it holds the in-image owner (returned by path, noop ids
 * undefined), in any other bundle it is suspicious but kept, as umoci does.
 *
 * @example
 * ```ts
 * const owners = takeRootlessXattrs(changes, true, "/b"); // Map { "etc/x" => { uid: 5, gid: undefined } }
 * ```
 */
export function takeRootlessXattrs(changes: Change[], rootless: boolean, bundle: string): Map<string, { uid?: number; gid?: number }> {
  const out = new Map<string, { uid?: number; gid?: number }>();
  for (const c of changes) {
    if (c.kind === "delete" || !c.entry.xattrs || !(ROOTLESS_XATTR in c.entry.xattrs)) continue;
    if (!rootless) {
      log.warn(`bundle ${bundle}: ${c.path}: ${ROOTLESS_XATTR} xattr in a bundle that is not rootless: kept as is`);
      continue;
    }
    try {
      out.set(c.path, takeRootlessOwner(c.entry)!);
    } catch (e) {
      throw new OcigenError("EREPACK", `Cannot repack ${bundle}: ${c.path}: bad ${ROOTLESS_XATTR} xattr: ${(e as Error).message}`);
    }
  }
  return out;
}

/** The owner function of a rootless repack with the xattr-recorded owners on top (noop ids keep the base owner). */
function withRootlessXattrs(
  base: ((name: string, e: BundleEntry) => { uid: number; gid: number } | undefined) | undefined,
  xattrOwners: Map<string, { uid?: number; gid?: number }>,
): ((name: string, e: BundleEntry) => { uid: number; gid: number } | undefined) | undefined {
  if (xattrOwners.size === 0) return base;
  return (name, e) => {
    const x = xattrOwners.get(name);
    const b = base?.(name, e);
    if (!x) return b;
    return { uid: x.uid ?? b?.uid ?? e.uid, gid: x.gid ?? b?.gid ?? e.gid };
  };
}

/** Options of {@linkcode repackBundle}. */
export interface RepackOptions {
  /** Tag to write. */
  tag: string;
  history?: HistoryOptions;
  /** Layer compression; `auto`: that of the image's last layer. Default gzip. */
  compression?: Compression | "auto";
  /** Extra paths not to diff (`--mask-path`). */
  maskPaths?: string[];
  /** Mask the image's volumes (default true). */
  maskVolumes?: boolean;
  /** Rewrite the bundle's manifest and umoci.json to the new image. */
  refreshBundle?: boolean;
  /** Clamp mtimes and date the history entry (seconds; the command line passes $SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** gzip writer (default `parallel`). */
  gzip?: GzipMode;
}

/** Result of {@linkcode repackBundle}. */
export interface RepackResult {
  manifestDescriptor: Descriptor;
  /** The new layer, or undefined when nothing changed (empty_layer history). */
  layer?: Descriptor;
  diffId?: string;
  changes: number;
}

/**
 * Repacks `bundle` into `layout` under `opts.tag`.
 *
 * @example
 * ```ts
 * const layout = await Layout.open("/img");
 * await repackBundle(layout, "/tmp/bundle", { tag: "new" });
 * ```
 */
export async function repackBundle(layout: Layout, bundle: string, opts: RepackOptions): Promise<RepackResult> {
  const meta = readBundleMeta(bundle);
  const source = bundleSource(meta);
  const manifest = await layout.readJSON<ImageManifest>(source);
  const config = await layout.readJSON<ImageConfig>(manifest.config);
  // ocigen's manifest when it describes this image, else umoci's mtree (a
  // bundle made by `umoci unpack`, or refreshed by `umoci repack`)
  const hadOcigen = hasBundleManifest(bundle);
  const own = hadOcigen ? readBundleManifest(bundle) : undefined;
  const umoci = own?.header.manifest === undefined || own.header.manifest === source.digest ? undefined : readUmociMtree(bundle, source.digest);
  const hadUmoci = fs.existsSync(path.join(bundle, umociMtreeName(source.digest)));
  const bm = umoci ?? own ?? readUmociMtree(bundle, source.digest) ?? readBundleManifest(bundle);
  const rootfs = path.resolve(bundle, bm.header.rootfs);
  const masks = [...(opts.maskPaths ?? [])];
  if (opts.maskVolumes !== false) masks.push(...Object.keys(config.config?.Volumes ?? {}));
  const masked = makeMask(masks);
  // one lstat per entry; xattrs only of the entries the stat witness cannot clear
  const now = scanTree(rootfs, { skip: masked, xattrs: false });
  const loaded = new Set<BundleEntry>(statCandidates(bm.entries, now));
  loadXattrs(rootfs, [...loaded]);
  const changes = diffTree(bm.entries, now, {
    rootfs,
    masked,
    compareXattrs: bm.header.xattrs && xattrsSupported(),
    what: `bundle ${bundle}`,
  });
  // emitted entries the witness cleared (members of a changed hard-link group) need their xattrs too
  loadXattrs(rootfs, changes.flatMap((c) => (c.kind !== "delete" && !loaded.has(c.entry) ? [c.entry] : [])));
  log.info(`repack ${bundle}: ${changes.length} change(s)`);
  const rootless = Boolean(meta.map_options?.rootless);
  const rootlessXattrOwners = takeRootlessXattrs(changes, rootless, bundle);
  const history: HistoryOptions = { created_by: "ocigen repack", ...opts.history };
  // hold the layout lock from the first blob to the tag (no gc in between)
  const { r, layer } = await layout.withLock(async () => {
    let layer: WrittenLayer | undefined;
    if (changes.length > 0) {
      const items = changesToItems(changes, rootfs, now);
      const wopts: LayerWriteOptions = {
        sourceDateEpoch: opts.sourceDateEpoch,
        gzip: opts.gzip,
        task: "repack",
        mapUid: reverseIdMap(meta.map_options?.uid_mappings),
        mapGid: reverseIdMap(meta.map_options?.gid_mappings),
        mapOwner: withRootlessXattrs(recordedOwners(bundle, bm.entries, rootless), rootlessXattrOwners),
      };
      layer = await writeLayer(layout, items, resolveCompression(opts.compression, manifest.layers), wopts);
    }
    const r = await commitLayer(layout, { manifest, config }, layer, { ...history, sourceDateEpoch: history.sourceDateEpoch ?? opts.sourceDateEpoch });
    await layout.setTag(opts.tag, r.manifestDescriptor);
    return { r, layer };
  });
  if (opts.refreshBundle) {
    writeBundleMeta(bundle, { ...meta, from_descriptor_path: { descriptor_walk: [r.manifestDescriptor] } });
    // the manifests the bundle had, now describing the new image
    const digest = r.manifestDescriptor.digest;
    if (hadUmoci || !hadOcigen) {
      writeUmociMtree(bundle, rootfs, digest);
      if (digest !== source.digest) fs.rmSync(path.join(bundle, umociMtreeName(source.digest)), { force: true });
    }
    if (hadOcigen) await writeBundleManifest(bundle, rootfs, { forManifest: digest });
  }
  return { manifestDescriptor: r.manifestDescriptor, layer: layer?.descriptor, diffId: layer?.diffId, changes: changes.length };
}
