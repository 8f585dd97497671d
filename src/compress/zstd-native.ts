/**
 * zstd decompression on the runtime's own zstd (`node:zlib`'s
 * `ZstdDecompress`, Node >= 22.15 / 23.8 and Deno), as a synchronous
 * {@linkcode ByteSink} stage.
 *
 * The zlib engine is driven synchronously through its handle's `writeSync`
 * (the routine `zlib.zstdDecompressSync` loops over, here without closing the
 * engine after one buffer), so it fits the push pipeline; output goes through
 * one reused 128 KiB buffer. Before the engine sees a frame, a {@linkcode ZstdFrameScanner}
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

interface SyncHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
}
interface SyncEngine {
  _handle: SyncHandle | null;
  destroyed?: boolean;
  _writeState: Uint32Array;
  on(ev: "error", fn: (e: Error) => void): void;
  close(): void;
}

const OUT_CHUNK = 128 * 1024;

/** The error a destroyed zlib stream keeps under its `kError` symbol, if any. */
function storedError(e: SyncEngine): Error | undefined {
  for (const sym of Object.getOwnPropertySymbols(e)) {
    if (sym.description === "kError") {
      const v = (e as unknown as Record<symbol, unknown>)[sym];
      if (v instanceof Error) return v;
    }
  }
  return undefined;
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
        available = typeof e._handle?.writeSync === "function" && e._writeState instanceof Uint32Array;
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
  private readonly out = new Uint8Array(OUT_CHUNK);
  private engineError: Error | undefined;
  private readonly params: Record<number, number>;
  private started = false; // the current engine has been given bytes

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
    this.params = params;
    this.engine = this.newEngine();
  }

  // one engine per frame: some runtimes' engines do not go on past a frame's end
  private newEngine(): SyncEngine {
    const e = (z.createZstdDecompress as (o: unknown) => SyncEngine)({ params: this.params });
    e.on("error", (err) => {
      this.engineError = err;
    });
    return e;
  }

  write(chunk: Uint8Array): void {
    if (!chunk.length) return;
    const e = this.live();
    this.seen += chunk.length;
    let ends: number[];
    try {
      ends = this.scanner.push(chunk);
    } catch (err) {
      if (err instanceof OcigenError) throw err;
      this.fail(this.scanner.frames === 0 ? `not a zstd stream (${(err as Error).message})` : `trailing garbage after the last frame (${(err as Error).message})`);
    }
    let from = 0;
    let eng = e;
    for (const at of ends) {
      if (at > from) this.run(eng, chunk.subarray(from, at), this.cont);
      this.run(eng, new Uint8Array(0), this.fin);
      eng.close();
      eng = this.engine = this.newEngine();
      this.started = false;
      from = at;
    }
    if (from < chunk.length) {
      this.started = true;
      this.run(eng, chunk.subarray(from), this.cont);
    }
  }

  end(): void {
    const e = this.live();
    if (this.seen === 0) this.fail("empty stream (no compressed data)");
    if (!this.scanner.atBoundary) this.fail(`truncated stream (unexpected end of input) after compressed byte ${this.seen}`);
    if (this.started) this.run(e, new Uint8Array(0), this.fin);
    this.engine = null;
    e.close();
    this.sink.end();
  }

  private run(e: SyncEngine, chunk: Uint8Array, flag: number): void {
    const h = e._handle;
    if (!h) this.fail("the native zstd engine was closed");
    const st = e._writeState;
    let inOff = 0;
    let inLen = chunk.length;
    for (;;) {
      try {
        h.writeSync(flag, chunk, inOff, inLen, this.out, 0, OUT_CHUNK);
      } catch (err) {
        this.engineError ??= err as Error;
      }
      // Node reports engine errors by destroying the stream (the error is kept
      // under a symbol and emitted later); Deno throws or emits at once
      if (!this.engineError && (e.destroyed || !e._handle)) this.engineError = storedError(e) ?? new Error("decoder failed");
      if (this.engineError) {
        this.fail(`corrupt zstd data (${String(this.engineError.message ?? this.engineError).replace(/\s+/g, " ")})`);
      }
      const outLeft = st[0];
      const inLeft = st[1];
      const have = OUT_CHUNK - outLeft;
      const took = inLen - inLeft;
      if (have > 0) this.sink.write(this.out.subarray(0, have));
      inOff += took;
      inLen = inLeft;
      if (outLeft !== 0 && inLeft === 0) break; // all input taken, output not full: done
      // input left over with output room and no progress would lose data silently
      if (have === 0 && took === 0) this.fail("the runtime's zstd decoder stopped taking input inside a frame");
    }
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
