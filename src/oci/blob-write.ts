/**
 * Writing into a layout: a new layout directory, and blobs. This is the
 * write side behind `Layout.init` and `Layout.writeBlob` (src/oci/layout.ts);
 * the lock and `index.json` updates stay with `Layout`.
 *
 * - A new layout (`oci-layout`, an empty `index.json`, `blobs/sha256/`) is
 *   built in a temporary directory beside its final name and renamed into
 *   place, so a half-made layout is never seen under the name.
 * - A blob goes to a temporary file in the layout root while it is hashed,
 *   is fsynced, renamed to `blobs/<alg>/<hex>` and the directory fsynced. An
 *   interrupted write leaves no temporary file (it is registered with
 *   src/fs/temp-tree.ts); `blobs/` and `blobs/<alg>/` must be real
 *   directories, never symlinks a hostile layout planted.
 * - Failures name the layout: "not writable" (EACCES/EROFS/EPERM), "no space
 *   left" (ENOSPC/EDQUOT), else the errno error naming the path.
 *
 * @module
 */
import * as fs from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { OcigenError, wrapIo } from "../errors.ts";
import { createDigester, type DigestAlgorithm } from "../digest/index.ts";
import { fsyncDir, tempPath, writeFileAtomic } from "../fs/atomic.ts";
import { registerTempTree } from "../fs/temp-tree.ts";
import { type Descriptor, type ImageIndex, MediaType } from "./types.ts";

/** writeBlob starts a background data sync after this many bytes written since the last one. */
const SYNC_EVERY = 32 * 1024 * 1024;

/**
 * Creates an empty layout at `dir`: `oci-layout`, `index.json` with no
 * manifests and `blobs/sha256/`. The directory must not exist or be empty
 * (EEXIST otherwise); missing parents are created as `mkdir -p` would.
 *
 * @example
 * ```ts
 * await createLayoutDir("/tmp/new-layout");
 * ```
 */
export async function createLayoutDir(dir: string): Promise<void> {
  let entries: string[] | null = null;
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new OcigenError("EEXIST", `Cannot init layout ${dir}: not a directory`);
    if (code !== "ENOENT") throw wrapIo(e, "read directory", dir);
  }
  if (entries !== null) {
    if (entries.includes("oci-layout")) throw new OcigenError("EEXIST", `Cannot init layout ${dir}: already an OCI layout`);
    if (entries.length > 0) throw new OcigenError("EEXIST", `Cannot init layout ${dir}: directory is not empty`);
  }
  const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) || "/" : ".";
  const build = entries === null ? tempPath(parent) : dir;
  try {
    if (entries === null) {
      // parents are created as `mkdir -p` would (nested layout names: myorg.com/myapp)
      fs.mkdirSync(parent, { recursive: true, mode: 0o755 });
      fs.mkdirSync(build, { mode: 0o755 });
    }
    fs.mkdirSync(join(build, "blobs", "sha256"), { recursive: true, mode: 0o755 });
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.Index, manifests: [] };
    await writeFileAtomic(join(build, "index.json"), JSON.stringify(index));
    await writeFileAtomic(join(build, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    if (entries === null) {
      fs.renameSync(build, dir);
      fsyncDir(parent);
    }
  } catch (e) {
    if (entries === null) fs.rmSync(build, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code === "EACCES" || (e as NodeJS.ErrnoException).code === "EROFS") {
      throw new OcigenError("EIO", `Cannot init layout ${dir}: not writable (${(e as NodeJS.ErrnoException).code})`, { cause: e });
    }
    throw wrapIo(e, "init layout", dir);
  }
}

/**
 * Writes a blob into the layout at `dir` and returns its descriptor (see the
 * module header). `created` (when given) gets the final path of a blob that
 * did not exist before, so a failed locked operation can remove it again.
 * `opts.digest`: the caller already hashes exactly these bytes with `alg` and
 * gives the digest once the data has ended.
 *
 * @example
 * ```ts
 * const desc = await writeBlobFile("/l", bytes, MediaType.LayerGzip, "sha256", {}, null);
 * ```
 */
export async function writeBlobFile(
  dir: string,
  data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  mediaType: string,
  alg: DigestAlgorithm,
  opts: { digest?: () => string },
  created: string[] | null,
): Promise<Descriptor> {
  const tmp = tempPath(dir);
  const h = opts.digest ? null : createDigester(alg);
  let size = 0;
  let fh;
  try {
    fh = await open(tmp, "wx", 0o644);
  } catch (e) {
    throw layoutWriteError(dir, e, tmp);
  }
  // a blob being written (a repacked layer can be large) goes if the run is interrupted
  const release = registerTempTree(tmp);
  let digest: string;
  let syncing: Promise<void> | null = null;
  try {
    const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
    let unsynced = 0;
    for await (const c of chunks) {
      h?.update(c);
      size += c.length;
      let off = 0;
      while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
      unsynced += c.length;
      if (unsynced >= SYNC_EVERY && !syncing) {
        // start writing back what is there while the producer goes on
        unsynced = 0;
        const s: Promise<void> = fh.datasync().finally(() => {
          if (syncing === s) syncing = null;
        });
        s.catch(() => {}); // awaited below; never an unhandled rejection
        syncing = s;
      }
    }
    if (syncing) await syncing;
    await fh.sync();
    await fh.close();
    fh = undefined;
    digest = h ? h.digest() : opts.digest!();
    const algDir = join(dir, "blobs", alg);
    // never into a symlinked blobs/ or blobs/<alg>: a hostile layout could point it at a host directory
    for (const d of [join(dir, "blobs"), algDir]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
      if (!fs.lstatSync(d).isDirectory()) throw new OcigenError("EESCAPE", `${d} is not a directory (a symlink?): refusing to write blobs through it`);
    }
    const final = join(algDir, digest.slice(alg.length + 1));
    if (created && !fs.existsSync(final)) created.push(final);
    fs.renameSync(tmp, final);
    release();
    fsyncDir(algDir);
  } catch (e) {
    if (syncing) await (syncing as Promise<void>).catch(() => {});
    if (fh) await fh.close().catch(() => {});
    try {
      fs.unlinkSync(tmp);
    } catch { /* gone */ }
    release();
    throw layoutWriteError(dir, e, tmp);
  }
  return { mediaType, digest, size };
}

/**
 * The error for a failed write into the layout at `dir` (an `OcigenError`
 * passes through unchanged).
 *
 * @example
 * ```ts
 * throw layoutWriteError("/l", err, "/l/index.json"); // "Cannot write to layout /l: no space left (ENOSPC)"
 * ```
 */
export function layoutWriteError(dir: string, e: unknown, path: string): OcigenError {
  if (e instanceof OcigenError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EROFS" || code === "EPERM") {
    return new OcigenError("EIO", `Cannot write to layout ${dir}: not writable (${code})`, { cause: e });
  }
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new OcigenError("EIO", `Cannot write to layout ${dir}: no space left (${code})`, { cause: e });
  }
  return wrapIo(e, "write", path);
}
