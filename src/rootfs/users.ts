/**
 * An image's own users and groups: the one `/etc/passwd` and `/etc/group`
 * parser of the project, and the resolution of an image config `User`
 * (`name`, `uid`, `name:group`, `uid:gid`, ...) the way runc and umoci do it.
 *
 * - a name is looked up in the image's passwd (an unknown name is an error);
 *   a number is taken as is, and its passwd entry (if any) gives the home and
 *   the primary group; a number absent from passwd gets group 0;
 * - `:group` overrides the primary group (a name is looked up in the image's
 *   group file, a number taken as is);
 * - without an explicit group, supplementary groups are the groups listing
 *   the user as a member;
 * - ids are integers 0..4294967294 (4294967295 is `(uid_t)-1`); anything
 *   else is an error naming the user.
 *
 * The files are read through {@linkcode readFileInRoot} (confined to the
 * rootfs, regular files only, bounded size), so an image cannot make the
 * host read its own `/etc/shadow` through a symlink.
 *
 * @module
 */
import { type ErrorCode, OcigenError } from "../errors.ts";
import { readFileInRoot } from "./read.ts";

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

/** A resolved image user. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Groups listing the user as a member (only when no group was given explicitly). */
  additionalGids?: number[];
  /** Home directory from the passwd entry, when there is one. */
  home?: string;
}

/**
 * The largest valid uid/gid (`(uid_t)-1` is not an id).
 *
 * @example
 * ```ts
 * if (uid > MAX_ID) throw new Error("out of range");
 * ```
 */
export const MAX_ID = 0xfffffffe;

/**
 * Largest passwd/group file read from an image.
 *
 * @example
 * ```ts
 * readFileInRoot(rootfs, "/etc/passwd", MAX_DB_BYTES);
 * ```
 */
export const MAX_DB_BYTES = 16 << 20;

const ID = /^[0-9]+$/;

/**
 * Parses `/etc/passwd` text; comments and malformed lines are skipped.
 *
 * @example
 * ```ts
 * parsePasswd("root:x:0:0:root:/root:/bin/sh\n")[0].home; // "/root"
 * ```
 */
export function parsePasswd(text: string | null): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4 || !ID.test(f[2]) || !ID.test(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" });
  }
  return out;
}

/**
 * Parses `/etc/group` text; comments and malformed lines are skipped.
 *
 * @example
 * ```ts
 * parseGroup("wheel:x:10:alice,bob\n")[0].members; // ["alice", "bob"]
 * ```
 */
export function parseGroup(text: string | null): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 3 || !ID.test(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? "").split(",").filter((m) => m !== "") });
  }
  return out;
}

/**
 * True if `user` (an image config `User`) is purely numeric (`uid` or
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
 * Parses a numeric id, checking the range 0..4294967294; `what` names it in
 * the error (code `code`).
 *
 * @example
 * ```ts
 * parseId("1000", "user 1000"); // 1000
 * ```
 */
export function parseId(s: string, what: string, code: ErrorCode = "EGENERATE"): number {
  const n = Number(s);
  if (!ID.test(s) || !Number.isSafeInteger(n) || n > MAX_ID) {
    throw new OcigenError(code, `Bad ${what}: id ${JSON.stringify(s)} is not an integer 0..${MAX_ID}`);
  }
  return n;
}

/**
 * Resolves image user `spec` against parsed passwd/group entries (see the
 * module docs); `code` is the error code thrown (EGENERATE by default).
 *
 * @example
 * ```ts
 * resolveUser("nginx", parsePasswd("nginx:x:101:101::/:/sbin/nologin"), []); // { uid: 101, gid: 101, home: "/" }
 * resolveUser("1000", null, null); // { uid: 1000, gid: 0 }
 * ```
 */
export function resolveUser(
  spec: string,
  passwd: PasswdEntry[] | null,
  group: GroupEntry[] | null,
  code: ErrorCode = "EGENERATE",
): ResolvedUser {
  const user = spec.trim();
  const pw = passwd ?? [];
  const gr = group ?? [];
  if (user === "") {
    const root = pw.find((p) => p.uid === 0);
    return root?.home ? { uid: 0, gid: 0, home: root.home } : { uid: 0, gid: 0 };
  }
  const i = user.indexOf(":");
  const u = i < 0 ? user : user.slice(0, i);
  const g = i < 0 ? undefined : user.slice(i + 1);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (u === "") throw new OcigenError(code, `Bad image user ${JSON.stringify(user)}: no user part`);
  if (/^[0-9]/.test(u)) {
    uid = parseId(u, `image user ${JSON.stringify(user)}`, code);
    entry = pw.find((p) => p.uid === uid);
  } else {
    entry = pw.find((p) => p.name === u);
    if (!entry) throw new OcigenError(code, `Cannot resolve image user ${JSON.stringify(u)}: no such user in the image's /etc/passwd`);
    uid = entry.uid;
  }
  const out: ResolvedUser = { uid, gid: entry ? entry.gid : 0 };
  if (g !== undefined && g !== "") {
    if (/^[0-9]/.test(g)) out.gid = parseId(g, `image user ${JSON.stringify(user)}`, code);
    else {
      const ge = gr.find((x) => x.name === g);
      if (!ge) throw new OcigenError(code, `Cannot resolve image group ${JSON.stringify(g)}: no such group in the image's /etc/group`);
      out.gid = ge.gid;
    }
  } else if (entry) {
    const extra = [...new Set(gr.filter((x) => x.members.includes(entry!.name) && x.gid !== out.gid).map((x) => x.gid))];
    if (extra.length > 0) out.additionalGids = extra;
  }
  if (out.uid > MAX_ID || out.gid > MAX_ID) throw new OcigenError(code, `Bad image user ${JSON.stringify(user)}: id out of range`);
  if (entry?.home) out.home = entry.home;
  return out;
}

/**
 * Resolves `spec` against the passwd/group files of the rootfs at `root`
 * (read confined to it; absent files count as empty).
 *
 * @example
 * ```ts
 * resolveUserInRoot("/var/lib/oci/extracts/.store/sha256/ab/rootfs", "nginx"); // { uid: 101, gid: 101, home: "/nonexistent" }
 * ```
 */
export function resolveUserInRoot(root: string, spec: string, code: ErrorCode = "EGENERATE"): ResolvedUser {
  const dec = new TextDecoder();
  const read = (p: string) => {
    const b = readFileInRoot(root, p, MAX_DB_BYTES, code);
    return b ? dec.decode(b) : null;
  };
  return resolveUser(spec, parsePasswd(read("/etc/passwd")), parseGroup(read("/etc/group")), code);
}
