/**
 * Knowing that files are absent without asking for each one: a pass that
 * looks up many optional files in few directories (the generator, at every
 * boot: a settings file per layout and per tag, a pin per unit, a rootfs in
 * the store per image — almost all absent) lists each directory once and
 * answers from that list.
 *
 * {@linkcode DirNames.mayExist} says false only when the file's directory
 * was listed (or found missing) and the name was not in it; in every other
 * case (a directory that cannot be listed, for one) it says true and the
 * caller opens or stats the file as it would have anyway. A yes is never an
 * answer about the file's kind or content: callers still open it with their
 * own checks. The listing is a snapshot taken when a directory is first
 * asked about: use one object for one pass, not across passes.
 *
 * @module
 */
import * as fs from "node:fs";
import { dirname } from "node:path";

/**
 * Directory listings taken once per pass (see the module docs).
 *
 * @example
 * ```ts
 * const names = new DirNames();
 * if (names.mayExist("/etc/ocigen/busybox.image")) readSettings("/etc/ocigen/busybox.image");
 * ```
 */
export class DirNames {
  /** Names by directory; null: the directory does not exist; undefined: it cannot be listed. */
  readonly #dirs = new Map<string, Set<string> | null | undefined>();

  /**
   * False when `path` (absolute) is known to be absent; true when it may
   * exist.
   *
   * @example
   * ```ts
   * new DirNames().mayExist("/nonexistent/x"); // false
   * ```
   */
  mayExist(path: string): boolean {
    const dir = dirname(path);
    if (dir === path) return true;
    const names = this.#names(dir);
    if (names === undefined) return true;
    return names !== null && names.has(path.slice(dir.length + (dir.endsWith("/") ? 0 : 1)));
  }

  /** The names in `dir` (listed once); null when it does not exist; undefined when it cannot be listed. */
  #names(dir: string): Set<string> | null | undefined {
    if (this.#dirs.has(dir)) return this.#dirs.get(dir);
    let names: Set<string> | null | undefined;
    // a parent already known: a directory it does not list does not exist (no system call)
    const parent = dirname(dir);
    const up = parent !== dir && this.#dirs.has(parent) ? this.#dirs.get(parent) : undefined;
    if (up === null || (up && !up.has(dir.slice(parent.length + (parent.endsWith("/") ? 0 : 1))))) names = null;
    else {
      try {
        names = new Set(fs.readdirSync(dir));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        names = code === "ENOENT" || code === "ENOTDIR" ? null : undefined;
        // learn about the parent too, so that its other missing subdirectories cost nothing
        if (names === null && parent !== dir) this.#names(parent);
      }
    }
    this.#dirs.set(dir, names);
    return names;
  }
}
