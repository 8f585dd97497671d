/**
 * Applying one layer's tar entries to a root directory: a synchronous
 * {@linkcode TarHandler} using synchronous fs calls only.
 *
 * Semantics (OCI image-spec "layer" changesets, umoci-compatible):
 * - every entry's parent is resolved inside the root with chroot semantics
 *   ({@linkcode RootResolver}); missing parents are created (0755);
 * - the final component is never followed: an existing non-directory (or a
 *   directory, when the entry is not a directory) is removed and recreated;
 *   directories over directories are kept and get the new metadata;
 * - `.wh.NAME` removes NAME from lower layers; `.wh..wh..opq` removes the
 *   lower-layer children of its directory wherever it sits in the layer;
 *   entries written by the same layer survive both; `.wh.`, `.wh..` and
 *   `.wh...` are `EWHITEOUT` errors; other `.wh..wh.*` (aufs metadata) are skipped;
 * - hard links resolve their target inside the root (also lower-layer files)
 *   and never link a directory; their metadata is the target's;
 * - owners are applied with lchown (mapped through uid/gid maps) and modes
 *   with chmod after chown (so setuid/setgid survive); rootless mode applies
 *   no owners (they are recorded), turns devices into empty files and keeps
 *   directories owner-accessible (mode | 0700);
 * - xattrs (`security.selinux` dropped; only `user.*` in rootless mode) are
 *   set at the end of the layer in one `setfattr` run, after re-checking each
 *   path still names the same inode;
 * - directory modes apply at once (rootless: u+rwx kept while writing) and
 *   are set again, with the mtimes, at the end of the layer, deepest first,
 *   after all children were written.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { InflateMode } from "../compress/inflate-worker.ts";
import { OcigenError, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import type { TarHandler } from "../tar/parser.ts";
import type { TarEntryHeader } from "../tar/header.ts";
import { type IdMapping, toHost } from "./idmap.ts";
import { ResolveError, RootResolver, cleanEntryPath } from "../rootfs/resolve.ts";
import { type XattrSet, haveSetfattr, listXattrs, mknod, removeXattr, setXattrs } from "./special.ts";

/**
 * Options for applying layers.
 *
 * @example
 * ```ts
 * new ApplyState("/tmp/rootfs", { rootless: true, keepDirlinks: false });
 * ```
 */
export interface ApplyOptions {
  /** Do not apply owners, make devices placeholders (default: true when not running as root). */
  rootless?: boolean;
  /** Container-to-host uid mappings (umoci `--uid-map`). */
  uidMap?: IdMapping[];
  /** Container-to-host gid mappings (umoci `--gid-map`). */
  gidMap?: IdMapping[];
  /** Keep existing symlinks to directories when a layer has a directory of the same name (umoci `--keep-dirlinks`). */
  keepDirlinks?: boolean;
  /** Called with the number of uncompressed file bytes written (in steps of about 256 KiB, and at the end of each layer; progress). */
  onBytes?: (n: number) => void;
  /** Called per compressed chunk read (`bytes`) and per entry applied (`entries`), for progress lines. */
  onProgress?: (bytes: number, entries: number) => void;
  /**
   * Largest zstd window a layer may declare, in bytes (default 128 MiB, at
   * most 2 GiB); a layer past it fails with "zstd window too large".
   */
  zstdWindowMax?: number;
  /** Which gzip decoder to use (default `auto`: a worker thread for large layers). */
  inflate?: InflateMode;
}

/**
 * True when the process runs as root (uid 0).
 *
 * @example
 * ```ts
 * const rootless = !runningAsRoot();
 * ```
 */
export function runningAsRoot(): boolean {
  return typeof process.getuid === "function" ? process.getuid() === 0 : false;
}

/**
 * State shared by the layers of one unpack (resolver, owner records).
 *
 * @example
 * ```ts
 * const state = new ApplyState("/tmp/rootfs", { rootless: false });
 * // one LayerApplier per layer, all sharing the state
 * ```
 */
export class ApplyState {
  readonly resolver: RootResolver;
  readonly rootless: boolean;
  /** In rootless mode: owners from the layers that were not applied, by root-relative path. */
  readonly owners = new Map<string, { uid: number; gid: number }>();
  /**
   * True once any extended attribute was set in this tree (lower xattrs may need clearing).
   * When still false after the last layer, `unpackBundle` lets the bundle manifest skip its getfattr pass.
   */
  anyXattrs = false;
  /** Directories made accessible in rootless mode: rel -> original mode. */
  readonly fixedDirs = new Map<string, number>();
  private myUid = typeof process.getuid === "function" ? process.getuid() : -1;

  constructor(readonly root: string, readonly opts: ApplyOptions = {}) {
    this.rootless = opts.rootless ?? !runningAsRoot();
    this.resolver = new RootResolver(root, {
      onEnter: (rel, abs, st) => {
        if (!this.rootless) return;
        if ((st.mode & 0o700) !== 0o700 && st.uid === this.myUid) {
          if (!this.fixedDirs.has(rel)) this.fixedDirs.set(rel, st.mode & 0o7777);
          try {
            fs.chmodSync(abs, (st.mode & 0o7777) | 0o700);
          } catch (e) {
            throw wrapIo(e, "chmod", rel);
          }
        }
      },
    });
  }
}

interface DirFixup {
  mode: number;
  atime: number;
  mtime: number;
}

/** File bytes reported to `onBytes` at a time (progress of a single small layer too). */
const BYTES_STEP = 256 << 10;
const XATTR_QUEUE_MAX = 32 << 20;
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

let umaskProbe: number | null | undefined;
/**
 * The process umask, found once by creating a probe file (mode 0777) in the
 * temp directory (portable: no `process.umask()` read, deprecated in Node);
 * `null` when it cannot be found (then every file gets an explicit chmod).
 */
function processUmask(): number | null {
  if (umaskProbe !== undefined) return umaskProbe;
  umaskProbe = null;
  const probe = path.join(os.tmpdir(), `.ocigen-umask-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const fd = fs.openSync(probe, CREATE_FLAGS, 0o777);
    try {
      umaskProbe = 0o777 & ~(fs.fstatSync(fd).mode & 0o777);
    } finally {
      fs.closeSync(fd);
      fs.unlinkSync(probe);
    }
  } catch {
    umaskProbe = null;
  }
  return umaskProbe;
}

/**
 * Applies the entries of one layer (a {@linkcode TarHandler}); `end()`
 * finishes the layer (xattrs, directory modes and mtimes).
 *
 * @example
 * ```ts
 * const state = new ApplyState("/tmp/rootfs");
 * const parser = new TarParser(new LayerApplier(state, "layer sha256:ab.."));
 * parser.write(tarBytes([{ name: "etc/motd", data: "hi\n" }]));
 * parser.end();
 * ```
 */
export class LayerApplier implements TarHandler {
  private readonly r: RootResolver;
  private readonly written = new Set<string>();
  private readonly ancestors = new Set<string>();
  private readonly dirFixups = new Map<string, DirFixup>();
  /** Times of lower-layer directories this layer changes without declaring them (restored at the end, as umoci does). */
  private readonly keepTimes = new Map<string, { atime: number; mtime: number }>();
  private readonly redeclared = new Set<string>();
  private xattrs = new Map<string, Array<XattrSet & { ino: number }>>();
  /** Bytes of xattr values queued in `xattrs` (flushed early past XATTR_QUEUE_MAX: bounded memory). */
  private xattrBytes = 0;
  private fd = -1;
  private pos = 0;
  private cur: TarEntryHeader | null = null;
  private curRel = "";
  private sparse = false;
  /** The open file was created with its final mode (no fchmod needed). */
  private modeDone = false;
  private pendingBytes = 0;

  constructor(private readonly state: ApplyState, private readonly what: string) {
    this.r = state.resolver;
  }

  private fail(code: OcigenError["code"], entry: string, why: string, cause?: unknown): never {
    throw new OcigenError(code, `Cannot unpack ${this.what}: entry ${entry}: ${why}`, cause ? { cause } : undefined);
  }

  private wrap(e: unknown, entry: string): OcigenError {
    if (e instanceof OcigenError) {
      if (e.message.startsWith("Cannot ")) return e;
      // wrapIo messages already start with the entry's path: do not name it twice
      const msg = e.message.startsWith(`${entry}: `) ? e.message.slice(entry.length + 2) : e.message;
      return new OcigenError(e.code, `Cannot unpack ${this.what}: entry ${entry}: ${msg}`, { cause: e.cause ?? e });
    }
    const w = wrapIo(e, "write", entry);
    return new OcigenError(w.code, `Cannot unpack ${this.what}: entry ${w.message}`, { cause: e });
  }

  private markWritten(rel: string): void {
    this.written.add(rel);
    let p = rel;
    for (;;) {
      const i = p.lastIndexOf("/");
      p = i < 0 ? "" : p.slice(0, i);
      if (this.ancestors.has(p)) break;
      this.ancestors.add(p);
      if (p === "") break;
    }
  }

  entry(h: TarEntryHeader): void {
    try {
      this.begin(h);
    } catch (e) {
      this.closeFd();
      throw this.wrap(e, h.name);
    }
  }

  private begin(h: TarEntryHeader): void {
    this.state.opts.onProgress?.(0, 1);
    if (h.name.includes("\0") || h.linkname.includes("\0")) this.fail("ETAR", JSON.stringify(h.name), "name contains a NUL byte");
    const comps = cleanEntryPath(h.name);
    const base = comps.length ? comps[comps.length - 1] : "";
    if (comps.some((c, i) => c.startsWith(".wh..wh.") && !(i === comps.length - 1 && c === ".wh..wh..opq"))) {
      log.debug(`${this.what}: skipping aufs metadata entry ${h.name}`);
      return;
    }
    if (base.startsWith(".wh.")) {
      this.whiteout(h, comps.slice(0, -1), base);
      return;
    }
    if (comps.length === 0) {
      // the root directory itself
      if (h.type !== "dir") this.fail("EUNPACK", h.name, "cannot replace the root directory");
      this.dirMeta(h, "", this.r.root);
      return;
    }
    const parent = this.r.resolveDir(comps.slice(0, -1), true)!;
    this.keepParentTimes(parent.rel, parent.abs);
    const rel = parent.rel === "" ? base : parent.rel + "/" + base;
    const abs = this.r.abs(rel);
    const entryName = rel;
    const opts = this.state.opts;
    if (h.type === "file") {
      // the common case, a new file: create it directly (O_EXCL, never following
      // a symlink); only when something is in the way look at it and replace it.
      // Without setuid/setgid/sticky bits and when the umask keeps every bit of
      // the mode, the file is created with its final mode (no fchmod later);
      // otherwise 0600 now and the mode after the owner, as always.
      const um = processUmask();
      const m = h.mode & 0o777;
      this.modeDone = (h.mode & 0o7000) === 0 && um !== null && (m & um) === 0;
      this.fd = this.createFile(abs, rel, entryName, this.modeDone ? m : 0o600);
      this.cur = h;
      this.curRel = rel;
      this.pos = 0;
      this.sparse = Boolean(h.sparse);
      this.markWritten(rel);
      return;
    }
    let st: fs.Stats | undefined;
    try {
      // no exception (an Error with a stack) for the common "does not exist yet"
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      throw wrapIo(e, "lstat", entryName);
    }
    switch (h.type) {
      case "dir": {
        if (st?.isDirectory()) {
          // as umoci: a re-declared directory loses the xattrs of the lower one
          if (this.state.anyXattrs) this.redeclared.add(rel);
          this.dirMeta(h, rel, abs);
          this.markWritten(rel);
          return;
        }
        if (st?.isSymbolicLink() && opts.keepDirlinks) {
          let target: ReturnType<RootResolver["resolveFollow"]> | undefined;
          try {
            target = this.r.resolveFollow(comps);
          } catch (e) {
            // a symlink loop resolves to no directory: the link is replaced (as umoci)
            if (!(e instanceof ResolveError)) throw e;
          }
          if (target) {
            let tst: fs.Stats | undefined;
            try {
              tst = fs.lstatSync(target.abs);
            } catch {
              // fall through to replacing the link
            }
            if (tst?.isDirectory()) {
              this.dirMeta(h, target.rel, target.abs);
              this.markWritten(rel);
              this.markWritten(target.rel);
              return;
            }
          }
        }
        if (st) this.remove(rel, abs, st);
        try {
          fs.mkdirSync(abs, 0o700);
        } catch (e) {
          throw wrapIo(e, "mkdir", entryName);
        }
        this.dirMeta(h, rel, abs);
        this.markWritten(rel);
        return;
      }
      case "symlink": {
        if (st) this.remove(rel, abs, st);
        try {
          fs.symlinkSync(h.linkname, abs);
        } catch (e) {
          throw wrapIo(e, "symlink", entryName);
        }
        // A new symlink where nothing was cannot change a cached resolution
        // (cached walks pass only through directories and symlinks that
        // existed, and remove() already invalidated when it replaced one);
        // re-walking every path after each of a layer's symlinks cost ~13% of
        // the main thread on the bench image. Replacements still invalidate.
        if (st) this.r.invalidate();
        this.owner(h, rel, abs, true);
        this.queueXattrs(h, rel, abs, true);
        this.times(h, abs, entryName, true);
        this.markWritten(rel);
        return;
      }
      case "link": {
        const tcomps = cleanEntryPath(h.linkname);
        if (tcomps.length === 0) this.fail("EUNPACK", entryName, `hard link to the root directory`);
        const tparent = this.r.resolveDir(tcomps.slice(0, -1), false);
        const trel = tparent ? (tparent.rel === "" ? "" : tparent.rel + "/") + tcomps[tcomps.length - 1] : "";
        let tst: fs.Stats | undefined;
        if (tparent) {
          try {
            tst = fs.lstatSync(this.r.abs(trel), { throwIfNoEntry: false });
          } catch (e) {
            throw wrapIo(e, "lstat", trel);
          }
        }
        if (!tst) this.fail("EUNPACK", entryName, `hard link target ${h.linkname} does not exist`);
        if (tst.isDirectory()) this.fail("EUNPACK", entryName, `hard link target ${h.linkname} is a directory`);
        if (trel === rel) {
          this.markWritten(rel);
          return; // a link to itself: nothing to do
        }
        if (st) this.remove(rel, abs, st);
        try {
          fs.linkSync(this.r.abs(trel), abs);
        } catch (e) {
          throw wrapIo(e, "link", entryName);
        }
        this.markWritten(rel);
        return;
      }
      case "char":
      case "block":
      case "fifo": {
        if (st) this.remove(rel, abs, st);
        if (this.state.rootless && h.type !== "fifo") {
          // as umoci: devices cannot be created without privileges; leave an empty placeholder
          try {
            fs.closeSync(fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
          } catch (e) {
            throw wrapIo(e, "create placeholder", entryName);
          }
        } else {
          mknod(abs, h.type, h.devmajor, h.devminor, entryName);
        }
        this.owner(h, rel, abs, false);
        this.chmod(abs, h.mode, entryName);
        this.queueXattrs(h, rel, abs);
        this.times(h, abs, entryName, false);
        this.markWritten(rel);
        return;
      }
      default:
        this.fail("EUNPACK", entryName, `unsupported tar entry type '${h.typeflag ?? "?"}'`);
    }
  }

  /**
   * Creates a regular file at `abs` (O_EXCL|O_NOFOLLOW, mode 0600 until its
   * metadata is applied). When the name exists (EEXIST: any type, a dangling
   * symlink too), the existing entry is removed (recursively for a directory,
   * never following symlinks) and the file created again.
   */
  private createFile(abs: string, rel: string, entryName: string, mode: number): number {
    try {
      return fs.openSync(abs, CREATE_FLAGS, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw wrapIo(e, "create", entryName);
    }
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      throw wrapIo(e, "lstat", entryName);
    }
    if (st) this.remove(rel, abs, st);
    try {
      return fs.openSync(abs, CREATE_FLAGS, mode);
    } catch (e) {
      throw wrapIo(e, "create", entryName);
    }
  }

  private mapId(id: number, maps: IdMapping[] | undefined, what: string, entry: string): number {
    const v = toHost(maps, id);
    if (v === undefined) this.fail("EUNPACK", entry, `${what} ${id} is outside the ${what} map`);
    return v;
  }

  private owner(h: TarEntryHeader, rel: string, abs: string, link: boolean, fd = -1): void {
    const uid = this.mapId(h.uid, this.state.opts.uidMap, "uid", rel);
    const gid = this.mapId(h.gid, this.state.opts.gidMap, "gid", rel);
    if (this.state.rootless) {
      if (h.uid !== 0 || h.gid !== 0) this.state.owners.set(rel, { uid: h.uid, gid: h.gid });
      else this.state.owners.delete(rel);
      return;
    }
    try {
      if (fd >= 0) fs.fchownSync(fd, uid, gid);
      else if (link) fs.lchownSync(abs, uid, gid);
      else fs.chownSync(abs, uid, gid);
    } catch (e) {
      throw wrapIo(e, "chown", rel);
    }
  }

  private chmod(abs: string, mode: number, rel: string, fd = -1): void {
    try {
      if (fd >= 0) fs.fchmodSync(fd, mode & 0o7777);
      else fs.chmodSync(abs, mode & 0o7777);
    } catch (e) {
      throw wrapIo(e, "chmod", rel);
    }
  }

  private atime(h: TarEntryHeader): number {
    const a = h.pax.atime;
    if (a && /^-?[0-9]+(\.[0-9]+)?$/.test(a)) return Number(a);
    return h.mtime;
  }

  private times(h: TarEntryHeader, abs: string, rel: string, link: boolean, fd = -1): void {
    try {
      if (fd >= 0) fs.futimesSync(fd, this.atime(h), h.mtime);
      else if (link) fs.lutimesSync(abs, this.atime(h), h.mtime);
      else fs.utimesSync(abs, this.atime(h), h.mtime);
    } catch (e) {
      throw wrapIo(e, "set times", rel);
    }
  }

  /**
   * Remembers the times of directory `rel` before this layer first changes its
   * children, unless the layer declares it: adding or removing an entry must
   * not change the mtime of a directory the layer does not carry.
   */
  private keepParentTimes(rel: string, abs: string): void {
    if (this.keepTimes.has(rel) || this.dirFixups.has(rel)) return;
    try {
      const st = fs.lstatSync(abs);
      this.keepTimes.set(rel, { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
    } catch {
      // vanished or unreadable: nothing to restore
    }
  }

  private dirMeta(h: TarEntryHeader, rel: string, abs: string): void {
    this.owner(h, rel || ".", abs, false);
    // The mode applies at once (children created later inherit setgid and its group,
    // as on any filesystem and as umoci does); rootless keeps u+rwx until the layer ends.
    this.chmod(abs, this.state.rootless ? (h.mode | 0o700) : h.mode, rel || ".");
    this.queueXattrs(h, rel, abs);
    this.dirFixups.delete(rel); // re-insert: later entries win and order stays by last write
    // rootless: directories stay owner-accessible (u+rwx), or the tree could not be
    // read, repacked or removed by its unprivileged owner
    this.dirFixups.set(rel, { mode: this.state.rootless ? h.mode | 0o700 : h.mode, atime: this.atime(h), mtime: h.mtime });
    if (this.state.rootless) this.state.fixedDirs.delete(rel);
  }

  private queueXattrs(h: TarEntryHeader, rel: string, abs: string, symlink = false): void {
    const names = Object.keys(h.xattrs);
    if (names.length === 0) return;
    let ino = 0;
    try {
      ino = fs.lstatSync(abs).ino;
    } catch (e) {
      throw wrapIo(e, "lstat", rel);
    }
    for (const name of names) {
      if (name === "security.selinux") continue;
      if (this.state.rootless && !name.startsWith("user.")) continue;
      // rootless: this xattr holds owners the unpack itself records (a layer's own is ignored, as umoci)
      if (this.state.rootless && name === "user.rootlesscontainers") {
        log.warn(`${rel || "."}: ignoring the user.rootlesscontainers xattr stored in the layer`);
        continue;
      }
      if (symlink && name.startsWith("user.")) continue; // Linux allows no user.* xattrs on symlinks
      if (name.includes("\0") || name === "") this.fail("ETAR", rel, "bad xattr name");
      const v = h.xattrs[name];
      const key = rel || ".";
      let list = this.xattrs.get(key);
      if (!list) this.xattrs.set(key, (list = []));
      const value = typeof v === "string" ? new TextEncoder().encode(v) : v;
      // a PAX record with an empty value sets nothing (POSIX: it unsets the
      // keyword; Go's archive/tar, so umoci, skips it): never an empty xattr
      if (value.length === 0) continue;
      // the kernel's XATTR_SIZE_MAX: a larger value could never be set
      if (value.length > 65536) this.fail("EUNPACK", key, `xattr ${JSON.stringify(name)} is larger than 64 KiB`);
      list.push({ rel: key, name, value, ino });
      this.xattrBytes += value.length;
    }
    // a hostile layer can carry ~1 MiB of well-compressible xattrs per entry: never queue unboundedly
    if (this.xattrBytes > XATTR_QUEUE_MAX) this.flushXattrs();
  }

  data(chunk: Uint8Array): void {
    if (this.fd < 0) return;
    try {
      let off = 0;
      while (off < chunk.length) {
        const n = fs.writeSync(this.fd, chunk, off, chunk.length - off, this.sparse ? this.pos : null);
        off += n;
        this.pos += n;
      }
    } catch (e) {
      const name = this.curRel;
      this.closeFd();
      throw this.wrap(wrapIo(e, "write", name), name);
    }
    this.progress(chunk.length);
  }

  hole(length: number): void {
    if (this.fd < 0) return;
    this.pos += length;
  }

  private progress(n: number): void {
    if (!this.state.opts.onBytes) return;
    this.pendingBytes += n;
    if (this.pendingBytes >= BYTES_STEP) {
      this.state.opts.onBytes(this.pendingBytes);
      this.pendingBytes = 0;
    }
  }

  private closeFd(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = -1;
    }
  }

  entryEnd(): void {
    if (this.fd < 0 || !this.cur) return;
    const h = this.cur;
    const rel = this.curRel;
    const abs = this.r.abs(rel);
    try {
      if (this.sparse) fs.ftruncateSync(this.fd, h.size);
      this.owner(h, rel, abs, false, this.fd);
      if (!this.modeDone) this.chmod(abs, h.mode, rel, this.fd);
      this.queueXattrs(h, rel, abs);
      this.times(h, abs, rel, false, this.fd);
    } catch (e) {
      this.closeFd();
      throw this.wrap(e, rel);
    }
    try {
      fs.closeSync(this.fd);
    } catch (e) {
      this.fd = -1;
      throw this.wrap(wrapIo(e, "close", rel), rel);
    }
    this.fd = -1;
    this.cur = null;
  }

  /** Removes an existing entry (recursively for directories), never following symlinks. */
  private remove(rel: string, abs: string, st: fs.Stats): void {
    if (st.isDirectory()) {
      this.rmTree(abs, rel);
      this.r.invalidate();
    } else {
      try {
        fs.unlinkSync(abs);
      } catch (e) {
        throw wrapIo(e, "remove", rel);
      }
      if (st.isSymbolicLink()) this.r.invalidate();
    }
    this.state.owners.delete(rel);
    this.xattrs.delete(rel);
  }

  private rmTree(abs: string, rel: string): void {
    let names: string[];
    try {
      if (this.state.rootless) {
        const st = fs.lstatSync(abs);
        if ((st.mode & 0o700) !== 0o700) fs.chmodSync(abs, (st.mode & 0o7777) | 0o700);
      }
      names = fs.readdirSync(abs);
    } catch (e) {
      throw wrapIo(e, "read directory", rel);
    }
    for (const n of names) {
      const cabs = abs + "/" + n;
      const crel = rel + "/" + n;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(cabs);
      } catch (e) {
        throw wrapIo(e, "lstat", crel);
      }
      if (st.isDirectory()) this.rmTree(cabs, crel);
      else {
        try {
          fs.unlinkSync(cabs);
        } catch (e) {
          throw wrapIo(e, "remove", crel);
        }
      }
      this.state.owners.delete(crel);
      this.xattrs.delete(crel);
    }
    try {
      fs.rmdirSync(abs);
    } catch (e) {
      throw wrapIo(e, "remove", rel);
    }
    this.dirFixups.delete(rel);
    this.state.fixedDirs.delete(rel);
  }

  /** Removes the children of directory `rel` that this layer did not write (recursing into ones it wrote below). */
  private clearLower(rel: string, abs: string): void {
    this.keepParentTimes(rel, abs);
    let names: string[];
    try {
      names = fs.readdirSync(abs);
    } catch (e) {
      throw wrapIo(e, "read directory", rel || ".");
    }
    for (const n of names) {
      const crel = rel === "" ? n : rel + "/" + n;
      const cabs = abs + "/" + n;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(cabs);
      } catch (e) {
        throw wrapIo(e, "lstat", crel);
      }
      const keep = this.written.has(crel) || this.ancestors.has(crel);
      if (!keep) this.remove(crel, cabs, st);
      else if (st.isDirectory()) this.clearLower(crel, cabs);
    }
  }

  private whiteout(h: TarEntryHeader, parentComps: string[], base: string): void {
    if (base === ".wh..wh..opq") {
      const dir = this.r.resolveDir(parentComps, false);
      if (!dir) return;
      this.clearLower(dir.rel, dir.abs);
      return;
    }
    const name = base.slice(4);
    if (name === "" || name === "." || name === "..") {
      this.fail("EWHITEOUT", h.name, `invalid whiteout ${base}`);
    }
    const dir = this.r.resolveDir(parentComps, false);
    if (!dir) return;
    const rel = dir.rel === "" ? name : dir.rel + "/" + name;
    const abs = this.r.abs(rel);
    this.keepParentTimes(dir.rel, dir.abs);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      throw wrapIo(e, "lstat", rel);
    }
    if (!st) return;
    if (this.written.has(rel) || this.ancestors.has(rel)) {
      // written by this layer: only lower-layer content below it is hidden
      if (st.isDirectory()) this.clearLower(rel, abs);
      return;
    }
    this.remove(rel, abs, st);
  }

  end(): void {
    this.closeFd();
    if (this.pendingBytes && this.state.opts.onBytes) this.state.opts.onBytes(this.pendingBytes);
    this.pendingBytes = 0;
    this.flushXattrs();
    // directories: deepest first, so restoring a parent's mtime comes after its children changed
    const dirs: Array<[string, DirFixup | { mode: -1; atime: number; mtime: number }]> = [...this.dirFixups.entries()];
    for (const [rel, t] of this.keepTimes) if (!this.dirFixups.has(rel)) dirs.push([rel, { mode: -1, ...t }]);
    this.keepTimes.clear();
    dirs.sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, fx] of dirs) {
      const here = this.locateDir(rel);
      if (!here) continue;
      try {
        if (fx.mode >= 0) fs.chmodSync(here, fx.mode & 0o7777);
        fs.utimesSync(here, fx.atime, fx.mtime);
      } catch (e) {
        throw this.wrap(wrapIo(e, "set directory metadata", rel || "."), rel || ".");
      }
    }
    this.dirFixups.clear();
    // modes changed: later layers must walk again (rootless mode re-opens closed directories)
    this.r.invalidate();
  }

  /** Re-resolves a root-relative directory path safely; null unless it is (still) a real directory. */
  private locateDir(rel: string): string | null {
    if (rel === "") return this.r.root;
    const comps = rel.split("/");
    const parent = this.r.resolveDir(comps.slice(0, -1), false);
    if (!parent || parent.rel !== comps.slice(0, -1).join("/")) return null;
    const abs = this.r.abs(rel);
    try {
      return fs.lstatSync(abs).isDirectory() ? abs : null;
    } catch {
      return null;
    }
  }

  /** Removes the xattrs of lower-layer directories this layer re-declared (one getfattr, one setfattr per name). */
  private clearRedeclared(): void {
    if (this.redeclared.size === 0 || !haveSetfattr()) return;
    const rels: string[] = [];
    for (const rel of this.redeclared) if (this.locateDir(rel)) rels.push(rel || ".");
    this.redeclared.clear();
    const byName = new Map<string, string[]>();
    for (const [rel, names] of listXattrs(this.r.root, rels)) {
      for (const n of names) {
        if (n === "security.selinux") continue;
        let l = byName.get(n);
        if (!l) byName.set(n, (l = []));
        l.push(rel);
      }
    }
    for (const [name, paths] of byName) removeXattr(this.r.root, name, paths);
  }

  private flushXattrs(): void {
    this.xattrBytes = 0;
    this.clearRedeclared();
    if (this.xattrs.size === 0) return;
    const todo = [...this.xattrs.values()].flat();
    this.xattrs = new Map();
    if (!haveSetfattr()) {
      log.warn(`${this.what}: setfattr (package attr) not installed: ${todo.length} extended attribute(s) not applied`);
      return;
    }
    const sets: XattrSet[] = [];
    for (const x of todo) {
      const comps = x.rel === "." ? [] : x.rel.split("/");
      if (comps.length) {
        const parent = this.r.resolveDir(comps.slice(0, -1), false);
        if (!parent || parent.rel !== comps.slice(0, -1).join("/")) continue;
      }
      try {
        const st = fs.lstatSync(this.r.abs(comps.join("/")));
        if (st.ino !== x.ino) continue; // replaced later in the layer
      } catch {
        continue;
      }
      sets.push(x);
    }
    const errs = setXattrs(this.r.root, sets);
    if (sets.length) this.state.anyXattrs = true;
    const fatal = errs.filter((l) =>
      !/Operation not supported/.test(l) && !(this.state.rootless && /Operation not permitted/.test(l))
    );
    for (const l of errs) if (!fatal.includes(l)) log.warn(`${this.what}: xattr not applied: ${l}`);
    if (fatal.length) {
      throw new OcigenError("EIO", `Cannot unpack ${this.what}: setting extended attributes failed: ${fatal[0]}`);
    }
  }
}

function depth(rel: string): number {
  if (rel === "") return 0;
  let d = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) d++;
  return d;
}
