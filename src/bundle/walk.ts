/**
 * One `lstat` walk of a tree that serves both bundle manifests, each in the
 * order its format documents:
 * - umoci's mtree (`./mtree.ts`, go-mtree's order): per directory, the
 *   directory, then its non-directories sorted bytewise (UTF-8 order), then
 *   its subdirectories sorted bytewise, each walked in turn; `dir` and `up`
 *   calls of a {@linkcode TreeVisitor};
 * - ocigen's manifest (`./manifest.ts`, `./scan.ts`'s order): depth first,
 *   siblings sorted by UTF-16 code unit, each directory's subtree right after
 *   it; `entry` calls.
 *
 * Every entry is `lstat`ed once (and a symlink read once). The two orders of
 * subdirectories agree unless sibling names hold characters past U+FFFF next
 * to ones from U+E000 to U+FFFF (code units and bytes then sort differently):
 * there the subdirectories are walked in bytewise order and the `entry` calls
 * of each are held back and replayed in code unit order.
 *
 * @module
 */
import fs from "node:fs";
import { Buffer } from "node:buffer";
import { wrapIo } from "../errors.ts";
import { lstatTree, type TreeStat } from "../fs/stat.ts";

/** One entry met by {@linkcode walkTree}. */
export interface TreeChild {
  /** Base name (`"."` for the root). */
  name: string;
  /** Root-relative path, `/`-separated, `"."` for the root. */
  rel: string;
  abs: string;
  st: TreeStat;
  /** Symlink target (symlinks only). */
  link?: string;
}

/** What {@linkcode walkTree} reports (each part optional). */
export interface TreeVisitor {
  /** mtree order: a directory entered, with its non-directory children sorted bytewise. */
  dir?(d: TreeChild, files: TreeChild[]): void;
  /** mtree order: the directory entered last is done. */
  up?(): void;
  /** Manifest order: every entry, the root first. */
  entry?(e: TreeChild): void;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Bytewise (UTF-8) order of two names; without surrogates that is the
 * strings' own order (no Buffer per comparison).
 *
 * @example
 * ```ts
 * ["b", "a"].sort(byBytes); // ["a", "b"]
 * ```
 */
export function byBytes(a: string, b: string): number {
  if (SURROGATE.test(a) || SURROGATE.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

function byCodeUnits(a: TreeChild, b: TreeChild): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function stat(name: string, rel: string, abs: string): TreeChild {
  let st: TreeStat;
  try {
    st = lstatTree(abs);
  } catch (err) {
    throw wrapIo(err, "lstat", abs);
  }
  const c: TreeChild = { name, rel, abs, st };
  if (st.isSymbolicLink()) {
    try {
      c.link = fs.readlinkSync(abs);
    } catch (err) {
      throw wrapIo(err, "readlink", abs);
    }
  }
  return c;
}

/**
 * Walks `root` once, calling `v` in both orders (see the module header).
 * Errors name the path at fault.
 *
 * @example
 * ```ts
 * let files = 0;
 * walkTree("/b/rootfs", { dir: (_d, fs) => (files += fs.length) });
 * ```
 */
export function walkTree(root: string, v: TreeVisitor): void {
  const top = stat(".", ".", root);
  const emit = v.entry ? v.entry.bind(v) : undefined;
  emit?.(top);
  if (top.st.isDirectory()) walkDir(top, v, emit);
}

function walkDir(d: TreeChild, v: TreeVisitor, emit: ((e: TreeChild) => void) | undefined): void {
  let names: string[];
  try {
    names = fs.readdirSync(d.abs);
  } catch (err) {
    throw wrapIo(err, "read directory", d.abs);
  }
  const children: TreeChild[] = [];
  for (const n of names) children.push(stat(n, d.rel === "." ? n : d.rel + "/" + n, d.abs + "/" + n));
  const files: TreeChild[] = [];
  const dirs: TreeChild[] = [];
  for (const c of children) (c.st.isDirectory() ? dirs : files).push(c);
  // without surrogates (the usual case, checked once per directory) UTF-8 order is code unit order
  const cmp = names.some((n) => SURROGATE.test(n)) ? (a: TreeChild, b: TreeChild) => byBytes(a.name, b.name) : byCodeUnits;
  files.sort(cmp);
  dirs.sort(cmp);
  v.dir?.(d, files);
  if (!emit) {
    for (const c of dirs) walkDir(c, v, undefined);
    v.up?.();
    return;
  }
  children.sort(byCodeUnits);
  let same = true;
  for (let i = 0, j = 0; i < children.length; i++) {
    if (children[i].st.isDirectory() && children[i] !== dirs[j++]) {
      same = false;
      break;
    }
  }
  if (same) {
    for (const c of children) {
      emit(c);
      if (c.st.isDirectory()) walkDir(c, v, emit);
    }
  } else {
    const held = new Map<TreeChild, TreeChild[]>();
    for (const c of dirs) {
      const list: TreeChild[] = [];
      held.set(c, list);
      walkDir(c, v, (e) => void list.push(e));
    }
    for (const c of children) {
      emit(c);
      for (const e of held.get(c) ?? []) emit(e);
    }
  }
  v.up?.();
}
