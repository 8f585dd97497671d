/**
 * The bundle tree manifest: what `ocigen unpack` leaves beside the rootfs
 * so that `ocigen repack` can tell, fast, what changed since.
 *
 * ## On-disk format — `BUNDLE/ocigen.mtree.jsonl`
 *
 * `ocigen unpack` writes it beside umoci's `sha256_<hex>.mtree` (see
 * `./mtree.ts`), which umoci and gomtree read; this one is ocigen's fast
 * path (no file is read again to prove it unchanged).
 * UTF-8 JSON Lines. Line 1 is a header:
 *
 * ```json
 * {"format":"ocigen-bundle-manifest","version":1,"rootfs":"rootfs","xattrs":true,"digests":false,"manifest":"sha256:…"}
 * ```
 *
 * `xattrs` says whether extended attributes were recorded (getfattr was
 * available), `digests` whether content digests were. Every further line is
 * one entry of the rootfs, depth first with siblings sorted by name (the root
 * first, as `"."`):
 *
 * | key | meaning |
 * |---|---|
 * | `p` | root-relative path (`etc/passwd`; `.` is the root) |
 * | `t` | type: `f` file, `d` dir, `l` symlink, `c` char dev, `b` block dev, `p` fifo, `s` socket |
 * | `m` | mode bits `& 0o7777` (decimal) |
 * | `u`, `g` | owner uid, gid (as seen on the host) |
 * | `s` | size (files) |
 * | `mt`, `ct` | mtime, ctime in ns since the epoch (decimal strings) |
 * | `i` | inode number (decimal string) |
 * | `n` | link count |
 * | `l` | symlink target (symlinks only) |
 * | `r` | `[major, minor]` (devices only) |
 * | `x` | xattrs, name -> base64 value (when any) |
 * | `h` | `sha256:<hex>` of the content (files, only when digests were recorded) |
 *
 * The cheap change test: an entry whose type, size, mtime, ctime and inode are
 * those recorded is unchanged and is never read again (ctime moves on every
 * content or metadata change and cannot be set by user space). Writing the
 * manifest waits until the clock is past the newest recorded ctime by the
 * timestamp granularity ({@linkcode settleTimestamps}), so that no later
 * change can carry a recorded ctime.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { OcigenError, wrapIo } from "../errors.ts";
import { noteHashObject } from "../digest/release.ts";
import process from "node:process";
import { type BundleEntry, CtimeWitness, encodeXattrs, type EntryType, forEachEntry, settleTimestamps } from "./scan.ts";
import { readPathsXattrs, readTreeXattrs, type Xattrs, xattrsSupported } from "./xattr.ts";

/**
 * File name of the manifest inside a bundle.
 *
 * @example
 * ```ts
 * path.join(bundle, BUNDLE_MANIFEST_NAME); // "/b/ocigen.mtree.jsonl"
 * ```
 */
export const BUNDLE_MANIFEST_NAME = "ocigen.mtree.jsonl";

/** Header line of a bundle manifest. */
export interface BundleManifestHeader {
  format: "ocigen-bundle-manifest";
  version: 1;
  /** rootfs directory, relative to the bundle. */
  rootfs: string;
  xattrs: boolean;
  digests: boolean;
  /**
   * Digest of the image manifest the tree was unpacked from (or last
   * repacked into). A bundle whose `umoci.json` names another manifest was
   * changed by another tool (`umoci repack --refresh-bundle`): this file is
   * stale and `repack` uses umoci's mtree instead.
   */
  manifest?: string;
}

/** A parsed bundle manifest. */
export interface BundleManifest {
  header: BundleManifestHeader;
  entries: BundleEntry[];
}

const T2C: Record<EntryType, string> = { file: "f", dir: "d", symlink: "l", char: "c", block: "b", fifo: "p", socket: "s" };
const C2T: Record<string, EntryType> = Object.fromEntries(Object.entries(T2C).map(([k, v]) => [v, k as EntryType]));

/**
 * Encodes one entry as a manifest line (without newline).
 *
 * @example
 * ```ts
 * encodeEntry(entries[0]); // '{"p":".","t":"d","m":493,...}'
 * ```
 */
export function encodeEntry(e: BundleEntry): string {
  // The text JSON.stringify gives for the object {p, t, m, u, g, s, mt, ct, i, n,
  // [l], [r], [x], [h]} (keys in that order), put together directly: a third
  // of the cost on trees of many files. Numbers print as JSON prints them.
  let s = `{"p":${JSON.stringify(e.path)},"t":"${T2C[e.type]}","m":${num(e.mode)},"u":${num(e.uid)},"g":${num(e.gid)},"s":${num(e.size)}` +
    `,"mt":"${e.mtimeNs}","ct":"${e.ctimeNs}","i":"${e.ino}","n":${num(e.nlink)}`;
  if (e.link !== undefined) s += `,"l":${JSON.stringify(e.link)}`;
  if (e.rdevMajor !== undefined) s += `,"r":[${num(e.rdevMajor)},${num(e.rdevMinor ?? 0)}]`;
  if (e.xattrs) s += `,"x":${JSON.stringify(e.xattrs)}`;
  if (e.digest) s += `,"h":${JSON.stringify(e.digest)}`;
  return s + "}";
}

/** A number as JSON writes it (`null` for NaN and infinities). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

/**
 * Decodes one manifest line.
 *
 * @example
 * ```ts
 * decodeEntry('{"p":".","t":"d","m":493,"u":0,"g":0,"s":0,"mt":"0","ct":"0","i":"2","n":1}').type; // "dir"
 * ```
 */
export function decodeEntry(line: string): BundleEntry {
  const o = JSON.parse(line);
  const type = C2T[o.t];
  if (typeof o.p !== "string" || !type) throw new Error("bad entry");
  const e: BundleEntry = {
    path: o.p,
    type,
    mode: o.m >>> 0,
    uid: o.u >>> 0,
    gid: o.g >>> 0,
    size: Number(o.s) || 0,
    mtimeNs: BigInt(o.mt),
    ctimeNs: BigInt(o.ct),
    ino: BigInt(o.i),
    nlink: Number(o.n) || 1,
  };
  if (typeof o.l === "string") e.link = o.l;
  if (Array.isArray(o.r)) {
    e.rdevMajor = o.r[0];
    e.rdevMinor = o.r[1];
  }
  if (o.x) e.xattrs = o.x;
  if (typeof o.h === "string") e.digest = o.h;
  return e;
}

/**
 * sha256 of a file's content, streamed in 1 MiB reads.
 *
 * @example
 * ```ts
 * fileDigest("/r/etc/passwd"); // "sha256:…"
 * ```
 */
export function fileDigest(abs: string): string {
  const h = createHash("sha256");
  noteHashObject(); // one per file: see digest/release.ts
  // One buffer for every file (this is synchronous): a fresh 1 MiB per file
  // cost more than the hashing on trees of many small files (zeroed memory,
  // and garbage that Deno in particular is slow to give back).
  const buf = (digestBuffer ??= new Uint8Array(1 << 20));
  let fd: number;
  try {
    // never through a symlink, never blocking on a FIFO (the tree may change under us)
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw wrapIo(err, "open", abs);
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new OcigenError("EREPACK", `Cannot read ${abs}: not a regular file (replaced meanwhile?)`);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return "sha256:" + h.digest("hex");
}

let digestBuffer: Uint8Array | undefined;

/** Options of {@linkcode writeBundleManifest}. */
export interface WriteManifestOptions {
  /** Also record a sha256 of every regular file (reads the whole tree). Default false. */
  digests?: boolean;
  /** Entries already scanned (skips the scan; used by `repack --refresh-bundle`). */
  entries?: BundleEntry[];
  /**
   * Hint from the writer of the tree: it set no extended attribute anywhere in
   * it (`ocigen unpack` passes `!ApplyState.anyXattrs`). The recursive
   * `getfattr` pass is then skipped (a root probe stays; see
   * {@linkcode writeBundleManifest}); the manifest is the same as without
   * the hint. Ignored with `entries`.
   */
  noXattrs?: boolean;
  /** Digest of the image manifest the tree belongs to (recorded in the header). */
  forManifest?: string;
  /**
   * The tree's xattrs, already read by the caller (from {@linkcode treeXattrs});
   * replaces the `getfattr` pass (and `noXattrs`). Ignored with `entries`.
   */
  xattrs?: Map<string, Xattrs>;
}

/** Options of {@linkcode ManifestWriter}. */
export interface ManifestWriterOptions {
  /** Whether the entries carry the xattrs of the tree (recorded in the header). */
  xattrs: boolean;
  /** Record a sha256 of every regular file (read when the entry has none). */
  digests?: boolean;
  /** Digest of the image manifest the tree belongs to (recorded in the header). */
  forManifest?: string;
}

/**
 * Writes `BUNDLE/ocigen.mtree.jsonl` entry by entry (in manifest order) to a
 * temporary file; `finish()` waits until the recorded ctimes are settled
 * ({@linkcode CtimeWitness}) and renames it into place.
 *
 * @example
 * ```ts
 * const w = new ManifestWriter("/tmp/bundle", "/tmp/bundle/rootfs", { xattrs: false });
 * try {
 *   for (const e of treeEntries("/tmp/bundle/rootfs")) w.add(e);
 *   await w.finish();
 * } catch (e) {
 *   w.abort();
 *   throw e;
 * }
 * ```
 */
export class ManifestWriter {
  readonly target: string;
  readonly #rootfs: string;
  readonly #digests: boolean;
  readonly #tmp: string;
  #fd: number | undefined;
  #buf: string;
  readonly #ctimes = new CtimeWitness();

  constructor(bundleDir: string, rootfs: string, opts: ManifestWriterOptions) {
    let rel = path.relative(bundleDir, rootfs);
    if (rel === "") rel = ".";
    const header: BundleManifestHeader = {
      format: "ocigen-bundle-manifest",
      version: 1,
      rootfs: rel.split(path.sep).join("/"),
      xattrs: opts.xattrs,
      digests: Boolean(opts.digests),
    };
    if (opts.forManifest) header.manifest = opts.forManifest;
    this.#rootfs = rootfs;
    this.#digests = Boolean(opts.digests);
    this.target = path.join(bundleDir, BUNDLE_MANIFEST_NAME);
    this.#tmp = `${this.target}.tmp-${process.pid}-${Date.now()}`;
    try {
      this.#fd = fs.openSync(this.#tmp, "w", 0o600);
    } catch (err) {
      throw wrapIo(err, "write bundle manifest", this.target);
    }
    this.#buf = JSON.stringify(header) + "\n";
  }

  /** Appends one entry (entries come in manifest order, the root first). */
  add(e: BundleEntry): void {
    this.#ctimes.add(e.ctimeNs);
    if (this.#digests && e.type === "file" && !e.digest) e.digest = fileDigest(path.join(this.#rootfs, e.path));
    this.#buf += encodeEntry(e) + "\n";
    if (this.#buf.length > 1 << 16) { // 64 KiB: a larger rope of small strings outlives the young generation and piles up as old-space garbage
      try {
        fs.writeSync(this.#fd!, this.#buf);
      } catch (err) {
        throw wrapIo(err, "write bundle manifest", this.target);
      }
      this.#buf = "";
    }
  }

  /** Settles the recorded ctimes, then writes, syncs and renames the file into place. */
  async finish(): Promise<void> {
    try {
      // settle before publishing (see settleTimestamps)
      await this.#ctimes.settle();
      fs.writeSync(this.#fd!, this.#buf);
      fs.fsyncSync(this.#fd!);
      fs.closeSync(this.#fd!);
      this.#fd = undefined;
      fs.renameSync(this.#tmp, this.target);
    } catch (err) {
      this.abort();
      throw wrapIo(err, "write bundle manifest", this.target);
    }
  }

  /** Drops the temporary file (after an error). */
  abort(): void {
    if (this.#fd !== undefined) {
      try {
        fs.closeSync(this.#fd);
      } catch { /* closed already */ }
      this.#fd = undefined;
    }
    try {
      fs.unlinkSync(this.#tmp);
    } catch { /* ignore */ }
  }
}

/**
 * Scans `rootfs` and writes the bundle manifest `BUNDLE/ocigen.mtree.jsonl`
 * atomically (temp file + rename). Called at the end of `ocigen repack`
 * (`ocigen unpack` writes it with umoci's mtree in one walk,
 * `writeBundleManifests`). Entries are streamed to the file as they are
 * scanned (memory bounded by the tree depth, not its size).
 *
 * @example
 * ```ts
 * await writeBundleManifest("/tmp/bundle", "/tmp/bundle/rootfs");
 * await writeBundleManifest("/tmp/bundle", "/tmp/bundle/rootfs", { noXattrs: true }); // same content, no getfattr -R
 * ```
 */
export async function writeBundleManifest(bundleDir: string, rootfs: string, opts: WriteManifestOptions = {}): Promise<void> {
  const entries = opts.entries;
  let xa: Map<string, Xattrs> | undefined;
  let hasXattrs: boolean;
  if (entries) {
    await settleTimestamps(entries);
    hasXattrs = entries.some((e) => e.xattrs) || xattrsSupported();
  } else {
    try {
      xa = opts.xattrs ?? treeXattrs(rootfs, opts.noXattrs === true);
    } catch (err) {
      throw wrapIo(err, "write bundle manifest", path.join(bundleDir, BUNDLE_MANIFEST_NAME));
    }
    // every recorded xattr came from getfattr, so "any recorded" implies "supported"
    hasXattrs = xattrsSupported();
  }
  const w = new ManifestWriter(bundleDir, rootfs, { xattrs: hasXattrs, digests: opts.digests, forManifest: opts.forManifest });
  try {
    if (entries) for (const e of entries) w.add(e);
    else {
      forEachEntry(rootfs, (e) => {
        const x = xa!.get(e.path);
        if (x) e.xattrs = encodeXattrs(x);
        w.add(e);
      });
    }
  } catch (err) {
    w.abort();
    throw wrapIo(err, "write bundle manifest", w.target);
  }
  await w.finish();
}

/**
 * The xattrs to record for `rootfs`: one recursive getfattr pass, or — when
 * the caller says it set none (`noXattrs`) — none, after one probe of the root.
 *
 * Why skipping is exact: the tree was just created by the unpack engine,
 * the only writer. An entry it creates carries xattrs only when (a) the
 * engine set them (`ApplyState.anyXattrs` is then true and no hint is
 * given; `security.selinux` from layers is never set) or (b) the kernel
 * attached them at creation: LSM labels (`security.selinux`, SMACK) on a
 * labelling host, or `system.posix_acl_*` inherited from a default ACL.
 * Both of (b) also mark the freshly made rootfs directory itself (a
 * labelling LSM labels every inode; children inherit a default ACL only
 * from a parent that has one, and the root got it from the bundle
 * directory the same way), so when the root has no xattr, no entry has
 * one and a full getfattr pass would record nothing. If the root has any,
 * the full pass runs, as without the hint. `rootProbe`: the root's xattrs
 * read by the caller right after it created the root (`readRootXattrsAsync`,
 * overlapping the writes; what (b) attaches is there from creation on);
 * else the root is probed now.
 */
export function treeXattrs(rootfs: string, noXattrs: boolean, rootProbe?: Map<string, Xattrs>): Map<string, Xattrs> {
  if (noXattrs) {
    const root = (rootProbe ?? readPathsXattrs(rootfs, ["."])).get(".");
    if (!root || Object.keys(root).length === 0) return new Map();
  }
  return readTreeXattrs(rootfs);
}

/**
 * True when the bundle has an ocigen manifest.
 *
 * @example
 * ```ts
 * if (!hasBundleManifest("/tmp/bundle")) console.log("not unpacked by ocigen");
 * ```
 */
export function hasBundleManifest(bundleDir: string): boolean {
  return fs.existsSync(path.join(bundleDir, BUNDLE_MANIFEST_NAME));
}

/**
 * Reads and parses `BUNDLE/ocigen.mtree.jsonl`.
 * Throws `EREPACK` naming the file and line when it is missing or broken.
 *
 * @example
 * ```ts
 * const m = readBundleManifest("/tmp/bundle");
 * console.log(m.header.rootfs, m.entries.length);
 * ```
 */
export function readBundleManifest(bundleDir: string): BundleManifest {
  const file = path.join(bundleDir, BUNDLE_MANIFEST_NAME);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new OcigenError("EREPACK", `Cannot read bundle ${bundleDir}: no ${BUNDLE_MANIFEST_NAME} (not unpacked by ocigen unpack?)`);
    }
    throw wrapIo(err, "read", file);
  }
  const lines = text.split("\n");
  let header: BundleManifestHeader;
  try {
    header = JSON.parse(lines[0]);
  } catch {
    throw new OcigenError("EREPACK", `${file}: line 1: not a bundle manifest header`);
  }
  if (header?.format !== "ocigen-bundle-manifest" || header.version !== 1) {
    throw new OcigenError("EREPACK", `${file}: unsupported manifest format ${JSON.stringify(header?.format)} version ${header?.version}`);
  }
  const entries: BundleEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (l === "") continue;
    try {
      entries.push(decodeEntry(l));
    } catch {
      throw new OcigenError("EREPACK", `${file}: line ${i + 1}: broken entry`);
    }
  }
  return { header, entries };
}
