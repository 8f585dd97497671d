/**
 * Finding the layouts below `imagelayoutdir` (SPEC 4.1).
 *
 * A layout is any directory holding an `oci-layout` file; its name is its
 * path relative to `imagelayoutdir`. The walk does not descend into a
 * layout's `blobs/` or `refs/`, skips entries whose name starts with `.`
 * (temporary and lock files, hidden directories), follows symbolic links to
 * directories only while they stay inside `imagelayoutdir` (each real
 * directory is visited once, so link loops end) and reports unreadable
 * directories without stopping.
 *
 * Symbolic links never lead discovery out of `imagelayoutdir`: a link whose
 * target (resolved fully) is not `imagelayoutdir` itself or below it is
 * reported as an error naming the link and skipped, so a layout is only ever
 * read from where the administrator put layouts. `imagelayoutdir` itself
 * may be a symlink (its real path is the boundary). To serve a layout kept
 * elsewhere, bind-mount it below `imagelayoutdir` or move it there.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";

/** One layout found below the layout directory. */
export interface FoundLayout {
  /** Path relative to the layout directory, `/`-separated. */
  name: string;
  /** Absolute path. */
  dir: string;
  /** Its real path (every symlink resolved), as the walk found it. */
  real: string;
}

/** The result of a walk: layouts sorted by name, and problems met. */
export interface Discovery {
  layouts: FoundLayout[];
  errors: string[];
}

/** True if real path `real` is `realRoot` or below it. */
function within(realRoot: string, real: string): boolean {
  return real === realRoot || real.startsWith(realRoot === "/" ? "/" : realRoot + "/");
}

/**
 * Throws EESCAPE unless `dir`, with every symbolic link resolved, is `root`
 * or below it (the rule discovery follows; `extract --name` applies it too).
 * A `dir` that does not exist passes: opening it reports that.
 *
 * @example
 * ```ts
 * checkInsideLayoutDir("/var/lib/oci/layouts", "/var/lib/oci/layouts/busybox"); // ok
 * ```
 */
export function checkInsideLayoutDir(root: string, dir: string): void {
  let realRoot: string;
  let real: string;
  try {
    realRoot = fs.realpathSync.native(root);
    real = fs.realpathSync.native(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return; // nothing there: the caller's open says so
    throw wrapIo(e, "resolve", dir);
  }
  if (!within(realRoot, real)) {
    throw new OcigenError("EESCAPE", `${dir}: a symbolic link to ${real}, outside imagelayoutdir ${root}`);
  }
}

/**
 * Walks `root` for layouts. A missing `root` gives no layouts and no error.
 *
 * @example
 * ```ts
 * const { layouts } = await discoverLayouts("/var/lib/oci/layouts");
 * // [{ name: "myorg.com/myapp", dir: "/var/lib/oci/layouts/myorg.com/myapp" }]
 * ```
 */
export async function discoverLayouts(root: string): Promise<Discovery> {
  const layouts: FoundLayout[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  let realRoot: string;
  try {
    realRoot = fs.realpathSync.native(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { layouts, errors };
    return { layouts, errors: [wrapIo(e, "resolve", root).message] };
  }
  // Synchronous and in sorted order: deterministic (the first path to reach a
  // real directory names it) and faster than many small async calls.
  // `parentReal` is the real path of the directory holding `rel`, known when
  // `rel` was reached through a directory entry that is no symlink: its real
  // path is then that plus its name, without resolving every component again.
  const walk = (rel: string, parentReal?: string, name?: string): void => {
    const dir = rel ? join(root, rel) : root;
    try {
      // .native: one realpath(3) call, not an lstat per path component from JS.
      const real = parentReal !== undefined ? (parentReal === "/" ? "/" : parentReal + "/") + name : fs.realpathSync.native(dir);
      if (!within(realRoot, real)) {
        errors.push(`${dir}: a symbolic link to ${real}, outside imagelayoutdir ${root}; skipped`);
        return;
      }
      if (seen.has(real)) return;
      seen.add(real);
      parentReal = real;
    } catch (e) {
      if (rel === "" && (e as NodeJS.ErrnoException).code === "ENOENT") return;
      errors.push(wrapIo(e, "resolve", dir).message);
      return;
    }
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      errors.push(wrapIo(e, "read directory", dir).message);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const isLayout = rel !== "" && entries.some((d) => d.name === "oci-layout" && !d.isDirectory());
    if (isLayout) layouts.push({ name: rel, dir, real: parentReal! });
    for (const d of entries) {
      if (d.name.startsWith(".")) continue;
      if (isLayout && (d.name === "blobs" || d.name === "refs")) continue;
      const sub = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(sub, parentReal, d.name);
      else if (d.isSymbolicLink()) {
        let isDir = false;
        try {
          isDir = fs.statSync(join(dir, d.name)).isDirectory();
        } catch {
          isDir = false;
        }
        if (isDir) walk(sub);
      }
    }
  };
  walk("");
  layouts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return await Promise.resolve({ layouts, errors });
}
