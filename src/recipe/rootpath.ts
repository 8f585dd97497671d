/**
 * Paths inside a recipe build's rootfs: resolved as `chroot` would by
 * src/rootfs/resolve.ts (`..` stops at the root, absolute symlinks restart
 * from the root, relative ones from their directory; the result never names
 * anything outside the root), and directories created along such paths.
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError } from "../errors.ts";
import { ResolveError, RootResolver } from "../rootfs/resolve.ts";

/**
 * Why an fs call failed, for messages that name the path themselves:
 * `ENOSPC (no space left on device)` for an errno error, else its message.
 *
 * @example
 * ```ts
 * try { fs.mkdirSync(p); } catch (e) { throw new OcigenError("EIO", `Cannot create directory /x in the rootfs: ${errnoReason(e)}`); }
 * ```
 */
export function errnoReason(e: unknown): string {
  const x = e as NodeJS.ErrnoException;
  if (!x?.code) return String(x?.message ?? x);
  // Node: "ENOSPC: no space left on device, copyfile '/a' -> '/b'"; Deno: "No space left on device (os error 28): copy ..."
  const m = /^[A-Z]+: ([^,]+)/.exec(x.message ?? "") ?? /^([^(:]+?) \(os error \d+\)/.exec(x.message ?? "");
  return m ? `${x.code} (${m[1].charAt(0).toLowerCase()}${m[1].slice(1)})` : x.code;
}

/**
 * Resolves `p` (absolute or relative, interpreted from the root) inside `root`.
 * Symlinks among the components are followed inside the root; the last
 * component is followed only when `followLast`. Missing components are kept
 * as they are (so the result may not exist).
 *
 * @example
 * ```ts
 * // rootfs/lib -> /usr/lib
 * resolveInRoot("/b/rootfs", "/lib/x.so", true); // "/b/rootfs/usr/lib/x.so"
 * resolveInRoot("/b/rootfs", "../../etc/passwd", true); // "/b/rootfs/etc/passwd"
 * ```
 */
export function resolveInRoot(root: string, p: string, followLast = true): string {
  try {
    return new RootResolver(root).resolveKeepMissing(p.split("/"), followLast).abs;
  } catch (e) {
    if (e instanceof ResolveError) {
      const why = / is not a directory$/.test(e.message) ? `/${e.message}` : "too many levels of symbolic links";
      throw new OcigenError("EBUILD", `Cannot resolve ${p} in the rootfs: ${why}`);
    }
    throw e;
  }
}

/**
 * Creates directory `rel` (and its parents) inside `root`, every component
 * resolved inside the root. Returns the absolute path.
 *
 * @example
 * ```ts
 * mkdirInRoot("/b/rootfs", "usr/local/bin");
 * ```
 */
export function mkdirInRoot(root: string, rel: string): string {
  const parts = rel.split("/").filter((c) => c !== "" && c !== ".");
  let cur = "";
  let abs = root;
  for (const c of parts) {
    cur = cur ? `${cur}/${c}` : c;
    abs = resolveInRoot(root, cur, true);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(abs);
    } catch { /* missing */ }
    if (!st) {
      try {
        fs.mkdirSync(abs, { mode: 0o755 });
      } catch (e) {
        throw new OcigenError("EIO", `Cannot create directory /${cur} in the rootfs: ${errnoReason(e)}`, { cause: e });
      }
    } else if (!st.isDirectory()) {
      throw new OcigenError("EBUILD", `Cannot create directory /${cur} in the rootfs: it exists and is not a directory`);
    }
  }
  return abs;
}
