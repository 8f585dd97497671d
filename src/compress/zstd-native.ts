/**
 * zstd decompression on the runtime's own zstd (`node:zlib`'s
 * `ZstdDecompress`, Node >= 22.15 / 23.8 and Deno), as a synchronous
 * {@linkcode ByteSink} stage.
 *
 * The zlib engine is driven synchronously (its `_processChunk` without a
 * callback, the same routine `zlib.zstdDecompressSync` uses), so it fits the
 * push pipeline. Before the engine sees a frame, a {@linkcode ZstdFrameScanner}
 * reads the frame's header and enforces the window limit with the same
 * message as the WebAssembly decoder; the engine itself is allowed windows up to
 * 2 GiB. The scanner also tells a stream truncated between blocks from a
 * complete one. {@linkcode nativeZstdAvailable} is false where the runtime has
 * no zstd (Node 20), and callers then use the WebAssembly decoder.
 *
 * @module
 */
import zlib from "node:zlib";
import { OcigenError } from "../errors.ts";
import type { ByteSink } from "../stream/sink.ts";
import { describeWindowTooLarge, ZSTD_WINDOW_DEFAULT, ZstdFrameScanner } from "./zstd-frame.ts";

interface SyncEngine {
  _processChunk(chunk: Uint8Array, flushFlag: number): Uint8Array | null;
  close(): void;
}

const z = zlib as unknown as Record<string, unknown> & { constants: Record<string, number> };

let available: boolean | undefined;

/**
 * True when the runtime's `node:zlib` has a zstd decoder that can be driven
 * synchronously.
 *
 * @example
 * ```ts
 * const engine = nativeZstdAvailable() ? "native" : "wasm";
 * ```
 */
export function nativeZstdAvailable(): boolean {
  if (available === undefined) {
    available = false;
    try {
      if (typeof z.createZstdDecompress === "function") {
        const e = (z.createZstdDecompress as () => SyncEngine)();
        available = typeof e._processChunk === "function";
        e.close();
      }
    } catch {
      available = false;
    }
  }
  return available;
}

/**
 * Options of {@linkcode NativeZstdDecoder}.
 *
 * @example
 * ```ts
 * const o: NativeZstdOptions = { name: "layer sha256:ab..", windowMax: 1 << 30 };
 * ```
 */
export interface NativeZstdOptions {
  /** What is being decompressed, for error messages. */
  name?: string;
  /** Largest window a frame may declare, bytes (default 128 MiB). */
  windowMax?: number;
}

/**
 * Streaming zstd decoder on the runtime's zstd. Same contract and error
 * messages as {@linkcode WasmZstdDecoder}.
 *
 * @example
 * ```ts
 * if (nativeZstdAvailable()) {
 *   const d = new NativeZstdDecoder(sink, { name: "layer sha256:ab.." });
 *   d.write(bytes);
 *   d.end();
 * }
 * ```
 */
export class NativeZstdDecoder implements ByteSink {
  private engine: SyncEngine | null;
  private readonly scanner: ZstdFrameScanner;
  private readonly name: string;
  private seen = 0;
  private readonly cont: number;
  private readonly fin: number;

  constructor(private readonly sink: ByteSink, opts: NativeZstdOptions = {}) {
    this.name = opts.name ?? "zstd stream";
    const limit = opts.windowMax ?? ZSTD_WINDOW_DEFAULT;
    this.scanner = new ZstdFrameScanner((h) => {
      if (h.dictionaryId !== 0) this.fail(`frame needs dictionary ${h.dictionaryId}, and dictionaries are not supported`);
      if (h.window > limit) this.fail(describeWindowTooLarge(h.window, limit));
    });
    const c = z.constants;
    this.cont = c.ZSTD_e_continue ?? 0;
    this.fin = c.ZSTD_e_end ?? 2;
    const params: Record<number, number> = {};
    if (c.ZSTD_d_windowLogMax !== undefined) params[c.ZSTD_d_windowLogMax] = 31;
    this.engine = (z.createZstdDecompress as (o: unknown) => SyncEngine)({ params });
  }

  write(chunk: Uint8Array): void {
    if (!chunk.length) return;
    const e = this.live();
    this.seen += chunk.length;
    try {
      this.scanner.push(chunk);
    } catch (err) {
      if (err instanceof OcigenError) throw err;
      this.fail(this.scanner.frames === 0 ? `not a zstd stream (${(err as Error).message})` : `trailing garbage after the last frame (${(err as Error).message})`);
    }
    this.run(e, chunk, this.cont);
  }

  end(): void {
    const e = this.live();
    if (this.seen === 0) this.fail("empty stream (no compressed data)");
    if (!this.scanner.atBoundary) this.fail(`truncated stream (unexpected end of input) after compressed byte ${this.seen}`);
    this.run(e, new Uint8Array(0), this.fin);
    this.engine = null;
    e.close();
    this.sink.end();
  }

  private run(e: SyncEngine, chunk: Uint8Array, flag: number): void {
    let out: Uint8Array | null;
    try {
      // copy: the engine may keep a reference to its input after returning
      out = e._processChunk(chunk.slice(), flag);
    } catch (err) {
      const msg = String((err as Error)?.message ?? err).replace(/\s+/g, " ");
      this.fail(`corrupt zstd data (${msg})`);
    }
    if (out && out.length) this.sink.write(out);
  }

  private live(): SyncEngine {
    if (!this.engine) throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: write after end or after an error`);
    return this.engine;
  }

  private fail(msg: string): never {
    const e = this.engine;
    this.engine = null;
    try {
      e?.close();
    } catch {
      // already closed
    }
    throw new OcigenError("EDECOMPRESS", `Cannot decompress ${this.name}: ${msg}`);
  }
}
