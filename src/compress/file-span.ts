/**
 * File spans: parts of a compressor's input that are a range of a file on
 * disk, read by the thread that compresses them instead of the thread that
 * plans the stream.
 *
 * A layer's tar is headers (small, made by the planning thread) and file
 * contents (most of the bytes). Parallel gzip (`pgzip.ts`) takes the
 * contents as {@linkcode FileSpan}s: each block it cuts carries its literal
 * bytes in place and a list of {@linkcode Hole}s, and the deflate worker
 * fills the holes ({@linkcode fillHoles}) before deflating. The reads (open,
 * fstat, pread, close: most of a commit's system time) thus run on the
 * workers, beside the deflate, not on the thread that walks the tree.
 *
 * The checks are those of the in-thread reader (`tarStream` in
 * `src/repack/layer-writer.ts`): the file is opened without following a
 * symlink and without blocking (a FIFO swapped in never hangs), must still
 * be a regular file with the inode the scan saw, and must not have shrunk;
 * bytes a file grew by are not read (the header's size was already
 * written).
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";

/**
 * `len` bytes of the file at `path` from offset `pos`: the contents of the
 * layer entry `name` (for messages), whose scan saw inode `ino` (0: unknown)
 * and size `size`.
 *
 * @example
 * ```ts
 * const s: FileSpan = { path: "/b/rootfs/etc/motd", name: "etc/motd", pos: 0, len: 6, size: 6, ino: 1234 };
 * ```
 */
export interface FileSpan {
  path: string;
  name: string;
  pos: number;
  len: number;
  size: number;
  ino: number;
}

/**
 * A {@linkcode FileSpan} placed in a block buffer at byte `at`.
 *
 * @example
 * ```ts
 * const h: Hole = { ...span, at: 512 };
 * ```
 */
export interface Hole extends FileSpan {
  at: number;
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * Reads every hole's bytes into `buf` (consecutive holes of one file share
 * one open). Throws an {@linkcode OcigenError} naming the entry when a file
 * cannot be opened, was replaced, or shrank.
 *
 * @example
 * ```ts
 * fillHoles(block, [{ path: "/tree/a", name: "a", pos: 0, len: 3, size: 3, ino: 0, at: 512 }]);
 * ```
 */
export function fillHoles(buf: Uint8Array, holes: readonly Hole[]): void {
  let fd = -1;
  let openPath = "";
  try {
    for (const h of holes) {
      if (h.len === 0) continue;
      if (fd < 0 || openPath !== h.path) {
        if (fd >= 0) fs.closeSync(fd);
        fd = -1;
        fd = openChecked(h);
        openPath = h.path;
      }
      let got = 0;
      while (got < h.len) {
        const n = fs.readSync(fd, buf, h.at + got, h.len - got, h.pos + got);
        if (n <= 0) break;
        got += n;
      }
      if (got < h.len) {
        throw new OcigenError("EREPACK", `Cannot repack ${h.name}: file shrank while being read (${h.pos + got} of ${h.size} bytes)`);
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function openChecked(h: Hole): number {
  let fd: number;
  try {
    fd = fs.openSync(h.path, OPEN_FLAGS);
  } catch (err) {
    throw wrapIo(err, "open", h.path);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || (h.ino > 0 && st.ino > 0 && st.ino !== h.ino)) {
      throw new OcigenError("EREPACK", `Cannot repack ${h.name}: it was replaced while being read`);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}
