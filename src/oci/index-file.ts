/**
 * The layout's own small files: `oci-layout` (the header that makes a
 * directory a layout), `index.json` (read and validated; replaced
 * atomically) and the text of `refs/*`. All are read through
 * src/oci/layout-file.ts (regular, inside the layout, bounded) and
 * synchronously: they are small, and two tiny synchronous reads are much
 * faster than thread-pool round trips.
 *
 * Errors: a directory without a readable, valid `oci-layout` is ENOLAYOUT
 * ("not an OCI image layout"); a missing `index.json` is ENOLAYOUT too;
 * broken JSON is EJSON naming the file.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { UTF8 } from "./blob-read.ts";
import { layoutWriteError } from "./blob-write.ts";
import { type LayoutRoot, MAX_INDEX_FILE, MAX_SMALL_FILE, readLayoutFile } from "./layout-file.ts";
import type { ImageIndex } from "./types.ts";
import { parseJSON, validateIndex, validateLayoutHeader } from "./validate.ts";

/**
 * Reads a small file of the layout (bounded, regular, inside) as UTF-8 text.
 *
 * @example
 * ```ts
 * readLayoutText(root, "refs/latest", MAX_SMALL_FILE);
 * ```
 */
export function readLayoutText(root: LayoutRoot, rel: string, max: number): string {
  const bytes = readLayoutFile(root, rel, () => join(root.dir, rel), max);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new OcigenError("EJSON", `${join(root.dir, rel)}: not UTF-8 text`);
  }
}

/**
 * Checks that `root.dir` is an OCI image layout: a directory with a valid
 * `oci-layout` header (ENOLAYOUT otherwise).
 *
 * @example
 * ```ts
 * checkLayoutHeader(new LayoutRoot("./layout"));
 * ```
 */
export function checkLayoutHeader(root: LayoutRoot): void {
  const dir = root.dir;
  const hdr = join(dir, "oci-layout");
  let text: string;
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw new OcigenError("ENOLAYOUT", `${dir}: not an OCI image layout (not a directory)`);
    text = readLayoutText(root, "oci-layout", MAX_SMALL_FILE);
  } catch (e) {
    if (e instanceof OcigenError) {
      if (e.code === "EJSON") throw new OcigenError("ENOLAYOUT", e.message);
      throw e;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new OcigenError("ENOLAYOUT", `${dir}: not an OCI image layout (no oci-layout file)`);
    }
    throw wrapIo(e, "read", hdr);
  }
  let v: unknown;
  try {
    v = parseJSON(text, hdr);
  } catch (e) {
    throw new OcigenError("ENOLAYOUT", (e as Error).message);
  }
  validateLayoutHeader(v, hdr);
}

/**
 * Reads and validates `index.json`.
 *
 * @example
 * ```ts
 * const idx = readIndexFile(root);
 * ```
 */
export function readIndexFile(root: LayoutRoot): ImageIndex {
  const path = join(root.dir, "index.json");
  let text: string;
  try {
    text = readLayoutText(root, "index.json", MAX_INDEX_FILE);
  } catch (e) {
    if (e instanceof OcigenError) throw e;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new OcigenError("ENOLAYOUT", `${path}: missing (not an OCI image layout)`);
    }
    throw wrapIo(e, "read", path);
  }
  const v = parseJSON(text, path);
  validateIndex(v, path);
  return v;
}

/**
 * Validates `next` and replaces the `index.json` of the layout at `dir`
 * with it atomically (the caller holds the writer lock).
 *
 * @example
 * ```ts
 * await writeIndexFile("/l", { schemaVersion: 2, manifests: [] });
 * ```
 */
export async function writeIndexFile(dir: string, next: ImageIndex): Promise<void> {
  const path = join(dir, "index.json");
  validateIndex(next, `${path} (new)`);
  try {
    await writeFileAtomic(path, JSON.stringify(next));
  } catch (e) {
    throw layoutWriteError(dir, (e as Error).cause ?? e, path);
  }
}
