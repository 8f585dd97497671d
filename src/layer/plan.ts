/**
 * What applying one layer's tar entries to a root directory means, decided
 * per entry before any filesystem call (the planning half; the writes are in
 * src/layer/apply.ts, the end-of-layer metadata in src/layer/deferred.ts).
 *
 * Semantics (OCI image-spec "layer" changesets, umoci-compatible):
 * - every entry's parent is resolved inside the root with chroot semantics
 *   (`RootResolver`, src/rootfs/resolve.ts); missing parents are created (0755);
 * - the final component is never followed: an existing non-directory (or a
 *   directory, when the entry is not a directory) is removed and recreated;
 *   directories over directories are kept and get the new metadata;
 * - `.wh.NAME` removes NAME from lower layers; `.wh..wh..opq` removes the
 *   lower-layer children of its directory wherever it sits in the layer;
 *   entries written by the same layer survive both; `.wh.`, `.wh..` and
 *   `.wh...` are `EWHITEOUT` errors; other `.wh..wh.*` (aufs metadata) are skipped;
 * - hard links resolve their target inside the root (also lower-layer files)
 *   and never link a directory; their metadata is the target's;
 * - owners are applied with lchown (mapped through uid/gid maps) and modes
 *   with chmod after chown (so setuid/setgid survive); rootless mode applies
 *   no owners (they are recorded), turns devices into empty files and keeps
 *   directories owner-accessible (mode | 0700);
 * - xattrs (`security.selinux` dropped; only `user.*` in rootless mode) are
 *   set at the end of the layer in one `setfattr` run, after re-checking each
 *   path still names the same inode;
 * - directory modes apply at once (rootless: u+rwx kept while writing) and
 *   are set again, with the mtimes, at the end of the layer, deepest first,
 *   after all children were written.
 *
 * This file holds the decisions: what an entry is ({@linkcode planEntry}:
 * skip, whiteout, opaque whiteout, the root, or a name to create), which
 * names this layer wrote so far ({@linkcode LayerWrites}: whiteouts spare
 * them), which xattrs of an entry are set ({@linkcode xattrsToSet}), and an
 * entry's access time ({@linkcode entryAtime}).
 *
 * @module
 */
import { OcigenError, wrapIo } from "../errors.ts";
import { log } from "../log.ts";
import type { TarEntryHeader } from "../tar/header.ts";
import { cleanEntryPath } from "../rootfs/resolve.ts";

/** What to do with one tar entry. `dir` is the parent directory's components (not yet resolved). */
export type EntryPlan =
  /** aufs metadata (`.wh..wh.*` other than an opaque marker): nothing. */
  | { kind: "skip" }
  /** `.wh..wh..opq`: remove the lower-layer children of `dir`. */
  | { kind: "opaque"; dir: string[] }
  /** `.wh.NAME`: remove `NAME` in `dir` unless this layer wrote it. */
  | { kind: "whiteout"; dir: string[]; name: string }
  /** The root directory itself (a directory entry): its metadata only. */
  | { kind: "root" }
  /** A name to create (or replace) in `dir`; `comps` is the whole cleaned path. */
  | { kind: "create"; dir: string[]; base: string; comps: string[] };

/**
 * The error for one entry of a layer: `Cannot unpack WHAT: entry ENTRY: WHY`.
 *
 * @example
 * ```ts
 * throw entryError("layer sha256:ab..", "EUNPACK", "etc/x", "hard link target y does not exist");
 * ```
 */
export function entryError(what: string, code: OcigenError["code"], entry: string, why: string, cause?: unknown): OcigenError {
  return new OcigenError(code, `Cannot unpack ${what}: entry ${entry}: ${why}`, cause ? { cause } : undefined);
}

/**
 * Any error met while applying entry `entry` of layer `what`, as the entry's
 * error: an errno error becomes "Cannot unpack WHAT: entry PATH: write ...";
 * an `OcigenError` that does not already say what failed gets the prefix
 * (without naming the path twice); one that does passes through.
 *
 * @example
 * ```ts
 * throw asEntryError("layer 1", err, "etc/motd");
 * ```
 */
export function asEntryError(what: string, e: unknown, entry: string): OcigenError {
  if (e instanceof OcigenError) {
    if (e.message.startsWith("Cannot ")) return e;
    // wrapIo messages already start with the entry's path: do not name it twice
    const msg = e.message.startsWith(`${entry}: `) ? e.message.slice(entry.length + 2) : e.message;
    return new OcigenError(e.code, `Cannot unpack ${what}: entry ${entry}: ${msg}`, { cause: e.cause ?? e });
  }
  const w = wrapIo(e, "write", entry);
  return new OcigenError(w.code, `Cannot unpack ${what}: entry ${w.message}`, { cause: e });
}

/**
 * Decides what an entry is (see the module header). Throws ETAR for a NUL
 * byte in a name, EWHITEOUT for `.wh.`, `.wh..`, `.wh...`, EUNPACK for a
 * root entry that is not a directory; `what` names the layer in messages.
 *
 * @example
 * ```ts
 * planEntry(header, "layer 1"); // { kind: "whiteout", dir: ["etc"], name: "motd" } for etc/.wh.motd
 * ```
 */
export function planEntry(h: TarEntryHeader, what: string): EntryPlan {
  if (h.name.includes("\0") || h.linkname.includes("\0")) throw entryError(what, "ETAR", JSON.stringify(h.name), "name contains a NUL byte");
  const comps = cleanEntryPath(h.name);
  const base = comps.length ? comps[comps.length - 1] : "";
  if (comps.some((c, i) => c.startsWith(".wh..wh.") && !(i === comps.length - 1 && c === ".wh..wh..opq"))) {
    log.debug(`${what}: skipping aufs metadata entry ${h.name}`);
    return { kind: "skip" };
  }
  const dir = comps.slice(0, -1);
  if (base.startsWith(".wh.")) {
    if (base === ".wh..wh..opq") return { kind: "opaque", dir };
    const name = base.slice(4);
    if (name === "" || name === "." || name === "..") throw entryError(what, "EWHITEOUT", h.name, `invalid whiteout ${base}`);
    return { kind: "whiteout", dir, name };
  }
  if (comps.length === 0) {
    if (h.type !== "dir") throw entryError(what, "EUNPACK", h.name, "cannot replace the root directory");
    return { kind: "root" };
  }
  return { kind: "create", dir, base, comps };
}

/**
 * The names one layer has written so far, and their ancestors: a whiteout
 * or opaque marker of the same layer never removes them.
 *
 * @example
 * ```ts
 * const w = new LayerWrites();
 * w.mark("etc/motd");
 * w.covers("etc"); // true: an ancestor of something this layer wrote
 * ```
 */
export class LayerWrites {
  readonly #written = new Set<string>();
  readonly #ancestors = new Set<string>();
  /**
   * Names marked since the last `covers` (indexed only when a whiteout or
   * opaque marker asks: most layers have none, and a push is cheaper than
   * hashing every path into two sets).
   */
  #pending: string[] = [];

  /**
   * Records that the layer wrote root-relative `rel`.
   *
   * @example
   * ```ts
   * writes.mark("usr/bin/tool");
   * ```
   */
  mark(rel: string): void {
    this.#pending.push(rel);
  }

  #index(rel: string): void {
    this.#written.add(rel);
    let p = rel;
    for (;;) {
      const i = p.lastIndexOf("/");
      p = i < 0 ? "" : p.slice(0, i);
      if (this.#ancestors.has(p)) break;
      this.#ancestors.add(p);
      if (p === "") break;
    }
  }

  /**
   * True if the layer wrote `rel` or something below it.
   *
   * @example
   * ```ts
   * if (!writes.covers(rel)) removeLower(rel);
   * ```
   */
  covers(rel: string): boolean {
    if (this.#pending.length) {
      for (const p of this.#pending) this.#index(p);
      this.#pending = [];
    }
    return this.#written.has(rel) || this.#ancestors.has(rel);
  }
}

/**
 * An entry's access time: the PAX `atime` record when it is a number, else
 * its mtime (seconds).
 *
 * @example
 * ```ts
 * entryAtime(header); // 1700000000.5
 * ```
 */
export function entryAtime(h: TarEntryHeader): number {
  const a = h.pax.atime;
  if (a && /^-?[0-9]+(\.[0-9]+)?$/.test(a)) return Number(a);
  return h.mtime;
}

/** The kernel's XATTR_SIZE_MAX: a larger value could never be set. */
const XATTR_VALUE_MAX = 65536;

/**
 * The extended attributes of an entry that are set on root-relative `rel`
 * (`""` for the root): `security.selinux` never; in rootless mode only `user.*`, and never
 * the layer's own `user.rootlesscontainers` (warned); no `user.*` on a
 * symlink (Linux refuses them); an empty value sets nothing (a PAX record
 * with an empty value unsets, and Go's archive/tar, so umoci, skips it).
 * ETAR for a bad name, EUNPACK for a value over 64 KiB.
 *
 * @example
 * ```ts
 * xattrsToSet(header, "usr/bin/ping", { rootless: false, symlink: false }, "layer 1");
 * // [{ name: "security.capability", value: Uint8Array [...] }]
 * ```
 */
export function xattrsToSet(
  h: TarEntryHeader,
  rel: string,
  opts: { rootless: boolean; symlink: boolean },
  what: string,
): Array<{ name: string; value: Uint8Array }> {
  const out: Array<{ name: string; value: Uint8Array }> = [];
  for (const name of Object.keys(h.xattrs)) {
    if (name === "security.selinux") continue;
    if (opts.rootless && !name.startsWith("user.")) continue;
    // rootless: this xattr holds owners the unpack itself records (a layer's own is ignored, as umoci)
    if (opts.rootless && name === "user.rootlesscontainers") {
      log.warn(`${rel || "."}: ignoring the user.rootlesscontainers xattr stored in the layer`);
      continue;
    }
    if (opts.symlink && name.startsWith("user.")) continue; // Linux allows no user.* xattrs on symlinks
    if (name.includes("\0") || name === "") throw entryError(what, "ETAR", rel, "bad xattr name");
    const v = h.xattrs[name];
    const value = typeof v === "string" ? new TextEncoder().encode(v) : v;
    if (value.length === 0) continue;
    if (value.length > XATTR_VALUE_MAX) throw entryError(what, "EUNPACK", rel || ".", `xattr ${JSON.stringify(name)} is larger than 64 KiB`);
    out.push({ name, value });
  }
  return out;
}
