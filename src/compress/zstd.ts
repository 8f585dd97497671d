/**
 * Streaming zstd decoder as a synchronous {@linkcode ByteSink} stage, over
 * the `fzstd` streaming decompressor (multiple frames and skippable frames
 * supported; frame checksums are not verified: the layer's diff_id covers the
 * content). A stream ending inside a frame is an `EDECOMPRESS` error.
 *
 * @module
 */
import { Decompress } from "fzstd";
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";

/**
 * A zstd decoder stage: push compressed bytes, decompressed bytes go to `sink`.
 *
 * @example
 * ```ts
 * const out = new CollectSink();
 * const d = new ZstdDecoder(out);
 * d.write(zstdBytes);
 * d.end();
 * ```
 */
export class ZstdDecoder implements ByteSink {
  private readonly dec: Decompress;
  private sinkError: unknown = undefined;
  /** Compressed bytes consumed. */
  bytesIn = 0;
  /** Decompressed bytes produced. */
  bytesOut = 0;

  constructor(private readonly sink: ByteSink, private readonly what = "zstd stream") {
    this.dec = new Decompress((chunk: Uint8Array) => {
      if (!chunk.length) return;
      this.bytesOut += chunk.length;
      try {
        this.sink.write(chunk);
      } catch (e) {
        this.sinkError = e;
        throw e;
      }
    });
  }

  private push(chunk: Uint8Array, final: boolean): void {
    try {
      this.dec.push(chunk, final);
    } catch (e) {
      if (e instanceof OcigenError || e === this.sinkError) throw e;
      const msg = (e as Error)?.message ?? String(e);
      throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.what}: ${/unexpected EOF/i.test(msg) ? "unexpected end of data (truncated)" : `corrupt zstd data (${msg})`}`, { cause: e });
    }
  }

  write(chunk: Uint8Array): void {
    if (!chunk.length) return;
    this.bytesIn += chunk.length;
    this.push(chunk, false);
  }

  end(): void {
    if (this.bytesIn === 0) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.what}: empty zstd stream`);
    this.push(new Uint8Array(0), true);
    this.sink.end();
  }
}
