/**
 * Reading small files out of an extracted image rootfs safely, and resolving
 * the image's `User` against the image's own `/etc/passwd` and `/etc/group`.
 *
 * Paths are resolved the way the kernel would inside a chroot at `root`:
 * symlinks in the image (absolute or relative, `..` included) are followed
 * but never leave `root`, so an image cannot make the host read its
 * `/etc/shadow` by shipping `etc -> /host/etc`.
 *
 * @module
 */
import * as fs from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";

/**
 * Resolves `path` (absolute inside the image) to a host path below `root`,
 * following symlinks as a chroot would. Returns null when a component is
 * missing. Throws EGENERATE on symlink loops.
 *
 * @example
 * ```ts
 * resolveInRoot("/var/lib/oci/extracts/.store/sha256/ab/rootfs", "/etc/passwd");
 * ```
 */
export function resolveInRoot(root: string, path: string): string | null {
  const todo = path.split("/").filter((c) => c !== "" && c !== ".");
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === "..") {
      done.pop();
      continue;
    }
    const host = root + "/" + [...done, c].join("/");
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw wrapIo(e, "lstat", host);
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new OcigenError("EGENERATE", `${path} in ${root}: too many levels of symbolic links`);
      const target = fs.readlinkSync(host);
      if (target.startsWith("/")) done.length = 0;
      todo.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return null;
    done.push(c);
  }
  return root + (done.length ? "/" + done.join("/") : "");
}

/**
 * Reads a regular file at `path` inside the image at `root`, at most
 * `max` bytes (EGENERATE if larger). Returns null if it does not exist.
 *
 * @example
 * ```ts
 * const passwd = readFileInRoot(rootfs, "/etc/passwd", 1 << 20);
 * ```
 */
export function readFileInRoot(root: string, path: string, max: number): Uint8Array | null {
  const host = resolveInRoot(root, path);
  if (host === null) return null;
  let fd: number;
  try {
    fd = fs.openSync(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw wrapIo(e, "open", host);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new OcigenError("EGENERATE", `${path} in the image is not a regular file`);
    if (st.size > max) throw new OcigenError("EGENERATE", `${path} in the image is larger than ${max} bytes`);
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

/** One `/etc/passwd` entry. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One `/etc/group` entry. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * Parses `/etc/passwd` text (malformed lines are skipped).
 *
 * @example
 * ```ts
 * parsePasswd("root:x:0:0:root:/root:/bin/sh\n")[0].home; // "/root"
 * ```
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" });
  }
  return out;
}

/**
 * Parses `/etc/group` text (malformed lines are skipped).
 *
 * @example
 * ```ts
 * parseGroup("wheel:x:10:alice,bob\n")[0].members; // ["alice", "bob"]
 * ```
 */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || !/^\d+$/.test(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? "").split(",").filter((m) => m !== "") });
  }
  return out;
}

/** A resolved image user. */
export interface ResolvedUser {
  uid: number;
  gid: number;
}

const MAX_ID = 0xfffffffe;

/**
 * True if `user` (the image config `User`) is purely numeric (`uid` or
 * `uid:gid`), so it needs no passwd lookup except for the primary group of
 * a bare `uid`.
 *
 * @example
 * ```ts
 * isNumericUser("1000:1000"); // true
 * isNumericUser("nginx");     // false
 * ```
 */
export function isNumericUser(user: string): boolean {
  return /^\d+(:\d+)?$/.test(user);
}

/**
 * Resolves the image config `User` (`name`, `uid`, `name:group`,
 * `uid:gid`, ...) as runc/umoci do: names are looked up in the image's
 * passwd/group; a bare user takes its primary group from passwd, or 0 when
 * the uid is not listed. `passwd`/`group` may be null (no such file).
 * Throws EGENERATE for an unknown name or an out-of-range id.
 *
 * @example
 * ```ts
 * resolveUser("nginx", parsePasswd("nginx:x:101:101::/:/sbin/nologin"), []); // { uid: 101, gid: 101 }
 * resolveUser("1000", null, null); // { uid: 1000, gid: 0 }
 * ```
 */
export function resolveUser(user: string, passwd: PasswdEntry[] | null, group: GroupEntry[] | null): ResolvedUser {
  const i = user.indexOf(":");
  const u = i < 0 ? user : user.slice(0, i);
  const g = i < 0 ? "" : user.slice(i + 1);
  let uid: number;
  let gid = 0;
  let entry: PasswdEntry | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    entry = passwd?.find((e) => e.uid === uid);
  } else {
    if (u === "") throw new OcigenError("EGENERATE", `Bad image user ${JSON.stringify(user)}`);
    entry = passwd?.find((e) => e.name === u);
    if (!entry) throw new OcigenError("EGENERATE", `Cannot resolve image user ${JSON.stringify(u)}: not in the image's /etc/passwd`);
    uid = entry.uid;
  }
  if (entry) gid = entry.gid;
  if (g !== "") {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const ge = group?.find((e) => e.name === g);
      if (!ge) throw new OcigenError("EGENERATE", `Cannot resolve image group ${JSON.stringify(g)}: not in the image's /etc/group`);
      gid = ge.gid;
    }
  }
  if (uid > MAX_ID || gid > MAX_ID) throw new OcigenError("EGENERATE", `Bad image user ${JSON.stringify(user)}: id out of range`);
  return { uid, gid };
}

/**
 * Resolves `user` against the passwd/group files of the rootfs at `root`.
 *
 * @example
 * ```ts
 * resolveUserInRoot("/var/lib/oci/extracts/.store/sha256/ab/rootfs", "nginx");
 * ```
 */
export function resolveUserInRoot(root: string, user: string): ResolvedUser {
  const dec = new TextDecoder();
  const p = readFileInRoot(root, "/etc/passwd", 16 << 20);
  const g = readFileInRoot(root, "/etc/group", 16 << 20);
  return resolveUser(user, p ? parsePasswd(dec.decode(p)) : null, g ? parseGroup(dec.decode(g)) : null);
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
