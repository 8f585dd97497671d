/**
 * One-line messages for the two failures a new user meets before anything
 * else: a Deno permission that was not granted, and a file system refusal
 * (EACCES/EPERM) when not running as root.
 *
 * - Deno throws `NotCapable` ("Requires env access to "X", run again with
 *   the --allow-env flag") from any `process.env` read, file open or spawn
 *   that its permissions do not allow; uncaught, that is a stack trace.
 *   {@linkcode denoPermissionLine} turns it into one line naming the
 *   permission and the flag that grants it.
 * - Verbs that write under `/etc`, `/usr/local` or `/var/lib`
 *   (`install-generator`, `init`/`build` into a system layout, `extract`)
 *   fail there with a bare EACCES when run as a user.
 *   {@linkcode permissionHint} says that the path needs root (or write
 *   access) and names it.
 *
 * Both look at the error and its `cause` chain only; neither touches the
 * process.
 *
 * @module
 */
import { DENO_PERMISSIONS } from "../install/self.ts";

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  path?: unknown;
  dest?: unknown;
  syscall?: unknown;
  cause?: unknown;
}

function chain(e: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let cur: unknown = e;
  while (cur && typeof cur === "object" && out.length < 8) {
    out.push(cur as ErrorLike);
    cur = (cur as ErrorLike).cause;
  }
  return out;
}

const DENO_RE = /Requires ([a-z-]+) access(?: to ("[^"]*"|[^,]+))?,.*?(--allow-[a-z-]+)/;

/**
 * The one line to print for a Deno permission error (`NotCapable`, or
 * `PermissionDenied` with Deno's "Requires ... access" text) anywhere in
 * `e`'s cause chain; undefined for any other error.
 *
 * @example
 * ```ts
 * denoPermissionLine(new Error('Requires env access to "HOME", run again with the --allow-env flag'));
 * // 'Deno permission missing: env access to "HOME"; run deno with --allow-env (ocigen needs ...)'
 * ```
 */
export function denoPermissionLine(e: unknown): string | undefined {
  for (const c of chain(e)) {
    const msg = typeof c.message === "string" ? c.message : "";
    const m = DENO_RE.exec(msg);
    if (!m) continue;
    if (c.name !== undefined && c.name !== "NotCapable" && c.name !== "PermissionDenied" && c.name !== "Error") continue;
    const what = m[2] ? `${m[1]} access to ${m[2].trim()}` : `${m[1]} access`;
    return `Deno permission missing: ${what}; run deno with ${m[3]} (ocigen needs ${DENO_PERMISSIONS.join(" ")})`;
  }
  return undefined;
}

/**
 * A hint to append to the message of an error caused by EACCES/EPERM when
 * the process is not root (`uid` not 0): which path needs root. Undefined
 * when `uid` is 0, unknown, or the error is not a permission error.
 *
 * @example
 * ```ts
 * const e = Object.assign(new Error("EACCES"), { code: "EACCES", path: "/etc/oci-generator.conf" });
 * permissionHint(e, 1000); // "not root (uid 1000): /etc/oci-generator.conf needs root or write access; run with sudo, ..."
 * ```
 */
export function permissionHint(e: unknown, uid: number | undefined): string | undefined {
  if (uid === undefined || uid === 0) return undefined;
  for (const c of chain(e)) {
    if (c.code !== "EACCES" && c.code !== "EPERM") continue;
    let path = typeof c.path === "string" ? c.path : typeof c.dest === "string" ? c.dest : undefined;
    // a temporary beside its target: name the directory it was made in
    if (path && /(\.tmp-|ocigen-tmp)[^/]*$/.test(path)) path = path.slice(0, path.lastIndexOf("/")) || "/";
    const where = path ? ` ${path}` : "";
    return `not root (uid ${uid}):${where} needs root or write access; run with sudo, or choose a path you own`;
  }
  return undefined;
}
