/**
 * Applying one layer's tar entries to a root directory: a synchronous
 * {@linkcode TarHandler} using synchronous fs calls only.
 *
 * What each entry means (whiteouts, opaque directories, which names this
 * layer wrote, which xattrs are set) is decided in src/layer/plan.ts, whose
 * header states the layer semantics; this file does the filesystem writes
 * those decisions call for: create, replace and remove names confined to the
 * root, hard links, devices, owners, modes and times. What is applied only
 * when the layer ends (directory modes and mtimes, xattrs) is queued in
 * src/layer/deferred.ts; the digests of the files written are taken with
 * src/layer/written.ts.
 *
 * Over 500 lines: one handler whose entry kinds (files, directories,
 * symlinks, hard links, devices, whiteouts, opaque markers) share the open
 * file, the resolver cache and the layer's written names; what is not a
 * filesystem write (meaning, deferred metadata, digests) lives elsewhere.
 *
 * Syscalls per new regular file: open (O_EXCL), write(s), fchown only when
 * the file does not already have its owner (see `owner`), fchmod only for
 * modes the umask or setuid/setgid/sticky bits keep from `open`, futimes,
 * close (and fstat when digests are recorded). On a layer read by a worker
 * job, that job's worker makes the calls after the writes (fchown, fchmod,
 * futimes, fstat, close: src/compress/worker/finish.ts), so this thread only
 * opens and writes; their failures come back as the entry's error, at the
 * latest when the layer's stream ends, before the layer's deferred metadata.
 *
 * @module
 */
import fs from "node:fs";
import { type OcigenError, wrapIo } from "../errors.ts";
import type { TarHandler } from "../tar/parser.ts";
import type { TarEntryHeader } from "../tar/header.ts";
import { ResolveError, RootResolver, cleanEntryPath } from "../rootfs/resolve.ts";
import { DeferredMeta } from "./deferred.ts";
import type { ApplyState } from "./state.ts";
import { type IdMapping, toHost } from "./idmap.ts";
import { asEntryError, entryAtime, entryError, LayerWrites, planEntry } from "./plan.ts";
import { mknod } from "./special.ts";
import { FileHash } from "./written.ts";
import { FINISH_OPS, FinishFlag, type FinishQueue, type FinishResult } from "../compress/worker/finish.ts";

export { type ApplyOptions, ApplyState, runningAsRoot } from "./state.ts";

/** File bytes reported to `onBytes` at a time (progress of a single small layer too). */
const BYTES_STEP = 256 << 10;
/** What comes back with a file finished by the worker. */
interface FinishToken {
  rel: string;
  /** The content's sha256 to record (null: none). */
  hex: string | null;
  written: number;
}

/**
 * A job whose worker can finish the files written (see src/compress/worker/finish.ts).
 *
 * @example
 * ```ts
 * job.pumpEntries(new LayerApplier(state, "layer sha256:ab..", job.entryDigests, job));
 * ```
 */
export interface FinishingJob {
  finisher<T>(onResult: (token: T, r: FinishResult) => void): FinishQueue<T>;
}

const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

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
  /** Names this layer wrote (whiteouts and opaque markers spare them). */
  private readonly writes = new LayerWrites();
  /** Directory modes and times, xattrs: applied when the layer ends. */
  private readonly later: DeferredMeta;
  private fd = -1;
  private pos = 0;
  private cur: TarEntryHeader | null = null;
  private curRel = "";
  private sparse = false;
  /** The open file was created with its final mode (no fchmod needed). */
  private modeDone = false;
  private pendingBytes = 0;
  /** The open file's digest, taken here (the state records digests and the reader gives none). */
  private hash: FileHash | null = null;
  /** The sha256 (hex) of the open file's content as the reader computed it. */
  private given: string | null = null;
  /** Where written files get their last system calls (null: here). */
  private readonly fin: FinishQueue<FinishToken> | null;

  /**
   * `readerDigests`: the tar reader hands each regular file's content digest
   * to {@linkcode LayerApplier.contentDigest} (a worker computed it), so this
   * thread does not hash the bytes itself. `finishOn`: the worker job reading
   * the layer, which then makes each written file's last system calls.
   */
  constructor(private readonly state: ApplyState, private readonly what: string, private readonly readerDigests = false, finishOn?: FinishingJob) {
    this.r = state.resolver;
    this.later = new DeferredMeta(state, what);
    this.fin = finishOn ? finishOn.finisher<FinishToken>((t, r) => this.finished(t, r)) : null;
  }

  private fail(code: OcigenError["code"], entry: string, why: string): never {
    throw entryError(this.what, code, entry, why);
  }

  private wrap(e: unknown, entry: string): OcigenError {
    return asEntryError(this.what, e, entry);
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
    const plan = planEntry(h, this.what);
    switch (plan.kind) {
      case "skip":
        return;
      case "opaque": {
        const dir = this.r.resolveDir(plan.dir, false);
        if (dir) this.clearLower(dir.rel, dir.abs);
        return;
      }
      case "whiteout":
        this.whiteout(plan.dir, plan.name);
        return;
      case "root":
        this.dirMeta(h, "", this.r.root);
        return;
    }
    const { comps, base } = plan;
    const parent = this.r.resolveDir(plan.dir, true)!;
    this.later.keepParentTimes(parent.rel, parent.abs);
    const rel = parent.rel === "" ? base : parent.rel + "/" + base;
    const abs = this.r.abs(rel);
    const entryName = rel;
    const opts = this.state.opts;
    if (h.type === "file") {
      // the common case, a new file: create it directly (O_EXCL, never following
      // a symlink); only when something is in the way look at it and replace it.
      // Without setuid/setgid/sticky bits and when creating keeps every bit of
      // the mode (the umask, or a default ACL: ApplyState.keptModeBits), the
      // file is created with its final mode (no fchmod later); otherwise 0600
      // now and the mode after the owner, as always.
      const kept = this.state.anyXattrs ? null : this.state.keptModeBits;
      const m = h.mode & 0o777;
      this.modeDone = (h.mode & 0o7000) === 0 && kept !== null && (m & ~kept) === 0;
      this.fd = this.createFile(abs, rel, entryName, this.modeDone ? m : 0o600);
      this.cur = h;
      this.curRel = rel;
      this.pos = 0;
      this.sparse = Boolean(h.sparse);
      this.hash = this.state.written && !this.readerDigests ? new FileHash(h.size, this.sparse) : null;
      this.given = null;
      this.writes.mark(rel);
      return;
    }
    // a new directory or symlink, the common case, is made directly (neither
    // mkdir nor symlink follows or replaces what is in the way: EEXIST); only
    // then is the path looked at, and what is there replaced or reused
    if (h.type === "dir" && this.made(() => fs.mkdirSync(abs, 0o700), "mkdir", entryName)) {
      this.dirMeta(h, rel, abs, true);
      this.r.learnDir(comps, { abs, rel });
      this.writes.mark(rel);
      return;
    }
    if (h.type === "symlink" && this.made(() => fs.symlinkSync(h.linkname, abs), "symlink", entryName)) {
      this.symlinkMeta(h, rel, abs, entryName, true);
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
          if (this.state.anyXattrs) this.later.redeclare(rel);
          this.dirMeta(h, rel, abs);
          this.writes.mark(rel);
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
              this.writes.mark(rel);
              this.writes.mark(target.rel);
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
        this.dirMeta(h, rel, abs, true);
        // the entries below it resolve it without a walk
        this.r.learnDir(comps, { abs, rel });
        this.writes.mark(rel);
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
        this.symlinkMeta(h, rel, abs, entryName, true);
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
          this.writes.mark(rel);
          return; // a link to itself: nothing to do
        }
        if (st) this.remove(rel, abs, st);
        try {
          fs.linkSync(this.r.abs(trel), abs);
        } catch (e) {
          throw wrapIo(e, "link", entryName);
        }
        this.writes.mark(rel);
        return;
      }
      case "char":
      case "block":
      case "fifo": {
        if (st) this.remove(rel, abs, st);
        if (this.state.rootless && h.type !== "fifo") {
          // as umoci: devices cannot be created without privileges; leave an empty placeholder
          try {
            // records of files still being finished come first: an inode number may be reused
            if (this.state.written) this.fin?.collect(0);
            const fd = fs.openSync(abs, CREATE_FLAGS, 0o600);
            try {
              this.state.written?.recordEmpty(fd);
            } finally {
              fs.closeSync(fd);
            }
          } catch (e) {
            throw wrapIo(e, "create placeholder", entryName);
          }
        } else {
          mknod(abs, h.type, h.devmajor, h.devminor, entryName);
        }
        this.owner(h, rel, abs, false);
        this.chmod(abs, h.mode, entryName);
        this.later.queueXattrs(h, rel, abs);
        this.times(h, abs, entryName, false);
        this.writes.mark(rel);
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

  /** The owner to give the entry's file (host ids), or null when nothing is to change (rootless: recorded instead). */
  private ownerIds(h: TarEntryHeader, rel: string, made: boolean): { uid: number; gid: number } | null {
    const uid = this.mapId(h.uid, this.state.opts.uidMap, "uid", rel);
    const gid = this.mapId(h.gid, this.state.opts.gidMap, "gid", rel);
    if (this.state.rootless) {
      if (h.uid !== 0 || h.gid !== 0) this.state.owners.set(rel, { uid: h.uid, gid: h.gid });
      else this.state.owners.delete(rel);
      return null;
    }
    if (made && uid === this.state.euid && gid === this.state.egid) {
      // an entry this applier just made (a file created O_EXCL, a directory or
      // symlink that did not exist) is owned by this process's uid, and has its
      // gid when the directory has it too: nothing to change
      const slash = rel.lastIndexOf("/");
      if (this.state.dirGroups.get(slash < 0 ? "" : rel.slice(0, slash)) === gid) return null;
    }
    return { uid, gid };
  }

  private owner(h: TarEntryHeader, rel: string, abs: string, link: boolean, fd = -1, made = fd >= 0): void {
    const ids = this.ownerIds(h, rel, made);
    if (!ids) return;
    const { uid, gid } = ids;
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

  private times(h: TarEntryHeader, abs: string, rel: string, link: boolean, fd = -1): void {
    try {
      if (fd >= 0) fs.futimesSync(fd, entryAtime(h), h.mtime);
      else if (link) fs.lutimesSync(abs, entryAtime(h), h.mtime);
      else fs.utimesSync(abs, entryAtime(h), h.mtime);
    } catch (e) {
      throw wrapIo(e, "set times", rel);
    }
  }

  /**
   * Runs `make` (a mkdir or symlink of a new entry): true when it made it,
   * false when something is in the way (EEXIST); other errors are thrown,
   * naming the entry.
   */
  private made(make: () => void, op: string, entryName: string): boolean {
    try {
      make();
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw wrapIo(e, op, entryName);
    }
  }

  /** Owner, xattrs and times of the symlink just made at `abs`. */
  private symlinkMeta(h: TarEntryHeader, rel: string, abs: string, entryName: string, made: boolean): void {
    this.owner(h, rel, abs, true, -1, made);
    this.later.queueXattrs(h, rel, abs, true);
    this.times(h, abs, entryName, true);
    this.writes.mark(rel);
  }

  private dirMeta(h: TarEntryHeader, rel: string, abs: string, made = false): void {
    this.owner(h, rel || ".", abs, false, -1, made);
    if (!this.state.rootless) this.state.dirGroups.set(rel, this.mapId(h.gid, this.state.opts.gidMap, "gid", rel || "."));
    // The mode applies at once (children created later inherit setgid and its group,
    // as on any filesystem and as umoci does); rootless keeps u+rwx until the layer ends.
    this.chmod(abs, this.state.rootless ? (h.mode | 0o700) : h.mode, rel || ".");
    this.later.queueXattrs(h, rel, abs);
    this.later.declareDir(h, rel);
    if (this.state.rootless) this.state.fixedDirs.delete(rel);
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
      this.hash?.data(chunk, this.pos);
    } catch (e) {
      const name = this.curRel;
      this.closeFd();
      throw this.wrap(wrapIo(e, "write", name), name);
    }
    this.progress(chunk.length);
  }

  hole(length: number): void {
    if (this.fd < 0) return;
    this.hash?.zeros(length);
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
      } catch { /* already unusable: nothing to keep */ }
      this.fd = -1;
    }
    this.hash = null;
    this.given = null;
  }

  contentDigest(sha256hex: string): void {
    if (this.fd >= 0) this.given = sha256hex;
  }

  entryEnd(): void {
    if (this.fd < 0 || !this.cur) return;
    const h = this.cur;
    const rel = this.curRel;
    const abs = this.r.abs(rel);
    if (this.fin) {
      this.finishElsewhere(h, rel, abs, this.fin);
      return;
    }
    try {
      if (this.sparse) fs.ftruncateSync(this.fd, h.size);
      this.owner(h, rel, abs, false, this.fd);
      if (!this.modeDone) this.chmod(abs, h.mode, rel, this.fd);
      this.later.queueXattrs(h, rel, abs);
      this.times(h, abs, rel, false, this.fd);
      const written = this.state.written;
      const mine = this.hash?.end(this.pos);
      if (mine) written!.finish(this.fd, mine.hex, mine.length);
      // the reader's digest covers the bytes and holes delivered: exact only when they make the whole file
      else if (this.given !== null && written && this.pos === h.size) written.finish(this.fd, this.given, this.pos);
      this.hash = null;
      this.given = null;
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

  /** `entryEnd` with a worker making the last system calls: hands the descriptor over. */
  private finishElsewhere(h: TarEntryHeader, rel: string, abs: string, fin: FinishQueue<FinishToken>): void {
    const fd = this.fd;
    let flags = this.modeDone ? 0 : FinishFlag.CHMOD;
    let uid = 0;
    let gid = 0;
    let hex: string | null = null;
    let length = this.pos;
    try {
      if (this.sparse) fs.ftruncateSync(fd, h.size);
      const ids = this.ownerIds(h, rel, true);
      if (ids) {
        flags |= FinishFlag.CHOWN;
        uid = ids.uid;
        gid = ids.gid;
      }
      this.later.queueXattrs(h, rel, abs);
      if (this.state.written) {
        const mine = this.hash?.end(this.pos);
        if (mine) {
          hex = mine.hex;
          length = mine.length;
        } // the reader's digest covers the bytes and holes delivered: exact only when they make the whole file
        else if (this.given !== null && this.pos === h.size) hex = this.given;
      }
    } catch (e) {
      this.closeFd();
      throw this.wrap(e, rel);
    }
    if (hex !== null) flags |= FinishFlag.STAT;
    this.fd = -1;
    this.cur = null;
    this.hash = null;
    this.given = null;
    try {
      fin.post({ rel, hex, written: length }, fd, flags, uid, gid, h.mode, entryAtime(h), h.mtime);
    } catch (e) {
      // an earlier file's error, met while waiting for room: this descriptor was not handed over
      try {
        fs.closeSync(fd);
      } catch { /* the error above is the one reported */ }
      throw e;
    }
  }

  /** The result of a file finished by the worker: its error, or its digest recorded. */
  private finished(t: FinishToken, r: FinishResult): void {
    if (r.status !== 0) {
      const err = Object.assign(new Error(`${r.code}: ${r.message || "failed"}`), { code: r.code });
      throw this.wrap(wrapIo(err, FINISH_OPS[r.status - 1] ?? "close", t.rel), t.rel);
    }
    if (t.hex !== null) this.state.written?.recordStat(r, t.hex, t.written);
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
    this.later.forget(rel, false);
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
      this.later.forget(crel, false);
    }
    try {
      fs.rmdirSync(abs);
    } catch (e) {
      throw wrapIo(e, "remove", rel);
    }
    this.later.forget(rel, true);
    this.state.fixedDirs.delete(rel);
    this.state.dirGroups.delete(rel);
  }

  /** Removes the children of directory `rel` that this layer did not write (recursing into ones it wrote below). */
  private clearLower(rel: string, abs: string): void {
    this.later.keepParentTimes(rel, abs);
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
      const keep = this.writes.covers(crel);
      if (!keep) this.remove(crel, cabs, st);
      else if (st.isDirectory()) this.clearLower(crel, cabs);
    }
  }

  /** Removes `name` in the directory `parentComps` unless this layer wrote it (then only what lies below it from lower layers). */
  private whiteout(parentComps: string[], name: string): void {
    const dir = this.r.resolveDir(parentComps, false);
    if (!dir) return;
    const rel = dir.rel === "" ? name : dir.rel + "/" + name;
    const abs = this.r.abs(rel);
    this.later.keepParentTimes(dir.rel, dir.abs);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      throw wrapIo(e, "lstat", rel);
    }
    if (!st) return;
    if (this.writes.covers(rel)) {
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
    this.later.finish();
    // modes changed: later layers must walk again (rootless mode re-opens closed directories)
    this.r.invalidate();
  }
}
