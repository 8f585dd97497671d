/**
 * The synchronous push byte pipeline every hot path is built from.
 *
 * A stage is a {@linkcode ByteSink}: the producer calls `write(chunk)` for each
 * chunk and `end()` once. Calls are synchronous; a chunk is only valid during
 * the call (a stage that needs the bytes later must copy them). Errors are
 * thrown from `write`/`end` and propagate to the producer. Decompression, tar
 * parsing and layer application are stages; a WebAssembly kernel can replace
 * any of them behind the same interface.
 *
 * @module
 */

/**
 * A synchronous push consumer of bytes.
 *
 * @example
 * ```ts
 * const sink: ByteSink = { write(c) { console.log(c.length); }, end() {} };
 * sink.write(new Uint8Array(3));
 * sink.end();
 * ```
 */
export interface ByteSink {
  /** Consumes one chunk; the chunk may be reused by the caller after return. */
  write(chunk: Uint8Array): void;
  /** Signals the end of the stream. */
  end(): void;
}

/**
 * A sink collecting every byte written into one buffer (tests, small data).
 *
 * @example
 * ```ts
 * const c = new CollectSink();
 * c.write(new Uint8Array([1, 2]));
 * c.end();
 * c.bytes(); // Uint8Array [1, 2]
 * ```
 */
export class CollectSink implements ByteSink {
  private parts: Uint8Array[] = [];
  private total = 0;
  /** True once `end()` was called. */
  ended = false;
  write(chunk: Uint8Array): void {
    this.parts.push(chunk.slice());
    this.total += chunk.length;
  }
  end(): void {
    this.ended = true;
  }
  /** Everything written so far, concatenated. */
  bytes(): Uint8Array {
    return concatBytes(this.parts, this.total);
  }
}

/**
 * A sink that forwards every chunk to several sinks in order (e.g. a hasher
 * beside a decoder).
 *
 * @example
 * ```ts
 * const a = new CollectSink(), b = new CollectSink();
 * const t = new TeeSink([a, b]);
 * t.write(new Uint8Array([1]));
 * t.end();
 * ```
 */
export class TeeSink implements ByteSink {
  constructor(private readonly sinks: ByteSink[]) {}
  write(chunk: Uint8Array): void {
    for (const s of this.sinks) s.write(chunk);
  }
  end(): void {
    for (const s of this.sinks) s.end();
  }
}

/**
 * Concatenates byte arrays.
 *
 * @example
 * ```ts
 * concatBytes([new Uint8Array([1]), new Uint8Array([2])]); // [1, 2]
 * ```
 */
export function concatBytes(parts: Uint8Array[], total?: number): Uint8Array {
  const n = total ?? parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Feeds a whole buffer to a sink in chunks of `chunkSize` bytes, then ends it.
 *
 * @example
 * ```ts
 * const c = new CollectSink();
 * pushAll(c, new Uint8Array(10), 3);
 * ```
 */
export function pushAll(sink: ByteSink, data: Uint8Array, chunkSize = 65536): void {
  for (let o = 0; o < data.length; o += chunkSize) sink.write(data.subarray(o, Math.min(data.length, o + chunkSize)));
  sink.end();
}

/**
 * Pumps a web `ReadableStream` of bytes into a sink (awaiting each read,
 * pushing synchronously) and ends the sink.
 *
 * @example
 * ```ts
 * await pumpStream(new Blob(["abc"]).stream(), new CollectSink());
 * ```
 */
export async function pumpStream(stream: ReadableStream<Uint8Array>, sink: ByteSink): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value && value.length) sink.write(value);
    }
  } catch (e) {
    try {
      await reader.cancel(e);
    } catch {
      // already errored
    }
    throw e;
  } finally {
    reader.releaseLock();
  }
  sink.end();
}
