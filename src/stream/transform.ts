/**
 * Node transform streams (zlib, zstd) as async iterables of bytes: the
 * source is written into the transform with backpressure (a `drain` wait
 * when it is full) while its output is yielded; an error on either side
 * rejects the iteration and destroys the transform.
 *
 * @module
 */
/**
 * Pipes `source` through a Node transform stream with backpressure and
 * yields its output. Errors on either side reject the iteration.
 *
 * @example
 * ```ts
 * for await (const c of pipeThroughTransform(src, zlib.createGzip())) out.push(c);
 * ```
 */
export async function* pipeThroughTransform(
  source: AsyncIterable<Uint8Array>,
  t: NodeJS.ReadWriteStream & { destroy(e?: Error): void },
): AsyncGenerator<Uint8Array> {
  let pumpError: unknown;
  const pump = (async () => {
    try {
      for await (const chunk of source) {
        if (chunk.length === 0) continue;
        if (!t.write(chunk)) await new Promise<void>((res, rej) => {
          const onDrain = () => {
            t.off("error", onErr);
            res();
          };
          const onErr = (e: Error) => {
            t.off("drain", onDrain);
            rej(e);
          };
          t.once("drain", onDrain);
          t.once("error", onErr);
        });
      }
      t.end();
    } catch (e) {
      pumpError = e;
      t.destroy(e as Error);
    }
  })();
  try {
    for await (const c of t as AsyncIterable<Uint8Array>) yield c instanceof Uint8Array ? c : new Uint8Array(c);
  } catch (e) {
    await pump;
    throw pumpError ?? e;
  }
  await pump;
  if (pumpError) throw pumpError;
}
