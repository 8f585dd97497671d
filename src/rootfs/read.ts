/**
 * Reading small files out of an extracted image rootfs safely.
 *
 * Paths are resolved by {@linkcode RootResolver} the way the kernel would
 * inside a chroot at `root`: symlinks in the image (absolute or relative,
 * `..` included) are followed but never leave `root`, so an image cannot
 * make the host read its `/etc/shadow` by shipping `etc -> /host/etc`. The
 * file itself is opened with `O_NOFOLLOW|O_NONBLOCK` and must be a regular
 * file no larger than the caller's bound (a FIFO or device never blocks or
 * streams forever).
 *
 * @module
 */
import * as fs from "node:fs";
import { type ErrorCode, OcigenError, wrapIo } from "../errors.ts";
import { ResolveError, RootResolver } from "./resolve.ts";

/**
 * Resolves `path` (absolute inside the image) to a host path below `root`,
 * following symlinks as a chroot would, the last component included.
 * Returns null when a component is missing or not a directory. Throws
 * (`code`) on symlink loops.
 *
 * @example
 * ```ts
 * resolveInRoot("/var/lib/oci/extracts/.store/sha256/ab/rootfs", "/etc/passwd"); // ".../rootfs/etc/passwd"
 * ```
 */
export function resolveInRoot(root: string, path: string, code: ErrorCode = "EGENERATE"): string | null {
  try {
    return new RootResolver(root).resolveFollow(path.split("/"))?.abs ?? null;
  } catch (e) {
    if (e instanceof ResolveError) {
      if (/ is not a directory$/.test(e.message)) return null;
      throw new OcigenError(code, `${path} in ${root}: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Reads a regular file at `path` inside the image at `root`, at most `max`
 * bytes (error `code` if larger or not a regular file). Returns null if it
 * does not exist.
 *
 * @example
 * ```ts
 * const passwd = readFileInRoot(rootfs, "/etc/passwd", 1 << 20);
 * ```
 */
export function readFileInRoot(root: string, path: string, max: number, code: ErrorCode = "EGENERATE"): Uint8Array | null {
  const host = resolveInRoot(root, path, code);
  if (host === null) return null;
  let fd: number;
  try {
    fd = fs.openSync(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    if (c === "ENOENT") return null;
    throw wrapIo(e, "open", host);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new OcigenError(code, `${path} in the image is not a regular file`);
    if (st.size > max) throw new OcigenError(code, `${path} in the image is larger than ${max} bytes`);
    const buf = new Uint8Array(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}

/** Docker's default PATH, used when the image Env has none. */
export const DEFAULT_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Resolves a plain command name (no `/`) against the image's `PATH` inside
 * the rootfs at `root`, as a container runtime would; returns the absolute
 * path inside the image, or null if no executable regular file matches.
 *
 * @example
 * ```ts
 * findInImagePath(rootfs, "nginx", ["PATH=/usr/sbin:/usr/bin"]); // "/usr/sbin/nginx"
 * ```
 */
export function findInImagePath(root: string, name: string, env: readonly string[] | undefined): string | null {
  const pathVar = (env ?? []).filter((e) => typeof e === "string" && e.startsWith("PATH=")).pop()?.slice(5) ?? DEFAULT_IMAGE_PATH;
  for (const dir of pathVar.split(":")) {
    if (!dir.startsWith("/")) continue;
    const candidate = (dir.endsWith("/") ? dir : dir + "/") + name;
    const host = resolveInRoot(root, candidate);
    if (host === null) continue;
    try {
      const st = fs.statSync(host);
      if (st.isFile() && (st.mode & 0o111) !== 0) return candidate.replace(/\/+/g, "/");
    } catch {
      continue;
    }
  }
  return null;
}
