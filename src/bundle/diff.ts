/**
 * Diff of a rootfs against its bundle manifest: what a repack layer must hold.
 *
 * Rules (image-spec "changesets"):
 * - new and changed entries are emitted whole (a metadata change re-emits the file);
 * - a deleted entry becomes a whiteout `.wh.NAME`, but only at the top of a
 *   deleted tree (children of a deleted or type-changed directory need none:
 *   their parent's whiteout or replacement already removes them);
 * - a type change is the new entry alone: extractors replace the old path;
 * - members of a hard-link group are emitted together so links survive;
 * - sockets are skipped with a warning; names starting with `.wh.` are refused.
 *
 * The cheap test: same type, size, mtime, ctime and inode -> unchanged, never read.
 *
 * @module
 */
import path from "node:path";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import { fileDigest } from "./manifest.ts";
import { type BundleEntry, comparePaths, sameTime } from "./scan.ts";

/** One change of a tree. */
export type Change =
  | { kind: "add" | "modify" | "replace"; path: string; entry: BundleEntry }
  | { kind: "delete"; path: string; old: BundleEntry };

/** Options of {@linkcode diffTree}. */
export interface DiffOptions {
  /** Absolute rootfs path (to hash files when the manifest holds digests). */
  rootfs: string;
  /** Paths to ignore entirely (volumes, --mask-path); true = masked. */
  masked?: (path: string) => boolean;
  /** Whether xattrs were recorded in both lists (compare them). */
  compareXattrs?: boolean;
  /** What to call the tree in errors. */
  what?: string;
}

function sameXattrs(a?: Record<string, string>, b?: Record<string, string>): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (a![k] !== b?.[k]) return false;
  return true;
}

/**
 * Whether entry `now` differs from the recorded `old` of the same path and type.
 *
 * @example
 * ```ts
 * entryChanged(old, now, "/b/rootfs", true); // false when stat proves it unchanged
 * ```
 */
export function entryChanged(old: BundleEntry, now: BundleEntry, rootfs: string, compareXattrs: boolean): boolean {
  // the stat witness: same inode and ctime -> nothing (content, owner, mode, xattrs) changed
  if (
    old.ino >= 0n && old.ino === now.ino && sameTime(old.ctimeNs, now.ctimeNs) && old.size === now.size &&
    sameTime(old.mtimeNs, now.mtimeNs)
  ) {
    return false;
  }
  if (old.mode !== now.mode || old.uid !== now.uid || old.gid !== now.gid) return true;
  if (compareXattrs && !sameXattrs(old.xattrs, now.xattrs)) return true;
  if (old.ino < 0n) return coarseChanged(old, now, rootfs);
  switch (now.type) {
    case "file":
      if (old.size !== now.size || !sameTime(old.mtimeNs, now.mtimeNs)) return true;
      if (old.digest) {
        const d = fileDigest(path.join(rootfs, now.path));
        now.digest = d;
        return d !== old.digest;
      }
      return true; // touched (ctime moved) and no digest to prove otherwise
    case "dir":
      return !sameTime(old.mtimeNs, now.mtimeNs);
    case "symlink":
      return old.link !== now.link || !sameTime(old.mtimeNs, now.mtimeNs);
    case "char":
    case "block":
      return old.rdevMajor !== now.rdevMajor || old.rdevMinor !== now.rdevMinor || !sameTime(old.mtimeNs, now.mtimeNs);
    default:
      return !sameTime(old.mtimeNs, now.mtimeNs);
  }
}

/**
 * Change test for entries recorded without inode/ctime (umoci's mtree):
 * whole-second mtimes, content by digest.
 */
function coarseChanged(old: BundleEntry, now: BundleEntry, rootfs: string): boolean {
  const sec = (ns: bigint) => ns / 1_000_000_000n;
  switch (now.type) {
    case "file": {
      if (old.size !== now.size || sec(old.mtimeNs) !== sec(now.mtimeNs) || !old.digest) return true;
      const d = fileDigest(path.join(rootfs, now.path));
      now.digest = d;
      return d !== old.digest;
    }
    case "dir":
      return sec(old.mtimeNs) !== sec(now.mtimeNs);
    case "symlink":
      return old.link !== now.link;
    case "char":
    case "block":
      return old.rdevMajor !== undefined && (old.rdevMajor !== now.rdevMajor || old.rdevMinor !== now.rdevMinor);
    default:
      return false;
  }
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i);
}

/**
 * The entries of `now` the stat witness cannot prove unchanged (new, other
 * type, other inode or ctime): the only ones whose xattrs a diff needs.
 *
 * @example
 * ```ts
 * loadXattrs(rootfs, statCandidates(old, now));
 * ```
 */
export function statCandidates(old: BundleEntry[], now: BundleEntry[]): BundleEntry[] {
  const oldMap = new Map(old.map((e) => [e.path, e]));
  return now.filter((e) => {
    const o = oldMap.get(e.path);
    return !o || o.ino < 0n || o.type !== e.type || o.ino !== e.ino || !sameTime(o.ctimeNs, e.ctimeNs);
  });
}

/**
 * Computes the changes from `old` (the manifest) to `now` (a fresh scan),
 * sorted in layer order ({@linkcode comparePaths}).
 *
 * @example
 * ```ts
 * const changes = diffTree(readBundleManifest(b).entries, scanTree(b + "/rootfs"), { rootfs: b + "/rootfs" });
 * ```
 */
export function diffTree(old: BundleEntry[], now: BundleEntry[], opts: DiffOptions): Change[] {
  const masked = opts.masked ?? (() => false);
  const what = opts.what ?? opts.rootfs;
  const oldMap = new Map<string, BundleEntry>();
  for (const e of old) if (e.type !== "socket" && !masked(e.path)) oldMap.set(e.path, e);
  const nowMap = new Map<string, BundleEntry>();
  const changes: Change[] = [];
  const emitted = new Set<string>();
  for (const e of now) {
    if (e.path !== "." && masked(e.path)) continue;
    if (e.type === "socket") {
      log.warn(`${what}: skipping socket ${e.path}`);
      continue;
    }
    nowMap.set(e.path, e);
    const base = e.path.slice(e.path.lastIndexOf("/") + 1);
    const o = oldMap.get(e.path);
    let kind: "add" | "modify" | "replace" | undefined;
    if (!o) kind = "add";
    else if (o.type !== e.type) kind = "replace";
    else if (entryChanged(o, e, opts.rootfs, Boolean(opts.compareXattrs))) kind = "modify";
    if (kind && base.startsWith(".wh.")) {
      throw new OcigenError("EREPACK", `Cannot repack ${what}: entry ${e.path}: names starting with .wh. are reserved for whiteouts`);
    }
    if (kind) {
      changes.push({ kind, path: e.path, entry: e });
      emitted.add(e.path);
    }
  }
  // hard-link groups: emit every member of a group one of whose members is emitted
  const groups = new Map<bigint, BundleEntry[]>();
  for (const e of nowMap.values()) {
    if (e.type !== "dir" && e.nlink > 1) {
      const g = groups.get(e.ino);
      if (g) g.push(e);
      else groups.set(e.ino, [e]);
    }
  }
  for (const g of groups.values()) {
    if (g.length < 2 || !g.some((e) => emitted.has(e.path))) continue;
    for (const e of g) {
      if (!emitted.has(e.path)) {
        changes.push({ kind: "modify", path: e.path, entry: e });
        emitted.add(e.path);
      }
    }
  }
  for (const o of oldMap.values()) {
    if (o.path === "." || nowMap.has(o.path)) continue;
    const parent = parentOf(o.path);
    if (parent !== ".") {
      const pn = nowMap.get(parent);
      const po = oldMap.get(parent);
      if (!pn || pn.type !== "dir" || !po || po.type !== "dir") continue; // covered by the parent's removal
    }
    changes.push({ kind: "delete", path: o.path, old: o });
  }
  changes.sort((a, b) => comparePaths(a.path, b.path));
  return changes;
}
