/**
 * `ocigen insert` and `ocigen raw add-layer`: one new layer from a host file
 * or tree placed at a path of the image, from a single whiteout, or from a
 * ready-made uncompressed tar.
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";
import type { Descriptor, ImageConfig } from "../oci/types.ts";
import type { Layout } from "../oci/layout.ts";
import path from "node:path";
import { comparePaths, encodeXattrs, entryFromStat, treeEntries } from "../bundle/scan.ts";
import { readPathsXattrs, readTreeXattrs, readTreeXattrsAsync, type Xattrs } from "../bundle/xattr.ts";
import type { Compression } from "../compress/compression.ts";
import { resolveCompression } from "../oci/media-type.ts";
import type { GzipMode } from "../compress/encode.ts";
import { type LayerItem, type LayerWriteOptions, type WrittenLayer, writeLayer, writeLayerFromTar } from "./layer-writer.ts";
import process from "node:process";
import type { IdMapping } from "../layer/idmap.ts";
import type { BundleEntry } from "../bundle/scan.ts";
import { ROOTLESS_XATTR, takeRootlessOwner } from "../bundle/rootlesscontainers.ts";
import { reverseIdMap } from "./bundle-meta.ts";
import { commitLayer, type HistoryOptions } from "./commit.ts";
import { normalizeImagePath } from "./repack.ts";

/** Options shared by insert and add-layer. */
export interface AddLayerOptions {
  /** Image to start from. */
  tag: string;
  /** Tag to write (default: `tag`). */
  newTag?: string;
  history?: HistoryOptions;
  /** Layer compression; `auto`: that of the image's last layer. Default gzip. */
  compression?: Compression | "auto";
  /** Clamp mtimes and date the history entry (seconds; the command line passes $SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** gzip writer (default `parallel`). */
  gzip?: GzipMode;
  /** insert: host uid/gid -> image uid/gid of the inserted files (umoci's `--uid-map`/`--gid-map`, read host to container). */
  uidMap?: IdMapping[];
  gidMap?: IdMapping[];
  /**
   * insert: rootless (umoci's `--rootless`): without maps the calling user
   * is the image's root, and a `user.rootlesscontainers` xattr on an
   * inserted file gives its owner (and is not carried into the layer).
   */
  rootless?: boolean;
}

/** The owner functions of an insert (see {@linkcode AddLayerOptions}). */
function insertOwners(opts: AddLayerOptions, items: Iterable<LayerItem>): Pick<LayerWriteOptions, "mapUid" | "mapGid" | "mapOwner"> {
  const self = (id: number | undefined) => (id === undefined ? [] : [{ containerID: 0, hostID: id, size: 1 }]);
  const uidMap = opts.uidMap?.length ? opts.uidMap : opts.rootless ? self(process.geteuid?.()) : [];
  const gidMap = opts.gidMap?.length ? opts.gidMap : opts.rootless ? self(process.getegid?.()) : [];
  const mapUid = reverseIdMap(uidMap);
  const mapGid = reverseIdMap(gidMap);
  const recorded = new Map<string, { uid?: number; gid?: number }>();
  if (opts.rootless) {
    for (const it of items) {
      if (it.kind !== "entry") continue;
      try {
        const owner = takeRootlessOwner(it.entry);
        if (owner) recorded.set(it.name, owner);
      } catch (e) {
        throw new OcigenError("EREPACK", `Cannot insert ${it.abs}: bad ${ROOTLESS_XATTR} xattr: ${(e as Error).message}`);
      }
    }
  }
  const mapOwner = recorded.size === 0 ? undefined : (name: string, e: BundleEntry) => {
    const r = recorded.get(name);
    return r ? { uid: r.uid ?? mapUid(e.uid), gid: r.gid ?? mapGid(e.gid) } : undefined;
  };
  return { mapUid, mapGid, mapOwner };
}

async function compressionFor(layout: Layout, opts: AddLayerOptions): Promise<Compression> {
  if (opts.compression !== "auto") return opts.compression ?? "gzip";
  return resolveCompression("auto", (await layout.resolve(opts.tag)).manifest.layers);
}

async function commit(layout: Layout, opts: AddLayerOptions, layer: WrittenLayer, history: HistoryOptions): Promise<Descriptor> {
  const img = await layout.resolve(opts.tag);
  const r = await commitLayer(layout, { manifest: img.manifest, config: img.config as ImageConfig }, layer, {
    ...history,
    sourceDateEpoch: history.sourceDateEpoch ?? opts.sourceDateEpoch,
  });
  await layout.setTag(opts.newTag ?? opts.tag, r.manifestDescriptor);
  return r.manifestDescriptor;
}

function* withXattrs(items: Iterable<LayerItem>, xa: Map<string, Xattrs>): Generator<LayerItem, void, undefined> {
  for (const it of items) {
    if (xa.size > 0 && it.kind === "entry") {
      const x = xa.get(it.entry.path);
      if (x) it.entry.xattrs = encodeXattrs(x);
    }
    yield it;
  }
}

function join(target: string, rel: string): string {
  if (rel === ".") return target;
  return target === "." ? rel : `${target}/${rel}`;
}

function whiteoutName(target: string, opaque = false): string {
  if (opaque) return target === "." ? ".wh..wh..opq" : `${target}/.wh..wh..opq`;
  const i = target.lastIndexOf("/");
  return i < 0 ? `.wh.${target}` : `${target.slice(0, i)}/.wh.${target.slice(i + 1)}`;
}

/**
 * Builds the layer items that place host path `src` at image path `target`
 * (root-relative), optionally making `target` opaque (a directory gets an
 * opaque marker; anything else replaces what was there without one).
 *
 * @example
 * ```ts
 * insertItems("/etc/hosts", "etc/hosts", false);
 * ```
 */
export function insertItems(src: string, target: string, opaque: boolean, opts: { xattrs?: boolean } = {}): LayerItem[] {
  const items = [...insertItemStream(src, target, opaque)];
  if (opts.xattrs !== false && fs.lstatSync(src).isDirectory()) {
    const xa = readTreeXattrs(src);
    if (xa.size > 0) attachXattrs(items, xa);
  }
  return items;
}

function attachXattrs(items: Iterable<LayerItem>, xa: Map<string, Xattrs>): void {
  for (const it of items) {
    if (it.kind !== "entry") continue;
    const x = xa.get(it.entry.path);
    if (x) it.entry.xattrs = encodeXattrs(x);
  }
}

/**
 * {@linkcode insertItems} produced lazily, in layer order (sorted as
 * {@linkcode comparePaths} sorts): a directory tree is walked as the
 * iteration goes, so the layer writer tars and compresses the first entries
 * while the rest of the tree is still unread. A directory's entries come
 * without xattrs (the caller adds them); a single file's are read here.
 * Errors (a reserved `.wh.` name, an unreadable directory) are thrown when
 * the iteration reaches them.
 *
 * @example
 * ```ts
 * for (const it of insertItemStream("/src/tree", "opt/app", false)) console.log(it.name);
 * ```
 */
export function* insertItemStream(src: string, target: string, opaque: boolean): Generator<LayerItem, void, undefined> {
  let st;
  try {
    st = fs.lstatSync(src, { bigint: true });
  } catch (err) {
    throw wrapIo(err, "lstat", src);
  }
  if (!st.isDirectory()) {
    // --opaque of a non-directory needs no marker: the entry replaces
    // whatever lower layers have at `target` (and below it) anyway, as umoci
    // accepts it.
    if (target === ".") throw new OcigenError("EREPACK", `Cannot insert ${src} at /: not a directory`);
    const entry = entryFromStat(target, st, src);
    const x = readPathsXattrs(path.dirname(src), [path.basename(src)]).get(path.basename(src));
    if (x) entry.xattrs = encodeXattrs(x);
    yield { kind: "entry", name: target, abs: src, entry };
    return;
  }
  // the tree walk yields in comparePaths order and `target/` is a common
  // prefix, so the items are sorted as they come; the opaque marker is merged in
  let marker: LayerItem | undefined = opaque
    ? { kind: "whiteout", name: whiteoutName(target, true), mtime: Number(st.mtimeMs / 1000n) }
    : undefined;
  const first = new Map<bigint, string>();
  for (const e of treeEntries(src)) {
    if (e.type === "socket") continue;
    const base = e.path.slice(e.path.lastIndexOf("/") + 1);
    if (e.path !== "." && base.startsWith(".wh.")) {
      throw new OcigenError("EREPACK", `Cannot insert ${src}: entry ${e.path}: names starting with .wh. are reserved for whiteouts`);
    }
    const name = join(target, e.path);
    const item: LayerItem = { kind: "entry", name, abs: e.path === "." ? src : `${src}/${e.path}`, entry: e };
    if (e.type !== "dir" && e.nlink > 1) {
      const f = first.get(e.ino);
      if (f) item.hardlinkTo = f;
      else first.set(e.ino, name);
    }
    if (marker && comparePaths(marker.name, name) < 0) {
      yield marker;
      marker = undefined;
    }
    yield item;
  }
  if (marker) yield marker;
}

/**
 * `insert SRC TARGET`: a new layer with `src` at `target`.
 *
 * @example
 * ```ts
 * await insertPath(layout, "./motd", "/etc/motd", { tag: "latest" });
 * ```
 */
export async function insertPath(
  layout: Layout,
  src: string,
  target: string,
  opts: AddLayerOptions & { opaque?: boolean },
): Promise<Descriptor> {
  const t = normalizeImagePath(target);
  // a component named .wh.* would be read back as a whiteout (or opaque marker) on unpack
  if (t.split("/").some((c) => c.startsWith(".wh."))) {
    throw new OcigenError("EREPACK", `Cannot insert at ${target}: names starting with .wh. are reserved for whiteouts`);
  }
  // a directory's xattrs come from one getfattr run, started now so that it
  // walks the tree on the other core while this thread lstats it
  let isDir = false;
  try {
    isDir = fs.lstatSync(src).isDirectory();
  } catch { /* insertItemStream reports it */ }
  let items: Iterable<LayerItem>;
  if (!isDir) items = [...insertItemStream(src, t, Boolean(opts.opaque))];
  else {
    const xattrs = readTreeXattrsAsync(src);
    const walk = insertItemStream(src, t, Boolean(opts.opaque));
    // while getfattr runs, walk ahead (its entries are needed from the first
    // header on); the rest of the tree is walked as the layer is written, so
    // reading, taring and compressing overlap the walk
    const ahead: LayerItem[] = [];
    let settled = false;
    xattrs.then(() => void (settled = true), () => void (settled = true));
    let walked = false;
    try {
      while (!settled && !walked) {
        for (let i = 0; i < 512; i++) {
          const r = walk.next();
          if (r.done) {
            walked = true;
            break;
          }
          ahead.push(r.value);
        }
        await new Promise<void>((res) => setImmediate(res));
      }
    } catch (e) {
      await xattrs.catch(() => {});
      throw e;
    }
    const xa = await xattrs;
    attachXattrs(ahead, xa);
    // rootless owners are read off every entry before the layer is written
    items = opts.rootless ? [...ahead, ...withXattrs(walk, xa)] : (function* () {
      yield* ahead;
      yield* withXattrs(walk, xa);
    })();
  }
  return await layout.withLock(async () => {
    const layer = await writeLayer(layout, items, await compressionFor(layout, opts), { sourceDateEpoch: opts.sourceDateEpoch, gzip: opts.gzip, ...insertOwners(opts, items) });
    return await commit(layout, opts, layer, { created_by: `ocigen insert ${"/" + (t === "." ? "" : t)}`, ...opts.history });
  });
}

/**
 * `insert --whiteout TARGET`: a new layer deleting `target`.
 *
 * @example
 * ```ts
 * await insertWhiteout(layout, "/etc/motd", { tag: "latest" });
 * ```
 */
export async function insertWhiteout(layout: Layout, target: string, opts: AddLayerOptions): Promise<Descriptor> {
  const t = normalizeImagePath(target);
  if (t === ".") throw new OcigenError("EREPACK", "Cannot whiteout /: use --opaque on a directory instead");
  if (t.split("/").some((c) => c.startsWith(".wh."))) {
    throw new OcigenError("EREPACK", `Cannot whiteout ${target}: names starting with .wh. are reserved`);
  }
  const mtime = opts.sourceDateEpoch ?? 0;
  return await layout.withLock(async () => {
    const layer = await writeLayer(layout, [{ kind: "whiteout", name: whiteoutName(t), mtime }], await compressionFor(layout, opts), {
      sourceDateEpoch: opts.sourceDateEpoch,
      gzip: opts.gzip,
    });
    return await commit(layout, opts, layer, { created_by: `ocigen insert --whiteout /${t}`, ...opts.history });
  });
}

/**
 * `raw add-layer LAYER.tar`: compresses an uncompressed tar file as a new layer.
 *
 * @example
 * ```ts
 * await addTarLayer(layout, "layer.tar", { tag: "latest" });
 * ```
 */
export async function addTarLayer(layout: Layout, tarFile: string, opts: AddLayerOptions): Promise<Descriptor> {
  let st;
  let head = new Uint8Array(512);
  try {
    st = fs.statSync(tarFile);
    const fd = fs.openSync(tarFile, "r");
    try {
      head = head.subarray(0, fs.readSync(fd, head, 0, 512, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw wrapIo(err, "open", tarFile);
  }
  if ((head[0] === 0x1f && head[1] === 0x8b) || (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)) {
    throw new OcigenError("EREPACK", `Cannot add layer ${tarFile}: compressed; give an uncompressed tar`);
  }
  if (!st.isFile() || st.size % 512 !== 0 || (st.size > 0 && !looksLikeTar(head))) {
    throw new OcigenError("ETAR", `Cannot add layer ${tarFile}: not a tar archive`);
  }
  return await layout.withLock(async () => {
    const tar = fs.createReadStream(tarFile, { highWaterMark: 1 << 20 });
    const layer = await writeLayerFromTar(layout, tar, await compressionFor(layout, opts), { gzip: opts.gzip });
    return await commit(layout, opts, layer, { created_by: "ocigen raw add-layer", ...opts.history });
  });
}

function looksLikeTar(h: Uint8Array): boolean {
  if (h.length < 512) return false;
  if (h.every((b) => b === 0)) return true;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  const stored = parseInt(new TextDecoder().decode(h.subarray(148, 156)).replace(/[\0 ]/g, ""), 8);
  return stored === sum;
}
