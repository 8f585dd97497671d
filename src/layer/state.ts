/**
 * The state one unpack shares across its layers ({@linkcode ApplyState}: the
 * root and its resolver, rootless mode, owners recorded instead of applied,
 * directories opened up for an unprivileged owner, the digests of the files
 * written), the options of an
 * unpack, and the two facts about this process applying depends on
 * (running as root; the umask).
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import type { InflateMode } from "../compress/inflate-worker.ts";
import { wrapIo } from "../errors.ts";
import { RootResolver } from "../rootfs/resolve.ts";
import type { IdMapping } from "./idmap.ts";
import { WrittenDigests } from "./written.ts";

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
  /**
   * Read layer tars with the WebAssembly tar kernel (`tar/kernel.ts`) instead
   * of the TypeScript parser: same entries, same errors (default on; for a
   * layer inflated in a worker thread, the worker parses it too). `false`
   * keeps the TypeScript parser, the reference.
   */
  tarKernel?: boolean;
  /**
   * Compute the sha256 of every regular file as it is written
   * ({@linkcode ApplyState.written}), for a bundle manifest that records
   * digests without reading the tree again (default false).
   */
  recordDigests?: boolean;
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
  /**
   * Directories whose group this unpack set (owners applied), by
   * root-relative path, until they are removed. A file created in one whose
   * group is this process's gid gets that group whatever the directory's
   * setgid bit or the mount's group rule, so the file's own `fchown` to this
   * process's ids is skipped.
   */
  readonly dirGroups = new Map<string, number>();
  /** This process's effective uid and gid (-1 where the runtime cannot tell). */
  readonly euid: number = typeof process.geteuid === "function" ? process.geteuid() : -1;
  readonly egid: number = typeof process.getegid === "function" ? process.getegid() : -1;
  /** With `opts.recordDigests`: the sha256 of the regular files written, by inode. */
  readonly written: WrittenDigests | null;
  private myUid = typeof process.getuid === "function" ? process.getuid() : -1;
  /**
   * The permission bits a new file keeps in this tree, or `null` when not
   * known (then every file gets an explicit chmod). Creating a file ANDs the
   * requested mode with the complement of the umask or, below a directory
   * with a default ACL, with that ACL's permissions (the umask is ignored
   * then), so a file whose mode fits is created with its final mode and
   * needs no chmod. Found by creating a probe file (mode 0777) in the root
   * when the state is made, and only when the root is empty: every directory
   * the unpack then makes inherits the root's default ACL, so the bits hold
   * throughout (until a layer sets xattrs of its own, which may be ACLs: the
   * applier stops using them then). An existing tree may carry other default
   * ACLs further down: `null`.
   */
  readonly keptModeBits: number | null;

  constructor(readonly root: string, readonly opts: ApplyOptions = {}) {
    this.rootless = opts.rootless ?? !runningAsRoot();
    this.keptModeBits = probeKeptModeBits(root);
    this.written = opts.recordDigests ? new WrittenDigests() : null;
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

/**
 * The permission bits a file created in the empty directory `root` keeps
 * (see `ApplyState.keptModeBits`); `null` when `root` is not empty or
 * cannot be probed.
 */
function probeKeptModeBits(root: string): number | null {
  try {
    if (fs.readdirSync(root).length > 0) return null;
    const probe = path.join(root, `.ocigen-mode-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const fd = fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o777);
    try {
      return fs.fstatSync(fd).mode & 0o777;
    } finally {
      fs.closeSync(fd);
      fs.unlinkSync(probe);
    }
  } catch {
    return null;
  }
}
