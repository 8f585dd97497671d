/**
 * Crash-safe file writing: write to a temporary file beside the target,
 * fsync it, rename it over the target, fsync the directory.
 *
 * Temporary files are named `.ocigen-tmp.<pid>.<random>` so that
 * {@linkcode isStaleTemp} (used by `ocigen gc`) can tell abandoned ones
 * (owner process gone, or older than a day) from ones being written.
 *
 * @module
 */
import * as fs from "node:fs";
import { open } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { wrapIo } from "../errors.ts";

/** Prefix of every temporary file ocigen creates. */
export const TEMP_PREFIX = ".ocigen-tmp.";

/**
 * A fresh temporary path inside `dir`.
 *
 * @example
 * ```ts
 * tempPath("/l"); // "/l/.ocigen-tmp.1234.9f86d081884c7d65"
 * ```
 */
export function tempPath(dir: string): string {
  // 8 random bytes drawn once per process, then a counter: as unique, and
  // without a trip to the system's random source per file (the generator
  // writes two per unit at every boot).
  tempRandom ??= randomBytes(8).toString("hex");
  return join(dir, `${TEMP_PREFIX}${process.pid}.${tempRandom}${(tempCount++).toString(16)}`);
}

let tempRandom: string | undefined;
let tempCount = 0;

/**
 * Replaces the entry at `path` so that readers see the old one or the new
 * one, never a partial one: `make(tmp)` creates the new entry (a file, a
 * symlink…) at a temporary name in `dir` (default: `path`'s directory, which
 * must be on the same file system), then it is renamed onto `path`. On
 * failure the temporary entry is removed and the error rethrown (callers
 * wrap it with the path at fault). No fsync: for files systemd or people
 * read again at once, not for data that must survive a crash.
 *
 * @example
 * ```ts
 * replaceEntry("/run/units/app.service", (tmp) => fs.writeFileSync(tmp, text, { mode: 0o644 }));
 * replaceEntry("/x/app/rootfs", (tmp) => fs.symlinkSync("../.store/sha256/ab…/rootfs", tmp));
 * ```
 */
export function replaceEntry(path: string, make: (tmp: string) => void, dir = dirname(path)): void {
  const tmp = tempPath(dir);
  try {
    make(tmp);
    fs.renameSync(tmp, path);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch { /* ignore */ }
    throw e;
  }
}

/**
 * True if process `pid` exists on this host (EPERM counts as alive).
 *
 * @example
 * ```ts
 * pidAlive(process.pid); // true
 * ```
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true;
    try {
      return fs.existsSync(`/proc/${pid}`);
    } catch {
      return true;
    }
  }
}

/**
 * True if `name` (a file name, not a path) is an ocigen temporary file that
 * nobody writes any more: its process is gone, or it is older than a day.
 *
 * @example
 * ```ts
 * isStaleTemp(".ocigen-tmp.999999.abcd", Date.now() - 1000); // true if pid 999999 is gone
 * ```
 */
export function isStaleTemp(name: string, mtimeMs: number, now = Date.now()): boolean {
  if (!name.startsWith(TEMP_PREFIX)) return false;
  const pid = Number(name.slice(TEMP_PREFIX.length).split(".")[0]);
  if (now - mtimeMs > 24 * 3600 * 1000) return true;
  return !pidAlive(pid);
}

/**
 * fsyncs a directory so that renames into it are durable. Errors from file
 * systems that cannot fsync directories (EINVAL, EISDIR, EPERM) are ignored.
 *
 * @example
 * ```ts
 * fsyncDir("/l/blobs/sha256");
 * ```
 */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "EBADF") throw wrapIo(e, "fsync directory", dir);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Atomically replaces `path` with `data`: temp file in the same directory,
 * fsync, rename, directory fsync. On failure the temp file is removed and
 * `path` is untouched.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/l/index.json", new TextEncoder().encode("{}"));
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 0)) || ".";
  const tmp = tempPath(dir);
  let fh;
  try {
    fh = await open(tmp, "wx", mode);
  } catch (e) {
    throw wrapIo(e, "create", tmp);
  }
  try {
    await fh.writeFile(typeof data === "string" ? new TextEncoder().encode(data) : data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    try {
      fs.unlinkSync(tmp);
    } catch { /* already gone */ }
    throw wrapIo(e, "write", path);
  }
  fsyncDir(dir);
}

/**
 * This host's name, for lock files ("localhost" if unknown).
 *
 * @example
 * ```ts
 * hostName(); // "build-1"
 * ```
 */
export function hostName(): string {
  try {
    return hostname();
  } catch {
    return "localhost";
  }
}
