/**
 * Scans a rootfs into a flat, ordered list of {@linkcode BundleEntry}:
 * one `lstat` per entry (synchronous: per-entry async fs is ruinous), no file
 * read, plus one `getfattr` pass for extended attributes.
 *
 * Order: depth first, siblings sorted by name (code unit order), so a
 * directory always precedes its children. {@linkcode comparePaths} gives the
 * same order for two arbitrary paths.
 *
 * @module
 */
import fs from "node:fs";
import { Buffer } from "node:buffer";
import { OcigenError, wrapIo } from "../errors.ts";
import { readPathsXattrs, readTreeXattrs, type Xattrs } from "./xattr.ts";
import type { TreeStat } from "../fs/stat.ts";

/** Entry types of a tree. */
export type EntryType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

/** One entry of a rootfs as recorded in a bundle manifest. */
export interface BundleEntry {
  /** Root-relative path, `/`-separated, `"."` for the root itself. */
  path: string;
  type: EntryType;
  /** Permission and setuid/setgid/sticky bits (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Size in bytes (regular files; 0 otherwise). */
  size: number;
  /** mtime in nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** ctime in nanoseconds since the epoch (the change witness). */
  ctimeNs: bigint;
  ino: bigint;
  nlink: number;
  /** Device numbers of char/block devices. */
  rdevMajor?: number;
  rdevMinor?: number;
  /** Symlink target. */
  link?: string;
  /** Extended attributes, base64 values. */
  xattrs?: Record<string, string>;
  /** `sha256:<hex>` of the content of a regular file, when recorded. */
  digest?: string;
}

/**
 * Orders two root-relative paths component by component (depth-first order,
 * siblings by code unit order); `"."` comes first.
 *
 * @example
 * ```ts
 * ["a-c", "a/b", "a"].sort(comparePaths); // ["a", "a/b", "a-c"]
 * ```
 */
export function comparePaths(a: string, b: string): number {
  if (a === b) return 0;
  if (a === ".") return -1;
  if (b === ".") return 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return -1; // "/" sorts before any other char: component ends first
    if (cb === 0x2f) return 1;
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Equality of two timestamps (ns) taken by possibly different runtimes: Node
 * reports nanoseconds, Deno milliseconds (mtime) or whole seconds (ctime);
 * a value that is a whole number of ms or s is compared at that precision.
 *
 * @example
 * ```ts
 * sameTime(1700000000123456789n, 1700000000123000000n); // true (ms-precision side)
 * ```
 */
export function sameTime(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  for (const unit of [1_000_000_000n, 1_000_000n]) {
    if (a % unit === 0n || b % unit === 0n) return a / unit === b / unit;
  }
  return false;
}

/**
 * Makes the ctime witness sound for what happens after a scan: kernels stamp
 * files with a coarse clock (a few ms; Deno even reports whole seconds), so a
 * change right after the scan could get the very ctime that was recorded.
 * This waits until the clock has moved past the newest recorded ctime by more
 * than that granularity, so every later change gets a different ctime: 20 ms,
 * twice the coarsest the kernel stamps with (one tick at HZ=100; exFAT's
 * 10 ms is no coarser), or ~1 s when every ctime is a whole second (a file
 * system or runtime with second granularity).
 *
 * @example
 * ```ts
 * const entries = scanTree(rootfs);
 * await settleTimestamps(entries); // now changes are detectable
 * ```
 */
export async function settleTimestamps(entries: BundleEntry[]): Promise<void> {
  if (entries.length === 0) return;
  let max = 0n;
  let coarse = true;
  for (const e of entries) {
    if (e.ctimeNs > max) max = e.ctimeNs;
    if (e.ctimeNs % 1_000_000_000n !== 0n) coarse = false;
  }
  await settleAfter(max, coarse);
}

/**
 * The wait of {@linkcode settleTimestamps}, given the newest recorded ctime
 * and whether every recorded ctime was a whole number of seconds (for callers
 * that stream entries instead of keeping them).
 *
 * @example
 * ```ts
 * await settleAfter(1700000000123456789n, false); // waits until 20 ms past it
 * ```
 */
export async function settleAfter(max: bigint, coarse: boolean): Promise<void> {
  const window = coarse ? 1_010_000_000n : 20_000_000n;
  const now = BigInt(Date.now()) * 1_000_000n;
  const wait = max + window - now;
  if (wait > 0n) await new Promise((r) => setTimeout(r, Math.min(1100, Math.ceil(Number(wait) / 1e6))));
}

/**
 * Major/minor numbers of a Linux `dev_t`.
 *
 * @example
 * ```ts
 * splitDev(0x0103n); // { major: 1, minor: 3 }
 * ```
 */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

/**
 * The entry type of an `lstat` result.
 *
 * @example
 * ```ts
 * typeOf(fs.lstatSync("/etc", { bigint: true })); // "dir"
 * ```
 */
export function typeOf(st: TreeStat): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return "socket";
}

/**
 * Builds a {@linkcode BundleEntry} from an `lstat` result (a symlink's
 * target is read unless the caller gives it as `link`).
 *
 * @example
 * ```ts
 * entryFromStat("etc/x", fs.lstatSync("/r/etc/x", { bigint: true }), "/r/etc/x");
 * ```
 */
export function entryFromStat(path: string, st: TreeStat, abs: string, link?: string): BundleEntry {
  const type = typeOf(st);
  const e: BundleEntry = {
    path,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === "file" ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    nlink: Number(st.nlink),
  };
  if (type === "symlink") {
    if (link !== undefined) e.link = link;
    else {
      try {
        e.link = fs.readlinkSync(abs);
      } catch (err) {
        throw wrapIo(err, "readlink", abs);
      }
    }
  } else if (type === "char" || type === "block") {
    const d = splitDev(st.rdev);
    e.rdevMajor = d.major;
    e.rdevMinor = d.minor;
  }
  return e;
}

/** Options of {@linkcode scanTree}. */
export interface ScanOptions {
  /** Read extended attributes (one getfattr pass). Default true. */
  xattrs?: boolean;
  /** Root-relative paths whose subtree (including themselves) is skipped. */
  skip?: (path: string) => boolean;
}

/**
 * Scans `root` depth first and returns its entries (root first, as `"."`).
 *
 * @example
 * ```ts
 * const entries = scanTree("/bundle/rootfs");
 * console.log(entries.length, entries[0].path); // n "."
 * ```
 */
export function scanTree(root: string, opts: ScanOptions = {}): BundleEntry[] {
  const out: BundleEntry[] = [];
  forEachEntry(root, (e) => void out.push(e), opts.skip);
  if (opts.xattrs !== false) {
    const xa = readTreeXattrs(root);
    if (xa.size > 0) {
      for (const e of out) {
        const x = xa.get(e.path);
        if (x) e.xattrs = encodeXattrs(x);
      }
    }
  }
  return out;
}

/**
 * Visits the entries of `root` in {@linkcode scanTree} order (root first, as
 * `"."`) without collecting them, so memory stays bounded by the depth of the
 * tree. No xattrs are read. `visit` may keep or drop each entry.
 *
 * @example
 * ```ts
 * let n = 0;
 * forEachEntry("/bundle/rootfs", () => n++);
 * ```
 */
export function forEachEntry(root: string, visit: (e: BundleEntry) => void, skip?: (path: string) => boolean): void {
  for (const e of treeEntries(root, skip)) visit(e);
}

/**
 * The entries of `root` in {@linkcode scanTree} order (root first, as
 * `"."`), produced lazily: each directory is read when the iteration
 * reaches it, so a consumer (e.g. a layer writer) works on the first
 * entries while the rest of the tree is not yet walked. No xattrs are read.
 *
 * @example
 * ```ts
 * for (const e of treeEntries("/bundle/rootfs")) console.log(e.path);
 * ```
 */
export function* treeEntries(root: string, skip?: (path: string) => boolean): Generator<BundleEntry, void, undefined> {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(root, { bigint: true });
  } catch (err) {
    throw wrapIo(err, "lstat", root);
  }
  yield entryFromStat(".", st, root);
  yield* walk(root, "", skip);
}

/**
 * Reads the xattrs of `entries` (by path, chunked getfattr runs) into their
 * `xattrs` field; entries without attributes get none.
 *
 * @example
 * ```ts
 * loadXattrs("/b/rootfs", changedEntries);
 * ```
 */
export function loadXattrs(root: string, entries: BundleEntry[]): void {
  if (entries.length === 0) return;
  // many paths: one recursive pass beats dozens of argv-chunked runs
  const xa = entries.length > 5000 ? readTreeXattrs(root) : readPathsXattrs(root, entries.map((e) => e.path));
  for (const e of entries) {
    const x = xa.get(e.path);
    if (x) e.xattrs = encodeXattrs(x);
    else delete e.xattrs;
  }
}

/**
 * Converts raw xattrs to the manifest's base64 form (sorted names); undefined when empty.
 *
 * @example
 * ```ts
 * encodeXattrs({ "user.a": new Uint8Array([1]) }); // { "user.a": "AQ==" }
 * ```
 */
export function encodeXattrs(x: Xattrs): Record<string, string> | undefined {
  const names = Object.keys(x).sort();
  if (names.length === 0) return undefined;
  const r: Record<string, string> = {};
  for (const n of names) r[n] = Buffer.from(x[n]).toString("base64");
  return r;
}

function* walk(abs: string, rel: string, skip?: (p: string) => boolean): Generator<BundleEntry, void, undefined> {
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch (err) {
    throw wrapIo(err, "readdir", abs);
  }
  names.sort(cmpName);
  for (const name of names) {
    const p = rel === "" ? name : rel + "/" + name;
    if (skip && skip(p)) continue;
    const a = abs + "/" + name;
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(a, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        if (name.includes("\uFFFD")) {
          throw new OcigenError("EREPACK", `Cannot scan ${a}: the file name is not valid UTF-8 (not supported)`);
        }
        continue; // vanished meanwhile
      }
      throw wrapIo(err, "lstat", a);
    }
    const e = entryFromStat(p, st, a);
    yield e;
    if (e.type === "dir") yield* walk(a, p, skip);
  }
}

function cmpName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
