/**
 * An OCI image layout on disk (image-spec `image-layout.md`): open, init,
 * resolve tags, read and write verified blobs, update `index.json` under a
 * lock. `Layout` is the one object the rest of ocigen reads and writes
 * images through; its work is split by concern:
 * - src/oci/blob-read.ts: verified blob reads (whole, piped, web stream);
 * - src/oci/blob-write.ts: a new layout directory, blob writes;
 * - src/oci/tags.ts: listing tags and resolving one to an image;
 * - src/oci/index-file.ts: `oci-layout` and `index.json` read and written;
 * - src/oci/layout-lock.ts: the writer lock (re-entrant, undoes new blobs);
 * - src/oci/gc.ts: collecting unreferenced blobs (`gcLayout`);
 * - this file: the layout's state (its root, lock, snapshot views) and the
 *   public methods; `index.json` updates, tags set and removed.
 *
 * On-disk format ocigen relies on:
 * ```
 * LAYOUT/oci-layout            {"imageLayoutVersion":"1.0.0"}
 * LAYOUT/index.json            image index; tags are org.opencontainers.image.ref.name annotations
 * LAYOUT/blobs/<alg>/<hex>     content-addressed blobs
 * LAYOUT/refs/<tag>            (pre-1.0 layouts, read only) one descriptor per tag
 * LAYOUT/.ocigen.lock          writer lock (see src/fs/lock.ts), present only while held
 * LAYOUT/.ocigen-tmp.<pid>.<r> temporary files being written (removed by `gc` when stale)
 * ```
 *
 * Every file of the layout is opened through src/oci/layout-file.ts (regular
 * files only, no symlink out of the layout, bounded sizes). Every blob read is
 * verified against its descriptor's digest and size;
 * writes go to a temporary file that is fsynced and renamed into place;
 * `index.json` is replaced atomically. Writers serialise on the lock file, so
 * concurrent `ocigen tag` processes never lose a tag.
 *
 * @module
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { OcigenError } from "../errors.ts";
import type { DigestAlgorithm } from "../digest/index.ts";
import { BLOB_CHUNK, BlobReader, type BlobSink } from "./blob-read.ts";
import { createLayoutDir, layoutWriteError, writeBlobFile } from "./blob-write.ts";
import { canonicalJSON } from "./canonical.ts";
import { validateDescriptor } from "./digest.ts";
import { checkLayoutHeader, readIndexFile, readLayoutText, writeIndexFile } from "./index-file.ts";
import { LayoutRoot } from "./layout-file.ts";
import { WriterLock } from "./layout-lock.ts";
import { hostPlatform } from "./platform.ts";
import { validateTag } from "./refname.ts";
import { listTagsOf, manifestsForTagIn, readLegacyRefs, type ResolvedImage, resolveTagIn } from "./tags.ts";
import { type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform, REF_NAME } from "./types.ts";
import { validateConfig, validateIndex, validateManifest } from "./validate.ts";

export { type BlobSink, MAX_JSON_BLOB } from "./blob-read.ts";
export { LOCK_FILE } from "./layout-lock.ts";
export type { ResolvedImage } from "./tags.ts";

/**
 * An OCI image layout directory.
 *
 * @example
 * ```ts
 * const layout = await Layout.open("/var/lib/oci/layouts/web");
 * for (const tag of await layout.listTags()) {
 *   const img = await layout.resolve(tag);
 *   console.log(tag, img.manifest.layers.length, img.config.config?.Entrypoint);
 * }
 * ```
 */
export class Layout {
  /** The layout directory, as given (trailing slashes removed). */
  readonly dir: string;
  /** How this layout's files are opened (see src/oci/layout-file.ts). */
  #root: LayoutRoot;
  /** Verified blob reads (with a memo on snapshot views). */
  #blobs: BlobReader;
  /** The writer lock (src/oci/layout-lock.ts) of this view. */
  #lock: WriterLock;
  /** Snapshot views only (see {@linkcode Layout.snapshot}): index.json, read once. */
  #snapshot = false;
  #memoIndex: ImageIndex | null = null;

  private constructor(dir: string, root?: LayoutRoot, memo: Map<string, Uint8Array> | null = null, real?: string) {
    this.dir = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
    this.#root = root ?? new LayoutRoot(this.dir, real);
    this.#blobs = new BlobReader(this.#root, memo);
    this.#lock = new WriterLock(this.dir);
    this.#snapshot = memo !== null;
  }

  /**
   * Opens an existing layout, checking its `oci-layout` header (ENOLAYOUT).
   * `opts.real`: the directory's real path, when the caller has just
   * resolved it (the boundary symlinks in the layout must stay inside; see
   * src/oci/layout-file.ts); otherwise it is resolved when first needed.
   *
   * @example
   * ```ts
   * const l = await Layout.open("./layout");
   * ```
   */
  static async open(dir: string, opts: { real?: string } = {}): Promise<Layout> {
    const l = new Layout(dir, undefined, null, opts.real);
    checkLayoutHeader(l.#root);
    return l;
  }

  /**
   * Creates an empty layout: `oci-layout`, `index.json` with no manifests and
   * `blobs/sha256/`. The directory must not exist or be empty. A new
   * directory is built beside its final name and renamed into place.
   *
   * @example
   * ```ts
   * const l = await Layout.init("/tmp/new-layout");
   * ```
   */
  static async init(dir: string): Promise<Layout> {
    const l = new Layout(dir);
    await createLayoutDir(l.dir);
    return l;
  }

  /**
   * Path of `index.json`.
   *
   * @example
   * ```ts
   * layout.indexPath; // "/l/index.json"
   * ```
   */
  get indexPath(): string {
    return join(this.dir, "index.json");
  }

  /**
   * Reads and validates `index.json`. On a {@linkcode Layout.snapshot} view
   * the file is read once and the same object returned each time (do not
   * modify it).
   *
   * @example
   * ```ts
   * const idx = await layout.readIndex();
   * console.log(idx.manifests.length);
   * ```
   */
  async readIndex(): Promise<ImageIndex> {
    if (this.#snapshot) return (this.#memoIndex ??= readIndexFile(this.#root));
    return await Promise.resolve(readIndexFile(this.#root));
  }

  /**
   * A read-only snapshot view of this layout for one pass over it (the
   * systemd generator): `index.json` is read once and each blob read once
   * (verified against digest and size the first time; later reads of the
   * same digest and size return those verified bytes, parsed afresh). What
   * other processes change afterwards is not seen. Writes through the view
   * work and drop the cached `index.json`.
   *
   * @example
   * ```ts
   * const snap = (await Layout.open(dir)).snapshot();
   * for (const tag of await snap.listTags()) await snap.resolve(tag); // index.json read once
   * ```
   */
  snapshot(): Layout {
    return new Layout(this.dir, this.#root, new Map());
  }

  /**
   * Descriptors of the pre-1.0 `refs/` directory, by tag (empty when absent).
   *
   * @example
   * ```ts
   * const refs = await layout.legacyRefs(); // Map { "latest" => { mediaType, digest, size } }
   * ```
   */
  async legacyRefs(): Promise<Map<string, Descriptor>> {
    return await readLegacyRefs(this.dir, (rel, max) => readLayoutText(this.#root, rel, max));
  }

  /**
   * Sorted, de-duplicated tags: ref.name annotations of `index.json` (and of
   * untagged nested indexes), plus the pre-1.0 `refs/` directory.
   *
   * @example
   * ```ts
   * await layout.listTags(); // ["latest", "v1"]
   * ```
   */
  async listTags(): Promise<string[]> {
    return await listTagsOf(this);
  }

  /**
   * Manifest descriptors a tag names: tagged manifests, the manifests of
   * tagged (nested) indexes, and tagged entries of untagged nested indexes;
   * the pre-1.0 `refs/` directory when `index.json` does not have the tag.
   * Each comes with the platform its index gives, if any.
   *
   * @example
   * ```ts
   * const cands = await layout.manifestsForTag("latest");
   * ```
   */
  async manifestsForTag(tag: string): Promise<Descriptor[]> {
    return await manifestsForTagIn(this, tag);
  }

  /**
   * Resolves a tag to its manifest and config (both verified and validated).
   * Nested indexes are followed; when several manifests carry the tag, the
   * one for the host platform (see {@linkcode hostPlatform}) is chosen, else
   * EAMBIGUOUS "tag is ambiguous". ENOTAG for an unknown tag, EBADTAG for an
   * invalid one.
   *
   * @example
   * ```ts
   * const img = await layout.resolve("latest");
   * console.log(img.config.config?.Cmd, img.manifest.layers.map((l) => l.digest));
   * ```
   */
  async resolve(tag: string, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
    return await resolveTagIn(this, tag, platform);
  }

  /**
   * Path of a blob: `blobs/<alg>/<encoded>` (the digest is validated).
   *
   * @example
   * ```ts
   * layout.blobPath("sha256:" + "a".repeat(64)); // "/l/blobs/sha256/aaaa..."
   * ```
   */
  blobPath(digest: string): string {
    return this.#blobs.path(digest);
  }

  /**
   * Names a blob in messages: `/l: manifest sha256:0123456789ab..`.
   *
   * @example
   * ```ts
   * throw new OcigenError("EUNPACK", `${layout.blobName(desc)}: cannot unpack`);
   * ```
   */
  blobName(desc: Descriptor): string {
    return this.#blobs.name(desc);
  }

  /**
   * Checks that a blob's file may be read (as {@linkcode Layout.pipeBlob}
   * would: regular, inside the layout, the descriptor's size) and returns
   * its path (a symlink inside the layout resolved), for readers that open
   * it themselves (the inflate worker, which opens it again with
   * `O_NOFOLLOW | O_NONBLOCK` and checks it is a regular file).
   *
   * @example
   * ```ts
   * const file = layout.checkedBlobPath(layerDesc);
   * ```
   */
  checkedBlobPath(desc: Descriptor): string {
    return this.#blobs.checkedPath(desc);
  }

  /**
   * Reads a whole (small) blob, verified against digest and size; embedded
   * `data` is used (verified) when present.
   *
   * @example
   * ```ts
   * const bytes = await layout.readBlob(manifest.config);
   * ```
   */
  async readBlob(desc: Descriptor): Promise<Uint8Array> {
    return await this.#blobs.read(desc);
  }

  /**
   * Reads a verified JSON blob and parses it (EJSON naming the blob).
   *
   * @example
   * ```ts
   * const m = await layout.readJSON<ImageManifest>(desc);
   * ```
   */
  async readJSON<T>(desc: Descriptor): Promise<T> {
    return (await this.#blobs.readJSON(desc)) as T;
  }

  /**
   * Reads and validates an image manifest blob.
   *
   * @example
   * ```ts
   * const m = await layout.readManifest(indexEntry);
   * ```
   */
  async readManifest(desc: Descriptor): Promise<ImageManifest> {
    const v = await this.readJSON<unknown>(desc);
    validateManifest(v, this.blobName(desc));
    return v;
  }

  /**
   * Reads and validates an image config blob.
   *
   * @example
   * ```ts
   * const c = await layout.readConfig(manifest.config);
   * ```
   */
  async readConfig(desc: Descriptor): Promise<ImageConfig> {
    const v = await this.readJSON<unknown>(desc);
    validateConfig(v, this.blobName(desc));
    return v;
  }

  /**
   * Reads and validates a nested image index blob.
   *
   * @example
   * ```ts
   * const idx = await layout.readIndexBlob(desc);
   * ```
   */
  async readIndexBlob(desc: Descriptor): Promise<ImageIndex> {
    const v = await this.readJSON<unknown>(desc);
    validateIndex(v, this.blobName(desc));
    return v;
  }

  /**
   * Streams a blob through a synchronous sink, verifying digest and size:
   * `sink.end()` is called only when the whole blob verified; on a mismatch
   * the promise rejects (EDIGEST/ESIZE) and `end()` is never called. Chunks
   * are only valid during `write()` (buffers are reused). Reading the next
   * chunk overlaps with the sink's work on the current one.
   *
   * @example
   * ```ts
   * await layout.pipeBlob(layerDesc, { write(c) { parser.write(c); }, end() { parser.end(); } });
   * ```
   */
  async pipeBlob(desc: Descriptor, sink: BlobSink, chunkSize = BLOB_CHUNK): Promise<void> {
    await this.#blobs.pipe(desc, sink, chunkSize);
  }

  /**
   * Verifies a blob against its descriptor without keeping its bytes.
   *
   * @example
   * ```ts
   * await layout.verifyBlob(layerDesc);
   * ```
   */
  async verifyBlob(desc: Descriptor): Promise<void> {
    await this.pipeBlob(desc, { write() {}, end() {} });
  }

  /**
   * A web stream of a blob's bytes, verified: the stream errors (EDIGEST,
   * ESIZE, ENOBLOB) instead of closing when the content does not match. Each
   * chunk is a fresh buffer.
   *
   * @example
   * ```ts
   * for await (const chunk of layout.openBlob(desc)) process(chunk);
   * ```
   */
  openBlob(desc: Descriptor): ReadableStream<Uint8Array> {
    return this.#blobs.stream(desc);
  }

  /**
   * Writes `obj` as a canonical JSON blob (sorted keys, no whitespace).
   *
   * @example
   * ```ts
   * const cfgDesc = await layout.writeJSON(config, MediaType.Config);
   * ```
   */
  async writeJSON(obj: unknown, mediaType: string): Promise<Descriptor> {
    return await this.writeBlob(new TextEncoder().encode(canonicalJSON(obj)), mediaType);
  }

  /**
   * Writes a blob: to a temporary file in the layout root while hashing,
   * fsync, rename into `blobs/<alg>/<hex>`, fsync the directory. Returns its
   * descriptor. Writers that tag what they write should hold
   * {@linkcode Layout.withLock} from the first blob to the tag, so that a
   * concurrent `gc` cannot collect the new blobs. Large blobs are flushed to
   * disk in the background while they are written (a data sync every 32 MiB),
   * so the final fsync waits only for the tail. `opts.digest`: the caller
   * already hashes exactly these bytes with `alg` (an uncompressed layer is
   * its own diff_id) and gives the digest once the data has ended.
   *
   * @example
   * ```ts
   * const desc = await layout.writeBlob(layerBytes, MediaType.LayerGzip);
   * ```
   */
  async writeBlob(
    data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    mediaType: string,
    alg: DigestAlgorithm = "sha256",
    opts: { digest?: () => string } = {},
  ): Promise<Descriptor> {
    return await writeBlobFile(this.dir, data, mediaType, alg, opts, this.#lock.created);
  }

  /**
   * Runs `fn` holding the layout's exclusive writer lock (`.ocigen.lock`);
   * re-entrant within the async context that holds it (calls from `fn`),
   * serialised against other callers of this object and other processes. If `fn` throws, the blobs it wrote
   * that did not exist before are removed again, so a failed operation leaves
   * the layout unchanged. ELOCK on timeout, EIO when the layout is not
   * writable.
   *
   * @example
   * ```ts
   * await layout.withLock(async () => {
   *   const d = await layout.writeJSON(manifest, MediaType.Manifest);
   *   await layout.setTag("v2", d);
   * });
   * ```
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    return await this.#lock.run(fn);
  }

  /**
   * Replaces `index.json` atomically with the result of `fn(current)`, under
   * the lock (read-modify-write, so concurrent writers never lose updates).
   *
   * @example
   * ```ts
   * await layout.updateIndex((idx) => ({ ...idx, annotations: { note: "x" } }));
   * ```
   */
  async updateIndex(fn: (idx: ImageIndex) => ImageIndex | Promise<ImageIndex>): Promise<void> {
    await this.withLock(async () => {
      this.#memoIndex = null; // read-modify-write always starts from the file
      try {
        await writeIndexFile(this.dir, await fn(readIndexFile(this.#root)));
      } finally {
        this.#memoIndex = null;
      }
    });
  }

  /**
   * Points `tag` at `desc` in `index.json` (replacing any earlier entry with
   * that tag), atomically and under the lock. EBADTAG for an invalid name.
   *
   * @example
   * ```ts
   * await layout.setTag("v1", manifestDesc);
   * ```
   */
  async setTag(tag: string, desc: Descriptor): Promise<void> {
    validateTag(tag);
    validateDescriptor(desc, `descriptor for tag ${tag}`);
    await this.updateIndex((idx) => {
      const manifests = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
      const { annotations, ...rest } = desc;
      manifests.push({ ...rest, annotations: { ...annotations, [REF_NAME]: tag } });
      return { ...idx, manifests };
    });
  }

  /**
   * Removes `tag` from `index.json` (and from a pre-1.0 `refs/` directory),
   * under the lock. ENOTAG if there is no such tag.
   *
   * @example
   * ```ts
   * await layout.removeTag("old");
   * ```
   */
  async removeTag(tag: string): Promise<void> {
    validateTag(tag);
    await this.withLock(async () => {
      this.#memoIndex = null;
      const idx = await this.readIndex();
      const legacy = await this.legacyRefs();
      const keep = idx.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag);
      if (keep.length === idx.manifests.length && !legacy.has(tag)) {
        throw new OcigenError("ENOTAG", `Cannot remove tag ${tag} in ${this.dir}: no such tag`);
      }
      if (keep.length !== idx.manifests.length) await this.updateIndex(() => ({ ...idx, manifests: keep }));
      if (legacy.has(tag)) {
        const p = join(this.dir, "refs", tag);
        try {
          fs.unlinkSync(p);
        } catch (e) {
          throw layoutWriteError(this.dir, e, p);
        }
      }
    });
  }
}
