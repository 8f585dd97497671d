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
 * files with a coarse clock (one scheduler tick: 1-10 ms; Deno even reports
 * whole seconds), so a change right after the scan could get the very ctime
 * that was recorded. This waits until the clock has moved past the newest
 * recorded ctime by more than that granularity, so every later change gets
 * a different ctime (see {@linkcode CtimeWitness} for how long that is).
 *
 * @example
 * ```ts
 * const entries = scanTree(rootfs);
 * await settleTimestamps(entries); // now changes are detectable
 * ```
 */
export async function settleTimestamps(entries: BundleEntry[]): Promise<void> {
  const w = new CtimeWitness();
  for (const e of entries) w.add(e.ctimeNs);
  await w.settle();
}

/** Distinct ctimes a {@linkcode CtimeWitness} keeps to find the clock's step. */
const STEP_SAMPLES = 4096;
/** The wait when the step is unknown (fewer than two distinct ctimes): twice a 100 Hz tick; exFAT's 10 ms is no coarser. */
const WINDOW_DEFAULT_NS = 20_000_000n;
/** The shortest wait, whatever the step. */
const WINDOW_MIN_NS = 2_000_000n;
/** The wait when every ctime is a whole second (a file system or runtime with second granularity). */
const WINDOW_SECONDS_NS = 1_010_000_000n;

/**
 * What the settle wait needs from the ctimes a scan recorded: the newest,
 * whether all are whole seconds, and the step of the clock that stamped
 * them, i.e. how long a later change could still get the newest one.
 *
 * The step is the smallest gap between two distinct recorded ctimes. A
 * coarse kernel clock only takes values a whole tick apart (the timekeeper
 * advances in tick-sized steps), so that gap is at least one tick, and the
 * clock lags the precise time (`Date.now()`) by at most one tick: once
 * `Date.now()` is two steps past the newest ctime, every later change is
 * stamped later than it. A file system with its own granularity (exFAT:
 * 10 ms) only has values that far apart. Gaps smaller than a tick come only
 * from fine-grained stamps (multigrain timestamps, Linux 6.13+), which the
 * kernel hands out so that a change after a stat never repeats the ctime
 * that stat saw; there any wait is enough. Bounds: at least 2 ms, at most
 * 20 ms (also when fewer than two distinct ctimes give no step); ~1 s when
 * every ctime is a whole second. The first {@linkcode STEP_SAMPLES} distinct
 * ctimes are kept: the smallest gap among fewer values can only be larger,
 * which makes the wait longer, never too short.
 *
 * @example
 * ```ts
 * const w = new CtimeWitness();
 * for (const e of scanTree(rootfs)) w.add(e.ctimeNs);
 * await w.settle();
 * ```
 */
export class CtimeWitness {
  #max = 0n;
  #coarse = true;
  readonly #seen = new Set<bigint>();

  /** Records one entry's ctime (ns). */
  add(ctimeNs: bigint): void {
    if (ctimeNs > this.#max) this.#max = ctimeNs;
    if (this.#coarse && ctimeNs % 1_000_000_000n !== 0n) this.#coarse = false;
    if (this.#seen.size < STEP_SAMPLES) this.#seen.add(ctimeNs);
  }

  /**
   * How long after the newest ctime a change could still be stamped with
   * it (ns): see the class docs.
   *
   * @example
   * ```ts
   * const w = new CtimeWitness();
   * w.add(1_000_000_000_004_000_000n);
   * w.add(1_000_000_000_008_000_000n);
   * w.window(); // 8_000_000n: two 4 ms steps
   * ```
   */
  window(): bigint {
    if (this.#coarse) return WINDOW_SECONDS_NS;
    const v = [...this.#seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let step = -1n;
    for (let i = 1; i < v.length; i++) {
      const d = v[i] - v[i - 1];
      if (step < 0n || d < step) step = d;
    }
    if (step < 0n) return WINDOW_DEFAULT_NS;
    const w = 2n * step;
    return w < WINDOW_MIN_NS ? WINDOW_MIN_NS : w > WINDOW_DEFAULT_NS ? WINDOW_DEFAULT_NS : w;
  }

  /**
   * Waits until the clock is past the newest recorded ctime by the
   * {@linkcode window} (no wait when nothing was recorded or that time has
   * passed already).
   *
   * @example
   * ```ts
   * await w.settle(); // a change from now on gets a ctime the scan did not record
   * ```
   */
  async settle(): Promise<void> {
    if (this.#seen.size === 0) return; // nothing recorded (every add keeps at least the first ctime)
    let now = BigInt(Date.now()) * 1_000_000n;
    if (now >= this.#max + WINDOW_DEFAULT_NS && !this.#coarse) return; // the longest fine window has passed: no need for the step
    const until = this.#max + this.window();
    // A timer counts whole milliseconds of the event loop's monotonic clock, not of the wall clock
    // the ctimes come from, so it can fire a fraction of a millisecond early: look at the clock
    // again. Bounded by the monotonic clock, so a wall clock stepped back cannot hold the wait.
    const deadline = performance.now() + Number(until - now) / 1e6 + 1100;
    while (now < until && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(1100, Math.ceil(Number(until - now) / 1e6))));
      now = BigInt(Date.now()) * 1_000_000n;
    }
  }
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
