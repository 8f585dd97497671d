/**
 * An OCI image layout on disk (image-spec `image-layout.md`): open, init,
 * resolve tags, read and write verified blobs, update `index.json` under a
 * lock.
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
import { AsyncLocalStorage } from "node:async_hooks";
import * as fs from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { createDigester, type DigestAlgorithm, isSupportedAlgorithm } from "../digest/index.ts";
import { fsyncDir, tempPath, writeFileAtomic } from "../fs/atomic.ts";
import { acquireLock } from "../fs/lock.ts";
import { registerTempTree } from "../fs/temp-tree.ts";
import { canonicalJSON } from "./canonical.ts";
import { embeddedData, parseDigest, validateDescriptor } from "./digest.ts";
import { LayoutRoot, MAX_INDEX_FILE, MAX_SMALL_FILE, openLayoutFile, readAtMost, readFd, readLayoutFile, tooLarge } from "./layout-file.ts";
import { formatPlatform, hostPlatform, platformMatches } from "./platform.ts";
import { validateTag } from "./refname.ts";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  MediaType,
  type Platform,
  REF_NAME,
} from "./types.ts";
import {
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  parseJSON,
  validateConfig,
  validateIndex,
  validateLayoutHeader,
  validateManifest,
} from "./validate.ts";

/** An image resolved from a tag: its manifest and config, both verified. */
export interface ResolvedImage {
  tag: string;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/** A synchronous byte sink (structurally the same as `ByteSink` in src/stream/sink.ts). */
export interface BlobSink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Name of the writer lock file in the layout root. */
export const LOCK_FILE = ".ocigen.lock";
/** Largest JSON blob ocigen parses (manifests, configs, indexes; also the cap for `index.json`). */
export const MAX_JSON_BLOB = MAX_INDEX_FILE;
const CHUNK = 1 << 20;
/**
 * Blobs up to this size are read with one synchronous call: for the small
 * JSON documents (manifests, configs, indexes) that is several times faster
 * than promise-based reads (one thread-pool round trip per open/fstat/read/
 * close). Larger blobs are read asynchronously.
 */
const SYNC_READ_MAX = 4 * 1024 * 1024;
/** writeBlob starts a background data sync after this many bytes written since the last one. */
const SYNC_EVERY = 32 * 1024 * 1024;
/** Strict UTF-8 decoding of JSON blobs (stateless between calls: no `stream`; made once, not per blob). */
const UTF8 = new TextDecoder("utf-8", { fatal: true });
/** The layouts whose lock the current async context holds (for re-entrancy). */
const lockContext = new AsyncLocalStorage<Set<Layout>>();
const MAX_NESTING = 8;

/**
 * True if `mt` is an image index media type (OCI or Docker manifest list).
 *
 * @example
 * ```ts
 * isIndexMediaType("application/vnd.oci.image.index.v1+json"); // true
 * ```
 */
export function isIndexMediaType(mt: string | undefined): boolean {
  return mt !== undefined && INDEX_MEDIA_TYPES.includes(mt);
}

/**
 * True if `mt` is an image manifest media type (OCI or Docker v2 schema 2).
 *
 * @example
 * ```ts
 * isManifestMediaType("application/vnd.oci.image.manifest.v1+json"); // true
 * ```
 */
export function isManifestMediaType(mt: string | undefined): boolean {
  return mt !== undefined && MANIFEST_MEDIA_TYPES.includes(mt);
}

function kindOf(mt: string): string {
  if (isManifestMediaType(mt)) return "manifest";
  if (isIndexMediaType(mt)) return "index";
  if (mt === MediaType.Config || mt === MediaType.DockerConfig) return "config";
  if (mt.includes(".layer.") || mt === MediaType.DockerLayerGzip) return "layer";
  return "blob";
}

/**
 * Splits umoci's `LAYOUT[:TAG]` image reference (TAG defaults to `latest`);
 * the first `:` separates, as in umoci, and an empty TAG (`LAYOUT:`) is
 * refused as umoci refuses it.
 *
 * @example
 * ```ts
 * parseImageRef("/l:v1"); // { dir: "/l", tag: "v1" }
 * parseImageRef("/l"); // { dir: "/l", tag: "latest" }
 * ```
 */
export function parseImageRef(ref: string): { dir: string; tag: string } {
  const i = ref.indexOf(":");
  if (i < 0) return { dir: ref, tag: "latest" };
  const dir = ref.slice(0, i);
  const tag = ref.slice(i + 1);
  if (dir === "") throw new OcigenError("EINVALID", `Invalid image reference ${JSON.stringify(ref)}: empty layout path`);
  if (tag === "") throw new OcigenError("EINVALID", `Invalid image reference ${JSON.stringify(ref)}: empty tag (leave out the ':' for latest)`);
  return { dir, tag };
}

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
  #queue: Promise<void> = Promise.resolve();
  /** Blob files created under the current lock, removed again if the locked operation fails. */
  #created: string[] | null = null;
  /** Snapshot views only (see {@linkcode Layout.snapshot}): verified blob bytes by `digest size`, and index.json. */
  #memo: Map<string, Uint8Array> | null = null;
  #memoIndex: ImageIndex | null = null;

  private constructor(dir: string) {
    this.dir = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
    this.#root = new LayoutRoot(this.dir);
  }

  /** Reads a small file of the layout (bounded, regular, inside) as UTF-8 text. */
  #readText(rel: string, max: number): string {
    const bytes = readLayoutFile(this.#root, rel, join(this.dir, rel), max);
    try {
      return UTF8.decode(bytes);
    } catch {
      throw new OcigenError("EJSON", `${join(this.dir, rel)}: not UTF-8 text`);
    }
  }

  /**
   * Opens an existing layout, checking its `oci-layout` header (ENOLAYOUT).
   *
   * @example
   * ```ts
   * const l = await Layout.open("./layout");
   * ```
   */
  static async open(dir: string): Promise<Layout> {
    const l = new Layout(dir);
    const hdr = join(l.dir, "oci-layout");
    let text: string;
    try {
      // Synchronous: two tiny reads, much faster than thread-pool round trips.
      const st = fs.statSync(l.dir);
      if (!st.isDirectory()) throw new OcigenError("ENOLAYOUT", `${l.dir}: not an OCI image layout (not a directory)`);
      text = l.#readText("oci-layout", MAX_SMALL_FILE);
    } catch (e) {
      if (e instanceof OcigenError) {
        if (e.code === "EJSON") throw new OcigenError("ENOLAYOUT", e.message);
        throw e;
      }
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        throw new OcigenError("ENOLAYOUT", `${l.dir}: not an OCI image layout (no oci-layout file)`);
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
    let entries: string[] | null = null;
    try {
      entries = fs.readdirSync(l.dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR") throw new OcigenError("EEXIST", `Cannot init layout ${l.dir}: not a directory`);
      if (code !== "ENOENT") throw wrapIo(e, "read directory", l.dir);
    }
    if (entries !== null) {
      if (entries.includes("oci-layout")) throw new OcigenError("EEXIST", `Cannot init layout ${l.dir}: already an OCI layout`);
      if (entries.length > 0) throw new OcigenError("EEXIST", `Cannot init layout ${l.dir}: directory is not empty`);
    }
    const parent = l.dir.includes("/") ? l.dir.slice(0, l.dir.lastIndexOf("/")) || "/" : ".";
    const build = entries === null ? tempPath(parent) : l.dir;
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
        fs.renameSync(build, l.dir);
        fsyncDir(parent);
      }
    } catch (e) {
      if (entries === null) fs.rmSync(build, { recursive: true, force: true });
      if ((e as NodeJS.ErrnoException).code === "EACCES" || (e as NodeJS.ErrnoException).code === "EROFS") {
        throw new OcigenError("EIO", `Cannot init layout ${l.dir}: not writable (${(e as NodeJS.ErrnoException).code})`, { cause: e });
      }
      throw wrapIo(e, "init layout", l.dir);
    }
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
    if (this.#memo) return (this.#memoIndex ??= this.#readIndexNow());
    return await Promise.resolve(this.#readIndexNow());
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
    const l = new Layout(this.dir);
    l.#memo = new Map();
    l.#root = this.#root;
    return l;
  }

  #readIndexNow(): ImageIndex {
    let text: string;
    try {
      // Synchronous: index.json is small; see SYNC_READ_MAX.
      text = this.#readText("index.json", MAX_INDEX_FILE);
    } catch (e) {
      if (e instanceof OcigenError) throw e;
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new OcigenError("ENOLAYOUT", `${this.indexPath}: missing (not an OCI image layout)`);
      }
      throw wrapIo(e, "read", this.indexPath);
    }
    const v = parseJSON(text, this.indexPath);
    validateIndex(v, this.indexPath);
    return v;
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
    const out = new Map<string, Descriptor>();
    const root = join(this.dir, "refs");
    const walk = async (rel: string): Promise<void> => {
      let names: fs.Dirent[];
      try {
        // Most layouts have no refs/: find that out without an exception.
        if (rel === "" && !fs.statSync(root, { throwIfNoEntry: false })) return;
        names = fs.readdirSync(join(root, rel), { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return;
        throw wrapIo(e, "read directory", join(root, rel));
      }
      for (const d of names) {
        const name = rel ? `${rel}/${d.name}` : d.name;
        if (d.name.startsWith(".")) continue;
        if (d.isDirectory()) await walk(name);
        else if (d.isFile()) {
          const p = join(root, name);
          let text: string;
          try {
            text = this.#readText(`refs/${name}`, MAX_SMALL_FILE);
          } catch (e) {
            throw wrapIo(e, "read", p);
          }
          const v = parseJSON(text, p);
          validateDescriptor(v, p);
          out.set(name, v);
        }
      }
    };
    await walk("");
    return out;
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
    const tags = new Set<string>();
    const seen = new Set<string>();
    const walk = async (idx: ImageIndex, depth: number): Promise<void> => {
      for (const d of idx.manifests) {
        const t = d.annotations?.[REF_NAME];
        if (t !== undefined) tags.add(t);
        else if (isIndexMediaType(d.mediaType) && depth < MAX_NESTING && !seen.has(d.digest)) {
          seen.add(d.digest);
          await walk(await this.readIndexBlob(d), depth + 1);
        }
      }
    };
    await walk(await this.readIndex(), 0);
    for (const t of (await this.legacyRefs()).keys()) tags.add(t);
    return [...tags].sort();
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
    const found: Descriptor[] = [];
    const unknown: Descriptor[] = [];
    const seen = new Set<string>(); // indexes expanded for the tag
    const searched = new Set<string>(); // untagged indexes searched for the tag
    const expand = async (d: Descriptor, depth: number, platform?: Platform): Promise<void> => {
      if (isManifestMediaType(d.mediaType)) {
        found.push(platform && !d.platform ? { ...d, platform } : d);
      } else if (isIndexMediaType(d.mediaType)) {
        if (depth >= MAX_NESTING || seen.has(d.digest)) return;
        seen.add(d.digest);
        const idx = await this.readIndexBlob(d);
        for (const c of idx.manifests) await expand(c, depth + 1, c.platform ?? d.platform ?? platform);
      } else unknown.push(d);
    };
    const search = async (idx: ImageIndex, depth: number): Promise<void> => {
      for (const d of idx.manifests) {
        const t = d.annotations?.[REF_NAME];
        if (t === tag) await expand(d, depth);
        else if (t === undefined && isIndexMediaType(d.mediaType) && depth < MAX_NESTING && !searched.has(d.digest)) {
          searched.add(d.digest);
          await search(await this.readIndexBlob(d), depth + 1);
        }
      }
    };
    await search(await this.readIndex(), 0);
    if (found.length === 0 && unknown.length === 0) {
      const legacy = (await this.legacyRefs()).get(tag);
      if (legacy) await expand(legacy, 0);
    }
    if (found.length === 0 && unknown.length > 0) {
      throw new OcigenError(
        "EMEDIATYPE",
        `Cannot resolve tag ${tag} in ${this.dir}: it names a ${unknown[0].mediaType}, not an image manifest or index`,
      );
    }
    // The same manifest reachable twice is one candidate.
    const byDigest = new Map<string, Descriptor>();
    for (const d of found) if (!byDigest.has(d.digest)) byDigest.set(d.digest, d);
    return [...byDigest.values()];
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
    validateTag(tag);
    const cands = await this.manifestsForTag(tag);
    if (cands.length === 0) throw new OcigenError("ENOTAG", `Cannot resolve tag ${tag} in ${this.dir}: no such tag`);
    if (cands.length === 1) return await this.#load(tag, cands[0]);
    const loaded: ResolvedImage[] = [];
    const matching: ResolvedImage[] = [];
    for (const d of cands) {
      let p = d.platform;
      let img: ResolvedImage | undefined;
      if (!p) {
        img = await this.#load(tag, d);
        p = { os: img.config.os, architecture: img.config.architecture, variant: img.config.variant };
      }
      if (platformMatches(p, platform)) matching.push(img ?? (await this.#load(tag, d)));
      if (img) loaded.push(img);
    }
    if (matching.length === 1) return matching[0];
    throw new OcigenError(
      "EAMBIGUOUS",
      `Cannot resolve tag ${tag} in ${this.dir}: tag is ambiguous (${cands.length} manifests, ` +
        `${matching.length === 0 ? "none" : matching.length} for ${formatPlatform(platform)})`,
    );
  }

  async #load(tag: string, d: Descriptor): Promise<ResolvedImage> {
    const manifest = await this.readManifest(d);
    const config = await this.readConfig(manifest.config);
    return { tag, manifestDescriptor: d, manifest, config, configDescriptor: manifest.config };
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
    const { algorithm, encoded } = parseDigest(digest, `${this.dir}: blob`);
    return join(this.dir, "blobs", algorithm, encoded);
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
    return `${this.dir}: ${kindOf(desc.mediaType ?? "")} ${shortDigest(desc.digest)}`;
  }

  /**
   * Opens a blob's file (regular, inside the layout, see
   * src/oci/layout-file.ts) and checks its size against the descriptor from
   * the descriptor's `fstat`, before anything is read. The caller closes `fd`.
   */
  #openBlobFile(desc: Descriptor, path: string): number {
    return this.#openBlob(desc, path).fd;
  }

  #openBlob(desc: Descriptor, path: string): { fd: number; path: string } {
    const { algorithm, encoded } = parseDigest(desc.digest, `${this.dir}: blob`);
    const rel = `blobs/${algorithm}/${encoded}`;
    let f;
    try {
      f = openLayoutFile(this.#root, rel, `${this.blobName(desc)} (${path})`);
    } catch (e) {
      if (e instanceof OcigenError) throw e;
      throw this.#missing(desc, e, path);
    }
    if (f.size !== desc.size) {
      fs.closeSync(f.fd);
      throw this.#sizeError(desc, f.size);
    }
    return f;
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
    const f = this.#openBlob(desc, this.#check(desc).path);
    fs.closeSync(f.fd);
    return f.path;
  }

  #check(desc: Descriptor): { alg: DigestAlgorithm; path: string } {
    validateDescriptor(desc, `${this.dir}: descriptor ${shortDigest(String(desc?.digest))}`);
    const alg = desc.digest.slice(0, desc.digest.indexOf(":"));
    if (!isSupportedAlgorithm(alg)) {
      throw new OcigenError("EDIGEST", `${this.blobName(desc)}: cannot verify digest algorithm ${alg}`);
    }
    return { alg, path: this.blobPath(desc.digest) };
  }

  #missing(desc: Descriptor, e: unknown, path: string): OcigenError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      return new OcigenError("ENOBLOB", `${this.blobName(desc)}: blob is missing (${path})`);
    }
    return wrapIo(e, "read", path);
  }

  #sizeError(desc: Descriptor, got: number): OcigenError {
    const how = got < desc.size ? "truncated" : "padded";
    return new OcigenError(
      "ESIZE",
      `${this.blobName(desc)}: blob is ${how}: ${got} bytes, descriptor says ${desc.size}`,
    );
  }

  #digestError(desc: Descriptor, got: string): OcigenError {
    return new OcigenError("EDIGEST", `${this.blobName(desc)}: digest mismatch: content hashes to ${shortDigest(got)}`);
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
    const { alg, path } = this.#check(desc);
    const data = embeddedData(desc, this.blobName(desc));
    if (data) return data;
    const key = `${desc.digest} ${desc.size}`;
    const memo = this.#memo?.get(key);
    if (memo) return memo.slice();
    let bytes: Uint8Array;
    const fd = this.#openBlobFile(desc, path);
    try {
      if (desc.size <= SYNC_READ_MAX) {
        // Small blobs (manifests, configs): synchronous, see SYNC_READ_MAX.
        bytes = readAtMost(fd, desc.size + 1);
      } else {
        // one byte past the expected size: a file that grew is caught, never read whole
        const buf = new Uint8Array(desc.size + 1);
        let n = 0;
        while (n < buf.length) {
          const k = await readFd(fd, buf, n, buf.length - n);
          if (k === 0) break;
          n += k;
        }
        bytes = buf.subarray(0, n);
      }
    } catch (e) {
      throw wrapIo(e, "read", path);
    } finally {
      fs.closeSync(fd);
    }
    if (bytes.length !== desc.size) throw this.#sizeError(desc, bytes.length);
    const h = createDigester(alg);
    h.update(bytes);
    const got = h.digest();
    if (got !== desc.digest) throw this.#digestError(desc, got);
    if (this.#memo) this.#memo.set(key, bytes.slice());
    return bytes;
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
    if (desc.size > MAX_JSON_BLOB) {
      throw tooLarge(this.blobName(desc), desc.size, MAX_JSON_BLOB);
    }
    const bytes = await this.readBlob(desc);
    let text: string;
    try {
      text = UTF8.decode(bytes);
    } catch {
      throw new OcigenError("EJSON", `${this.blobName(desc)}: not UTF-8 text`);
    }
    return parseJSON(text, this.blobName(desc)) as T;
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
  async pipeBlob(desc: Descriptor, sink: BlobSink, chunkSize = CHUNK): Promise<void> {
    const { alg, path } = this.#check(desc);
    const h = createDigester(alg);
    const data = embeddedData(desc, this.blobName(desc));
    if (data) {
      if (data.length) sink.write(data);
      sink.end();
      return;
    }
    const fd = this.#openBlobFile(desc, path);
    // Reads never go past one byte beyond the descriptor's size (see src/oci/layout-file.ts).
    const limit = desc.size + 1;
    let pending: Promise<number> | undefined;
    try {
      const bufs = [new Uint8Array(chunkSize), new Uint8Array(chunkSize)];
      let total = 0;
      let cur = 0;
      const next = (buf: Uint8Array) => readFd(fd, buf, 0, Math.min(chunkSize, Math.max(limit - total, 1)));
      pending = next(bufs[cur]);
      for (;;) {
        let n: number;
        try {
          n = await pending;
        } catch (e) {
          throw wrapIo(e, "read", path);
        } finally {
          pending = undefined;
        }
        if (n === 0) break;
        total += n;
        if (total > desc.size) throw this.#sizeError(desc, total);
        const chunk = bufs[cur].subarray(0, n);
        cur ^= 1;
        pending = next(bufs[cur]);
        h.update(chunk);
        sink.write(chunk);
      }
      if (total !== desc.size) throw this.#sizeError(desc, total);
      const got = h.digest();
      if (got !== desc.digest) throw this.#digestError(desc, got);
    } finally {
      // a read still in flight (the sink threw) must finish before its descriptor is closed
      if (pending) await pending.catch(() => 0);
      fs.closeSync(fd);
    }
    sink.end();
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
    const { alg, path } = this.#check(desc);
    const data = embeddedData(desc, this.blobName(desc));
    if (data) {
      return new ReadableStream<Uint8Array>({
        start(c) {
          if (data.length) c.enqueue(data);
          c.close();
        },
      });
    }
    const h = createDigester(alg);
    let fd: number | undefined;
    let total = 0;
    const closeFh = async () => {
      const f = fd;
      fd = undefined;
      if (f !== undefined) fs.closeSync(f);
    };
    return new ReadableStream<Uint8Array>({
      // async: an error is the stream's, not the constructor's
      start: async () => {
        fd = await Promise.resolve().then(() => this.#openBlobFile(desc, path));
      },
      pull: async (c) => {
        try {
          const buf = new Uint8Array(Math.min(CHUNK, Math.max(desc.size - total, 0) + 1));
          const bytesRead = await readFd(fd!, buf, 0, buf.length);
          if (bytesRead === 0) {
            if (total !== desc.size) throw this.#sizeError(desc, total);
            const got = h.digest();
            if (got !== desc.digest) throw this.#digestError(desc, got);
            await closeFh();
            c.close();
            return;
          }
          total += bytesRead;
          if (total > desc.size) throw this.#sizeError(desc, total);
          const chunk = buf.subarray(0, bytesRead);
          h.update(chunk);
          c.enqueue(chunk);
        } catch (e) {
          await closeFh();
          throw e instanceof OcigenError ? e : wrapIo(e, "read", path);
        }
      },
      cancel: async () => {
        await closeFh();
      },
    });
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
    const tmp = tempPath(this.dir);
    const h = opts.digest ? null : createDigester(alg);
    let size = 0;
    let fh;
    try {
      fh = await open(tmp, "wx", 0o644);
    } catch (e) {
      throw writeError(this.dir, e, tmp);
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
      const dir = join(this.dir, "blobs", alg);
      // never into a symlinked blobs/ or blobs/<alg>: a hostile layout could point it at a host directory
      for (const d of [join(this.dir, "blobs"), dir]) {
        fs.mkdirSync(d, { recursive: true, mode: 0o755 });
        if (!fs.lstatSync(d).isDirectory()) throw new OcigenError("EESCAPE", `${d} is not a directory (a symlink?): refusing to write blobs through it`);
      }
      const final = join(dir, digest.slice(alg.length + 1));
      if (this.#created && !fs.existsSync(final)) this.#created.push(final);
      fs.renameSync(tmp, final);
      release();
      fsyncDir(dir);
    } catch (e) {
      if (syncing) await (syncing as Promise<void>).catch(() => {});
      if (fh) await fh.close().catch(() => {});
      try {
        fs.unlinkSync(tmp);
      } catch { /* gone */ }
      release();
      throw writeError(this.dir, e, tmp);
    }
    return { mediaType, digest, size };
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
    const held = lockContext.getStore();
    if (held?.has(this)) return await fn(); // re-entrant: this async context holds the lock
    // Serialise callers within this process first (they share the lock file's pid).
    const prev = this.#queue;
    let done!: () => void;
    this.#queue = new Promise<void>((r) => (done = r));
    await prev;
    try {
      const lock = await acquireLock(join(this.dir, LOCK_FILE), `layout ${this.dir}`);
      this.#created = [];
      try {
        return await lockContext.run(new Set([...(held ?? []), this]), fn);
      } catch (e) {
        // Leave the layout as it was: drop the blobs this operation added.
        for (const p of this.#created) {
          try {
            fs.unlinkSync(p);
          } catch { /* gone */ }
        }
        throw e;
      } finally {
        this.#created = null;
        lock.release();
      }
    } finally {
      done();
    }
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
      const next = await fn(this.#readIndexNow());
      validateIndex(next, `${this.indexPath} (new)`);
      try {
        await writeFileAtomic(this.indexPath, JSON.stringify(next));
      } catch (e) {
        throw writeError(this.dir, (e as Error).cause ?? e, this.indexPath);
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
          throw writeError(this.dir, e, p);
        }
      }
    });
  }
}

function writeError(dir: string, e: unknown, path: string): OcigenError {
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
