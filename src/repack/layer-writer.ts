/**
 * The streaming layer writer: a list of {@linkcode LayerItem}s (taken from a
 * rootfs) -> tar (via {@linkcode TarWriter}) -> compression -> a layout blob,
 * with the `diff_id` (sha256 of the tar) computed while writing.
 *
 * Two readers of file contents give the same tar, byte for byte:
 * - gzip (the default, parallel): {@linkcode tarPieces} makes only the
 *   headers; file contents go to `parallelGzipFiles`
 *   (`src/compress/pgzip.ts`) as file spans that its deflate workers read
 *   themselves, so this thread walks, plans and hashes while the workers
 *   read and deflate. The tar's bytes come back in order for the diff_id.
 * - none: the same workers only read (`parallelReadFiles`), and the tar
 *   itself is the blob, hashed once: its diff_id is its blob digest.
 * - zstd and the portable gzip: {@linkcode tarStream} reads file data
 *   straight into 1 MiB staging chunks (no intermediate buffer, one sha256
 *   update per chunk).
 *
 * Both read through `fillHoles` (`src/compress/file-span.ts`): never through
 * a symlink, never blocking on a FIFO, only the inode the scan saw. Memory is
 * bounded: a few blocks in flight, compressed output flows to the blob writer
 * with backpressure. Output is reproducible: items come sorted, numbers are
 * fixed-width, uname/gname are empty, mtimes are whole seconds clamped to
 * `SOURCE_DATE_EPOCH` when set, and the gzip header has mtime 0.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { log } from "../log.ts";
import { createDigester, type Digester } from "../digest/index.ts";
import type { ByteSink } from "../stream/sink.ts";
import { TarWriter, type TarWriterEntry } from "../tar/writer.ts";
import type { BundleEntry } from "../bundle/scan.ts";
import type { Compression } from "../compress/compression.ts";
import { encodeStream, type GzipMode } from "../compress/encode.ts";
import { type GzipPiece, parallelGzipFiles, parallelReadFiles } from "../compress/pgzip.ts";
import { type FileSpan, fillHoles } from "../compress/file-span.ts";
import { layerMediaType } from "../oci/media-type.ts";
import type { Descriptor } from "../oci/types.ts";
import type { Layout } from "../oci/layout.ts";
import { progress } from "../progress.ts";


/** overlayfs' private xattrs: never carried into a layer. */
const OVERLAY_XATTRS = new Set([
  "trusted.overlay.opaque",
  "trusted.overlay.redirect",
  "trusted.overlay.origin",
  "trusted.overlay.impure",
  "trusted.overlay.nlink",
  "trusted.overlay.upper",
  "trusted.overlay.metacopy",
]);

/** One entry of a layer to write. */
export type LayerItem =
  | {
    kind: "entry";
    /** Path inside the layer (no leading "./", no trailing "/"; "." for the root). */
    name: string;
    /** Where the content/metadata comes from (absolute path). */
    abs: string;
    entry: BundleEntry;
    /** Write as a hard link to this earlier name of the same layer. */
    hardlinkTo?: string;
  }
  | {
    kind: "whiteout";
    /** The whiteout's own path: `dir/.wh.NAME` or `dir/.wh..wh..opq`. */
    name: string;
    /** mtime in seconds. */
    mtime: number;
  };

/** Options of {@linkcode tarStream} and {@linkcode writeLayer}. */
export interface LayerWriteOptions {
  /** Clamp every mtime to this (seconds; the command line passes `$SOURCE_DATE_EPOCH`). */
  sourceDateEpoch?: number;
  /** gzip writer (default `parallel`; `portable`: fflate, single-threaded). */
  gzip?: GzipMode;
  /** Map a host uid/gid back to the image's (rootless / --uid-map bundles). */
  mapUid?: (uid: number) => number;
  mapGid?: (gid: number) => number;
  /** Per-entry owner override (rootless bundles: owners recorded at unpack); wins over mapUid/mapGid. */
  mapOwner?: (name: string, e: BundleEntry) => { uid: number; gid: number } | undefined;
  /** Progress task name (a progress line is drawn on a TTY). Default "layer". */
  task?: string;
}

const CHUNK = 1 << 20;

/** A staging chunk: uninitialised memory (every byte is written before it is handed on). */
function newChunk(): Uint8Array {
  return Buffer.allocUnsafeSlow(CHUNK);
}

/**
 * Collects tar bytes into 1 MiB chunks, hashing each full chunk once (the
 * diff_id). File data is read straight into the chunk being filled
 * ({@linkcode StagingSink.space}), so content bytes are never copied before
 * they reach the compressor or the blob file.
 */
class StagingSink implements ByteSink {
  private ready: Uint8Array[] = [];
  /** Bytes in finished chunks not yet taken. */
  readyBytes = 0;
  total = 0;
  private buf = newChunk();
  private used = 0;
  constructor(private readonly hasher: Digester) {}
  /** The free part of the current chunk (never empty): read data into it, then `write()` that view. */
  space(): Uint8Array {
    if (this.used === CHUNK) this.flush();
    return this.buf.subarray(this.used);
  }
  write(chunk: Uint8Array): void {
    this.total += chunk.length;
    if (chunk.buffer === this.buf.buffer && chunk.byteOffset === this.buf.byteOffset + this.used) {
      // filled in place through space()
      this.used += chunk.length;
      if (this.used === CHUNK) this.flush();
      return;
    }
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, CHUNK - this.used);
      this.buf.set(n === chunk.length ? chunk : chunk.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === CHUNK) this.flush();
    }
  }
  end(): void {
    this.flush();
  }
  private flush(): void {
    if (this.used === 0) return;
    const c = this.buf.subarray(0, this.used);
    this.hasher.update(c);
    this.ready.push(c);
    this.readyBytes += c.length;
    this.buf = newChunk();
    this.used = 0;
  }
  take(): Uint8Array[] {
    const p = this.ready;
    this.ready = [];
    this.readyBytes = 0;
    return p;
  }
}

function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64"));
}

function mtimeOf(e: BundleEntry, sde: number | undefined): number {
  let s = Number(e.mtimeNs / 1_000_000_000n);
  if (e.mtimeNs < 0n && e.mtimeNs % 1_000_000_000n !== 0n) s -= 1;
  if (sde !== undefined && s > sde) s = sde;
  return s;
}

/** Turns layer items into tar headers (`entry`) and the file contents to read after each (`file`). */
function* tarEntries(items: Iterable<LayerItem>, opts: LayerWriteOptions): Generator<{ entry: TarWriterEntry; file?: FileSpan }> {
  const sde = opts.sourceDateEpoch;
  const mapUid = opts.mapUid ?? ((n: number) => n);
  const mapGid = opts.mapGid ?? ((n: number) => n);
  for (const it of items) {
    if (it.kind === "whiteout") {
      const mtime = sde !== undefined && it.mtime > sde ? sde : it.mtime;
      yield { entry: { name: it.name, type: "file", mode: 0, uid: 0, gid: 0, mtime, data: new Uint8Array(0) } };
      continue;
    }
    const e = it.entry;
    const owner = opts.mapOwner?.(it.name, e);
    const base: TarWriterEntry = {
      name: it.name === "." ? "./" : it.name,
      mode: e.mode,
      uid: owner ? owner.uid : mapUid(e.uid),
      gid: owner ? owner.gid : mapGid(e.gid),
      mtime: mtimeOf(e, sde),
    };
    if (e.xattrs) {
      const x: Record<string, Uint8Array> = {};
      for (const k of Object.keys(e.xattrs)) {
        // overlayfs bookkeeping describes the upper directory, not the image (umoci drops it too)
        if (OVERLAY_XATTRS.has(k)) continue;
        const v = b64(e.xattrs[k]);
        // an empty PAX value means "unset": the xattr cannot be carried (umoci drops it too)
        if (v.length === 0) log.warn(`${it.name}: ignoring empty-valued xattr ${JSON.stringify(k)}: a PAX record cannot carry an empty value`);
        else x[k] = v;
      }
      if (Object.keys(x).length > 0) base.xattrs = x;
    }
    if (it.hardlinkTo !== undefined) {
      yield { entry: { ...base, type: "link", linkname: it.hardlinkTo, size: 0 } };
    } else if (e.type === "dir") {
      yield { entry: { ...base, name: it.name === "." ? "./" : it.name + "/", type: "dir" } };
    } else if (e.type === "symlink") {
      yield { entry: { ...base, type: "symlink", linkname: e.link ?? "" } };
    } else if (e.type === "char" || e.type === "block") {
      yield { entry: { ...base, type: e.type, devmajor: e.rdevMajor ?? 0, devminor: e.rdevMinor ?? 0 } };
    } else if (e.type === "fifo") {
      yield { entry: { ...base, type: "fifo" } };
    } else if (e.type === "file") {
      // the contents: read never through a symlink, never blocking on a FIFO, from the inode
      // the scan saw (the rootfs may have changed since): src/compress/file-span.ts
      const file = e.size > 0 ? { path: it.abs, name: it.name, pos: 0, len: e.size, size: e.size, ino: Number(e.ino) } : undefined;
      yield { entry: { ...base, type: "file", size: e.size }, file };
    }
  }
}

/** The progress line of a layer (a list gives it its total; any other iterable is consumed as it comes, e.g. a tree walked while it is written). */
function layerProgress(items: Iterable<LayerItem>, opts: LayerWriteOptions) {
  let total: number | undefined;
  if (Array.isArray(items)) {
    total = 0;
    for (const it of items as LayerItem[]) if (it.kind === "entry" && it.entry.type === "file" && it.hardlinkTo === undefined) total += it.entry.size;
  }
  return progress.start(opts.task ?? "layer", { total });
}

/**
 * Streams the tar bytes of a layer. `hasher` receives every tar byte (the
 * diff_id); `stats.size` is the tar size once the iteration is complete.
 *
 * @example
 * ```ts
 * const h = createDigester();
 * for await (const c of tarStream(items, {}, h)) out.write(c);
 * const diffId = h.digest();
 * ```
 */
export async function* tarStream(
  items: Iterable<LayerItem>,
  opts: LayerWriteOptions,
  hasher: Digester,
  stats: { size: number } = { size: 0 },
): AsyncGenerator<Uint8Array> {
  const sink = new StagingSink(hasher);
  const w = new TarWriter(sink);
  const p = layerProgress(items, opts);
  try {
    for (const { entry, file } of tarEntries(items, opts)) {
      p.add(0, 1);
      w.add(entry);
      if (file) {
        let pos = 0;
        while (pos < file.len) {
          // straight into the staging chunk: no intermediate buffer, no copy
          const dst = sink.space();
          const want = Math.min(dst.length, file.len - pos);
          fillHoles(dst, [{ ...file, pos, len: want, at: 0 }]);
          w.write(dst.subarray(0, want));
          pos += want;
          p.add(want);
          if (sink.readyBytes >= CHUNK) for (const c of sink.take()) yield c;
        }
        w.entryEnd();
      }
      if (sink.readyBytes >= CHUNK) for (const c of sink.take()) yield c;
    }
    w.end();
    for (const c of sink.take()) yield c;
    stats.size = sink.total;
  } finally {
    p.done();
  }
}

/** Collects a tar's bytes and file spans, in order, for {@linkcode parallelGzipFiles}. */
class PieceSink implements ByteSink {
  pieces: GzipPiece[] = [];
  /** Bytes of the pieces not yet taken (the tar's size is counted by whoever reads them). */
  bytes = 0;
  write(chunk: Uint8Array): void {
    this.pieces.push(chunk);
    this.bytes += chunk.length;
  }
  span(s: FileSpan): void {
    this.pieces.push(s);
    this.bytes += s.len;
  }
  end(): void {}
  take(): GzipPiece[] {
    const p = this.pieces;
    this.pieces = [];
    this.bytes = 0;
    return p;
  }
}

/**
 * The tar of a layer as batches of bytes (headers, padding) and file spans,
 * whose contents the compressing threads read ({@linkcode parallelGzipFiles}):
 * the same tar as {@linkcode tarStream}'s, byte for byte.
 *
 * @example
 * ```ts
 * const gz = parallelGzipFiles(tarPieces(items, {}), { onInput: (b) => h.update(b) });
 * ```
 */
export async function* tarPieces(items: Iterable<LayerItem>, opts: LayerWriteOptions): AsyncGenerator<GzipPiece[]> {
  const sink = new PieceSink();
  const w = new TarWriter(sink);
  const p = layerProgress(items, opts);
  try {
    for (const { entry, file } of tarEntries(items, opts)) {
      p.add(0, 1);
      w.add(entry);
      if (file) {
        w.claim(file.len);
        sink.span(file);
        p.add(file.len);
        w.entryEnd();
      }
      if (sink.bytes >= CHUNK) yield sink.take();
    }
    w.end();
    yield sink.take();
  } finally {
    p.done();
  }
}

/** Result of {@linkcode writeLayer}. */
export interface WrittenLayer {
  /** Descriptor of the compressed blob. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Size of the uncompressed tar. */
  tarSize: number;
}

/**
 * Writes a layer blob into `layout`.
 *
 * @example
 * ```ts
 * const { descriptor, diffId } = await writeLayer(layout, items, "gzip");
 * ```
 */
export async function writeLayer(
  layout: Layout,
  items: Iterable<LayerItem>,
  compression: Compression,
  opts: LayerWriteOptions = {},
): Promise<WrittenLayer> {
  const hasher = createDigester();
  const stats = { size: 0 };
  let diffId: string | undefined;
  const digestOnce = () => (diffId ??= hasher.digest());
  let compressed: AsyncIterable<Uint8Array>;
  const onInput = (b: Uint8Array) => {
    hasher.update(b);
    stats.size += b.length;
  };
  // writeBlob writes each chunk out before it pulls the next: buffers can be recycled
  if (compression === "gzip" && opts.gzip !== "portable") {
    // parallel gzip reads the files on its workers; the tar's bytes come back in order for the diff_id
    compressed = parallelGzipFiles(tarPieces(items, opts), { onInput, recycle: true });
  } else if (compression === "none") {
    // the same workers read the files; the tar itself is the blob
    compressed = parallelReadFiles(tarPieces(items, opts), { onInput, recycle: true });
  } else compressed = encodeStream(compression, tarStream(items, opts, hasher, stats), { gzip: opts.gzip });
  // an uncompressed layer is its own diff_id: hash it once, not twice
  const descriptor = await layout.writeBlob(compressed, layerMediaType(compression), "sha256", compression === "none" ? { digest: digestOnce } : {});
  return { descriptor, diffId: digestOnce(), tarSize: stats.size };
}

/**
 * Writes a layer from an existing uncompressed tar stream (raw add-layer):
 * compresses it and computes its diff_id on the way.
 *
 * @example
 * ```ts
 * await writeLayerFromTar(layout, fs.createReadStream("layer.tar"), "gzip");
 * ```
 */
export async function writeLayerFromTar(
  layout: Layout,
  tar: AsyncIterable<Uint8Array>,
  compression: Compression,
  opts: Pick<LayerWriteOptions, "gzip"> = {},
): Promise<WrittenLayer> {
  const hasher = createDigester();
  let size = 0;
  async function* hashed() {
    for await (const c of tar) {
      const b = c instanceof Uint8Array ? c : new Uint8Array(c as ArrayBuffer);
      hasher.update(b);
      size += b.length;
      yield b;
    }
  }
  let diffId: string | undefined;
  const digestOnce = () => (diffId ??= hasher.digest());
  const descriptor = await layout.writeBlob(encodeStream(compression, hashed(), { gzip: opts.gzip }), layerMediaType(compression), "sha256", compression === "none" ? { digest: digestOnce } : {});
  return { descriptor, diffId: digestOnce(), tarSize: size };
}
