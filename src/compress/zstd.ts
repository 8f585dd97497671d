/**
 * Streaming zstd decoder as a synchronous {@linkcode ByteSink} stage: the
 * runtime's native zstd where it has one (`node:zlib`, Node >= 22.15 and
 * Deno), else the WebAssembly kernel written from RFC 8878 (Node 20).
 *
 * Both decoders accept concatenated and skippable frames, verify content
 * checksums, copy the input they keep (callers may reuse their buffers), keep
 * memory bounded by the window a frame declares, and refuse frames whose window
 * exceeds `windowMax` (default 128 MiB, at most 2 GiB) with
 * "zstd window too large (N MiB > limit M MiB): …". Every error is an
 * `OcigenError("EDECOMPRESS")` naming the stream.
 *
 * @module
 */
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { ZSTD_WINDOW_DEFAULT, ZSTD_WINDOW_LIMIT_MAX } from "./zstd-frame.ts";
import { NativeZstdDecoder, nativeZstdAvailable } from "./zstd-native.ts";
import { WasmZstdDecoder } from "./zstd-wasm.ts";

export { ZSTD_WINDOW_DEFAULT, ZSTD_WINDOW_LIMIT_MAX } from "./zstd-frame.ts";

/**
 * Which zstd implementation decodes: `auto` (native when the runtime has one),
 * `wasm` or `native`.
 *
 * @example
 * ```ts
 * const e: ZstdEngine = "wasm";
 * ```
 */
export type ZstdEngine = "auto" | "wasm" | "native";

/**
 * Options of {@linkcode ZstdDecoder}.
 *
 * @example
 * ```ts
 * const o: ZstdDecoderOptions = { name: "layer sha256:ab..", windowMax: 512 * 1024 * 1024 };
 * ```
 */
export interface ZstdDecoderOptions {
  /** What is being decompressed, for error messages (e.g. "layer sha256:ab.."). */
  name?: string;
  /** Largest window a frame may declare, bytes: default 128 MiB, at most 2 GiB. */
  windowMax?: number;
  /** Implementation (default `auto`). */
  engine?: ZstdEngine;
}

/**
 * A zstd decoder stage: push compressed bytes, decompressed bytes go to `sink`.
 *
 * @example
 * ```ts
 * const out = new CollectSink();
 * const d = new ZstdDecoder(out, { name: "layer sha256:ab.." });
 * d.write(zstdBytes);
 * d.end();
 * ```
 */
export class ZstdDecoder implements ByteSink {
  private readonly inner: ByteSink;
  private readonly counted: ByteSink;
  /** The implementation in use. */
  readonly engine: "wasm" | "native";
  /** Compressed bytes consumed. */
  bytesIn = 0;
  /** Decompressed bytes produced. */
  bytesOut = 0;

  constructor(private readonly sink: ByteSink, opts: ZstdDecoderOptions | string = {}) {
    const o: ZstdDecoderOptions = typeof opts === "string" ? { name: opts } : opts;
    const name = o.name ?? "zstd stream";
    const windowMax = o.windowMax ?? ZSTD_WINDOW_DEFAULT;
    if (!Number.isInteger(windowMax) || windowMax < 1024 || windowMax > ZSTD_WINDOW_LIMIT_MAX) {
      throw new OcigenError("EDECOMPRESS", `Cannot decompress ${name}: zstd window limit ${windowMax} out of range (1 KiB to 2 GiB)`);
    }
    const want = o.engine ?? "auto";
    if (want === "native" && !nativeZstdAvailable()) {
      throw new OcigenError("EDECOMPRESS", `Cannot decompress ${name}: this runtime has no native zstd`);
    }
    this.engine = want === "wasm" ? "wasm" : want === "native" || nativeZstdAvailable() ? "native" : "wasm";
    this.counted = {
      write: (c) => {
        this.bytesOut += c.length;
        this.sink.write(c);
      },
      end: () => this.sink.end(),
    };
    this.inner = this.engine === "native"
      ? new NativeZstdDecoder(this.counted, { name, windowMax })
      : new WasmZstdDecoder(this.counted, { name, windowMax });
  }

  write(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    this.inner.write(chunk);
  }

  end(): void {
    this.inner.end();
  }
}
