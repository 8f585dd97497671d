/**
 * Resolving a path inside a root directory as `chroot` would: `..` stops at
 * the root, absolute symlinks restart from the root, relative ones from their
 * directory. The result never names anything outside the root.
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError } from "../errors.ts";

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
  const queue = p.split("/").filter((c) => c !== "" && c !== ".");
  const resolved: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === "..") {
      resolved.pop();
      continue;
    }
    const isLast = queue.length === 0;
    // every component is looked at, also after a missing one: "missing/../link/x" must follow link inside the root
    if (isLast && !followLast) {
      resolved.push(c);
      continue;
    }
    const abs = root + "/" + [...resolved, c].join("/");
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        resolved.push(c);
        continue;
      }
      if (code === "ENOTDIR") throw new OcigenError("EBUILD", `Cannot resolve ${p} in the rootfs: /${resolved.join("/")} is not a directory`);
      throw new OcigenError("EIO", `Cannot resolve ${p} in the rootfs: /${[...resolved, c].join("/")}: ${errnoReason(e)}`, { cause: e });
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new OcigenError("EBUILD", `Cannot resolve ${p} in the rootfs: too many levels of symbolic links`);
      const target = fs.readlinkSync(abs);
      if (target.startsWith("/")) resolved.length = 0;
      queue.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
      continue;
    }
    if (!isLast && !st.isDirectory()) {
      throw new OcigenError("EBUILD", `Cannot resolve ${p} in the rootfs: /${[...resolved, c].join("/")} is not a directory`);
    }
    resolved.push(c);
  }
  return resolved.length === 0 ? root : root + "/" + resolved.join("/");
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
