/**
 * The one way ocigen opens a file that belongs to an OCI image layout
 * (`oci-layout`, `index.json`, `refs/*`, `blobs/<alg>/<hex>`). A layout is
 * untrusted input: any of those names may be a FIFO (an open or read would
 * block forever), a device (`/dev/zero` never ends), a symlink to a host file,
 * or a huge sparse file. The rules:
 *
 * 1. Regular files only. The name is `lstat`ed first, so a FIFO, socket,
 *    device or directory is refused without being opened; then it is opened
 *    with `O_NOFOLLOW | O_NONBLOCK` and the descriptor is `fstat`ed: it must
 *    be the same regular file (device and inode) that was checked. A swap
 *    between the two calls therefore fails (ELOOP for a symlink swapped in,
 *    an inode mismatch otherwise) instead of reading something else, and a
 *    FIFO swapped in cannot block the open.
 * 2. Symlinks stay inside. A symlink in the layout is followed only when its
 *    target, fully resolved, lies inside the layout's real directory (a blob
 *    shared as `ln -s ../sha256/<hex>` works; a blob `-> /dev/zero` or
 *    `-> /etc/shadow` is refused). The same holds for the directories on the
 *    way (`blobs/`, `blobs/sha256/`, `refs/a/`): their resolved path must be
 *    inside the layout. Directory resolutions are cached per {@linkcode LayoutRoot},
 *    so a directory swapped for a symlink during one command can still be
 *    followed once; rule 1 still guarantees a regular file, and every blob is
 *    verified against its digest, so such a race can at worst make a read
 *    fail, never yield unverified content.
 * 3. Bounded size. A blob's size is checked against its descriptor on the
 *    `fstat` result, before any byte is read, and reads stop one byte past
 *    the expected size; other files (`index.json`, `oci-layout`, `refs/*`)
 *    have a cap ({@linkcode MAX_INDEX_FILE}, {@linkcode MAX_SMALL_FILE}) and
 *    are refused as "too large" from their size, never read whole and then
 *    checked.
 *
 * Errors name the file: `EBADFILE` for rule 1 and 2, `ESIZE` for rule 3 (one
 * line each). A missing file keeps its errno error (ENOENT/ENOTDIR), which
 * callers turn into their own "missing" message.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname, join, sep } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";

/** Cap for `index.json` (and the JSON blobs: manifests, configs, nested indexes). */
export const MAX_INDEX_FILE = 64 * 1024 * 1024;
/** Cap for `oci-layout` and the pre-1.0 `refs/*` descriptor files. */
export const MAX_SMALL_FILE = 64 * 1024;

const O_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0);

/** A layout directory as the reader sees it: its real path (resolved once) and the directories already checked. */
export class LayoutRoot {
  /** The layout directory as given. */
  readonly dir: string;
  #real: string | undefined;
  readonly #dirs = new Map<string, string>();

  /**
   * `real`: the directory's real path when the caller has just resolved it
   * (the generator's discovery walk knows it without a system call);
   * otherwise it is resolved on first use.
   *
   * @example
   * ```ts
   * const root = new LayoutRoot("/var/lib/oci/layouts/web");
   * ```
   */
  constructor(dir: string, real?: string) {
    this.dir = dir;
    this.#real = real;
  }

  /**
   * The layout directory with every symlink resolved.
   *
   * @example
   * ```ts
   * new LayoutRoot("/l").real; // "/srv/l" if /l -> /srv/l
   * ```
   */
  get real(): string {
    if (this.#real === undefined) {
      try {
        this.#real = fs.realpathSync.native(this.dir);
      } catch (e) {
        throw wrapIo(e, "resolve", this.dir);
      }
    }
    return this.#real;
  }

  /** True if `p` (already resolved) is the layout directory or below it. */
  contains(p: string): boolean {
    const r = this.real;
    return p === r || p.startsWith(r === sep ? r : r + sep);
  }

  /** Resolves a directory of the layout, checking it stays inside (cached). */
  checkedDir(abs: string, what: What): string {
    if (abs === this.dir) return this.real;
    const hit = this.#dirs.get(abs);
    if (hit !== undefined) return hit;
    const real = this.#plainBelow(abs) ?? fs.realpathSync.native(abs); // ENOENT/ENOTDIR propagate: the caller reports "missing"
    if (!this.contains(real)) {
      throw new OcigenError("EBADFILE", `${named(what)}: ${abs} leads out of the layout (to ${real}): refusing to read through it`);
    }
    this.#dirs.set(abs, real);
    return real;
  }

  /**
   * The real path of `abs` when it is below the layout directory and every
   * component on the way is a directory, not a symlink (one `lstat` each,
   * instead of resolving the whole path from `/` again); undefined otherwise
   * (the caller resolves it fully).
   */
  #plainBelow(abs: string): string | undefined {
    const prefix = this.dir.endsWith(sep) ? this.dir : this.dir + sep;
    if (!abs.startsWith(prefix)) return undefined;
    const parent = dirname(abs);
    const base = parent === this.dir ? this.real : this.#dirs.get(parent) ?? this.#plainBelow(parent);
    if (base === undefined) return undefined;
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return undefined;
    const real = (base === sep ? "" : base) + sep + abs.slice(parent.length + (parent.endsWith(sep) ? 0 : 1));
    this.#dirs.set(abs, real);
    return real;
  }
}

/**
 * `dir/rel`, the same string `path.join` makes, without its normalising
 * pass when both are plain already: `dir` absolute and `rel` relative, with
 * no `.`/`..` component (nor any name starting with `.`), no empty one, no
 * trailing `/` — as the layout's own names always are.
 *
 * @example
 * ```ts
 * layoutPath("/l", "blobs/sha256/ab.."); // "/l/blobs/sha256/ab.."
 * ```
 */
export function layoutPath(dir: string, rel: string): string {
  const plain = (p: string) => !p.endsWith("/") && !p.includes("/.") && !p.includes("//");
  if (rel === "" || rel.startsWith(".") || rel.startsWith("/") || !plain(rel) || !dir.startsWith("/") || dir === "/" || !plain(dir)) {
    return join(dir, rel);
  }
  return dir + "/" + rel;
}

/** What {@linkcode openLayoutFile} opened. */
export interface OpenedLayoutFile {
  /** The open descriptor (read-only); the caller closes it. */
  fd: number;
  /** Size from `fstat` of the descriptor. */
  size: number;
  /** The path opened (symlinks inside the layout resolved). */
  path: string;
}

function kindName(st: fs.Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isDirectory()) return "a directory";
  if (st.isSymbolicLink()) return "a symlink";
  return "not a regular file";
}

/**
 * How a caller names the file in errors: the text, or a function that makes
 * it (called only for an error: the generator opens hundreds of files per
 * boot and reports almost none).
 */
export type What = string | (() => string);

function named(what: What): string {
  return typeof what === "string" ? what : what();
}

function notRegular(what: What, st: fs.Stats): OcigenError {
  return new OcigenError("EBADFILE", `${named(what)}: not a regular file (${kindName(st)}): refusing to read it`);
}

/**
 * The "too large" error for a file over its cap.
 *
 * @example
 * ```ts
 * throw tooLarge("/l/index.json", 5e9, MAX_INDEX_FILE);
 * ```
 */
export function tooLarge(what: What, size: number, max: number): OcigenError {
  return new OcigenError("ESIZE", `${named(what)}: too large (${size} bytes, the limit is ${max})`);
}

/**
 * Opens `rel` (a path relative to the layout, `/`-separated) under the
 * rules above. `max` refuses a larger file before anything is read. Returns
 * the descriptor and its size; the caller closes it.
 *
 * @example
 * ```ts
 * const f = openLayoutFile(new LayoutRoot("/l"), "blobs/sha256/ab..", "/l: layer sha256:ab..");
 * try { fs.readSync(f.fd, buf); } finally { fs.closeSync(f.fd); }
 * ```
 */
export function openLayoutFile(root: LayoutRoot, rel: string, what: What, max = Infinity): OpenedLayoutFile {
  const abs = layoutPath(root.dir, rel);
  let path = abs;
  let lst = fs.lstatSync(abs);
  if (lst.isSymbolicLink()) {
    let real: string;
    try {
      real = fs.realpathSync.native(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw new OcigenError("EBADFILE", `${named(what)}: symlink loop at ${abs}`);
      throw e; // dangling: missing
    }
    if (!root.contains(real)) {
      throw new OcigenError("EBADFILE", `${named(what)}: a symlink out of the layout (to ${real}): refusing to read it`);
    }
    path = real;
    lst = fs.lstatSync(real);
  } else {
    const parent = dirname(abs);
    if (parent !== root.dir) root.checkedDir(parent, what);
  }
  if (!lst.isFile()) throw notRegular(what, lst);
  if (lst.size > max) throw tooLarge(what, lst.size, max);
  let fd: number;
  try {
    fd = fs.openSync(path, O_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP") {
      throw new OcigenError("EBADFILE", `${named(what)}: ${path} turned into a symlink while being opened: refusing to read it`);
    }
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notRegular(what, st);
    if (st.ino !== lst.ino || st.dev !== lst.dev) {
      throw new OcigenError("EBADFILE", `${named(what)}: ${path} was replaced while being opened: refusing to read it`);
    }
    if (st.size > max) throw tooLarge(what, st.size, max);
    return { fd, size: st.size, path };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Reads at most `cap` bytes from `fd` (from its current offset); a result of
 * exactly `cap` bytes means "at least that many".
 *
 * @example
 * ```ts
 * const head = readAtMost(fd, 4097); // length 4097: the file is longer than 4096
 * ```
 */
export function readAtMost(fd: number, cap: number): Uint8Array {
  const buf = new Uint8Array(cap);
  let n = 0;
  while (n < cap) {
    const k = fs.readSync(fd, buf, n, cap - n, null);
    if (k === 0) break;
    n += k;
  }
  return n === cap ? buf : buf.subarray(0, n);
}

/**
 * Reads a whole layout file of at most `max` bytes (`ESIZE` "too large"
 * past it, decided from its size before reading, and again if it grows
 * while being read).
 *
 * @example
 * ```ts
 * const bytes = readLayoutFile(new LayoutRoot("/l"), "index.json", "/l/index.json", MAX_INDEX_FILE);
 * ```
 */
export function readLayoutFile(root: LayoutRoot, rel: string, what: What, max: number): Uint8Array {
  const f = openLayoutFile(root, rel, what, max);
  try {
    const bytes = readAtMost(f.fd, Math.min(f.size, max) + 1);
    if (bytes.length > max) throw tooLarge(what, bytes.length, max);
    return bytes;
  } catch (e) {
    if (e instanceof OcigenError) throw e;
    throw wrapIo(e, "read", f.path);
  } finally {
    fs.closeSync(f.fd);
  }
}

/**
 * Promise-based read into `buf` at `off` (the runtime's thread pool does the
 * read; works on Node and Deno with a descriptor from {@linkcode openLayoutFile}).
 *
 * @example
 * ```ts
 * const n = await readFd(f.fd, buf, 0, buf.length);
 * ```
 */
export function readFd(fd: number, buf: Uint8Array, off: number, len: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, off, len, null, (e, n) => (e ? reject(e) : resolve(n)));
  });
}
