/**
 * Path resolution inside a root directory, as `chroot` would do it.
 *
 * Entry names are cleaned lexically first ({@linkcode cleanEntryPath}:
 * absolute names become relative, `.` dropped, `..` clamped at the root).
 * Then every parent component is walked with `lstat`: a symlink is replaced by
 * its target (absolute targets restart at the root, `..` is clamped at the
 * root), so the resulting path consists only of real directories below the
 * root. Nothing outside the root can be reached, whatever the symlinks in the
 * tree say. More than {@linkcode MAX_SYMLINKS} symlinks in one resolution is
 * an error (loops).
 *
 * @module
 */
import fs from "node:fs";
import { OcigenError, wrapIo } from "../errors.ts";

/**
 * Largest number of symlinks followed while resolving one path (as Linux's 40, but generous).
 *
 * @example
 * ```ts
 * if (++links > MAX_SYMLINKS) throw new Error("loop");
 * ```
 */
export const MAX_SYMLINKS = 255;

/** How many of the nearest cached ancestors a directory resolution looks for before walking from the root. */
const PREFIX_TRIES = 8;

/**
 * Cleans a tar entry (or hard link target) name into root-relative components:
 * leading `/` and `./` dropped, `.` and empty components removed, `..` pops
 * the previous component and is clamped at the root. The empty list is the
 * root itself.
 *
 * @example
 * ```ts
 * cleanEntryPath("/a/./b/../../../etc/passwd"); // ["etc", "passwd"]
 * cleanEntryPath("./"); // []
 * ```
 */
export function cleanEntryPath(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

/**
 * A resolved location: the absolute path and the root-relative real path (`""` is the root).
 *
 * @example
 * ```ts
 * const r: Resolved | null = resolver.resolveDir(["etc"], false);
 * if (r) console.log(r.abs, r.rel);
 * ```
 */
export interface Resolved {
  abs: string;
  rel: string;
}

/**
 * Hooks of {@linkcode RootResolver}.
 *
 * @example
 * ```ts
 * new RootResolver("/r", { onCreate: (rel) => console.log("created", rel) });
 * ```
 */
export interface ResolverHooks {
  /** A missing directory was created while resolving (`rel` is root-relative). */
  onCreate?(rel: string, abs: string): void;
  /** An existing directory is about to be entered (rootless mode makes it accessible). */
  onEnter?(rel: string, abs: string, st: fs.Stats): void;
}

/**
 * Error thrown by the resolver; the caller adds which entry it was resolving.
 *
 * @example
 * ```ts
 * try { r.resolveDir(["loop", "x"], true); } catch (e) { if (e instanceof ResolveError) console.error(e.message); }
 * ```
 */
export class ResolveError extends OcigenError {}

/**
 * Resolves paths inside one root directory (chroot semantics), caching
 * resolved directories. Call {@linkcode RootResolver.invalidate} after removing
 * or replacing a directory or symlink.
 *
 * @example
 * ```ts
 * const r = new RootResolver("/tmp/rootfs");
 * const dir = r.resolveDir(["usr", "bin"], true); // { abs: "/tmp/rootfs/usr/bin", rel: "usr/bin" }
 * ```
 */
export class RootResolver {
  /** The absolute root path. */
  readonly root: string;
  /** Resolved directories by cleaned components (joined), with the symlinks followed to reach them. */
  private cache = new Map<string, { r: Resolved; links: number }>();
  /** Symlinks the last walk followed (for the cache). */
  private walkLinks = 0;
  /**
   * Where each symlink (by root-relative real path) leads, once fully walked to a
   * directory: without it a chain of long symlinks would be re-expanded for every
   * entry below it (hostile layers: seconds of CPU per entry).
   */
  private links = new Map<string, { rel: string; links: number }>();

  constructor(root: string, private readonly hooks: ResolverHooks = {}) {
    this.root = root.replace(/\/+$/, "") || "/";
  }

  /** Absolute path of a root-relative real path. */
  abs(rel: string): string {
    return rel === "" ? this.root : this.root === "/" ? "/" + rel : this.root + "/" + rel;
  }

  /** Forgets cached resolutions (after the tree changed shape). */
  invalidate(): void {
    this.cache.clear();
    this.links.clear();
  }

  /**
   * Resolves a directory given as cleaned components, following symlinks
   * inside the root. Missing directories are created (mode 0755, plus a setgid bit inherited from the parent) when
   * `create`, else `null` is returned. A component that exists and is not a
   * directory (after symlinks) is an error.
   */
  resolveDir(components: string[], create: boolean): Resolved | null {
    const key = components.join("/");
    const hit = this.cache.get(key);
    if (hit) return hit.r;
    // The walk resumes after the longest cached prefix (of the nearest ones): in the state a walk from
    // the root would be in there (the same real directory, the same symlink
    // count), so the result, the errors and the links limit are the same, and
    // only the new components are looked at (one lstat for a fresh directory).
    // Only the nearest PREFIX_TRIES ancestors are tried: each try hashes the
    // prefix, so trying all of a hostile 200k-component path would be quadratic.
    let from: { r: Resolved; links: number } | undefined;
    let i = components.length - 1;
    for (let cut = key.length, last = Math.max(1, i - PREFIX_TRIES + 1); i >= last; i--) {
      cut -= components[i].length + 1;
      from = this.cache.get(key.slice(0, cut));
      if (from) break;
    }
    const r = this.walk(components, create, true, false, true, from ? { rel: from.r.rel, links: from.links, consumed: i } : undefined);
    if (r) this.cache.set(key, { r, links: this.walkLinks });
    return r;
  }

  /**
   * Records that `components` now names `made`, a directory the caller just
   * created (`mkdir`, so not a symlink) as `base` inside the directory its
   * parent components resolved to — only when that parent resolution is
   * cached: the next {@linkcode RootResolver.resolveDir} of it then needs no
   * `lstat` (a walk would find exactly this).
   *
   * @example
   * ```ts
   * const parent = r.resolveDir(["usr"], true)!;
   * fs.mkdirSync(parent.abs + "/lib");
   * r.learnDir(["usr", "lib"], { abs: parent.abs + "/lib", rel: parent.rel + "/lib" });
   * ```
   */
  learnDir(components: string[], made: Resolved): void {
    if (components.length === 0) return;
    const parent = this.cache.get(components.slice(0, -1).join("/"));
    const base = components[components.length - 1];
    const rel = parent ? (parent.r.rel === "" ? base : parent.r.rel + "/" + base) : "";
    if (!parent || made.rel !== rel) return;
    this.cache.set(components.join("/"), { r: { abs: this.abs(rel), rel }, links: parent.links });
  }

  /**
   * Resolves a full path following symlinks everywhere, including the final
   * component (for reading files such as /etc/passwd the way the container
   * would see them). Returns `null` if something is missing.
   */
  resolveFollow(components: string[]): Resolved | null {
    return this.walk(components, false, false);
  }

  /**
   * Resolves a path the way a build step names files: symlinks followed
   * inside the root (the last component only when `followLast`), and missing
   * components kept as they are (so the result may not exist; `..` after a
   * missing one still pops it). Never null.
   */
  resolveKeepMissing(components: string[], followLast: boolean): Resolved {
    return this.walk(components, false, false, true, followLast)!;
  }

  private walk(
    components: string[],
    create: boolean,
    finalIsDir: boolean,
    keepMissing = false,
    followLast = true,
    from?: { rel: string; links: number; consumed: number },
  ): Resolved | null {
    const stack = (from ? components.slice(from.consumed) : components.slice()).reverse();
    const cur: string[] = from && from.rel !== "" ? from.rel.split("/") : [];
    let links = from ? from.links : 0;
    // symlinks being expanded: their target is fully walked when the stack is back to `depth`
    const pending: Array<{ rel: string; depth: number; links: number }> = [];
    while (stack.length) {
      while (pending.length && pending[pending.length - 1].depth === stack.length) {
        const p = pending.pop()!;
        // only directory walks memoize (every component reached is then a directory)
        if (finalIsDir) this.links.set(p.rel, { rel: cur.join("/"), links: links - p.links });
      }
      const c = stack.pop()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        cur.pop();
        continue;
      }
      cur.push(c);
      if (!followLast && stack.every((x) => x === "" || x === ".")) continue;
      const rel = cur.join("/");
      const abs = this.abs(rel);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(abs, { throwIfNoEntry: false });
      } catch (e) {
        if (keepMissing && (e as NodeJS.ErrnoException).code === "ENOTDIR") {
          throw new ResolveError("EUNPACK", `${cur.slice(0, -1).join("/")} is not a directory`);
        }
        throw wrapIo(e, "lstat", rel);
      }
      if (!st) {
        if (keepMissing) continue;
        if (!create) return null;
        try {
          fs.mkdirSync(abs, 0o755);
          // 0755 whatever the umask, keeping a setgid bit inherited from the parent
          const m = fs.lstatSync(abs).mode & 0o7777;
          if ((m & 0o777) !== 0o755) fs.chmodSync(abs, (m & 0o7000) | 0o755);
        } catch (e2) {
          throw wrapIo(e2, "mkdir", rel);
        }
        this.hooks.onCreate?.(rel, abs);
        continue;
      }
      if (st.isSymbolicLink()) {
        const memo = this.links.get(rel);
        if (memo) {
          links += memo.links;
          if (links > MAX_SYMLINKS) {
            throw new ResolveError("EUNPACK", `too many levels of symbolic links resolving ${components.join("/")}`);
          }
          cur.length = 0;
          if (memo.rel !== "") cur.push(...memo.rel.split("/"));
          continue;
        }
        pending.push({ rel, depth: stack.length, links });
        if (++links > MAX_SYMLINKS) {
          throw new ResolveError("EUNPACK", `too many levels of symbolic links resolving ${components.join("/")}`);
        }
        let target: string;
        try {
          target = fs.readlinkSync(abs);
        } catch (e) {
          throw wrapIo(e, "readlink", rel);
        }
        cur.pop();
        if (target.startsWith("/")) cur.length = 0;
        const parts = target.split("/");
        for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]);
        continue;
      }
      if (st.isDirectory()) {
        this.hooks.onEnter?.(rel, abs, st);
        continue;
      }
      // a file (or device...) in the middle of the path, or at the end of a directory path
      if (stack.length > 0 || finalIsDir) {
        throw new ResolveError("EUNPACK", `${rel} is not a directory`);
      }
    }
    const rel = cur.join("/");
    if (finalIsDir) for (const p of pending) this.links.set(p.rel, { rel, links: links - p.links });
    this.walkLinks = links;
    return { abs: this.abs(rel), rel };
  }
}
