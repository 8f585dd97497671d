/**
 * Reading blobs of a layout, always verified. This is the read side behind
 * `Layout`'s blob methods (src/oci/layout.ts).
 *
 * The rules, for every way a blob is read (whole, streamed through a sink,
 * as a web stream):
 * - the descriptor is validated and its digest algorithm must be one ocigen
 *   can compute (EDIGEST otherwise) before the file is touched;
 * - embedded `data` (image-spec 1.1) is used instead of the file, verified;
 * - the file is opened through src/oci/layout-file.ts (regular, inside the
 *   layout) and its size checked against the descriptor on the open file
 *   (ESIZE "truncated"/"padded"), before any byte is read;
 * - reads stop one byte past the descriptor's size, so a file that grows is
 *   caught and never read whole;
 * - content is hashed while it is read; a mismatch is EDIGEST and a sink's
 *   `end()` / a web stream's close never happens for unverified bytes;
 * - a missing blob is ENOBLOB naming the blob (`/l: layer sha256:0123..`).
 *
 * A reader made for a snapshot view keeps the verified bytes of each blob it
 * read whole (by digest and size), so a generator pass reads each blob once.
 *
 * @module
 */
import * as fs from "node:fs";
import { OcigenError, shortDigest, wrapIo } from "../errors.ts";
import { createDigester, type DigestAlgorithm, isSupportedAlgorithm } from "../digest/index.ts";
import { embeddedData, parseDigest, validateDescriptor } from "./digest.ts";
import { type LayoutRoot, layoutPath, MAX_INDEX_FILE, openLayoutFile, readAtMost, readFd, tooLarge } from "./layout-file.ts";
import { blobKind } from "./media-type.ts";
import { parseJSON } from "./validate.ts";
import type { Descriptor } from "./types.ts";

/** A descriptor checked by `BlobReader`: its algorithm, its file relative to the layout and as a path. */
interface Checked {
  alg: DigestAlgorithm;
  rel: string;
  path: string;
}

/** A synchronous byte sink (structurally the same as `ByteSink` in src/stream/sink.ts). */
export interface BlobSink {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Largest JSON blob ocigen parses (manifests, configs, indexes; also the cap for `index.json`). */
export const MAX_JSON_BLOB = MAX_INDEX_FILE;
/** Default chunk size of streamed blob reads. */
export const BLOB_CHUNK = 1 << 20;
/**
 * Blobs up to this size are read with one synchronous call: for the small
 * JSON documents (manifests, configs, indexes) that is several times faster
 * than promise-based reads (one thread-pool round trip per open/fstat/read/
 * close). Larger blobs are read asynchronously.
 */
const SYNC_READ_MAX = 4 * 1024 * 1024;
/** Strict UTF-8 decoding of JSON blobs (stateless between calls: no `stream`; made once, not per blob). */
export const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Verified reads of the blobs of one layout directory.
 *
 * @example
 * ```ts
 * const r = new BlobReader(new LayoutRoot("/l"), null);
 * const bytes = await r.read(manifest.config);
 * ```
 */
export class BlobReader {
  /** The layout directory, as the layout names it in messages. */
  readonly dir: string;
  readonly #root: LayoutRoot;
  /** Verified blob bytes by `digest size` (snapshot views only). */
  readonly #memo: Map<string, Uint8Array> | null;

  /**
   * @example
   * ```ts
   * const snapshotReader = new BlobReader(root, new Map());
   * ```
   */
  constructor(root: LayoutRoot, memo: Map<string, Uint8Array> | null) {
    this.dir = root.dir;
    this.#root = root;
    this.#memo = memo;
  }

  /**
   * Path of a blob: `blobs/<alg>/<encoded>` (the digest is validated).
   *
   * @example
   * ```ts
   * reader.path("sha256:" + "a".repeat(64)); // "/l/blobs/sha256/aaaa..."
   * ```
   */
  path(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest, `${this.dir}: blob`);
    return layoutPath(this.dir, `blobs/${algorithm}/${encoded}`);
  }

  /**
   * Names a blob in messages: `/l: manifest sha256:0123456789ab..`.
   *
   * @example
   * ```ts
   * reader.name(desc); // "/l: layer sha256:0123456789ab.."
   * ```
   */
  name(desc: Descriptor): string {
    return `${this.dir}: ${blobKind(desc.mediaType ?? "")} ${shortDigest(desc.digest)}`;
  }

  /**
   * Checks that a blob's file may be read (regular, inside the layout, the
   * descriptor's size) and returns its path, a symlink inside the layout
   * resolved.
   *
   * @example
   * ```ts
   * const file = reader.checkedPath(layerDesc);
   * ```
   */
  checkedPath(desc: Descriptor): string {
    const f = this.#open(desc, this.#check(desc));
    fs.closeSync(f.fd);
    return f.path;
  }

  /**
   * Reads a whole (small) blob, verified; embedded `data` is used (verified)
   * when present.
   *
   * @example
   * ```ts
   * const bytes = await reader.read(manifest.config);
   * ```
   */
  async read(desc: Descriptor): Promise<Uint8Array> {
    const checked = this.#check(desc);
    const { alg, path } = checked;
    const data = embeddedData(desc, this.name(desc));
    if (data) return data;
    const key = `${desc.digest} ${desc.size}`;
    const memo = this.#memo?.get(key);
    if (memo) return memo.slice();
    let bytes: Uint8Array;
    const fd = this.#open(desc, checked).fd;
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
   * Reads a verified JSON blob and parses it (EJSON naming the blob; ESIZE
   * above {@linkcode MAX_JSON_BLOB}).
   *
   * @example
   * ```ts
   * const v = await reader.readJSON(desc);
   * ```
   */
  async readJSON(desc: Descriptor): Promise<unknown> {
    if (desc.size > MAX_JSON_BLOB) throw tooLarge(this.name(desc), desc.size, MAX_JSON_BLOB);
    const bytes = await this.read(desc);
    let text: string;
    try {
      text = UTF8.decode(bytes);
    } catch {
      throw new OcigenError("EJSON", `${this.name(desc)}: not UTF-8 text`);
    }
    return parseJSON(text, this.name(desc));
  }

  /**
   * Streams a blob through a synchronous sink, verifying digest and size:
   * `sink.end()` is called only when the whole blob verified. Chunks are
   * only valid during `write()` (two buffers take turns); reading the next
   * chunk overlaps with the sink's work on the current one.
   *
   * @example
   * ```ts
   * await reader.pipe(layerDesc, { write(c) { parser.write(c); }, end() { parser.end(); } });
   * ```
   */
  async pipe(desc: Descriptor, sink: BlobSink, chunkSize = BLOB_CHUNK): Promise<void> {
    const checked = this.#check(desc);
    const { alg, path } = checked;
    const h = createDigester(alg);
    const data = embeddedData(desc, this.name(desc));
    if (data) {
      if (data.length) sink.write(data);
      sink.end();
      return;
    }
    const fd = this.#open(desc, checked).fd;
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
   * A web stream of a blob's bytes, verified: the stream errors (EDIGEST,
   * ESIZE, ENOBLOB) instead of closing when the content does not match. Each
   * chunk is a fresh buffer.
   *
   * @example
   * ```ts
   * for await (const chunk of reader.stream(desc)) process(chunk);
   * ```
   */
  stream(desc: Descriptor): ReadableStream<Uint8Array> {
    const checked = this.#check(desc);
    const { alg, path } = checked;
    const data = embeddedData(desc, this.name(desc));
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
        fd = await Promise.resolve().then(() => this.#open(desc, checked).fd);
      },
      pull: async (c) => {
        try {
          const buf = new Uint8Array(Math.min(BLOB_CHUNK, Math.max(desc.size - total, 0) + 1));
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
   * Opens a blob's file (regular, inside the layout, see
   * src/oci/layout-file.ts) and checks its size against the descriptor from
   * the descriptor's `fstat`, before anything is read. The caller closes `fd`.
   */
  #open(desc: Descriptor, { rel, path }: Checked): { fd: number; path: string } {
    let f;
    try {
      f = openLayoutFile(this.#root, rel, () => `${this.name(desc)} (${path})`);
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

  #check(desc: Descriptor): Checked {
    validateDescriptor(desc, () => `${this.dir}: descriptor ${shortDigest(String(desc?.digest))}`);
    // validated: `alg:encoded` in the grammar, so `blobs/alg/encoded` is a plain relative name
    const i = desc.digest.indexOf(":");
    const alg = desc.digest.slice(0, i);
    if (!isSupportedAlgorithm(alg)) {
      throw new OcigenError("EDIGEST", `${this.name(desc)}: cannot verify digest algorithm ${alg}`);
    }
    const rel = `blobs/${alg}/${desc.digest.slice(i + 1)}`;
    return { alg, rel, path: layoutPath(this.dir, rel) };
  }

  #missing(desc: Descriptor, e: unknown, path: string): OcigenError {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      return new OcigenError("ENOBLOB", `${this.name(desc)}: blob is missing (${path})`);
    }
    return wrapIo(e, "read", path);
  }

  #sizeError(desc: Descriptor, got: number): OcigenError {
    const how = got < desc.size ? "truncated" : "padded";
    return new OcigenError("ESIZE", `${this.name(desc)}: blob is ${how}: ${got} bytes, descriptor says ${desc.size}`);
  }

  #digestError(desc: Descriptor, got: string): OcigenError {
    return new OcigenError("EDIGEST", `${this.name(desc)}: digest mismatch: content hashes to ${shortDigest(got)}`);
  }
}
