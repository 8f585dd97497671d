/**
 * The metadata of a layer that is applied when the layer ends, not entry by
 * entry (see the semantics in src/layer/plan.ts):
 * - directory modes and times: a directory's children change its mtime, so
 *   every directory the layer declares gets its mode and times again at the
 *   end, deepest first (a parent after its children);
 * - directories the layer changes without declaring them (an entry added or
 *   whited out inside) keep the times they had before the layer, as umoci;
 * - extended attributes: queued per path with the inode they were meant for
 *   and set in one `setfattr` run, skipping paths that no longer name that
 *   inode (replaced later in the layer); the queue is flushed early past 32
 *   MiB of values so a hostile layer cannot grow it without bound;
 * - a lower-layer directory the layer re-declares loses its old xattrs (as
 *   umoci), found with one `getfattr` run.
 * Every path is re-resolved inside the root before it is touched.
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import type { RootResolver } from "../rootfs/resolve.ts";
import type { TarEntryHeader } from "../tar/header.ts";
import type { ApplyState } from "./state.ts";
import { asEntryError, entryAtime, xattrsToSet } from "./plan.ts";
import { haveSetfattr, listXattrs, removeXattr, setXattrs, type XattrSet } from "./special.ts";

/** Sets the times of what is at `abs` without following a symlink there; nothing when nothing is there. */
function lutimesIfThere(abs: string, atime: number, mtime: number): void {
  try {
    fs.lutimesSync(abs, atime, mtime);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
  }
}

interface DirFixup {
  mode: number;
  atime: number;
  mtime: number;
}

const XATTR_QUEUE_MAX = 32 << 20;

/**
 * End-of-layer metadata of one layer (see the module header).
 *
 * @example
 * ```ts
 * const later = new DeferredMeta(state, "layer 1");
 * later.declareDir(header, "etc");
 * later.finish();
 * ```
 */
export class DeferredMeta {
  readonly #r: RootResolver;
  readonly #dirFixups = new Map<string, DirFixup>();
  /** Times of lower-layer directories this layer changes without declaring them (restored at the end, as umoci does). */
  readonly #keepTimes = new Map<string, { atime: number; mtime: number }>();
  readonly #redeclared = new Set<string>();
  #xattrs = new Map<string, Array<XattrSet & { ino: number }>>();
  /** Bytes of xattr values queued in `xattrs` (flushed early past XATTR_QUEUE_MAX: bounded memory). */
  #xattrBytes = 0;

  /**
   * @example
   * ```ts
   * new DeferredMeta(new ApplyState("/tmp/rootfs"), "layer sha256:ab..");
   * ```
   */
  constructor(private readonly state: ApplyState, private readonly what: string) {
    this.#r = state.resolver;
  }

  /**
   * Remembers the times of directory `rel` before this layer first changes its
   * children, unless the layer declares it: adding or removing an entry must
   * not change the mtime of a directory the layer does not carry.
   *
   * @example
   * ```ts
   * later.keepParentTimes("etc", "/tmp/rootfs/etc");
   * ```
   */
  keepParentTimes(rel: string, abs: string): void {
    if (this.#keepTimes.has(rel) || this.#dirFixups.has(rel)) return;
    try {
      const st = fs.lstatSync(abs);
      this.#keepTimes.set(rel, { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
    } catch {
      // vanished or unreadable: nothing to restore
    }
  }

  /**
   * Records directory `rel` as declared by entry `h`: its mode and times are
   * set again at the end (later entries win).
   *
   * @example
   * ```ts
   * later.declareDir(header, "var/log");
   * ```
   */
  declareDir(h: TarEntryHeader, rel: string): void {
    this.#dirFixups.delete(rel); // re-insert: later entries win and order stays by last write
    // rootless: directories stay owner-accessible (u+rwx), or the tree could not be
    // read, repacked or removed by its unprivileged owner. Otherwise the mode was
    // set when the directory was declared (the applier's dirMeta) and nothing but
    // the entry's own xattrs (a POSIX ACL rewrites mode bits) changes it before
    // the end: then only the times are set again (mode -1)
    const mode = this.state.rootless ? h.mode | 0o700 : Object.keys(h.xattrs).length > 0 ? h.mode : -1;
    this.#dirFixups.set(rel, { mode, atime: entryAtime(h), mtime: h.mtime });
  }

  /**
   * Records that lower-layer directory `rel` is re-declared: its old xattrs go.
   *
   * @example
   * ```ts
   * later.redeclare("etc");
   * ```
   */
  redeclare(rel: string): void {
    this.#redeclared.add(rel);
  }

  /**
   * Forgets what is queued for `rel` (it was removed).
   *
   * @example
   * ```ts
   * later.forget("tmp/x", true);
   * ```
   */
  forget(rel: string, dir: boolean): void {
    this.#xattrs.delete(rel);
    if (dir) this.#dirFixups.delete(rel);
  }

  /**
   * Queues the xattrs entry `h` sets on `rel` (see `xattrsToSet`), for the
   * inode `abs` is now.
   *
   * @example
   * ```ts
   * later.queueXattrs(header, "usr/bin/ping", "/tmp/rootfs/usr/bin/ping");
   * ```
   */
  queueXattrs(h: TarEntryHeader, rel: string, abs: string, symlink = false): void {
    if (Object.keys(h.xattrs).length === 0) return;
    let ino = 0;
    try {
      ino = fs.lstatSync(abs).ino;
    } catch (e) {
      throw wrapIo(e, "lstat", rel);
    }
    const key = rel || ".";
    for (const { name, value } of xattrsToSet(h, rel, { rootless: this.state.rootless, symlink }, this.what)) {
      let list = this.#xattrs.get(key);
      if (!list) this.#xattrs.set(key, (list = []));
      list.push({ rel: key, name, value, ino });
      this.#xattrBytes += value.length;
    }
    // a hostile layer can carry ~1 MiB of well-compressible xattrs per entry: never queue unboundedly
    if (this.#xattrBytes > XATTR_QUEUE_MAX) this.flushXattrs();
  }

  /**
   * Applies everything left at the end of the layer: xattrs, then directory
   * modes and times, deepest first.
   *
   * @example
   * ```ts
   * later.finish();
   * ```
   */
  finish(): void {
    this.flushXattrs();
    // directories: deepest first, so restoring a parent's mtime comes after its children changed
    // declared: a directory this layer declared (its fixup is forgotten when it
    // is removed or replaced); kept: one whose times the layer's changes below it
    // must not move, which may have been replaced by anything since
    const dirs: Array<[string, DirFixup, boolean]> = [...this.#dirFixups].map(([rel, fx]) => [rel, fx, true]);
    for (const [rel, t] of this.#keepTimes) if (!this.#dirFixups.has(rel)) dirs.push([rel, { mode: -1, ...t }, false]);
    this.#keepTimes.clear();
    dirs.sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, fx, declared] of dirs) {
      try {
        if (declared && fx.mode < 0) {
          // times only, of a directory still declared: no look needed, as lutimes
          // never follows the last component and the parent is resolved safely
          const here = this.#placeDir(rel);
          if (here) lutimesIfThere(here, fx.atime, fx.mtime);
          continue;
        }
        const here = this.#locateDir(rel);
        if (!here) continue;
        if (fx.mode >= 0) fs.chmodSync(here, fx.mode & 0o7777);
        fs.utimesSync(here, fx.atime, fx.mtime);
      } catch (e) {
        throw asEntryError(this.what, wrapIo(e, "set directory metadata", rel || "."), rel || ".");
      }
    }
    this.#dirFixups.clear();
  }

  /**
   * Sets the queued xattrs now (one `setfattr` run), after clearing those of
   * re-declared directories.
   *
   * @example
   * ```ts
   * later.flushXattrs();
   * ```
   */
  flushXattrs(): void {
    this.#xattrBytes = 0;
    this.#clearRedeclared();
    if (this.#xattrs.size === 0) return;
    const todo = [...this.#xattrs.values()].flat();
    this.#xattrs = new Map();
    if (!haveSetfattr()) {
      log.warn(`${this.what}: setfattr (package attr) not installed: ${todo.length} extended attribute(s) not applied`);
      return;
    }
    const sets: XattrSet[] = [];
    for (const x of todo) {
      const comps = x.rel === "." ? [] : x.rel.split("/");
      if (comps.length) {
        const parent = this.#r.resolveDir(comps.slice(0, -1), false);
        if (!parent || parent.rel !== comps.slice(0, -1).join("/")) continue;
      }
      try {
        const st = fs.lstatSync(this.#r.abs(comps.join("/")));
        if (st.ino !== x.ino) continue; // replaced later in the layer
      } catch {
        continue;
      }
      sets.push(x);
    }
    const errs = setXattrs(this.#r.root, sets);
    if (sets.length) this.state.anyXattrs = true;
    const fatal = errs.filter((l) =>
      !/Operation not supported/.test(l) && !(this.state.rootless && /Operation not permitted/.test(l))
    );
    for (const l of errs) if (!fatal.includes(l)) log.warn(`${this.what}: xattr not applied: ${l}`);
    if (fatal.length) {
      throw new OcigenError("EIO", `Cannot unpack ${this.what}: setting extended attributes failed: ${fatal[0]}`);
    }
  }

  /** The absolute path of root-relative `rel` when its parent still resolves safely to a real directory, else null. */
  #placeDir(rel: string): string | null {
    if (rel === "") return this.#r.root;
    const comps = rel.split("/");
    const parent = this.#r.resolveDir(comps.slice(0, -1), false);
    if (!parent || parent.rel !== comps.slice(0, -1).join("/")) return null;
    return this.#r.abs(rel);
  }

  /** Re-resolves a root-relative directory path safely; null unless it is (still) a real directory. */
  #locateDir(rel: string): string | null {
    const abs = this.#placeDir(rel);
    if (abs === null || rel === "") return abs;
    try {
      return fs.lstatSync(abs).isDirectory() ? abs : null;
    } catch {
      return null;
    }
  }

  /** Removes the xattrs of lower-layer directories this layer re-declared (one getfattr, one setfattr per name). */
  #clearRedeclared(): void {
    if (this.#redeclared.size === 0 || !haveSetfattr()) return;
    const rels: string[] = [];
    for (const rel of this.#redeclared) if (this.#locateDir(rel)) rels.push(rel || ".");
    this.#redeclared.clear();
    const byName = new Map<string, string[]>();
    for (const [rel, names] of listXattrs(this.#r.root, rels)) {
      for (const n of names) {
        if (n === "security.selinux") continue;
        let l = byName.get(n);
        if (!l) byName.set(n, (l = []));
        l.push(rel);
      }
    }
    for (const [name, paths] of byName) removeXattr(this.#r.root, name, paths);
  }
}

function depth(rel: string): number {
  if (rel === "") return 0;
  let d = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) d++;
  return d;
}
