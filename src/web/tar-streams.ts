/**
 * Web-streams wrappers over the synchronous tar and decompression stages, for
 * library users who hold a `ReadableStream` (fetch bodies, Deno files, ...).
 * They run the same sync core: each incoming chunk is pushed through and the
 * produced events/bytes are enqueued.
 *
 * @module
 */
import { createDecoderFor } from "../compress/index.ts";
import { layerCompressionOf } from "../oci/media-type.ts";
import type { ByteSink } from "../stream/sink.ts";
import type { TarEntryHeader } from "../tar/header.ts";
import { TarKernelParser } from "../tar/kernel.ts";
import { TarParser } from "../tar/parser.ts";
import { TarWriter, type TarWriterEntry, type TarWriterOptions } from "../tar/writer.ts";

/**
 * An event of {@linkcode UntarStream}.
 *
 * @example
 * ```ts
 * const ev: TarEvent = { kind: "entryEnd" };
 * ```
 */
export type TarEvent =
  | { kind: "entry"; header: TarEntryHeader }
  | { kind: "data"; chunk: Uint8Array }
  | { kind: "entryEnd" };

/**
 * Options of {@linkcode UntarStream}.
 *
 * @example
 * ```ts
 * new UntarStream({ kernel: true });
 * ```
 */
export interface UntarStreamOptions {
  /** Decode with the WebAssembly tar kernel (same events) instead of the TypeScript parser. */
  kernel?: boolean;
}

/**
 * Decodes a tar byte stream into entry events (`entry`, `data`..., `entryEnd`).
 * Data chunks are copies (safe to keep).
 *
 * @example
 * ```ts
 * for await (const ev of file.readable.pipeThrough(new UntarStream())) {
 *   if (ev.kind === "entry") console.log(ev.header.name);
 * }
 * ```
 */
export class UntarStream extends TransformStream<Uint8Array, TarEvent> {
  constructor(opts: UntarStreamOptions = {}) {
    let parser: TarParser | TarKernelParser;
    super({
      start(controller) {
        parser = new (opts.kernel ? TarKernelParser : TarParser)({
          entry: (header) => controller.enqueue({ kind: "entry", header }),
          data: (chunk) => controller.enqueue({ kind: "data", chunk: chunk.slice() }),
          entryEnd: () => controller.enqueue({ kind: "entryEnd" }),
          end: () => {},
        });
      },
      transform(chunk) {
        parser.write(chunk);
      },
      flush() {
        parser.end();
      },
    });
  }
}

/**
 * Encodes entries (with their whole `data`) into a tar byte stream.
 *
 * @example
 * ```ts
 * const tar = ReadableStream.from([{ name: "a", data: "x" }]).pipeThrough(new TarStream());
 * ```
 */
export class TarStream extends TransformStream<TarWriterEntry, Uint8Array> {
  constructor(opts: TarWriterOptions = {}) {
    let writer: TarWriter;
    super({
      start(controller) {
        const sink: ByteSink = { write: (c) => controller.enqueue(c.slice()), end: () => {} };
        writer = new TarWriter(sink, opts);
      },
      transform(entry) {
        writer.add(entry.data === undefined && (entry.type ?? "file") === "file" && !entry.size ? { ...entry, data: "" } : entry);
      },
      flush() {
        writer.end();
      },
    });
  }
}

/**
 * Decompresses a layer byte stream by media type (gzip, zstd or none).
 *
 * @example
 * ```ts
 * const tar = blob.stream().pipeThrough(new LayerDecompressStream("application/vnd.oci.image.layer.v1.tar+gzip"));
 * ```
 */
export class LayerDecompressStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(mediaType: string) {
    let dec: ByteSink;
    super({
      start(controller) {
        dec = createDecoderFor(layerCompressionOf(mediaType), { write: (c) => controller.enqueue(c.slice()), end: () => {} });
      },
      transform(chunk) {
        dec.write(chunk);
      },
      flush() {
        dec.end();
      },
    });
  }
}
