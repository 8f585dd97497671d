/**
 * The `copy` step: host files and trees into a rootfs, every destination
 * resolved inside the rootfs ({@linkcode resolveInRoot}), existing symlinks at
 * a destination replaced rather than followed.
 *
 * Semantics of `SRC DEST` are those of `cp -a SRC DEST`: when DEST is an
 * existing directory (or ends with `/`), SRC goes inside it under its own
 * name; otherwise SRC becomes DEST. Modes, mtimes and symlinks are kept;
 * owners are kept when running as root. FIFOs, sockets and devices are skipped
 * with a warning.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { OcigenError } from "../errors.ts";
import { log } from "../log.ts";
import { errnoReason, mkdirInRoot, resolveInRoot } from "./rootpath.ts";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function removeAny(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (st.isDirectory()) fs.rmSync(p, { recursive: true, force: true });
  else fs.unlinkSync(p);
}

function copyMeta(st: fs.Stats, dest: string, symlink: boolean): void {
  if (isRoot) fs.lchownSync(dest, st.uid, st.gid);
  if (!symlink) {
    fs.chmodSync(dest, st.mode & 0o7777);
    fs.utimesSync(dest, st.atime, st.mtime);
  } else {
    try {
      fs.lutimesSync(dest, st.atime, st.mtime);
    } catch { /* not supported */ }
  }
}

/**
 * Copies host path `src` to absolute `dest` (already resolved inside the
 * rootfs; its parent exists). Children are created below it by name only.
 * Errors read `Cannot copy SRC to DEST: why`, naming `names.src` and
 * `names.dest` (default: `src` and `dest`) extended by the failing child's
 * path, so callers can name what the user wrote instead of working paths.
 *
 * @example
 * ```ts
 * copyTree("/etc/hosts", "/tmp/rootfs/etc/hosts");
 * copyTree("/specs/files/hosts", "/tmp/rootfs/etc/hosts", { src: "files/hosts", dest: "/etc/hosts" });
 * ```
 */
export function copyTree(src: string, dest: string, names: { src: string; dest: string } = { src, dest }): void {
  const fail = (e: unknown): never => {
    if (e instanceof OcigenError) throw e;
    throw new OcigenError("EIO", `Cannot copy ${names.src} to ${names.dest}: ${errnoReason(e)}`, { cause: e });
  };
  let st: fs.Stats;
  try {
    st = fs.lstatSync(src);
  } catch (e) {
    return fail(e);
  }
  try {
    if (st.isDirectory()) {
      let dst: fs.Stats | undefined;
      try {
        dst = fs.lstatSync(dest);
      } catch { /* missing */ }
      if (dst && !dst.isDirectory()) removeAny(dest);
      if (!dst || !dst.isDirectory()) fs.mkdirSync(dest, { mode: 0o700 });
      for (const name of fs.readdirSync(src).sort()) {
        copyTree(path.join(src, name), path.join(dest, name), { src: path.join(names.src, name), dest: path.posix.join(names.dest, name) });
      }
      copyMeta(st, dest, false);
    } else if (st.isFile()) {
      removeAny(dest);
      fs.copyFileSync(src, dest, fs.constants.COPYFILE_EXCL);
      copyMeta(st, dest, false);
    } else if (st.isSymbolicLink()) {
      removeAny(dest);
      fs.symlinkSync(fs.readlinkSync(src), dest);
      copyMeta(st, dest, true);
    } else {
      log.warn(`copy: skipping ${names.src}: not a file, directory or symlink`);
    }
  } catch (e) {
    fail(e);
  }
}

/**
 * Runs one `copy` pair: host `src` (relative to `baseDir`) to `dest` inside
 * `rootfs`. Errors name `src` and `dest` as written (never the rootfs's
 * working path).
 *
 * @example
 * ```ts
 * copyIntoRoot("/tmp/rootfs", "files/etc_hosts", "/etc/hosts", "/specs");
 * ```
 */
export function copyIntoRoot(rootfs: string, src: string, dest: string, baseDir: string): void {
  const from = path.resolve(baseDir, src);
  if (!fs.existsSync(from) && !isSymlink(from)) throw new OcigenError("EBUILD", `Cannot copy ${src}: no such file on the host`);
  const rel = dest.split("/").filter((c) => c !== "" && c !== ".");
  const intoDir = dest.endsWith("/") || rel.length === 0;
  // what the user calls the copy's destination inside the rootfs
  const shown = (abs: string) => "/" + path.relative(rootfs, abs).split(path.sep).join("/");
  let target = resolveInRoot(rootfs, dest, true);
  let isDir = false;
  try {
    isDir = fs.statSync(target).isDirectory();
  } catch { /* missing */ }
  if (intoDir || isDir) {
    if (!isDir) target = mkdirInRoot(rootfs, dest);
    const to = path.join(target, path.basename(from));
    copyTree(from, to, { src, dest: shown(to) });
    return;
  }
  // SRC becomes DEST: make the parent, then copy under the final name (not following a symlink there)
  const parentRel = rel.slice(0, -1).join("/");
  const parent = parentRel ? mkdirInRoot(rootfs, parentRel) : rootfs;
  const finalName = rel[rel.length - 1];
  if (finalName === "..") throw new OcigenError("EBUILD", `Cannot copy ${src} to ${dest}: destination ends with ..`);
  const to = path.join(parent, finalName);
  copyTree(from, to, { src, dest: shown(to) });
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
